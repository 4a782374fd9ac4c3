"""The last deliveries, listed by `events list`: a delivered event leaves RQ at once.

RQ would keep a delivered job's hash and a result stream (about 6.5 KB together) for as long as
its result_ttl; the queue asks it to keep nothing, and the worker notes each delivery here, in
a stream capped at about DELIVERED_LOG_LENGTH entries, so memory does not grow with traffic.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq.utils import as_text

from ..storage import keys as redis_keys

DELIVERED_LOG_LENGTH = 1000


def record(
    connection: Redis,
    event_id: str,
    event_type: str,
    booking_id: str,
    attempts: int,
    created_at: datetime | None,
) -> None:
    """Note one delivered event; the oldest notes are trimmed away."""
    fields: dict[Any, Any] = {
        "id": event_id,
        "type": event_type,
        "booking_id": booking_id,
        "attempts": attempts,
    }
    if created_at is not None:
        fields["created_at"] = created_at.replace(tzinfo=UTC).timestamp()
    connection.xadd(redis_keys.DELIVERED_LOG, fields, maxlen=DELIVERED_LOG_LENGTH, approximate=True)


def recent(redis: Redis, limit: int) -> list[dict[str, Any]]:
    """The last deliveries, newest first: id, type, booking_id, attempts, created_at (or None)."""
    noted = []
    entries: Any = redis.xrevrange(redis_keys.DELIVERED_LOG, count=limit)  # redis-py types streams loosely
    for _, fields in entries:
        row = {as_text(k): as_text(v) for k, v in fields.items()}
        created = row.get("created_at")
        noted.append(
            {
                "id": row.get("id", ""),
                "type": row.get("type", ""),
                "booking_id": row.get("booking_id", ""),
                "attempts": int(row.get("attempts") or 0),
                "created_at": datetime.fromtimestamp(float(created), UTC) if created else None,
            }
        )
    return noted
