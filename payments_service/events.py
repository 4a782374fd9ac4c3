"""The events we publish to the booking service: a deterministic id and a body made once."""

from __future__ import annotations

import base64
import hashlib
import json

from .outbox import OutgoingEvent
from .payments import Change
from .schemas import PaymentSchema, Timestamp

_payment_schema = PaymentSchema()
_timestamp = Timestamp()


def event_id(booking_id: str, version: int) -> str:
    """The same change always gets the same id, so no race can announce it twice."""
    digest = hashlib.sha256(f"{booking_id}\x00{version}".encode()).digest()
    return "msg_" + base64.b32encode(digest).decode().rstrip("=").lower()[:26]


def build_event(change: Change) -> OutgoingEvent:
    """The Standard Webhooks payload for a change: type, timestamp, the payment (and why)."""
    payment = change.payment
    data = _payment_schema.dump(payment)
    if payment.reason:
        data["reason"] = payment.reason
    data.update(change.details)
    body = json.dumps(
        {
            "type": change.event_type,
            "timestamp": _timestamp.serialize("t", {"t": payment.updated_at}),
            "data": data,
        },
        separators=(",", ":"),
    )
    return OutgoingEvent(
        id=event_id(payment.booking_id, payment.version),
        type=change.event_type,
        booking_id=payment.booking_id,
        body=body,
    )
