"""End-to-end: the real commands as processes, driven over HTTP like a sibling service and Stripe."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import SKIPPED, missing_line
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(tmp_path: Path, redis_url: str) -> Iterator[Stack]:
    with running_stack(tmp_path, redis_url) as started:
        yield started


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line above pytest's count when the browser tests were skipped, saying how to run them."""
    if any(SKIPPED in str(report.longrepr) for report in terminalreporter.stats.get("skipped", [])):
        terminalreporter.write_line(missing_line(), yellow=True)
