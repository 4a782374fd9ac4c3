"""`make bench`: what the replica acknowledgment costs, checkout and webhook throughput side by side.

The same processes as benchmarks/run.py (serve with its defaults, the Stripe sandbox answering in
300 ms, wrk), against a Redis primary with one local replica, run twice: REDIS_REPLICA_ACKS=0 (no
WAIT) and REDIS_REPLICA_ACKS=1 (each acknowledged write waits for the replica). Rounds alternate,
because this machine's speed drifts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from benchmarks.run import (
    RESULTS,
    SIGNING_SECRET,
    STRIPE_LATENCY_MS,
    TOKEN,
    WEBHOOK_SECRET,
    Stack,
    checkout_phase,
    intake,
    machine_speed_ms,
)
from benchmarks.support import BIN, Running, free_port, sandbox, wait_http
from payments_service.settings import Settings
from tests.support.redis_server import RedisServer


@contextmanager
def primary_with_replica() -> Iterator[tuple[Running, Running]]:
    """A primary (append-only, fsync every second, as production) and a replica of it, both local."""
    with tempfile.TemporaryDirectory(prefix="bench-replica-") as directory:
        primary = RedisServer(
            Path(directory) / "primary", "everysec", args=["--repl-diskless-sync-delay", "0"]
        )
        primary.start()
        replica = RedisServer(
            Path(directory) / "replica", "everysec", args=["--replicaof", "127.0.0.1", str(primary.port)]
        )
        replica.start()
        try:
            with redis.Redis(port=primary.port) as client:
                deadline = time.monotonic() + 30
                while client.info("replication").get("slave0", {}).get("state") != "online":
                    if time.monotonic() > deadline:
                        raise RuntimeError("the replica did not come online")
                    time.sleep(0.1)
            yield Running(primary.url, primary.pid), Running(replica.url, replica.pid)
        finally:
            replica.stop()
            primary.stop()


def measure(acks: int, seconds: int, round_no: int) -> dict[str, Any]:
    port, sink_port = free_port(), free_port()
    api = f"http://127.0.0.1:{port}"
    with primary_with_replica() as (primary, replica), sandbox(STRIPE_LATENCY_MS) as stripe:
        with redis.Redis.from_url(primary.url) as client:
            client.flushall()
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/tmp"),
            "STRIPE_SECRET_KEY": "sk_test_bench",
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_API_BASE": stripe.url,
            "REDIS_URL": primary.url,
            "REDIS_REPLICA_ACKS": str(acks),
            "INTERNAL_API_TOKENS": TOKEN,
            "BOOKING_EVENTS_URL": f"http://127.0.0.1:{sink_port}/events",
            "EVENT_SIGNING_SECRET": SIGNING_SECRET,
            "CHECKOUT_SUCCESS_URL": "https://app.test/ok",
            "CHECKOUT_CANCEL_URL": "https://app.test/back",
            "RECONCILE_INTERVAL": "0",
            "PORT": str(port),
        }
        stack = Stack(env, RESULTS)
        try:
            serve = stack.start(f"replica-ack-serve-{acks}", [str(BIN / "payments-service"), "serve"])
            wait_http(api + "/health")
            processes = {
                "serve": serve.pid,
                "stripe": stripe.pid,
                "redis": primary.pid,
                "replica": replica.pid,
            }
            with redis.Redis.from_url(primary.url) as client:
                client.config_resetstat()
                checkout = checkout_phase(api, seconds, processes)
                stats = client.info("commandstats")
            webhook = intake(api, seconds, Settings.from_env(env), processes, f"ack{acks}r{round_no}")
        finally:
            stack.stop()
    # Checkouts that share a write to Redis share its WAIT: fewer WAITs than scripts (the lock's
    # and the save's).
    calls = {name: stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("wait", "evalsha")}
    return {"checkout": checkout, "webhook": webhook, "calls": calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    print(f"machine speed: reference loop {machine_speed_ms():.0f} ms (lower is faster)")
    runs: dict[int, list[dict[str, Any]]] = {0: [], 1: []}
    for round_no in range(args.rounds):
        for acks in (0, 1):
            result = measure(acks, args.seconds, round_no)
            runs[acks].append(result)
            print(
                f"round {round_no + 1}, REDIS_REPLICA_ACKS={acks}: "
                f"checkout {result['checkout']['rps']:.0f}/s (p99 {result['checkout']['p99_ms']:.0f} ms, "
                f"{result['checkout']['errors']} errors), webhooks {result['webhook']['rps']:.0f}/s "
                f"(p99 {result['webhook']['p99_ms']:.1f} ms, {result['webhook']['errors']} errors); "
                f"serve CPU: {result['checkout']['cpu'].split('; ')[-1]} (checkout), "
                f"{result['webhook']['cpu'].split('; ')[-1]} (webhook); "
                f"checkouts: {result['calls']['wait']} WAITs for {result['calls']['evalsha']} scripts",
                flush=True,
            )
    for round_no in range(args.rounds):
        ratios = [runs[1][round_no][k]["rps"] / runs[0][round_no][k]["rps"] for k in ("checkout", "webhook")]
        print(f"round {round_no + 1}: WAIT / no WAIT: checkout {ratios[0]:.2f}, webhook {ratios[1]:.2f}")
    print(f"{'scenario (a local replica)':<34} {'no WAIT':>10} {'WAIT 1':>10}  ratio")
    for name, kind, unit in (
        ("checkout, 256 callers, Stripe 300 ms", "checkout", "/s"),
        ("webhook intake, 64 senders", "webhook", "/s"),
    ):
        without = sum(r[kind]["rps"] for r in runs[0]) / len(runs[0])
        with_ack = sum(r[kind]["rps"] for r in runs[1]) / len(runs[1])
        print(f"{name:<34} {without:>8.0f}{unit} {with_ack:>8.0f}{unit}  {with_ack / without:.2f}")
    for name, kind in (("checkout p99", "checkout"), ("webhook p99", "webhook")):
        without = max(r[kind]["p99_ms"] for r in runs[0])
        with_ack = max(r[kind]["p99_ms"] for r in runs[1])
        print(f"{name:<34} {without:>7.1f}ms {with_ack:>7.1f}ms")
    if any(r[kind]["errors"] for rs in runs.values() for r in rs for kind in ("checkout", "webhook")):
        sys.exit("errors during the runs: see benchmarks/results/*.log")


if __name__ == "__main__":
    main()
