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
        """Until `stop`: take new entries as they arrive, and those a dead relay left behind."""
        next_reclaim = 0.0
        while not stop.is_set():
            try:
                # RQ's suspend switch pauses the relay too: nothing moves while workers are paused.
                if is_suspended(self._outbox.redis):
                    stop.wait(1)
                    continue
                if self._deliveries.ready() >= self._queue_limit:
                    stop.wait(RELAY_FULL_QUEUE_WAIT_SECONDS)
                    continue
                if time.monotonic() >= next_reclaim:
                    self._outbox.reclaim(self._consumer)
                    next_reclaim = time.monotonic() + RELAY_RECLAIM_INTERVAL_SECONDS
                self._outbox.relay(self._consumer, block_ms=RELAY_BLOCK_MS)
            except RedisError as exc:
                log.warning("outbox relay: Redis unavailable, retrying", extra={"error": type(exc).__name__})
                stop.wait(1)
