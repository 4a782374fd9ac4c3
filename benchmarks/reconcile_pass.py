"""One reconciliation pass over 10,000 pending payments against the local Stripe sandbox.

10,000 checkouts are opened through the service's own checkout path; at the sandbox 1,000 are
then paid and 1,000 expired with no webhook sent. The pass must find all 2,000, and we count
the Stripe calls it makes and the time it takes at the production rate cap.
"""

from __future__ import annotations

import argparse
import base64
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from benchmarks.support import private_redis, sandbox
from payments_service.domain.payments import PaymentStatus
from payments_service.settings import Settings
from payments_service.usecases.checkout import CheckoutInput
from payments_service.wiring import build


def run(count: int, max_rps: float, latency_ms: int) -> dict[str, float]:
    with private_redis() as redis, sandbox(latency_ms) as stripe:
        redis_url, stripe_url = redis.url, stripe.url
        settings = Settings(
            stripe_secret_key="sk_test_bench",
            stripe_webhook_secrets=("whsec_bench",),
            internal_api_tokens=("bench-token-0123456789",),
            booking_events_url="http://127.0.0.1:9/unused",
            event_signing_secret="whsec_" + base64.b64encode(b"x" * 32).decode(),
            stripe_api_base=stripe_url,
            redis_url=redis_url,
            checkout_success_url="https://app.test/ok",
            checkout_cancel_url="https://app.test/back",
            reconcile_after=0,
            reconcile_max_rps=max_rps,
            # Opening 10,000 checkouts to start from is not what is measured: out of Stripe's limits' way.
            stripe_rate_limit=100_000,
            stripe_endpoint_rate_limit=100_000,
        )
        components = build(settings)
        started = time.monotonic()

        def open_one(n: int) -> str:
            payment, _ = components.checkout.open(CheckoutInput(f"bk_{n}", 3750, "usd", "2 seats"))
            return payment.session_id

        with ThreadPoolExecutor(16) as pool:
            sessions = list(pool.map(open_one, range(count)))
        tenth = count // 10
        control = requests.Session()
        for session_id in sessions[:tenth]:
            control.post(
                f"{stripe_url}/_sandbox/sessions/{session_id}/pay", params={"webhook": "0"}, timeout=10
            )
        for session_id in sessions[tenth : 2 * tenth]:
            control.post(f"{stripe_url}/_sandbox/sessions/{session_id}/expire", timeout=10)
        print(
            f"set up {count} pending payments in {time.monotonic() - started:.1f}s "
            f"({tenth} paid and {tenth} expired at Stripe, no webhooks)"
        )

        lines: list[str] = []
        report = components.reconciler(progress=lines.append).run_once()
        assert report is not None
        still_pending = components.store.count_in_status(PaymentStatus.PENDING)
        print("\n".join(f"  {line}" for line in (lines[:2] + lines[-1:])))
        print(
            f"reconcile pass: {len(report.changes)} changed, {report.checked} checked, "
            f"{report.stripe_calls} Stripe calls, {report.seconds:.1f}s at RECONCILE_MAX_RPS={max_rps:g}"
            f" (Stripe answering in {latency_ms} ms); {still_pending} still pending"
        )
        assert len(report.changes) == 2 * tenth, "every missed change must be found"
        components.redis.connection_pool.disconnect()
        return {
            "seconds": report.seconds,
            "stripe_calls": report.stripe_calls,
            "changes": len(report.changes),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--max-rps", type=float, default=20.0)
    parser.add_argument("--latency-ms", type=int, default=0)
    args = parser.parse_args()
    run(args.count, args.max_rps, args.latency_ms)


if __name__ == "__main__":
    main()
