"""The transactional outbox: a Redis stream written with each state change, relayed into RQ.

A state change and its event are one atomic write (storage/compare_and_write.py), so the
event must be cheap to write there: one XADD. The worker's relay then moves entries into the
delivery queue (RQ), each batch in a MULTI/EXEC that also acknowledges and deletes them, so an
event is in the stream or in RQ, never in neither. A relay killed between reading and moving
leaves its entries pending in the consumer group; any relay claims them once they have been
idle for RELAY_RECLAIM_SECONDS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.exceptions import ResponseError
from rq.utils import as_text

from ..domain.events import OutgoingEvent
from ..storage import keys as redis_keys
from ..storage.records import read_outbox_entry
from .queue import DeliveryQueue, EventInfo

log = logging.getLogger(__name__)

RELAY_GROUP = "relay"
RELAY_BATCH = 100
# A batch moves in milliseconds; one pending this long belongs to a relay that died. Claiming
# earlier could move a batch its relay is still moving (the event would be delivered twice).
RELAY_RECLAIM_SECONDS = 30
# Consumers (one per worker process ever started) with nothing pending are forgotten after this.
IDLE_CONSUMER_SECONDS = 3600


class Outbox:
    """Every outgoing event: in the stream until a relay moves it, then in the delivery queue."""

    def __init__(
        self, redis: Redis, deliveries: DeliveryQueue, confirm: Callable[[], None] = lambda: None
    ) -> None:
        self.redis = redis
        self.key = redis_keys.OUTBOX
        self._deliveries = deliveries
        # Raises unless the replicas have what was read (REDIS_REPLICA_ACKS): an event whose write
        # no replica confirmed may vanish in a failover, and must not be announced before then.
        self._confirm = confirm

    def relay(self, consumer: str, block_ms: int | None = None) -> int:
        """Move the next batch of new entries into the delivery queue; how many moved.

        `block_ms` waits that long for an entry when there is none (None: do not wait).
        """

        def read() -> Any:
            return self.redis.xreadgroup(
                RELAY_GROUP, consumer, {self.key: ">"}, count=RELAY_BATCH, block=block_ms
            )

        try:
            answer = read()
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._create_group()
            answer = read()
        entries = answer[0][1] if answer else []
        return self._move(entries)

    def relay_own_pending(self, consumer: str) -> int:
        """Move again what this consumer read but has not acknowledged (its move may have been lost)."""
        moved = 0
        while True:
            try:
                answer: Any = self.redis.xreadgroup(RELAY_GROUP, consumer, {self.key: "0"}, count=RELAY_BATCH)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                return moved
            entries = answer[0][1] if answer else []
            if not entries:
                return moved
            moved += self._move(entries)

    def relay_all(self, consumer: str) -> int:
        """Move every new entry now (burst workers and tests); how many moved."""
        moved = total = self.relay(consumer)
        while moved:
            moved = self.relay(consumer)
            total += moved
        return total

    def reclaim(self, consumer: str, min_idle_seconds: float = RELAY_RECLAIM_SECONDS) -> int:
        """Move entries another relay read but never moved (it died); forget idle consumers."""
        moved, cursor = 0, "0-0"
        try:
            while True:
                cursor, entries, *_ = self.redis.xautoclaim(
                    self.key,
                    RELAY_GROUP,
                    consumer,
                    int(min_idle_seconds * 1000),
                    start_id=cursor,
                    count=RELAY_BATCH,
                )
                moved += self._move(entries)
                if as_text(cursor) == "0-0":
                    break
            for info in self.redis.xinfo_consumers(self.key, RELAY_GROUP):
                idle_ms, name = int(info["idle"]), as_text(info["name"])
                if not info["pending"] and idle_ms > IDLE_CONSUMER_SECONDS * 1000 and name != consumer:
                    self.redis.xgroup_delconsumer(self.key, RELAY_GROUP, name)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._create_group()
        return moved

    def counts(self) -> dict[str, int]:
        """Events not yet delivered (in the stream, queued, waiting to retry, in flight) and dead ones."""
        counts = self._deliveries.counts()
        counts["pending"] += int(self.redis.xlen(self.key))
        return counts

    def ready(self) -> int:
        """Events a worker can take now: in the stream or queued (not waiting to retry)."""
        return int(self.redis.xlen(self.key)) + self._deliveries.ready()

    def oldest_pending_age(self, now: datetime) -> float:
        """Seconds since the oldest undelivered event was created (0 when none)."""
        ages = [self._deliveries.oldest_pending_age(now)]
        first = self.redis.xrange(self.key, count=1)
        if first:
            ages.append((now - _entry_time(first[0][0])).total_seconds())
        return max(ages)

    def waiting(self, limit: int = 200) -> list[OutgoingEvent]:
        """Events in the stream, oldest first: written, not yet in the delivery queue."""
        return [event for _, event in self._entries(self.redis.xrange(self.key, count=limit))]

    def events(self, dead_only: bool = False, limit: int = 200) -> list[EventInfo]:
        """Events with their delivery state; those still in the stream are listed as queued."""
        waiting: list[EventInfo] = []
        if not dead_only:
            for entry_id, event in self._entries(self.redis.xrevrange(self.key, count=limit)):
                created = _entry_time(entry_id)
                waiting.append(
                    EventInfo(event.id, event.type, event.booking_id, "queued", 0, None, created, None)
                )
        return waiting + self._deliveries.events(dead_only, limit)

    def unknown(self, event_ids: Iterable[str]) -> list[str]:
        """Which of these ids are not events we hold (in the stream or the delivery queue)."""
        missing = self._deliveries.unknown(event_ids)
        if missing:
            in_stream = {event.id for _, event in self._scan()}
            missing = [i for i in missing if i not in in_stream]
        return missing

    def _move(self, entries: list[Any]) -> int:
        """Enqueue the entries' deliveries, acknowledge and delete them: one MULTI/EXEC."""
        ids = [entry_id for entry_id, _ in entries if entry_id is not None]
        if not ids:
            return 0
        self._confirm()  # not confirmed: the entries stay pending, moved once they are (or never)
        with self.redis.pipeline() as pipe:
            for _, event in self._entries(entries):
                self._deliveries.enqueue(pipe, event)
            pipe.xack(self.key, RELAY_GROUP, *ids)
            pipe.xdel(self.key, *ids)
            pipe.execute()
        return len(ids)

    def _entries(self, entries: Any) -> Iterable[tuple[Any, OutgoingEvent]]:
        for entry_id, fields in entries:
            if fields is None:
                continue  # deleted while pending (XAUTOCLAIM reports those separately)
            event = read_outbox_entry(fields)
            if event is None:
                # Only the store writes the stream; an entry without our fields cannot be sent.
                log.error("outbox entry without an event; skipped", extra={"entry_id": as_text(entry_id)})
                continue
            yield entry_id, event

    def _scan(self) -> Iterable[tuple[Any, OutgoingEvent]]:
        start = "-"
        while entries := self.redis.xrange(self.key, min=start, count=1000):
            yield from self._entries(entries)
            last_id: Any = entries[-1][0]  # redis-py types stream ids loosely
            start = "(" + as_text(last_id)

    def _create_group(self) -> None:
        # From the stream's start: entries written before any relay existed are moved too.
        try:
            self.redis.xgroup_create(self.key, RELAY_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


def _entry_time(entry_id: Any) -> datetime:
    """A stream entry id starts with the Redis server's clock in milliseconds."""
    return datetime.fromtimestamp(int(as_text(entry_id).split("-")[0]) / 1000, UTC)
