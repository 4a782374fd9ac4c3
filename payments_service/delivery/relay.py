"""The relay: moves events from the outbox stream into the delivery queue while the worker runs."""

from __future__ import annotations

import logging
import threading
import time

from redis.exceptions import RedisError
from rq.suspension import is_suspended

from .outbox import Outbox
from .queue import DeliveryQueue

log = logging.getLogger(__name__)

# The relay waits this long for a new outbox entry per read, so it notices a stop within it.
RELAY_BLOCK_MS = 1000
RELAY_RECLAIM_INTERVAL_SECONDS = 10
# Events ready in RQ's queue beyond which the relay waits (seconds of work for the workers).
RELAY_QUEUE_LIMIT = 1000
RELAY_FULL_QUEUE_WAIT_SECONDS = 0.2


class Backoff:
    """Waits that double after each failure, up to a ceiling, and start small again after a success."""

    def __init__(self, first: float = 0.2, ceiling: float = 5.0) -> None:
        self._first = first
        self._ceiling = ceiling
        self._next = first

    def next(self) -> float:
        wait, self._next = self._next, min(self._next * 2, self._ceiling)
        return wait

    def reset(self) -> None:
        self._next = self._first


class Relay:
    """Moves events from the outbox stream into the delivery queue while the worker runs.

    It keeps the queue short (`queue_limit` events ready) and the rest in the outbox: moving a
    large backlog at once would take the worker's time from its deliveries.
    """

    def __init__(
        self, outbox: Outbox, deliveries: DeliveryQueue, consumer: str, queue_limit: int = RELAY_QUEUE_LIMIT
    ) -> None:
        self._outbox = outbox
        self._deliveries = deliveries
        self._consumer = consumer
        self._queue_limit = queue_limit

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: take new entries as they arrive, and those a dead relay left behind.

        A Redis failure (an outage, a failover) never ends it: it waits, with a growing but bounded
        backoff, and first moves again what it had read but may not have moved (a move lost with
        its connection, or with a primary that failed over before replicating it).
        """
        next_reclaim = 0.0
        backoff = Backoff()
        unsure = False
        while not stop.is_set():
            try:
                # RQ's suspend switch pauses the relay too: nothing moves while workers are paused.
                if is_suspended(self._outbox.redis):
                    stop.wait(1)
                    continue
                if self._deliveries.ready() >= self._queue_limit:
                    stop.wait(RELAY_FULL_QUEUE_WAIT_SECONDS)
                    continue
                if unsure:
                    self._outbox.relay_own_pending(self._consumer)
                    unsure = False
                if time.monotonic() >= next_reclaim:
                    self._outbox.reclaim(self._consumer)
                    next_reclaim = time.monotonic() + RELAY_RECLAIM_INTERVAL_SECONDS
                self._outbox.relay(self._consumer, block_ms=RELAY_BLOCK_MS)
                backoff.reset()
            except RedisError as exc:
                unsure = True
                wait = backoff.next()
                log.warning(
                    "outbox relay: Redis unavailable, retrying",
                    extra={"error": type(exc).__name__, "retry_in": wait},
                )
                stop.wait(wait)
