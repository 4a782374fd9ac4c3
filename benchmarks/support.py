"""Processes the benchmarks start: a private Redis (the tests' RedisServer) and the Stripe sandbox."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from payments_service.devtools.devstack import answers
from tests.support.redis_server import RedisServer, free_port

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Running:
    url: str
    pid: int


def wait_http(url: str, timeout: float = 30) -> None:
    if not answers(url, timeout):
        raise RuntimeError(f"{url} did not answer")


@contextmanager
def private_redis() -> Iterator[Running]:
    """A redis-server of our own (append-only, fsync every second, as production), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        server = RedisServer(Path(directory), appendfsync="everysec")
        server.start()
        try:
            yield Running(server.url, server.pid)
        finally:
            server.stop()


@contextmanager
def sandbox(
    latency_ms: int = 0, webhook_url: str | None = None, secret: str | None = None
) -> Iterator[Running]:
    """The Stripe sandbox as its own process; `latency_ms` makes it answer like a distant Stripe."""
    port = free_port()
    args = [str(BIN / "payments-service"), "sandbox", "--port", str(port), "--latency-ms", str(latency_ms)]
    if webhook_url:
        args += ["--webhook-url", webhook_url, "--webhook-secret", secret or ""]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/_sandbox/health")
        yield Running(url, process.pid)
    finally:
        process.terminate()
        process.wait(10)
