"""`make bench`: what one paid booking costs Redis, end to end, beside what Stripe lets an account do.

A booking is opened (POST /v1/payments, the Stripe sandbox answering at once), paid on the sandbox,
its webhook taken, and its payment.paid relayed and delivered by the worker: the Redis commands and
CPU of all of that, counted by Redis itself (INFO commandstats, INFO cpu). Why one Redis primary,
one hash slot, is enough: Stripe's default limits are beside it (README, "Why one slot is enough").
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis

from tests.support.processes import wait_for
from tests.support.redis_server import RedisServer
from tests.support.stack import open_and_pay, running_stack

# Stripe's default rate limits for an account (docs.stripe.com/rate-limits): 100 API requests a
# second in live mode, and 25 a second on one endpoint, Checkout Session creation included.
STRIPE_LIVE_REQUESTS_PER_SECOND = 100
STRIPE_ENDPOINT_REQUESTS_PER_SECOND = 25


def cpu_seconds(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bookings", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-redis-cost-") as directory:
        server = RedisServer(Path(directory) / "redis", appendfsync="everysec")
        server.start()
        try:
            with running_stack(Path(directory), server.url, RECONCILE_INTERVAL="0") as stack:
                stack.start_worker()
                with redis.Redis(port=server.port) as client:
                    client.config_resetstat()
                    cpu_before, started = cpu_seconds(client), time.monotonic()
                    with ThreadPoolExecutor(16) as pool:
                        list(pool.map(lambda n: open_and_pay(stack, f"bk_cost_{n}"), range(args.bookings)))
                    wait_for(lambda: len(stack.receiver.accepted()) == args.bookings, 120, "every delivery")
                    seconds = time.monotonic() - started
                    cpu = cpu_seconds(client) - cpu_before
                    calls = sum(int(stat["calls"]) for stat in client.info("commandstats").values())
        finally:
            server.stop()
    per_booking_ms = cpu / args.bookings * 1000
    at_stripe_limit = STRIPE_ENDPOINT_REQUESTS_PER_SECOND * per_booking_ms / 1000
    print(
        f"{args.bookings} paid bookings in {seconds:.1f}s ({args.bookings / seconds:.0f}/s, this machine's "
        f"processes sharing its cores): {calls / args.bookings:.0f} Redis commands and "
        f"{per_booking_ms:.2f} ms of Redis CPU each, so one Redis core would carry "
        f"{1000 / per_booking_ms:.0f} paid bookings a second"
    )
    print(
        f"Stripe's default limits: {STRIPE_ENDPOINT_REQUESTS_PER_SECOND} Checkout Sessions a second "
        f"({STRIPE_LIVE_REQUESTS_PER_SECOND} requests a second in all, live mode): at that rate Redis "
        f"would use {at_stripe_limit:.1%} of one core, {1 / at_stripe_limit:.0f}x headroom"
    )


if __name__ == "__main__":
    main()
