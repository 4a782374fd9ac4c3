"""Where the browser tests find Chromium, and what `make test` says when it is not there.

Debian's Chromium, driven through Playwright (test tools cannot download their own browser
here). Without it the browser tests are skipped with one line saying how to run them;
REQUIRE_CHROMIUM=1 (CI sets it) makes a missing browser a failure instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_VARIABLE = "CHROMIUM_PATH"
REQUIRE_VARIABLE = "REQUIRE_CHROMIUM"
SKIPPED = "browser tests skipped"
# The flags the machine needs: no sandbox as root, and no background calls to a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> Path:
    """CHROMIUM_PATH if set, else `chromium` on PATH, else Debian's place for it."""
    return Path(os.environ.get(CHROMIUM_VARIABLE) or shutil.which("chromium") or "/usr/bin/chromium")


def missing_line() -> str:
    return (
        f"{SKIPPED}: no Chromium at {chromium_path()}. To run them: sudo apt-get install chromium "
        f"(or set {CHROMIUM_VARIABLE}=/path/to/chromium); {REQUIRE_VARIABLE}=1 makes this a failure."
    )


def require_chromium() -> Path:
    """The browser's path; skips the test (or fails it, under REQUIRE_CHROMIUM=1) when it is missing."""
    path = chromium_path()
    if not path.exists():
        if os.environ.get(REQUIRE_VARIABLE):
            pytest.fail(missing_line().replace(SKIPPED, "browser tests failed"), pytrace=False)
        pytest.skip(missing_line())
    return path
