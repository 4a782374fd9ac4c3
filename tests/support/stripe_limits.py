"""Stripe's rate limits in tests: a Stripe stand-in that answers 429 past a rate, and the budget's keys."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from redis import Redis
from werkzeug.serving import make_server

from payments_service.devtools.sandbox.app import create_sandbox_app
from payments_service.devtools.sandbox.rate_limits import RateLimits
from payments_service.devtools.sandbox.stripe_state import StripeState
from payments_service.storage import keys

BUDGET_PREFIX = f"{keys.KEY_TAG}:stripe-budget:".encode()
CREATE_SESSION = "POST /v1/checkout/sessions"
# The stand-in counts a strict sliding second, and the budget plans 6% under its limit: about
# 60 ms to spare over a second. A process that wakes up that late on a busy machine (the suite
# runs beside other work on two cores) can push a call into a full second; Stripe answers it 429
# and it is retried with a new place. A burst with no budget at all would see several times this.
LATE_WAKE_UPS = 2
CREATE_REFUND = "POST /v1/refunds"


def keys_besides_the_budget(redis: Redis) -> list[Any]:
    """Every key but the Stripe budget's calendars (a call that reached Stripe took a place there)."""
    return [k for k in redis.keys("*") if not k.startswith(BUDGET_PREFIX)]


@dataclass
class LimitedStripe:
    """The sandbox's Stripe over real HTTP, answering 429 past its rates as Stripe does."""

    url: str
    state: StripeState
    limits: RateLimits

    def accepted(self, endpoint: str = CREATE_SESSION) -> int:
        return int(self.limits.counts()["accepted"].get(endpoint, 0))

    def refused(self) -> int:
        """429s answered, every endpoint together."""
        return sum(self.limits.counts()["limited"].values())

    def sessions_for(self, booking_id: str) -> list[str]:
        return [s["id"] for s in self.state.sessions.values() if s.get("client_reference_id") == booking_id]


@contextmanager
def limited_stripe(global_limit: int, endpoint_limit: int) -> Iterator[LimitedStripe]:
    state = StripeState("https://checkout.stripe.test")
    limits = RateLimits(create_sandbox_app(state), global_limit, endpoint_limit)
    server = make_server("127.0.0.1", 0, limits, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LimitedStripe(f"http://127.0.0.1:{server.server_port}", state, limits)
    finally:
        server.shutdown()
        server.server_close()
