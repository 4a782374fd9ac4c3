"""Around every request (WSGI): request ids, the access log, metrics; and bearer-token checks."""

from __future__ import annotations

import hmac
import io
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from flask import Flask, current_app, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import ClientDisconnected, RequestTimeout, Unauthorized

from ..observability import logs, metrics
from ..wiring import Components
from .problems import Problem

log = logging.getLogger("payments_service.access")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ROUTE = "payments.route"  # environ key: the route template, for metrics
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Metric labels come from this fixed set: any other method name a client sends is "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def components() -> Components:
    """The object graph create_app built for this app."""
    built: Components = current_app.extensions["payments"]
    return built


class BoundedBody:
    """Reads a body sent without Content-Length (chunked) up to a limit, so Flask knows its size.

    werkzeug silently cuts such a body at MAX_CONTENT_LENGTH: padded JSON over the limit would
    parse, and anything else would fail as invalid JSON (400) instead of being too large (413).
    Only a request with a valid bearer token has its body read here: the app refuses the others
    (401, 404, 405) without reading, so nobody unauthenticated makes us buffer anything.
    """

    def __init__(self, app: WsgiApp, limit: int, tokens: Sequence[str]) -> None:
        self._app = app
        self._limit = limit
        self._tokens = tokens

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if (
            not environ.get("CONTENT_LENGTH")
            and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
            and bearer_token_valid(environ.get("HTTP_AUTHORIZATION", ""), self._tokens)
        ):
            try:
                body = environ["wsgi.input"].read(self._limit + 1)
            except (RequestTimeout, ClientDisconnected) as exc:
                return Problem(exc.code or 400, exc.description).wsgi(start_response)
            if len(body) > self._limit:
                return Problem(413, f"request bodies are limited to {self._limit} bytes").wsgi(start_response)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self._app(environ, start_response)


class RequestMiddleware:
    """Gives every response an X-Request-ID, one JSON log line and a metrics sample.

    A WSGI middleware rather than Flask hooks, so that the webhook endpoint (which runs in front
    of Flask) is logged and measured the same way.
    """

    def __init__(self, app: WsgiApp) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        given = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        logs.clear()
        logs.bind(request_id=request_id)
        status: list[str] = []

        def start(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(code)
            headers.append(("X-Request-ID", request_id))
            return start_response(code, headers, exc_info)

        body = self._app(environ, start)
        code = int(status[0][:3]) if status else 500
        elapsed = time.perf_counter() - started
        method = environ.get("REQUEST_METHOD", "")
        label = method if method in METHODS else "other"
        metrics.observe_request(label, environ.get(ROUTE, "unmatched"), code, elapsed)
        log.info(
            "request",
            extra={
                "method": method,
                "path": environ.get("PATH_INFO", ""),
                "status": code,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )
        return body


def install(app: Flask) -> None:
    """Label Flask's requests with their route template (for metrics by route)."""

    @app.before_request
    def _route() -> None:
        rule = request.url_rule
        request.environ[ROUTE] = rule.rule if rule is not None else "unmatched"


def bearer_token_valid(authorization: str, tokens: Sequence[str]) -> bool:
    """True if an Authorization header carries one of the tokens (each compared in constant time)."""
    scheme, _, given = authorization.partition(" ")
    presented = given.strip().encode()
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(presented, token.encode())
    return scheme.lower() == "bearer" and bool(presented) and matched


def require_bearer_token(tokens: Sequence[str]) -> None:
    """401 unless the request carries one of the tokens."""
    if not bearer_token_valid(request.headers.get("Authorization", ""), tokens):
        raise Unauthorized(
            "a valid bearer token is required (Authorization: Bearer <token>)",
            www_authenticate=WWWAuthenticate("bearer"),
        )
