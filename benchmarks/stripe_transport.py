"""CPU per Stripe call under gevent: stripe's RequestsClient against the geventhttpclient transport.

`serve` uses the latter (payments_service.stripe_api.gevent_transport). Both create Checkout
Sessions on the local sandbox, one call at a time, from a gevent-patched process as gunicorn's
workers are; the figure is this process's CPU per call (the sandbox's is not counted), best of
three rounds.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import time  # noqa: E402

import stripe  # noqa: E402

from benchmarks.support import sandbox  # noqa: E402
from payments_service.stripe_api.gateway import StripeGateway  # noqa: E402
from payments_service.stripe_api.gevent_transport import GeventStripeHTTPClient  # noqa: E402
from payments_service.stripe_api.requests_transport import POOL_SIZE, requests_http_client  # noqa: E402
from tests.support.stripe_wire import checkout_request  # noqa: E402


def cpu_per_call_us(gateway: StripeGateway, calls: int, label: str) -> float:
    for n in range(100):  # warm the pool and the sandbox
        gateway.create_checkout_session(checkout_request(f"bk_{label}_{n}"), f"warm:{label}:{n}")
    best = float("inf")
    for round_ in range(3):
        started = time.process_time()
        for n in range(calls):
            gateway.create_checkout_session(checkout_request(f"bk_{label}_{n}"), f"{label}:{round_}:{n}")
        best = min(best, (time.process_time() - started) / calls)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    calls = parser.parse_args().calls
    with sandbox() as stripe_api:
        figures = {}
        for http_client in (
            requests_http_client(30.0, {}),
            GeventStripeHTTPClient(30.0, concurrency=POOL_SIZE),
        ):
            client = stripe.StripeClient(
                "sk_test_bench", base_addresses={"api": stripe_api.url}, http_client=http_client
            )
            figures[http_client.name] = cpu_per_call_us(StripeGateway(client, []), calls, http_client.name)
    print(
        "Stripe call CPU under gevent: "
        + ", ".join(f"{name} {us:.0f} us" for name, us in figures.items())
        + f" ({figures['requests'] / figures['geventhttpclient']:.1f}x)"
    )


if __name__ == "__main__":
    main()
