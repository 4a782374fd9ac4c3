"""Redis bytes per booking: in flight, paid, after delivery, after retention (10,000 bookings).

Drives the service's own use cases in this process against a private Redis (append-only, as in
production) and the Stripe sandbox: opens the checkouts, pays them at the sandbox, applies
Stripe's events as their webhooks would be (the webhook's own path, without HTTP and
signatures), delivers every event to a sink with the real worker, then waits out a short
PAYMENT_RETENTION_SECONDS. Each row is the growth of Redis's used_memory over
the running service before the bookings (after a small warm-up lap), divided by the bookings,
with the growth of MEMORY USAGE summed by kind of key beside it. A second lap of as many
bookings shows what accumulates.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import requests
from redis import Redis

from benchmarks.support import free_port, private_redis, sandbox, wait_http
from payments_service.domain.outcomes import ApplyOutcome
from payments_service.runtime import worker
from payments_service.settings import Settings
from payments_service.storage import keys
from payments_service.stripe_api.parsing import StripeEvent
from payments_service.usecases.checkout import CheckoutInput
from payments_service.wiring import Components, build

KINDS = {
    ":payment:": "payment",
    ":intent:": "intent",
    ":stripe-event:": "Stripe event mark",
    ":status:": "status index",
    ":outbox": "outbox",
    ":rq:": "RQ",
    ":delivered": "delivered log",
}
TEN_MILLION = 10_000_000
WARM_UP = 200


def used_memory(redis: Redis) -> int:
    info: dict[str, Any] = redis.info("memory")
    return int(info["used_memory"])


def by_kind(redis: Redis) -> dict[str, int]:
    """MEMORY USAGE of every key, summed by what the key is."""
    names = list(redis.scan_iter(count=1000))
    sizes: dict[str, int] = defaultdict(int)
    with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.memory_usage(name, samples=0)
        usages = pipe.execute()
    for name, usage in zip(names, usages, strict=True):
        text = name.decode()
        kind = next((label for part, label in KINDS.items() if part in text), "other")
        sizes[kind] += int(usage or 0)
    return dict(sizes)


def per_key_ttls(redis: Redis) -> dict[str, int]:
    """Keys of each kind that stay for good (no TTL): after every TTL, only these remain."""
    kept: dict[str, int] = defaultdict(int)
    for name in redis.scan_iter(count=1000):
        if redis.ttl(name) == -1:
            text = name.decode()
            kept[next((label for part, label in KINDS.items() if part in text), "other")] += 1
    return dict(kept)


@contextmanager
def sink() -> Iterator[str]:
    """A booking service that accepts every event (benchmarks/sink.py)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.sink", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/events"
        deadline = time.monotonic() + 10
        while True:
            try:
                requests.post(url, data=b"", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def run(count: int, retention: int, laps: int) -> list[dict[str, Any]]:
    with private_redis() as redis_proc, sandbox() as stripe, sink() as events_url:
        wait_http(stripe.url + "/_sandbox/health")
        settings = Settings(
            stripe_secret_key="sk_test_bench",
            stripe_webhook_secrets=("whsec_bench",),
            internal_api_tokens=("bench-token-0123456789",),
            booking_events_url=events_url,
            event_signing_secret="whsec_" + base64.b64encode(b"x" * 32).decode(),
            stripe_api_base=stripe.url,
            redis_url=redis_proc.url,
            checkout_success_url="https://app.test/ok",
            checkout_cancel_url="https://app.test/back",
            payment_retention_seconds=retention,
            log_level="WARNING",  # the worker would print a line per delivery
        )
        # Redis keeps a latency histogram per command it has run (about 30 kinds here, ~1 MB): a
        # fixed cost, paid by a small warm-up lap (its payments kept a second) before the
        # baseline; its marks stay in it.
        warm = build(dataclasses.replace(settings, payment_retention_seconds=1))
        lap_started = int(time.time()) - 1
        pay_at_stripe(stripe.url, open_checkouts(warm, WARM_UP, 0))
        apply_as_webhooks(warm, lap_started)
        warm.outbox.relay_all("bench")
        worker.run(warm, burst=True)
        wait_for_retention(warm.redis, 1)
        warm.redis.connection_pool.disconnect()
        components = build(settings)
        redis = components.redis
        baseline, baseline_kinds = used_memory(redis), by_kind(redis)
        rows: list[dict[str, Any]] = []

        def measure(stage: str, started: float) -> None:
            grown = used_memory(redis) - baseline
            held = sum(1 for _ in redis.scan_iter(match=keys.payment("*"), count=1000))
            rows.append(
                {
                    "stage": stage,
                    "held": held,
                    "bytes": grown / count,
                    "keys": int(redis.dbsize()),
                    "kinds": {
                        k: (v - baseline_kinds.get(k, 0)) / count for k, v in sorted(by_kind(redis).items())
                    },
                    "seconds": time.monotonic() - started,
                }
            )
            print(
                f"  {stage}: {grown / count:,.0f} bytes per booking, {held:,} payments held "
                f"({time.monotonic() - started:.0f}s)"
            )

        for lap in range(1, laps + 1):
            suffix = f" (lap {lap})" if laps > 1 else ""
            started, lap_started = time.monotonic(), int(time.time()) - 1
            sessions = open_checkouts(components, count, lap)
            measure("in flight (checkout open)" + suffix, started)

            started = time.monotonic()
            pay_at_stripe(stripe.url, sessions)
            assert apply_as_webhooks(components, lap_started) == count, "every payment must be applied"
            measure("paid, events not yet delivered" + suffix, started)

            started = time.monotonic()
            components.outbox.relay_all("bench")
            worker.run(components, burst=True)
            assert components.outbox.counts() == {"pending": 0, "dead": 0}
            measure("paid and delivered" + suffix, started)

            started = time.monotonic()
            wait_for_retention(redis, retention)
            measure(f"after PAYMENT_RETENTION_SECONDS={retention}" + suffix, started)
        persistent = per_key_ttls(redis)
        rows[-1]["persistent"] = persistent
        components.redis.connection_pool.disconnect()
        return rows


def apply_as_webhooks(components: Components, since: int) -> int:
    """Stripe's events since a time, each applied as its webhook would be (16 at a time)."""
    events: list[StripeEvent] = []
    cursor: str | None = None
    while True:
        page, cursor = components.stripe.list_events(since, cursor)
        events += page
        if cursor is None:
            break
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(components.facts.handle_event, events))
    return sum(1 for outcome in outcomes if outcome is ApplyOutcome.APPLIED)


def wait_for_retention(redis: Redis, retention: int) -> None:
    """Until every payment has left Redis (Redis expires keys by itself, sampling them)."""
    deadline = time.monotonic() + retention + 120
    while any(True for _ in redis.scan_iter(match=keys.payment("*"), count=1000)):
        if time.monotonic() > deadline:
            raise RuntimeError("payments did not leave Redis after their retention")
        time.sleep(1)


def open_checkouts(components: Components, count: int, lap: int) -> list[str]:
    def open_one(n: int) -> str:
        payment, _ = components.checkout.open(
            CheckoutInput(f"bk_{lap}_{n:07d}", 3750, "usd", "Dune: Part Two, 2 seats")
        )
        return payment.session_id

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(open_one, range(count)))


def pay_at_stripe(stripe_url: str, sessions: list[str]) -> None:
    def pay(chunk: list[str]) -> None:
        with requests.Session() as control:
            for session_id in chunk:
                control.post(
                    f"{stripe_url}/_sandbox/sessions/{session_id}/pay", params={"webhook": "0"}, timeout=10
                ).raise_for_status()

    chunks = [sessions[i::8] for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(pay, chunks))


def print_table(rows: list[dict[str, Any]], count: int) -> None:
    print(
        f"\nRedis memory per booking ({count:,} bookings a lap; used_memory growth over the running service)"
    )
    print(
        f"| stage | payments held | bytes per booking | x {TEN_MILLION:,} | by kind of key (MEMORY USAGE) |"
    )
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        kinds = ", ".join(f"{k} {v:,.0f}" for k, v in row["kinds"].items() if v >= 1)
        total = row["bytes"] * TEN_MILLION / 1e9
        print(f"| {row['stage']} | {row['held']:,} | {row['bytes']:,.0f} | {total:,.2f} GB | {kinds} |")
    persistent = rows[-1].get("persistent", {})
    print(f"\nkeys without a TTL after retention, by kind: {persistent or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    # Long enough for 10,000 deliveries to finish while the payments are still held.
    parser.add_argument("--retention", type=int, default=300, help="PAYMENT_RETENTION_SECONDS")
    parser.add_argument("--laps", type=int, default=1, help="bookings go through their life this many times")
    args = parser.parse_args()
    rows = run(args.count, args.retention, args.laps)
    print_table(rows, args.count)


if __name__ == "__main__":
    main()
