"""The README's `curl` examples work as written against a service with only the required settings."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"


def checkout_bodies() -> list[dict[str, Any]]:
    """The JSON bodies of the README's `POST /v1/payments` examples."""
    api_section = README.read_text().split("## The API", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"curl -s -X POST localhost:8000/v1/payments -H .*?-d '(.*?)'", api_section, re.DOTALL)
    return [json.loads(body) for body in found]


@pytest.fixture
def bare_stack(tmp_path: Path, redis_url: str) -> Iterator[Stack]:
    """No CHECKOUT_SUCCESS_URL or CHECKOUT_CANCEL_URL: they are optional settings."""
    with running_stack(tmp_path, redis_url, CHECKOUT_SUCCESS_URL="", CHECKOUT_CANCEL_URL="") as started:
        yield started


def test_the_readme_checkout_examples_open_checkouts_without_default_redirect_urls(bare_stack: Stack) -> None:
    bodies = checkout_bodies()
    assert len(bodies) == 2, "the README's The API section shows two checkout examples"
    for body in bodies:
        answer = bare_stack.api("POST", "/v1/payments", json=body)
        assert answer.status_code == 201, answer.text
    # And what the README says happens without them.
    body = {k: v for k, v in bodies[0].items() if k not in ("success_url", "cancel_url")}
    refused = bare_stack.api("POST", "/v1/payments", json={**body, "booking_id": "bk_no_urls"})
    assert refused.status_code == 422
    assert "CHECKOUT_SUCCESS_URL" in refused.text
