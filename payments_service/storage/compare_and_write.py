"""The one atomic write for a payment: compare with what its writer read, then write all of it.

Checkouts, cancels and every Stripe fact write through here in one script call
(compare_and_write.lua): the payment is written only if it is still as its writer read it (its
version and cancel mark), and with it, in the same step, the operations below: the Stripe event's
mark, status index entries, the payment intent's booking, a lock's release, the outbox entry, and
the expiry of a payment in a final state (with its index entries).
On Redis Cluster every key must share one hash slot (storage/keys.py gives them one tag).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import NoScriptError

from ..domain.payments import Payment
from .pipelining import Pipelined
from .replicas import ReplicaAcks

# The script's answers.
WRITTEN, CHANGED, MARKED = 1, 0, -1


@dataclass(frozen=True)
class Op:
    """One operation on one more key, done only if the payment is as read."""

    name: str
    key: str
    args: tuple[str, ...]


def mark(key: str, ttl_seconds: int) -> Op:
    """The key must not exist (else nothing at all is written: MARKED); set it, expiring."""
    return Op("mark", key, ("1", str(ttl_seconds)))


def zadd(key: str, member: str, score: int) -> Op:
    return Op("zadd", key, (member, str(score)))


def zrem(key: str, member: str) -> Op:
    return Op("zrem", key, (member,))


def set_value(key: str, value: str) -> Op:
    return Op("set", key, (value,))


def expire(key: str, seconds: int) -> Op:
    """Let a key (the payment's own included) leave Redis after a while: retention, atomic with the change."""
    return Op("expire", key, (str(seconds),))


def release(key: str, token: str) -> Op:
    """Delete a lock key if it still holds this token (an expired lock may be someone else's now)."""
    return Op("release", key, (token,))


def xadd(key: str, fields: Sequence[str]) -> Op:
    """Append an entry (field, value, field, value ...) to a stream."""
    return Op("xadd", key, tuple(fields))


@cache
def script() -> str:
    return Path(__file__).with_name("compare_and_write.lua").read_text()


@cache
def _sha() -> str:
    # Redis names a loaded script by its SHA-1.
    return hashlib.sha1(script().encode(), usedforsecurity=False).hexdigest()


def command(payment_key: str, previous: Payment | None, new: str, ops: Sequence[Op]) -> tuple[Any, ...]:
    """The EVALSHA command: write `new` ('' = leave the payment) over `previous` (None: there was none)."""
    args: list[Any] = [
        str(previous.version) if previous else "",
        "true" if previous and previous.cancel_requested else "false",
        new,
    ]
    for op in ops:
        args += [op.name, len(op.args), *op.args]
    script_keys = [payment_key, *(op.key for op in ops)]
    return ("EVALSHA", _sha(), len(script_keys), *script_keys, *args)


def run(
    trips: Pipelined,
    redis: Redis,
    payment_key: str,
    previous: Payment | None,
    new: str,
    ops: Sequence[Op],
    acks: ReplicaAcks | None = None,
) -> int:
    """One compare-and-write: WRITTEN, CHANGED (the payment is not as read) or MARKED.

    With `acks`, a WAIT follows the script in the same round trip, and WRITTEN is returned only
    once enough replicas have the write (NotAcknowledged otherwise).
    """
    wait = acks.wait() if acks is not None else None
    commands = [command(payment_key, previous, new, ops), *([wait] if wait else [])]
    try:
        outcome, *acked = trips.run(commands)
    except NoScriptError:  # a Redis that restarted, failed over, or never ran it
        redis.script_load(script())
        outcome, *acked = trips.run(commands)
    if acks is not None and wait is not None and int(outcome) == WRITTEN:
        acks.check(wait, acked[0])
    return int(outcome)
