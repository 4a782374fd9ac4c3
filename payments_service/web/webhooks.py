"""POST /webhooks/stripe: raw body, signature, hand-off, answer. No business rules.

It is a plain WSGI endpoint in front of Flask: Stripe's whole event stream arrives here, and
skipping Flask's request dispatch takes a good share off each webhook's cost. It answers with
the same problem+json, request ids, logs and metrics as every other route.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from ..domain.outcomes import ApplyOutcome
from ..observability import logs, metrics
from ..stripe_api.parsing import InvalidWebhook
from ..wiring import Components
from .middleware import ROUTE, WsgiApp
from .problems import Problem, problem_for

PATH = "/webhooks/stripe"
MAX_WEBHOOK_BYTES = 1024 * 1024
# What Stripe (and the metrics) are told each outcome was.
_ANSWERS = {
    ApplyOutcome.APPLIED: "processed",
    ApplyOutcome.DUPLICATE_EVENT: "duplicate",
    ApplyOutcome.UNCHANGED: "ignored",
    ApplyOutcome.UNKNOWN_BOOKING: "ignored",
    ApplyOutcome.DUPLICATE_PAYMENT: "duplicate_payment",
}


class StripeWebhookEndpoint:
    """Serves PATH itself and hands every other request to the wrapped (Flask) app."""

    def __init__(self, app: WsgiApp, components: Components) -> None:
        self._app = app
        self._components = components

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self._app(environ, start_response)
        environ[ROUTE] = PATH
        if environ.get("REQUEST_METHOD") != "POST":
            return _answer(
                start_response, Problem(405, "only POST is allowed here", headers={"Allow": "POST"})
            )
        return _answer(start_response, self._receive(environ))

    def _receive(self, environ: dict[str, Any]) -> Problem | dict[str, object]:
        try:
            payload = _read_body(environ)
        except ValueError:
            return Problem(400, "Content-Length is not a number")
        if payload is None:
            return Problem(413, f"webhook bodies are limited to {MAX_WEBHOOK_BYTES} bytes")
        try:
            event = self._components.stripe.verify_webhook(payload, environ.get("HTTP_STRIPE_SIGNATURE"))
        except InvalidWebhook as exc:
            metrics.webhook_rejected(exc.reason)
            return Problem(400, str(exc))
        logs.bind(stripe_event_id=event.id)
        try:
            outcome = self._components.facts.handle_event(event)
        except Exception as exc:  # noqa: BLE001  # every failure is an answer Stripe retries on
            return problem_for(exc)
        label = _ANSWERS[outcome] if outcome is not None else "ignored"
        metrics.webhook_event(event.type, label)
        return {"received": True, "outcome": label}


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """The raw body, or None when it is over the limit (declared or as sent)."""
    declared = int(environ.get("CONTENT_LENGTH") or -1)
    if declared > MAX_WEBHOOK_BYTES:
        return None
    body: bytes = environ["wsgi.input"].read(declared if declared >= 0 else MAX_WEBHOOK_BYTES + 1)
    return None if len(body) > MAX_WEBHOOK_BYTES else body


def _answer(start_response: Callable[..., Any], result: Problem | dict[str, object]) -> Iterable[bytes]:
    if isinstance(result, Problem):
        return result.wsgi(start_response)
    body = json.dumps(result).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
