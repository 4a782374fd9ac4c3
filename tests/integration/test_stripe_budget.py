"""The budget's calendars in a real Redis: places in order, priorities, two limits at once.

These read the places the script hands out (delays from Redis's clock), not how long anything took.
"""

from __future__ import annotations

import time

import pytest

from payments_service.storage.stripe_budget import BudgetCalendar, Rates, Reservation
from payments_service.wiring import Components

CREATE = "checkout.sessions.create"
REFUND = "refunds.create"
RETRIEVE = "checkout.sessions.retrieve"
RESERVE = 0.2  # of the global limit, for urgent calls


def rates(global_rate: float, endpoint_rate: float) -> Rates:
    return Rates(shared=global_rate * (1 - RESERVE), reserve=global_rate * RESERVE, endpoint=endpoint_rate)


@pytest.fixture
def calendar(components: Components) -> BudgetCalendar:
    return BudgetCalendar(components.redis, components.store.trips, "test")


def places(calendar: BudgetCalendar, count: int, **limits: float) -> list[tuple[float, Reservation]]:
    """`count` checkout reservations in a row: (when each may go out on this clock, the answer)."""
    taken = []
    for _ in range(count):
        answer = calendar.reserve(
            CREATE,
            rates(limits.get("global_rate", 1000.0), limits.get("endpoint_rate", 10.0)),
            limits.get("ahead", 5.0),
            urgent=False,
            line=True,
        )
        taken.append((time.monotonic() + answer.delay, answer))
    return taken


def test_callers_get_places_in_arrival_order_spread_evenly_over_time(calendar: BudgetCalendar) -> None:
    # Two a second: half a second apart, far more than this test process may stall between calls.
    taken = places(calendar, 11, endpoint_rate=2.0, ahead=6.0)
    assert all(answer.granted for _, answer in taken)
    times = [at for at, _ in taken]
    assert times == sorted(times)
    # Evenly: 11 places span five seconds and no second holds more than two.
    assert times[-1] - times[0] >= 4.8
    assert all(times[i + 2] - times[i] >= 0.9 for i in range(len(times) - 2))


def test_a_caller_beyond_its_reach_reserves_nothing_and_is_told_when_its_turn_comes(
    calendar: BudgetCalendar,
) -> None:
    # One place every five seconds (so none comes into reach during the test), ten seconds' reach:
    # two or three places, then the line.
    granted = [answer for _, answer in places(calendar, 3, endpoint_rate=0.2, ahead=10.0)]
    assert granted[0].granted and granted[1].granted
    booked = calendar.usage(CREATE, rates(1000.0, 0.2))[1].booked_seconds
    refused = [answer for _, answer in places(calendar, 4, endpoint_rate=0.2, ahead=10.0)]
    assert not any(a.granted for a in refused)
    # Each one turned away is one place further back in the line: they come back five seconds apart.
    hints = [a.delay for a in refused]
    assert hints == sorted(hints) and hints[-1] - hints[0] >= 14
    assert calendar.usage(CREATE, rates(1000.0, 0.2))[1].booked_seconds <= booked


def test_urgent_calls_keep_a_reserve_of_the_global_limit_that_checkouts_cannot_fill(
    calendar: BudgetCalendar,
) -> None:
    # The global limit (10/s) is what checkouts queue for here, not their endpoint's.
    queued = places(calendar, 40, global_rate=10.0, endpoint_rate=1000.0, ahead=3.0)
    assert not all(answer.granted for _, answer in queued)  # the checkouts' share is taken
    refund = calendar.reserve(REFUND, rates(10.0, 25.0), 3.0, urgent=True, line=True)
    checkout = calendar.reserve(CREATE, rates(10.0, 1000.0), 10.0, urgent=False, line=True)
    assert refund.granted and refund.delay < 1.0
    assert checkout.granted and checkout.delay >= 2.0  # at the end of the line


def test_background_calls_take_only_a_place_free_now(calendar: BudgetCalendar) -> None:
    idle = calendar.reserve(RETRIEVE, rates(100.0, 25.0), 0.1, urgent=False, line=False)
    assert idle.granted and idle.delay <= 0.2
    queued = places(calendar, 300, global_rate=100.0, endpoint_rate=10_000.0, ahead=0.5)
    assert not all(answer.granted for _, answer in queued)  # the checkouts' share is taken for now
    booked = calendar.usage(RETRIEVE, rates(100.0, 25.0))[0].booked_seconds
    busy = calendar.reserve(RETRIEVE, rates(100.0, 25.0), 0.1, urgent=False, line=False)
    assert not busy.granted and busy.delay <= 0.2  # ask again soon
    assert calendar.usage(RETRIEVE, rates(100.0, 25.0))[0].booked_seconds <= booked  # nothing reserved ahead


def test_a_call_held_back_by_its_endpoint_leaves_the_global_limit_to_other_endpoints(
    calendar: BudgetCalendar,
) -> None:
    queued = places(calendar, 10, global_rate=100.0, endpoint_rate=5.0, ahead=5.0)
    assert queued[-1][0] - time.monotonic() >= 1.5  # checkouts wait for their endpoint
    other = calendar.reserve(RETRIEVE, rates(100.0, 25.0), 5.0, urgent=False, line=True)
    assert other.granted and other.delay <= 0.05
