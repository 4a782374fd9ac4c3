"""POST /webhooks/stripe: raw body, signature, hand-off, answer. No business rules.

It is a plain WSGI endpoint in front of Flask: Stripe's whole event stream arrives here, and
skipping Flask's request dispatch takes a good share off each webhook's cost. It answers with
the same problem+json, request ids, logs and metrics as every other route.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import ClientDisconnected, RequestTimeout

from ..domain.outcomes import ApplyOutcome
from ..observability import logs, metrics
from ..stripe_api.gateway import check_signature_time
from ..stripe_api.parsing import HANDLED_EVENT_TYPES, InvalidWebhook
from ..wiring import Components
from .middleware import ROUTE, WsgiApp
from .problems import Problem, problem_for

PATH = "/webhooks/stripe"
MAX_WEBHOOK_BYTES = 1024 * 1024
# Webhook bodies are read before anyone knows they come from Stripe, so together they may hold
# at most this much memory per process; past it, a sender is asked to retry (Stripe does). A
# Stripe event is a few KiB: thousands of them fit, a few dozen bodies padded to 1 MiB do not.
WEBHOOK_BYTES_IN_FLIGHT = 16 * 1024 * 1024
# What Stripe (and the metrics) are told each outcome was.
_ANSWERS = {
    ApplyOutcome.APPLIED: "processed",
    ApplyOutcome.DUPLICATE_EVENT: "duplicate",
    ApplyOutcome.UNCHANGED: "ignored",
    ApplyOutcome.UNKNOWN_BOOKING: "ignored",
    ApplyOutcome.DUPLICATE_PAYMENT: "duplicate_payment",
}


class BodyBudget:
    """Bytes of unauthenticated bodies this process is reading at once, held under a ceiling."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            if self._used + size > self._limit:
                return False
            self._used += size
            return True

    def give_back(self, size: int) -> None:
        with self._lock:
            self._used -= size


class StripeWebhookEndpoint:
    """Serves PATH itself and hands every other request to the wrapped (Flask) app."""

    def __init__(self, app: WsgiApp, components: Components) -> None:
        self._app = app
        self._components = components
        self._budget = BodyBudget(WEBHOOK_BYTES_IN_FLIGHT)

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
        signature = environ.get("HTTP_STRIPE_SIGNATURE")
        try:
            check_signature_time(signature, time.time())  # before a byte of the body is read
            declared = _declared_length(environ)
        except InvalidWebhook as exc:
            metrics.webhook_rejected(exc.reason)
            return Problem(400, str(exc))
        except ValueError:
            return Problem(400, "Content-Length is not a number")
        if declared > MAX_WEBHOOK_BYTES:
            return Problem(413, f"webhook bodies are limited to {MAX_WEBHOOK_BYTES} bytes")
        reserved = declared if declared >= 0 else MAX_WEBHOOK_BYTES + 1
        if not self._budget.take(reserved):
            metrics.webhook_rejected("overloaded")
            return Problem(503, "too many webhook bodies in flight; retry", headers={"Retry-After": "1"})
        try:
            payload = _read_body(environ, declared)
            if payload is None:
                return Problem(413, f"webhook bodies are limited to {MAX_WEBHOOK_BYTES} bytes")
            event = self._components.stripe.verify_webhook(payload, signature)
        except (RequestTimeout, ClientDisconnected) as exc:
            return Problem(exc.code or 400, exc.description)
        except OSError:  # a server without a deadline on bodies: the client went away mid-body
            return Problem(400, "the request body ended before it was complete")
        except InvalidWebhook as exc:
            metrics.webhook_rejected(exc.reason)
            return Problem(400, str(exc))
        finally:
            self._budget.give_back(reserved)
        logs.bind(stripe_event_id=event.id)
        try:
            outcome = self._components.facts.handle_event(event)
        except Exception as exc:  # noqa: BLE001  # every failure is an answer Stripe retries on
            return problem_for(exc)
        label = _ANSWERS[outcome] if outcome is not None else "ignored"
        # Metric labels from a fixed set: the handled types, and everything else as "other".
        metrics.webhook_event(event.type if event.type in HANDLED_EVENT_TYPES else "other", label)
        return {"received": True, "outcome": label}


def _declared_length(environ: dict[str, Any]) -> int:
    """Content-Length, or -1 when the body is sent without one (chunked)."""
    raw = environ.get("CONTENT_LENGTH") or ""
    if not raw:
        return -1
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise ValueError(raw)
    return int(raw)


def _read_body(environ: dict[str, Any], declared: int) -> bytes | None:
    """The raw body, or None when it is over the limit as sent."""
    body: bytes = environ["wsgi.input"].read(declared if declared >= 0 else MAX_WEBHOOK_BYTES + 1)
    return None if len(body) > MAX_WEBHOOK_BYTES else body


def _answer(start_response: Callable[..., Any], result: Problem | dict[str, object]) -> Iterable[bytes]:
    if isinstance(result, Problem):
        return result.wsgi(start_response)
    body = json.dumps(result).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
