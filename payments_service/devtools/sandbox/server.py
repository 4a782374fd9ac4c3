"""`payments-service sandbox`: the sandbox under gevent's WSGI server. Call after gevent's monkey patching."""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from gevent.pywsgi import WSGIServer

from .app import create_sandbox_app
from .persistence import StateFile
from .stripe_state import StripeState
from .webhooks import WebhookSender


class _NoDelayServer(WSGIServer):  # type: ignore[misc]
    # pywsgi writes headers and body separately; without TCP_NODELAY, Nagle holds the body
    # back until the client's delayed ACK, 40 ms on every keep-alive request.
    def handle(self, sock: Any, address: Any) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle(sock, address)


def serve(
    host: str,
    port: int,
    public_url: str | None,
    webhook_url: str | None,
    webhook_secret: str,
    latency_ms: int,
    state_file: Path | None,
    out: Callable[[str], None],
    rate_limit: int = 0,
    endpoint_rate_limit: int = 25,
) -> None:
    """Serve until SIGTERM or SIGINT; with a state file, start from it and save into it."""
    logging.basicConfig(level=logging.INFO, format="sandbox %(levelname)s %(message)s")
    base = (public_url or f"http://{host}:{port}").rstrip("/")
    state = StripeState(base)
    saver = StateFile(state_file, state) if state_file else None
    if saver is not None:
        out(f"state in {state_file}: {saver.load()} checkout session(s) restored")
        saver.start()
    if webhook_url:
        state.listeners.append(WebhookSender(webhook_url, webhook_secret))
    out(f"Stripe SANDBOX (development only, no real money) on {base}; webhooks to {webhook_url or 'nowhere'}")
    app = create_sandbox_app(state, latency_ms)
    if rate_limit:
        from .rate_limits import RateLimits

        app = RateLimits(app, rate_limit, endpoint_rate_limit)
        out(f"enforcing Stripe's rate limits: {rate_limit}/s, {endpoint_rate_limit}/s per endpoint")
    server = _NoDelayServer((host, port), app, log=None)
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, server.stop)
    server.serve_forever()
    if saver is not None:
        saver.stop()
