"""The serving worker's connection rules, over raw sockets: keep-alive, idle limits, shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from payments_service.runtime.server import GRACEFUL_TIMEOUT, KEEPALIVE, WORKER_CLASS
from tests.support.processes import BIN, ServiceProcess, wait_for
from tests.support.redis_server import free_port
from tests.support.settings import API_TOKEN, WEBHOOK_SECRET
from tests.support.signing import stripe_signature
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

KEEPALIVE_SECONDS = 1
BODY = {"booking_id": "bk_1", "amount": 3750, "currency": "usd", "description": "2 seats"}
LIVE = b"GET /health/live HTTP/1.1\r\nHost: payments.test\r\n\r\n"


@pytest.fixture
def gunicorn_port(stack: Stack) -> Iterator[int]:
    """`gunicorn wsgi:app` with the worker `serve` uses and a one-second keep-alive."""
    port = free_port()
    args = [str(BIN / "gunicorn"), "wsgi:app", "-k", WORKER_CLASS, "--workers", "1"]
    args += ["--bind", f"127.0.0.1:{port}", "--keep-alive", str(KEEPALIVE_SECONDS)]
    process = ServiceProcess("gunicorn", args, stack.env, stack.tmp)
    try:
        process.wait_http(f"http://127.0.0.1:{port}/health/live")
        yield port
    finally:
        process.stop()


def read_response(sock: socket.socket) -> tuple[str, dict[str, str]]:
    """The status line and headers of one response; its body (Content-Length bytes) is read too."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(65536)
    return status, headers


def seconds_until_closed(sock: socket.socket, limit: float = 10) -> float:
    """How long until the server closes the connection (recv returns nothing)."""
    started = time.monotonic()
    sock.settimeout(limit)
    while sock.recv(65536):
        pass
    return time.monotonic() - started


def test_one_connection_serves_request_after_request_then_closes_once_idle(gunicorn_port: int) -> None:
    with socket.create_connection(("127.0.0.1", gunicorn_port), timeout=5) as sock:
        for _ in range(3):
            sock.sendall(LIVE)
            status, headers = read_response(sock)
            assert status.endswith("200 OK")
            assert headers.get("connection", "keep-alive").lower() != "close"
            assert headers["x-request-id"]
        idle = seconds_until_closed(sock)
    assert KEEPALIVE_SECONDS * 0.8 <= idle < KEEPALIVE_SECONDS + 2


def test_a_client_that_sends_nothing_or_never_finishes_its_headers_is_cut_off(gunicorn_port: int) -> None:
    with socket.create_connection(("127.0.0.1", gunicorn_port), timeout=5) as silent:
        assert seconds_until_closed(silent) < KEEPALIVE_SECONDS + 2
    with socket.create_connection(("127.0.0.1", gunicorn_port), timeout=5) as slow:
        slow.sendall(b"GET /health/live HTTP/1.1\r\nHost: payments.test\r\nX-Trickle: 1\r\n")
        started = time.monotonic()
        status, _ = read_response(slow)
        assert status.split()[1] == "400"
        assert time.monotonic() - started < KEEPALIVE_SECONDS + 2
        assert seconds_until_closed(slow) < 2


def test_serve_shuts_down_promptly_with_idle_keep_alive_clients_and_closes_theirs(stack: Stack) -> None:
    serve = next(p for p in stack.processes if p.name == "serve")
    port = int(stack.api_url.rsplit(":", 1)[1])
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    busy = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        for sock in (idle, busy):
            sock.sendall(LIVE)
            assert read_response(sock)[0].endswith("200 OK")
        stopped_at = time.monotonic()
        os.kill(serve.process.pid, signal.SIGTERM)
        time.sleep(1.5)  # gunicorn's workers look at their stop flag once a second
        busy.sendall(LIVE)  # a client reusing its connection during the shutdown is still answered
        status, headers = read_response(busy)
        assert status.endswith("200 OK")
        assert headers["connection"] == "close"
        assert seconds_until_closed(busy) < 2
        assert serve.process.wait(GRACEFUL_TIMEOUT) == 0
        # The idle client did not hold the shutdown for the graceful timeout, only its keep-alive.
        assert time.monotonic() - stopped_at < KEEPALIVE + 3
        assert seconds_until_closed(idle, limit=1) < 1
    finally:
        idle.close()
        busy.close()


def test_serve_runs_the_keep_alive_worker(stack: Stack) -> None:
    log = Path(stack.tmp / "serve.log").read_text()
    assert f"Using worker: {WORKER_CLASS}" in log


def chunked_post(stack: Stack, path: str, body: bytes, webhook_signature: bool = False) -> requests.Response:
    """POST without Content-Length (Transfer-Encoding: chunked), 4 KiB per chunk."""

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    if webhook_signature:  # a fresh one, as Stripe sends (it is checked before the body is read)
        headers["Stripe-Signature"] = stripe_signature(body, WEBHOOK_SECRET)
    return requests.post(stack.api_url + path, data=chunks(), headers=headers, timeout=10)


@pytest.mark.parametrize(("path", "limit"), [("/v1/payments", 64 * 1024), ("/webhooks/stripe", 1024 * 1024)])
def test_a_chunked_body_over_the_limit_is_a_413_even_when_it_is_padded_json(
    stack: Stack, path: str, limit: int
) -> None:
    body = json.dumps({**BODY, "booking_id": "bk_padded"}).encode()
    response = chunked_post(stack, path, body + b" " * limit, webhook_signature=True)
    assert response.status_code == 413, response.text
    assert response.headers["Content-Type"] == "application/problem+json"


def test_a_chunked_body_within_the_limit_is_read_whole(stack: Stack) -> None:
    body = json.dumps({**BODY, "booking_id": "bk_chunked", "description": "x" * 250}).encode()
    response = chunked_post(stack, "/v1/payments", body + b" " * 10_000)
    assert response.status_code == 201, response.text
    assert response.json()["description"] == "x" * 250


def slow_post(port: int, path: str, headers: str = "", declared: int = 1000) -> socket.socket:
    """A client that sends its headers and the first bytes of its body, then nothing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = f"POST {path} HTTP/1.1\r\nHost: payments.test\r\nContent-Type: application/json\r\n{headers}"
    sock.sendall(f"{head}Content-Length: {declared}\r\n\r\n".encode() + b'{"id": "ev')
    return sock


def webhook_headers() -> str:
    return f"Stripe-Signature: {stripe_signature(b'{}', WEBHOOK_SECRET)}\r\n"


def test_a_body_that_trickles_in_is_answered_408_and_the_connection_closed(gunicorn_port: int) -> None:
    for path, headers in (
        ("/webhooks/stripe", webhook_headers()),
        ("/v1/payments", f"Authorization: Bearer {API_TOKEN}\r\n"),
    ):
        started = time.monotonic()
        with slow_post(gunicorn_port, path, headers) as sock:
            status, response_headers = read_response(sock)
            assert status.split()[1] == "408", path
            assert response_headers["content-type"] == "application/problem+json"
            assert response_headers["connection"] == "close"
            assert time.monotonic() - started < KEEPALIVE_SECONDS + 2
            assert seconds_until_closed(sock) < 2


def test_many_slow_bodies_hold_neither_the_server_nor_their_connections(gunicorn_port: int) -> None:
    slow = [slow_post(gunicorn_port, "/webhooks/stripe", webhook_headers()) for _ in range(50)]
    try:
        started = time.monotonic()
        assert requests.get(f"http://127.0.0.1:{gunicorn_port}/health/live", timeout=5).status_code == 200
        assert time.monotonic() - started < 1
        statuses = [read_response(sock)[0].split()[1] for sock in slow]
        assert statuses == ["408"] * 50
        assert time.monotonic() - started < KEEPALIVE_SECONDS + 3
    finally:
        for sock in slow:
            sock.close()


def test_a_body_cut_short_is_one_log_line_and_one_left_unread_is_not_waited_for(stack: Stack) -> None:
    port = int(stack.api_url.rsplit(":", 1)[1])
    with slow_post(port, "/webhooks/stripe", webhook_headers()) as sock:
        sock.shutdown(socket.SHUT_WR)  # the client is done sending, 990 bytes short
        status, _ = read_response(sock)
    assert status.split()[1] == "400"
    log = stack.tmp / "serve.log"
    wait_for(lambda: '"path": "/webhooks/stripe"' in log.read_text(), 10, "the request's log line")
    text = log.read_text()
    assert '"status": 400' in text
    assert "Traceback" not in text and "Error" not in text
    # Refused without a token: nothing reads the megabyte it declares, and the server does not
    # wait for it either (pywsgi would, to keep the connection, for as long as it took).
    with slow_post(port, "/v1/payments", declared=1024 * 1024) as sock:
        status, _ = read_response(sock)
        assert status.split()[1] == "401"
        assert seconds_until_closed(sock) < 2
