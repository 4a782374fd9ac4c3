"""One budget of Stripe calls for every process: Stripe's rate limits, shared out by priority.

Stripe limits an account's requests per second, globally and per endpoint, and answers 429
beyond that (docs: "Rate limits"). Every call reserves a place in Redis first (the calendars of
storage/stripe_budget.lua), against the global limit and its endpoint's at once, and waits for
it; a caller whose place would come later than its bound reserves nothing and is turned away
with the time to come back.

Priorities: urgent calls (refunds, expiring sessions, calls that apply a webhook) may fill the
whole global limit; checkout creation leaves a reserve of it to them, so a queue of checkouts
never delays a refund. Background calls (reconciliation, ?refresh=true) never reserve ahead:
they take a place that is free now or try again shortly, so they never push a checkout back.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import StrEnum

from ..domain.errors import StripeRateLimited
from ..observability import metrics
from ..settings import Settings
from ..storage.stripe_budget import BudgetCalendar, Rates

log = logging.getLogger(__name__)

# Stripe's published limits (requests per second): the global one by mode; every endpoint's,
# Checkout Session creation included, unless Stripe raised it for the account.
LIVE_GLOBAL_LIMIT = 100.0
TEST_GLOBAL_LIMIT = 25.0
# We plan to use a little less than Stripe allows: our calls reach Stripe with some jitter
# (scheduling, the network), and Stripe's window need not line up with our calendar.
HEADROOM = 0.94
# The share of the global limit that only urgent calls may take.
URGENT_RESERVE = 0.2
CHECKOUT_CREATE = "checkout.sessions.create"
# Background calls take a place only this close (seconds): free now, not queued for.
BACKGROUND_REACH = 0.1


class Priority(StrEnum):
    """Who goes first when the budget is short."""

    URGENT = "urgent"  # refunds, cancels and expiries, calls that apply a webhook
    CHECKOUT = "checkout"  # opening a Checkout Session: waits in line up to its bound
    BACKGROUND = "background"  # reconciliation, ?refresh=true: only what is free now


@dataclass(frozen=True)
class Limits:
    """The rates we plan to: Stripe's limits (or the account's raised ones) less the headroom."""

    global_rate: float
    endpoint_rate: float
    checkout_rate: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        stripe_global = settings.stripe_rate_limit or (
            LIVE_GLOBAL_LIMIT if settings.stripe_live_mode else TEST_GLOBAL_LIMIT
        )
        endpoint = settings.stripe_endpoint_rate_limit
        checkout = settings.stripe_checkout_rate_limit or endpoint
        return cls(stripe_global * HEADROOM, endpoint * HEADROOM, checkout * HEADROOM)

    def of(self, operation: str) -> float:
        """The endpoint limit for one named operation (Stripe counts each operation apart)."""
        return self.checkout_rate if operation == CHECKOUT_CREATE else self.endpoint_rate

    def rates(self, operation: str) -> Rates:
        """The calendars' rates for one operation: the global limit split into its two lanes."""
        shared = self.global_rate * (1 - URGENT_RESERVE)
        return Rates(shared=shared, reserve=self.global_rate - shared, endpoint=self.of(operation))


class StripeBudget:
    """Waits for a place for each Stripe call; every process shares the same calendars in Redis."""

    def __init__(self, calendar: BudgetCalendar, limits: Limits, wait: float) -> None:
        self._calendar = calendar
        self.limits = limits
        self.wait = wait  # the longest a caller waits for a place, in seconds

    @classmethod
    def from_settings(cls, settings: Settings, calendar: BudgetCalendar) -> StripeBudget:
        return cls(calendar, Limits.from_settings(settings), settings.checkout_wait_seconds)

    def acquire(self, operation: str, priority: Priority, deadline: float) -> float:
        """Wait until this call may go out; seconds waited. StripeRateLimited if not before `deadline`."""
        started = time.monotonic()
        rates = self.limits.rates(operation)
        background, urgent = priority is Priority.BACKGROUND, priority is Priority.URGENT
        while True:
            reach = BACKGROUND_REACH if background else max(0.0, deadline - time.monotonic())
            place = self._calendar.reserve(operation, rates, reach, urgent=urgent, line=not background)
            if place.granted:
                if place.delay > 0:
                    time.sleep(place.delay)
                waited = time.monotonic() - started
                metrics.stripe_budget_granted(priority.value, waited)
                return waited
            if not background or time.monotonic() + place.delay > deadline:
                metrics.stripe_budget_turned_away(priority.value)
                log.warning(
                    "no Stripe budget within the wait bound",
                    extra={"operation": operation, "priority": priority.value, "retry_after": place.delay},
                )
                raise StripeRateLimited(max(place.delay, 1.0))
            # Background: back off until the next bucket, when something may be free again.
            time.sleep(place.delay)

    def usage(self) -> dict[str, tuple[float, int, float]]:
        """Per limit (global, Checkout Session creation): the rate planned to, free places over the
        next second, and how many seconds ahead places are booked. For /metrics."""
        limits = self.limits
        global_usage, checkout = self._calendar.usage(CHECKOUT_CREATE, limits.rates(CHECKOUT_CREATE))
        return {
            "global": (limits.global_rate, global_usage.free_per_second, global_usage.booked_seconds),
            CHECKOUT_CREATE: (limits.checkout_rate, checkout.free_per_second, checkout.booked_seconds),
        }
