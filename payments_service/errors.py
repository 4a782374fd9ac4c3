"""The service's error types and the one handler that turns every error into problem+json."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, json
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

from .store import BookingBusy, VersionConflict
from .stripe_gateway import StripeFailure

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class ServiceError(Exception):
    """A use case refused a request; status and type say how."""

    status = 400
    type = "about:blank"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409
    type = "urn:payments-service:problem:conflict"


class InvalidRequest(ServiceError):
    """Input that passed the schema but breaks a rule that needs configuration or state."""

    status = 422

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        super().__init__("the request has invalid fields")
        self.errors = dict(errors)


def problem(status: int, detail: str | None = None, type_: str = "about:blank", **extra: Any) -> Response:
    """An RFC 9457 problem response."""
    body: dict[str, Any] = {"type": type_, "title": HTTP_STATUS_CODES.get(status, "Error"), "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)


def register_error_handlers(app: Flask) -> None:
    """Every error, whatever raised it, leaves as problem+json."""

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        messages = (getattr(exc, "data", None) or {}).get("messages")
        if status == 422 and messages:
            return problem(422, "the request has invalid fields", errors=flatten_errors(messages))
        if status == 400 and messages:
            details = [m for ms in flatten_errors(messages).values() for m in ms]
            return problem(400, "; ".join(details) or exc.description)
        response = problem(status, exc.description)
        original = exc.get_response().headers
        for header in ("Allow", "WWW-Authenticate", "Retry-After"):
            if header in original:
                response.headers[header] = original[header]
        return response

    @app.errorhandler(ServiceError)
    def _service(exc: ServiceError) -> Response:
        if isinstance(exc, InvalidRequest):
            return problem(422, exc.detail, errors=exc.errors)
        return problem(exc.status, exc.detail, exc.type)

    @app.errorhandler(StripeFailure)
    def _stripe(exc: StripeFailure) -> Response:
        detail = f"Stripe: {exc.message}"
        if exc.request_id:
            detail += f" (request {exc.request_id})"
        return problem(502, detail, "urn:payments-service:problem:stripe", stripe_request_id=exc.request_id)

    @app.errorhandler(RedisError)
    def _redis(exc: RedisError) -> Response:
        log.error("redis unavailable", extra={"error": type(exc).__name__})
        response = problem(503, "state store unavailable; retry later", "urn:payments-service:problem:redis")
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(BookingBusy)
    def _busy(exc: BookingBusy) -> Response:
        response = problem(503, "another request for this booking is still talking to Stripe; retry")
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(VersionConflict)
    def _conflict(exc: VersionConflict) -> Response:
        response = problem(503, "the payment is changing under heavy contention; retry")
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem(500, InternalServerError.description)


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
