"""End-to-end: the real commands as processes, driven over HTTP like a sibling service and Stripe."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(tmp_path: Path, redis_url: str) -> Iterator[Stack]:
    with running_stack(tmp_path, redis_url) as started:
        yield started
