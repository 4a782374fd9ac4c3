"""The geventhttpclient transport `serve` uses for Stripe, over real sockets.

The rest of the suite fakes Stripe with requests-mock, which sees only requests' transport; these
tests run the gevent transport against the sandbox and against servers that misbehave on purpose.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe
from werkzeug.serving import make_server

from payments_service.devtools.sandbox.app import create_sandbox_app
from payments_service.devtools.sandbox.stripe_state import StripeState
from payments_service.domain.errors import StripeFailure
from payments_service.domain.facts import SessionOutcome
from payments_service.stripe_api.gateway import StripeGateway
from payments_service.stripe_api.gevent_transport import GeventStripeHTTPClient
from tests.support.settings import WEBHOOK_SECRET
from tests.support.stripe_wire import checkout_request


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    server = make_server(
        "127.0.0.1", 0, create_sandbox_app(StripeState("https://checkout.test")), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


OPENED: list[GeventStripeHTTPClient] = []


@pytest.fixture(autouse=True)
def close_transports() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


def transport(timeout: float = 5.0, concurrency: int = 4) -> GeventStripeHTTPClient:
    client = GeventStripeHTTPClient(timeout, concurrency)
    OPENED.append(client)
    return client


def gateway(base: str, timeout: float = 5.0, retries: int = 0) -> StripeGateway:
    client = stripe.StripeClient(
        "sk_test_transport",
        base_addresses={"api": base},
        max_network_retries=retries,
        http_client=transport(timeout),
    )
    return StripeGateway(client, [WEBHOOK_SECRET])


def test_sessions_round_trip_through_the_sdk(sandbox_url: str) -> None:
    stripe_gateway = gateway(sandbox_url)
    created = stripe_gateway.create_checkout_session(checkout_request("bk_http_1"), "checkout:bk_http_1:1:x")
    assert created.id.startswith("cs_test_") and created.url.endswith(created.id)
    # Stripe replays the first answer for a repeated idempotency key: the header reached the wire.
    again = stripe_gateway.create_checkout_session(checkout_request("bk_http_1"), "checkout:bk_http_1:1:x")
    assert again.id == created.id
    fact = stripe_gateway.retrieve_session(created.id)
    assert fact.outcome is SessionOutcome.OPEN and fact.booking_id == "bk_http_1"
    assert stripe_gateway.expire_session(created.id).outcome is SessionOutcome.EXPIRED


def test_stripe_errors_keep_their_status_message_and_request_id(sandbox_url: str) -> None:
    with pytest.raises(StripeFailure) as failure:
        gateway(sandbox_url).retrieve_session("cs_test_missing")
    assert failure.value.http_status == 404 and failure.value.refused
    assert "cs_test_missing" in failure.value.message
    assert (failure.value.request_id or "").startswith("req_")


class Counting(ThreadingHTTPServer):
    """An HTTP/1.1 server that counts connections; `close_each` drops keep-alive without saying so."""

    daemon_threads = True

    def __init__(self, close_each: bool = False, stall: bool = False) -> None:
        self.connections = 0
        self.requests = 0
        self.close_each = close_each
        self.stall = stall
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                server.connections += 1
                super().setup()

            def do_GET(self) -> None:  # noqa: N802
                server.requests += 1
                if server.stall:
                    time.sleep(3)
                    return
                body = b'{"id": "cs_test_counted", "object": "checkout.session", "status": "open"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Request-Id", "req_counted")
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                if server.close_each:
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def raw_get(client: GeventStripeHTTPClient, url: str) -> tuple[Any, int, Any]:
    return client.request("get", url + "/v1/checkout/sessions/cs_test_counted", {"Authorization": "Bearer x"})


def test_connections_are_kept_alive_and_reused() -> None:
    server = Counting()
    client = transport()
    for _ in range(20):
        body, status, headers = raw_get(client, server.url)
        assert status == 200 and b"cs_test_counted" in body and headers["request-id"] == "req_counted"
    assert (server.requests, server.connections) == (20, 1)
    server.stop()


def test_a_connection_the_server_dropped_is_replaced_not_reported() -> None:
    server = Counting(close_each=True)
    client = transport(concurrency=1)
    for _ in range(5):
        assert raw_get(client, server.url)[1] == 200
    assert server.requests == 5 and server.connections == 5
    server.stop()


def test_refused_connections_are_retryable_connection_errors() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = transport(2.0, concurrency=1)
    with pytest.raises(stripe.APIConnectionError) as error:
        raw_get(client, f"http://127.0.0.1:{port}")
    assert error.value.should_retry is True


def test_a_stalled_answer_times_out_and_the_sdk_retries_it() -> None:
    server = Counting(stall=True)
    started = time.monotonic()
    with pytest.raises(StripeFailure) as failure:
        gateway(server.url, timeout=0.3, retries=1).retrieve_session("cs_test_counted")
    assert "Network error" in failure.value.message and failure.value.http_status is None
    assert server.requests == 2  # the first attempt and stripe-python's one retry
    assert time.monotonic() - started < 2.5
    server.stop()
