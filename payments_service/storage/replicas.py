"""Replica acknowledgment: a change is answered 201, or 200 to Stripe, only once replicas have it.

Redis replicates asynchronously; a primary that fails over loses what its replicas had not yet
received. WAIT, sent on the connection right after the write (in the same round trip), blocks until
enough replicas confirm every write made on that connection so far, or until the timeout. Fewer
confirmations mean the change may not survive a failover: the caller gets a 503 and retries, and
the retry is safe (the write compares versions; Stripe's event is marked only where it landed).

How many: REDIS_REPLICA_ACKS at least, and under Sentinel every replica it reports healthy. Sentinel
may promote any of them, and a primary that has just lost a replica to a promotion must not be able
to acknowledge anything more with the replicas it has left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError, ResponseError

from . import keys
from .connections import NotPrimary, WriteRefused
from .pipelining import Command, Pipelined
from .primary import Primary


class NotAcknowledged(RedisError):
    """Fewer replicas than required confirmed a write in time: it may be lost if the primary fails over."""


@dataclass(frozen=True)
class ReplicaAcks:
    """How many replicas must confirm a write before anyone is told it happened, and for how long to wait."""

    minimum: int
    timeout_ms: int
    primary: Primary | None = None

    def needed(self) -> int:
        if self.minimum <= 0:
            return 0
        healthy = self.primary.healthy_replicas if self.primary is not None else 0
        return max(self.minimum, healthy)

    def wait(self) -> Command | None:
        """The WAIT to send right after a write (None: no replica acknowledgment configured)."""
        needed = self.needed()
        return ("WAIT", needed, self.timeout_ms) if needed else None

    def check(self, wait: Command, acked: Any) -> None:
        """Raise unless the WAIT's answer counts as many replicas as it asked for."""
        if int(acked) < int(wait[1]):
            raise NotAcknowledged(
                f"{int(acked)} of {int(wait[1])} replicas confirmed the write within {self.timeout_ms} ms"
            )

    def confirm(self, trips: Pipelined) -> None:
        """Confirm that what this process read is on the replicas (a write of its own, then WAIT).

        For answers that rest on a change made earlier, perhaps by a request whose own WAIT failed
        (a repeated Stripe event, a reused checkout): WAIT covers only writes made on its own
        connection, so a small write first puts everything written before it under the WAIT.
        """
        wait = self.wait()
        if wait is None:
            return
        _, acked = trips.run([("INCR", keys.REPLICA_BARRIER), wait])
        self.check(wait, acked)


def writable(redis: Redis, acks: ReplicaAcks) -> str:
    """'ok', or why a write here would not be acknowledged: 'replica', 'read_only', 'too_few_replicas'."""
    try:
        # A real write: a replica refuses it (and its connections then look for the primary again),
        # and so does a primary short of `min-replicas-to-write` replicas, out of disk, or of memory.
        redis.incr(keys.REPLICA_BARRIER)
    except NotPrimary:
        return "replica"
    except (WriteRefused, ResponseError):  # NOREPLICAS, MISCONF, OOM
        return "read_only"
    role: Any = redis.execute_command("ROLE")  # type: ignore[no-untyped-call]
    if role[0] not in (b"master", "master"):
        return "replica"
    if len(role[2]) < acks.needed():
        return "too_few_replicas"
    return "ok"
