"""Stripe on the wire for unit tests: requests-mock hands stripe-python's requests to the sandbox model."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests_mock

from payments_service.devtools.sandbox.forms import parse
from payments_service.devtools.sandbox.stripe_api import StripeApi
from payments_service.devtools.sandbox.stripe_state import StripeState
from payments_service.domain.facts import CheckoutRequest

STRIPE_BASE = "https://stripe.test"


class StripeWire:
    """A stateful fake Stripe behind requests-mock; tests inspect `calls` and can add failures."""

    def __init__(self, mocker: requests_mock.Mocker, state: StripeState) -> None:
        self.mocker = mocker
        self.state = state
        self.api = StripeApi(state)
        self.latency = 0.0
        self._request_ids = 0
        mocker.register_uri(
            requests_mock.ANY, re.compile(re.escape(STRIPE_BASE) + "/v1/.*"), text=self._respond
        )

    def _respond(self, request: Any, context: Any) -> str:
        if self.latency:
            time.sleep(self.latency)
        url = urlsplit(request.url)
        params = parse(url.query, request.text or "")
        status, text = self.api.respond(
            request.method, url.path, params, request.headers.get("Idempotency-Key")
        )
        self._request_ids += 1
        context.status_code = status
        context.headers["Request-Id"] = f"req_test{self._request_ids}"
        context.headers["Content-Type"] = "application/json"
        return text

    def calls(self, method: str, path: str) -> list[Any]:
        """Requests that crossed the wire to Stripe for one method and exact path."""
        return [
            r
            for r in self.mocker.request_history
            if r.url.startswith(STRIPE_BASE) and r.method == method and urlsplit(r.url).path == path
        ]

    def all_calls(self) -> list[Any]:
        return [r for r in self.mocker.request_history if r.url.startswith(STRIPE_BASE)]

    def fail(self, method: str, path: str, status: int, message: str, **error: Any) -> None:
        """Make Stripe refuse every following request to one path."""
        body = {
            "error": {
                "type": "api_error" if status >= 500 else "invalid_request_error",
                "message": message,
                **error,
            }
        }
        self.mocker.register_uri(
            method, STRIPE_BASE + path, status_code=status, json=body, headers={"Request-Id": "req_failed"}
        )


def form(request: Any) -> dict[str, str]:
    """The form parameters of one request to Stripe, as sent."""
    return dict(parse_qsl(request.text or ""))


def query(request: Any) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(request.url).query))


def body_json(request: Any) -> Any:
    return json.loads(request.text)


def checkout_request(booking_id: str) -> CheckoutRequest:
    """What the gateway asks Stripe for, for a two-seat booking (tests and the transport benchmark)."""
    return CheckoutRequest(
        booking_id=booking_id,
        amount=3750,
        currency="usd",
        description="Dune: Part Two, 2 seats",
        expires_at=int(time.time()) + 3600,
        success_url="https://app.test/ok",
        cancel_url="https://app.test/back",
        customer_email=None,
        metadata={},
    )
