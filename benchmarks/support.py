"""Processes the benchmarks start: a private Redis and the Stripe sandbox, on free ports."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from payments_service.devstack import answers

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Running:
    url: str
    pid: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 30) -> None:
    if not answers(url, timeout):
        raise RuntimeError(f"{url} did not answer")


@contextmanager
def private_redis() -> Iterator[Running]:
    """A redis-server of our own (append-only, as production), removed afterwards."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                directory,
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
            ],
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            deadline = time.monotonic() + 10
            with redis.Redis.from_url(url) as client:
                while True:
                    try:
                        client.ping()
                        break
                    except redis.ConnectionError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
            yield Running(url, process.pid)
        finally:
            process.terminate()
            process.wait(10)


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
