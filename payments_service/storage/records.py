"""How a payment is kept in Redis: its JSON, and the index entries that change with it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ..domain.payments import OPEN, Payment, PaymentStatus
from . import compare_and_write as cw
from . import keys


def index_ops(payment: Payment, previous: Payment | None) -> list[cw.Op]:
    """What else changes with a payment: status index entries and the payment intent's booking."""
    ops: list[cw.Op] = []
    if previous is not None and previous.status in OPEN and previous.status is not payment.status:
        ops.append(cw.zrem(keys.status_index(previous.status), payment.booking_id))
    if payment.status in OPEN:
        ops.append(cw.zadd(keys.status_index(payment.status), payment.booking_id, payment.updated_at))
    if payment.payment_intent and (previous is None or previous.payment_intent != payment.payment_intent):
        ops.append(cw.set_value(keys.intent(payment.payment_intent), payment.booking_id))
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
