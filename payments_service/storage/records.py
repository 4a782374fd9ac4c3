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


def encode(payment: Payment) -> str:
    """The payment as stored: compact JSON of every field."""
    # Not dataclasses.asdict: it deep-copies every field, on the webhook's hot path.
    data: dict[str, Any] = {name: getattr(payment, name) for name in _FIELDS}
    data["duplicates"] = dict(payment.duplicates)
    return json.dumps(data, separators=(",", ":"))


def decode(raw: bytes | str) -> Payment:
    """A stored payment read back."""
    data = json.loads(raw)
    data["status"] = PaymentStatus(data["status"])
    data["sessions"] = tuple(data.get("sessions", ()))
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
