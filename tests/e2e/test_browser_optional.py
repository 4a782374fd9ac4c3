"""`make test` without Chromium: the browser tests are skipped with one line saying how to run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.browser import SKIPPED

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def run_browser_tests(**env: str) -> subprocess.CompletedProcess[str]:
    """pytest on the browser tests, as `make test` runs it, with a browser that is not there."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "REQUIRE_CHROMIUM"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/e2e/test_browser.py"],
        cwd=REPO,
        env={**environ, "CHROMIUM_PATH": "/nonexistent/chromium", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_chromium_the_browser_tests_are_skipped_with_one_line_saying_how_to_run_them() -> None:
    result = run_browser_tests()

    assert result.returncode == 0, result.stdout + result.stderr
    assert " skipped" in result.stdout.splitlines()[-1]
    explained = [line for line in result.stdout.splitlines() if line.startswith(SKIPPED)]
    assert len(explained) == 1, result.stdout
    assert "/nonexistent/chromium" in explained[0]
    assert "apt-get install chromium" in explained[0]
    assert "CHROMIUM_PATH=" in explained[0]


def test_ci_can_require_chromium_so_a_missing_browser_fails() -> None:
    result = run_browser_tests(REQUIRE_CHROMIUM="1")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "no Chromium at /nonexistent/chromium" in result.stdout
