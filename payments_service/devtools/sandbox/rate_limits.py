"""The sandbox enforcing Stripe's rate limits (`payments-service sandbox --rate-limit N`).

A WSGI layer in front of the sandbox's API: past N requests in any one second for the account,
or past the endpoint limit for one endpoint (Stripe counts each named operation apart: the
method and the path with ids left out), it answers 429 as Stripe does, before the API sees the
request (Stripe keeps nothing of it, idempotency key included). The window is a strict sliding
second, stricter than anything Stripe documents. `GET /_sandbox/rate-limits` counts what it let
through and what it refused, per endpoint.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

WINDOW_SECONDS = 1.0
_OBJECT_ID = re.compile(r"^[a-z]{2,4}_[A-Za-z0-9_]+$")
RATE_LIMITED = {
    "error": {
        "type": "invalid_request_error",
        "code": "rate_limit",
        "message": "Request rate limit exceeded. Learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
    }
}


def endpoint_of(method: str, path: str) -> str:
    """`POST /v1/checkout/sessions/{id}/expire`: requests for different objects share a limit."""
    parts = ["{id}" if _OBJECT_ID.match(part) else part for part in path.split("/")]
    return f"{method} {'/'.join(parts)}"


class RateLimits:
    """429 past `global_limit` requests per second, or `endpoint_limit` for one endpoint."""

    def __init__(self, app: WsgiApp, global_limit: int, endpoint_limit: int) -> None:
        self._app = app
        self._global_limit = global_limit
        self._endpoint_limit = endpoint_limit
        self._recent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self.accepted: Counter[str] = Counter()
        self.limited: Counter[str] = Counter()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/_sandbox/rate-limits":
            return _answer(start_response, 200, self.counts())
        if not path.startswith("/v1/") or self._admit(endpoint_of(environ["REQUEST_METHOD"], path)):
            return self._app(environ, start_response)
        return _answer(start_response, 429, RATE_LIMITED)

    def counts(self) -> dict[str, Any]:
        with self._lock:
            return {
                "global_limit": self._global_limit,
                "endpoint_limit": self._endpoint_limit,
                "accepted": dict(self.accepted),
                "limited": dict(self.limited),
            }

    def _admit(self, endpoint: str) -> bool:
        now = time.monotonic()
        with self._lock:
            account = self._window("*", now)
            this = self._window(endpoint, now)
            if len(account) >= self._global_limit or len(this) >= self._endpoint_limit:
                self.limited[endpoint] += 1
                return False
            account.append(now)
            this.append(now)
            self.accepted[endpoint] += 1
            return True

    def _window(self, name: str, now: float) -> deque[float]:
        """The requests let through in the last second."""
        recent = self._recent.setdefault(name, deque())
        while recent and recent[0] <= now - WINDOW_SECONDS:
            recent.popleft()
        return recent


def _answer(start_response: Callable[..., Any], status: int, body: dict[str, Any]) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start_response(
        f"{status} {'OK' if status == 200 else 'Too Many Requests'}",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("Request-Id", "req_" + secrets.token_hex(7)),
        ],
    )
    return [data]
