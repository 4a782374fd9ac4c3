"""Scenarios for GeventBatching that need a gevent-patched process: `python -m tests.support.gevent_batching`.

Each prints one JSON line with what it observed; tests/integration/test_redis_pipelining.py runs them.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from redis import BlockingConnectionPool, Connection  # noqa: E402
from redis.exceptions import ConnectionError  # noqa: E402

from payments_service.storage.gevent_io import GeventBatching  # noqa: E402


class CountingConnection(Connection):
    """Counts the writes that reach Redis (one per round trip), and the WAITs in them."""

    writes = 0
    waits = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.writes += 1
        CountingConnection.waits += b"".join(command).count(b"\r\nWAIT\r\n")
        super().send_packed_command(command, check_health)


def batching(url: str) -> GeventBatching:
    pool = BlockingConnectionPool.from_url(url, max_connections=8, connection_class=CountingConnection)
    return GeventBatching(pool)


def concurrent(url: str) -> dict[str, Any]:
    """100 requests at once, 5 round trips each: everyone gets their own replies, in fewer writes."""
    trips = batching(url)

    def request(n: int) -> list[Any]:
        seen = []
        for _ in range(5):
            _, value = trips.run([("INCR", f"counter:{n}"), ("GET", f"counter:{n}")])
            seen.append(int(value))
        return seen

    greenlets = [gevent.spawn(request, n) for n in range(100)]
    gevent.joinall(greenlets, raise_error=True)
    return {"seen": [g.value for g in greenlets], "calls": 500, "writes": CountingConnection.writes}


def refused(url: str) -> dict[str, Any]:
    """Redis unreachable: every request in the write fails with ConnectionError, none is left waiting."""
    trips = batching(url)

    def request() -> str:
        try:
            trips.run([("GET", "k")])
        except ConnectionError:
            return "ConnectionError"
        return "answered"

    greenlets = [gevent.spawn(request) for _ in range(20)]
    gevent.joinall(greenlets, timeout=10)
    return {"outcomes": [g.value if g.ready() else "still waiting" for g in greenlets]}


def one_killed(url: str) -> dict[str, Any]:
    """A request killed while its commands are on their way: the others sharing the write still get theirs."""
    trips = batching(url)
    doomed = gevent.spawn(trips.run, [("SET", "shared", "1")])
    other = gevent.spawn(trips.run, [("INCR", "shared-other")])
    killer = gevent.spawn(lambda: doomed.kill(block=False))
    gevent.joinall([doomed, other, killer], timeout=10)
    return {
        "other": other.value if other.successful() else repr(other.exception),
        "doomed": "killed" if isinstance(doomed.value, gevent.GreenletExit) else repr(doomed.value),
        "written": [value.decode() for value in trips.run([("GET", "shared")])],
    }


def shared_wait(url: str) -> dict[str, Any]:
    """50 writes, each followed by its WAIT: one WAIT per shared write, and each request gets its answer."""
    trips = batching(url)

    def request(n: int) -> list[Any]:
        return trips.run([("INCR", f"acked:{n}"), ("WAIT", 0, 100)])

    greenlets = [gevent.spawn(request, n) for n in range(50)]
    gevent.joinall(greenlets, raise_error=True)
    return {
        "replies": [g.value for g in greenlets],
        "writes": CountingConnection.writes,
        "waits": CountingConnection.waits,
    }


SCENARIOS = {
    "concurrent": concurrent,
    "refused": refused,
    "one_killed": one_killed,
    "shared_wait": shared_wait,
}

if __name__ == "__main__":
    scenario, redis_url = sys.argv[1], sys.argv[2]
    print(json.dumps(SCENARIOS[scenario](redis_url)))
