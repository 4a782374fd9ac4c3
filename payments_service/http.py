"""Per-request plumbing: request ids, access log, metrics, and bearer-token checks."""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from collections.abc import Sequence

from flask import Flask, Response, current_app, g, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from . import logs, metrics
from .services import Services

log = logging.getLogger("payments_service.access")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def services() -> Services:
    """The object graph create_app built for this app."""
    built: Services = current_app.extensions["payments"]
    return built


def install(app: Flask) -> None:
    """Give every response an X-Request-ID, a log line and a metrics sample."""

    @app.before_request
    def _start() -> None:
        logs.clear()
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        g.started = time.perf_counter()
        logs.bind(request_id=g.request_id)

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers["X-Request-ID"] = request_id
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.observe_request(request.method, route, response.status_code, elapsed)
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )
        return response


def require_bearer_token(tokens: Sequence[str]) -> None:
    """401 unless the request carries one of the tokens; every token is compared, in constant time."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    presented = given.strip().encode()
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(presented, token.encode())
    if scheme.lower() != "bearer" or not presented or not matched:
        raise Unauthorized(
            "a valid bearer token is required (Authorization: Bearer <token>)",
            www_authenticate=WWWAuthenticate("bearer"),
        )
