"""problem+json (RFC 9457): the one mapping from any error to an answer, whichever route raised it."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

from ..domain.errors import (
    BookingBusy,
    InvalidRequest,
    ServiceError,
    StripeFailure,
    StripeRateLimited,
    VersionConflict,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Problem:
    """An RFC 9457 problem: what every error looks like on the wire, whichever route raised it."""

    status: int
    detail: str | None = None
    type: str = "about:blank"
    headers: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def body(self) -> bytes:
        data: dict[str, Any] = {
            "type": self.type,
            "title": HTTP_STATUS_CODES.get(self.status, "Error"),
            "status": self.status,
        }
        if self.detail:
            data["detail"] = self.detail
        data.update(self.extra)
        return json.dumps(data).encode()

    def wsgi(self, start_response: Callable[..., Any]) -> list[bytes]:
        """This problem as a plain WSGI answer (for the endpoints in front of Flask)."""
        body = self.body()
        start_response(
            f"{self.status} {HTTP_STATUS_CODES.get(self.status, 'Error')}",
            [("Content-Type", PROBLEM_JSON), ("Content-Length", str(len(body))), *self.headers.items()],
        )
        return [body]

    def response(self) -> Response:
        response = Response(self.body(), status=self.status, mimetype=PROBLEM_JSON)
        response.headers.update(self.headers)
        return response


def problem_for(exc: Exception) -> Problem:
    """The answer for an error raised by a use case or a dependency (not for HTTP-level errors)."""
    if isinstance(exc, InvalidRequest):
        return Problem(422, exc.detail, extra={"errors": exc.errors})
    if isinstance(exc, ServiceError):
        return Problem(exc.status, exc.detail, exc.type)
    if isinstance(exc, StripeFailure):
        detail = f"Stripe: {exc.message}" + (f" (request {exc.request_id})" if exc.request_id else "")
        return Problem(
            502, detail, "urn:payments-service:problem:stripe", extra={"stripe_request_id": exc.request_id}
        )
    if isinstance(exc, RedisError):
        log.error("redis unavailable", extra={"error": type(exc).__name__})
        detail = "state store unavailable; retry later"
        return Problem(503, detail, "urn:payments-service:problem:redis", {"Retry-After": "5"})
    if isinstance(exc, BookingBusy):
        return Problem(
            503,
            "another request for this booking is still talking to Stripe; retry",
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, StripeRateLimited):
        return Problem(
            503,
            "Stripe's rate limit is reached and the queue is longer than this service waits; retry",
            "urn:payments-service:problem:stripe-rate-limit",
            {"Retry-After": str(max(1, math.ceil(exc.retry_after)))},
        )
    if isinstance(exc, VersionConflict):
        return Problem(
            503, "the payment is changing under heavy contention; retry", headers={"Retry-After": "1"}
        )
    log.exception("unhandled error", exc_info=exc)
    return Problem(500, InternalServerError.description)


def problem_for_http(exc: HTTPException) -> Problem:
    """werkzeug's and flask-smorest's errors (404, 405, 413, 401, 400/422 from webargs)."""
    status = exc.code or 500
    messages = (getattr(exc, "data", None) or {}).get("messages")
    if status == 422 and messages:
        return Problem(422, "the request has invalid fields", extra={"errors": flatten_errors(messages)})
    if status == 400 and messages:
        details = [m for ms in flatten_errors(messages).values() for m in ms]
        return Problem(400, "; ".join(details) or exc.description)
    original = exc.get_response().headers
    kept = {h: original[h] for h in ("Allow", "WWW-Authenticate", "Retry-After") if h in original}
    return Problem(status, exc.description, headers=kept)


def register_error_handlers(app: Flask) -> None:
    """Every error, whatever raised it, leaves as problem+json."""

    @app.errorhandler(HTTPException)  # replaces flask-smorest's own handler for these
    def _http(exc: HTTPException) -> Response:
        return problem_for_http(exc).response()

    @app.errorhandler(Exception)
    def _any(exc: Exception) -> Response:
        return problem_for(exc).response()


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """webargs/marshmallow nest errors by location and field; callers want field -> messages."""
    if isinstance(messages, Mapping):
        if set(messages) <= {"json", "query", "headers", "view_args"} and not prefix:
            flat: dict[str, list[str]] = {}
            for location in messages.values():
                flat.update(flatten_errors(location))
            return flat
        flat = {}
        for name, value in messages.items():
            flat.update(flatten_errors(value, f"{prefix}.{name}" if prefix else str(name)))
        return flat
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix or "_schema": list(messages)}
    return {prefix or "_schema": [str(messages)]}
