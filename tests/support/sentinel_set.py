"""A Redis primary, its replicas and three Sentinels, as real processes on free ports in a temp dir.

Sentinel marks a node down after `down_after_ms` (1 s here, so failovers are quick in tests).
Every node runs with `min-replicas-to-write 1`, as the README recommends, so a primary cut off
from its replicas stops taking writes by itself.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import IO, Any

import redis

from tests.support.processes import wait_for
from tests.support.redis_server import RedisServer, free_port

SERVICE = "payments"
QUORUM = 2


class SentinelSet:
    """`replicas` replicas of one primary, watched by three Sentinels agreeing on failover by QUORUM."""

    def __init__(self, directory: Path, replicas: int = 2, down_after_ms: int = 1000) -> None:
        self.directory = directory
        self.down_after_ms = down_after_ms
        # The README's settings: a primary without replicas refuses writes; a replica that must
        # sync in full after a failover starts at once instead of waiting 5 s for company.
        safety = ["--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"]
        safety += ["--repl-diskless-sync-delay", "0"]
        primary = RedisServer(directory / "node-0", args=safety)
        self.nodes = [primary] + [
            RedisServer(
                directory / f"node-{n}",
                args=[*safety, "--replicaof", "127.0.0.1", str(primary.port)],
            )
            for n in range(1, replicas + 1)
        ]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self._sentinels: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    @property
    def setting(self) -> str:
        """REDIS_SENTINELS for the service."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        primary = self.nodes[0]
        with primary.client() as client:

            def replicas_online() -> bool:
                info = client.info("replication")
                states = [info.get(f"slave{n}", {}).get("state") for n in range(len(self.nodes) - 1)]
                return states == ["online"] * (len(self.nodes) - 1) and _writable(client)

            wait_for(replicas_online, 20, "the replicas to be online and the primary writable")
        for n, port in enumerate(self.sentinel_ports):
            directory = self.directory / f"sentinel-{n}"
            directory.mkdir(parents=True, exist_ok=True)
            config = directory / "sentinel.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
                f"sentinel resolve-hostnames no\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} {QUORUM}\n"
                f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
                f"sentinel failover-timeout {SERVICE} 10000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            log = (directory / "sentinel.log").open("ab")
            self._logs.append(log)
            self._sentinels.append(
                subprocess.Popen(["redis-server", str(config), "--sentinel"], stdout=log, stderr=log)
            )
        wait_for(self._everyone_knows_everyone, 30, "the Sentinels to find each other and the replicas")

    def _everyone_knows_everyone(self) -> bool:
        try:
            states = [self.sentinel(n).sentinel_master(SERVICE) for n in range(3)]
        except redis.RedisError:
            return False
        return all(s["num-other-sentinels"] == 2 and s["num-slaves"] == len(self.nodes) - 1 for s in states)

    def sentinel(self, n: int = 0) -> redis.Redis:
        return redis.Redis(port=self.sentinel_ports[n], socket_timeout=5, decode_responses=True)

    def primary_address(self) -> tuple[str, int]:
        """Where the Sentinels say the primary is (all of them must agree)."""
        answers = set()
        for n in range(3):
            with self.sentinel(n) as sentinel:
                host, port = sentinel.sentinel_get_master_addr_by_name(SERVICE, return_responses=True)
                answers.add((str(host), int(port)))
        if len(answers) != 1:
            raise AssertionError(f"Sentinels disagree on the primary: {answers}")
        return answers.pop()

    def primary(self) -> RedisServer:
        address = self.primary_address()
        return next(node for node in self.nodes if node.address == address)

    def failover(self) -> None:
        """SENTINEL FAILOVER: promote a replica now, as an operator does before maintenance."""
        with self.sentinel() as sentinel:
            sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE)

    def wait_for_new_primary(self, old: tuple[str, int], timeout: float = 30) -> float:
        """Seconds until every Sentinel names a primary other than `old`."""
        began = time.monotonic()

        def moved() -> bool:
            try:
                return self.primary_address() != old
            except (redis.RedisError, AssertionError):
                return False

        wait_for(moved, timeout, "the Sentinels to name a new primary")
        return time.monotonic() - began

    def role(self, node: RedisServer) -> str:
        with node.client() as client:
            role: Any = client.execute_command("ROLE")
            return str(role[0])

    def stop(self) -> None:
        for process in self._sentinels:
            process.kill()
            process.wait(10)
        for log in self._logs:
            log.close()
        for node in self.nodes:
            node.kill()


def _writable(client: redis.Redis) -> bool:
    try:
        client.set("{payments}:started", "1")
        return True
    except redis.ResponseError:  # NOREPLICAS until the replicas' first acknowledgment
        return False
