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


class BudgetCalendar:
    """Reserves places for Stripe calls against the global limit and one endpoint's limit at once."""

    def __init__(self, redis: Redis, trips: Pipelined, mode: str) -> None:
        self._redis = redis
        self._trips = trips
        self._mode = mode  # "live" or "test"

    def reserve(
        self,
        endpoint: str,
        global_rate: float,
        share: float,
        endpoint_rate: float,
        ahead: float,
        line: bool = True,
    ) -> Reservation:
        """The earliest place within `ahead` seconds where both limits have room (share: of the global).

        Refused, a caller in `line` is told when its turn in the line beyond its reach comes;
        any other when the next bucket starts.
        """
        granted, ms = self._run(
            endpoint,
            "reserve",
            BUCKET_MS,
            global_rate,
            share,
            endpoint_rate,
            int(ahead * 1000),
            "line" if line else "",
        )
        return Reservation(bool(granted), int(ms) / 1000)

    def usage(self, endpoint: str, global_rate: float, endpoint_rate: float) -> tuple[Usage, Usage]:
        """The global calendar's and the endpoint's, for metrics."""
        global_free, endpoint_free, global_ms, endpoint_ms = self._run(
            endpoint, "peek", BUCKET_MS, global_rate, endpoint_rate
        )
        return (
            Usage(int(global_free), int(global_ms) / 1000),
            Usage(int(endpoint_free), int(endpoint_ms) / 1000),
        )

    def _run(self, endpoint: str, *args: object) -> list[int]:
        cmd: Command = (
            "EVALSHA",
            _sha(),
            2,
            keys.stripe_budget(self._mode, GLOBAL),
            keys.stripe_budget(self._mode, f"endpoint:{endpoint}"),
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
