"""How things are kept in Redis: a payment's JSON, the index entries that change with it, outbox entries."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from ..domain.events import OutgoingEvent
from ..domain.payments import OPEN, Payment, PaymentStatus
from . import compare_and_write as cw
from . import keys


def index_ops(payment: Payment, previous: Payment | None, retention: int | None = None) -> list[cw.Op]:
    """What else changes with a payment: status index entries, the payment intent's booking and,
    once it is final, its retention (`retention` seconds; None keeps it).

    A final payment leaves Redis with its intent's entry; the status indexes hold open ones only.
    A later change (a refund) writes it again with a fresh retention; after it has left, Stripe
    has it (usecases/ledger.py).
    """
    ops: list[cw.Op] = []
    if previous is not None and previous.status in OPEN and previous.status is not payment.status:
        ops.append(cw.zrem(keys.status_index(previous.status), payment.booking_id))
    if payment.status in OPEN:
        ops.append(cw.zadd(keys.status_index(payment.status), payment.booking_id, payment.updated_at))
    if payment.payment_intent and (previous is None or previous.payment_intent != payment.payment_intent):
        ops.append(cw.set_value(keys.intent(payment.payment_intent), payment.booking_id))
    if retention is not None and payment.status not in OPEN:
        ops.append(cw.expire(keys.payment(payment.booking_id), retention))
        if payment.payment_intent:
            ops.append(cw.expire(keys.intent(payment.payment_intent), retention))
    return ops


_FIELDS = tuple(f.name for f in dataclasses.fields(Payment))
# Fields left out while they hold these values: most payments never use them. Redis keeps every
# payment in flight and every final one for its retention, so bytes per payment are the memory
# bill (the README's footprint table). The version is always written: the write script reads it.
_OMITTED_WHEN: dict[str, object] = {
    "checkout_url": None,
    "attempt": 1,
    "payment_intent": None,
    "paid_at": None,
    "amount_refunded": 0,
    "reason": None,
    "duplicates": {},
    "cancel_requested": False,
}


def encode(payment: Payment) -> str:
    """The payment as stored: compact JSON, without fields at their usual values.

    `sessions` is left out too while it is just the current session (the common case).
    """
    # Not dataclasses.asdict: it deep-copies every field, on the webhook's hot path.
    data: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(payment, name)
        if name in _OMITTED_WHEN and value == _OMITTED_WHEN[name]:
            continue
        data[name] = value
    if payment.sessions == (payment.session_id,):
        del data["sessions"]
    if "duplicates" in data:
        data["duplicates"] = dict(payment.duplicates)
    return json.dumps(data, separators=(",", ":"))


def decode(raw: bytes | str) -> Payment:
    """A stored payment read back (in either form: every field, or the compact one)."""
    data = {**_OMITTED_WHEN, "duplicates": {}, **json.loads(raw)}
    data["status"] = PaymentStatus(data["status"])
    data["sessions"] = tuple(data["sessions"]) if "sessions" in data else (data["session_id"],)
    return Payment(**data)


_EVENT_FIELDS = tuple(f.name for f in dataclasses.fields(OutgoingEvent))


def outbox_entry(event: OutgoingEvent) -> tuple[str, ...]:
    """An outgoing event as an outbox stream entry's fields and values (XADD key * ...)."""
    return tuple(part for name in _EVENT_FIELDS for part in (name, getattr(event, name)))


def read_outbox_entry(fields: Mapping[bytes, bytes]) -> OutgoingEvent | None:
    """An outbox entry read back; None if it lacks an event's fields."""
    try:
        return OutgoingEvent(*(fields[name.encode()].decode() for name in _EVENT_FIELDS))
    except KeyError:
        return None
