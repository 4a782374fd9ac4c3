"""A private redis-server for the tests: free port, temp dir, AOF on; can be stopped to prove outages."""

from __future__ import annotations

import random
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_cluster_port() -> int:
    """A free port whose Cluster bus port (+10000) is free too, both below the ephemeral range."""
    for _ in range(200):
        port = random.randrange(16000, 22000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a Cluster node")


class RedisServer:
    """One redis-server process; `stop` then `start` keeps its data (appendonly; fsync always by default).

    The benchmarks use it too, with production's `appendfsync everysec`. `args` adds configuration
    (replication, Cluster mode); `kill` is a SIGKILL, and `start` afterwards restarts it from its AOF.
    """

    def __init__(
        self,
        directory: Path,
        appendfsync: str = "always",
        port: int | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.directory = directory
        self.appendfsync = appendfsync
        self.port = port or free_port()
        self.args = list(args)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("redis-server is not running")
        return self._process.pid

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                self.appendfsync,
                "--maxmemory-policy",
                "noeviction",
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        with redis.Redis(port=self.port, socket_connect_timeout=0.2) as client:
            while True:
                try:
                    client.ping()
                    return
                except (redis.ConnectionError, redis.ResponseError):  # refused, or LOADING its AOF
                    if time.monotonic() > deadline or self._process.poll() is not None:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.02)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        self._process.wait(timeout=10)
        self._process = None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final fsync, like a crashed machine's process."""
        if self._process is None:
            return
        self._process.kill()
        self._process.wait(timeout=10)
        self._process = None

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, decode_responses=True)
