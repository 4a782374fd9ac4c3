"""The Stripe budget's calendars in Redis: one script call reserves a call's place (stripe_budget.lua).

Every process and host reserves through the same calendars, read with Redis's clock, so they
share one budget without trusting each other's clocks. The policy (which limits, which share
for which priority, how long to wait) is the caller's: stripe_api/budget.py.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from redis import Redis
from redis.exceptions import NoScriptError

from . import keys
from .pipelining import Command, Pipelined

# Small enough that a call's place is close to its even spacing, large enough that the script
# scans few buckets: a 10 s wait is 100 of them.
BUCKET_MS = 100
GLOBAL = "global"
RESERVE = "global-reserve"


@dataclass(frozen=True)
class Reservation:
    """granted: go out after `delay` seconds; else ask again after `delay` seconds."""

    granted: bool
    delay: float


@dataclass(frozen=True)
class Usage:
    """What one limit's calendar holds: free places over the next second, and how far ahead it is booked."""

    free_per_second: int
    booked_seconds: float


@cache
def script() -> str:
    return Path(__file__).with_name("stripe_budget.lua").read_text()


@cache
def _sha() -> str:
    return hashlib.sha1(script().encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Rates:
    """Calls per second: the global limit's lane every call may use, its reserve, one endpoint's."""

    shared: float
    reserve: float
    endpoint: float


class BudgetCalendar:
    """Reserves places for Stripe calls against the global limit and one endpoint's limit at once."""

    def __init__(self, redis: Redis, trips: Pipelined, mode: str) -> None:
        self._redis = redis
        self._trips = trips
        self._mode = mode  # "live" or "test"

    def reserve(self, endpoint: str, rates: Rates, ahead: float, urgent: bool, line: bool) -> Reservation:
        """The earliest place within `ahead` seconds where both limits have room.

        `urgent` callers may also take the global limit's reserve. Refused, a caller in `line` is
        told when its turn in the line beyond its reach comes; any other when to ask again.
        """
        granted, ms = self._run(
            endpoint, "reserve", rates, int(ahead * 1000), "urgent" if urgent else "", "line" if line else ""
        )
        return Reservation(bool(granted), int(ms) / 1000)

    def usage(self, endpoint: str, rates: Rates) -> tuple[Usage, Usage]:
        """The global limit's (both lanes) and the endpoint's, for metrics."""
        global_free, endpoint_free, global_ms, endpoint_ms = self._run(endpoint, "peek", rates)
        return (
            Usage(int(global_free), int(global_ms) / 1000),
            Usage(int(endpoint_free), int(endpoint_ms) / 1000),
        )

    def _run(self, endpoint: str, mode: str, rates: Rates, *args: object) -> list[int]:
        cmd: Command = (
            "EVALSHA",
            _sha(),
            3,
            keys.stripe_budget(self._mode, GLOBAL),
            keys.stripe_budget(self._mode, f"endpoint:{endpoint}"),
            keys.stripe_budget(self._mode, RESERVE),
            mode,
            BUCKET_MS,
            *(_arg(rate) for rate in (rates.shared, rates.endpoint, rates.reserve)),
            *(_arg(a) for a in args),
        )
        try:
            [reply] = self._trips.run([cmd])
        except NoScriptError:  # a Redis that restarted, failed over, or never ran it
            self._redis.script_load(script())
            [reply] = self._trips.run([cmd])
        return [int(v) for v in reply]


def _arg(value: object) -> str:
    # Lua reads numbers from strings; repr keeps a float's digits without an exponent for our ranges.
    return repr(value) if isinstance(value, float) else str(value)
