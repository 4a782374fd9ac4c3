"""The events we publish to the booking service: a body made once, and an id derived from it."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass

from .payments import Change, Payment, PaymentStatus


def iso(timestamp: int | None) -> str | None:
    """Unix seconds as ISO 8601 UTC ("2026-11-26T10:30:00Z"), in responses and events alike."""
    return None if timestamp is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


@dataclass(frozen=True)
class OutgoingEvent:
    """One event for the booking service; its body is made once and sent unchanged on every attempt."""

    id: str
    type: str
    booking_id: str
    body: str


def payment_resource(payment: Payment) -> dict[str, object]:
    """The payment resource for an event, built directly: a schema dump is costly on the webhook path.

    PaymentSchema documents the resource and serves API responses; a test holds both equal.
    """
    return {
        "booking_id": payment.booking_id,
        "status": payment.status.value,
        "amount": payment.amount,
        "currency": payment.currency,
        "description": payment.description,
        "checkout_url": payment.checkout_url if payment.status is PaymentStatus.PENDING else None,
        "session_id": payment.session_id,
        "payment_intent": payment.payment_intent,
        "expires_at": iso(payment.expires_at),
        "paid_at": iso(payment.paid_at),
        "amount_refunded": payment.amount_refunded,
        "version": payment.version,
        "created_at": iso(payment.created_at),
        "updated_at": iso(payment.updated_at),
    }


def event_id(booking_id: str, version: int, body: str) -> str:
    """One id per change *and* body: an id never names two different events.

    The compare-and-write lets one change per version through, so a race cannot announce a change
    twice. A Redis that lost its last writes can reach a version again with another change, or
    the same change at another time; its body then differs, and so does its id.
    """
    digest = hashlib.sha256(f"{booking_id}\x00{version}\x00{body}".encode()).digest()
    return "msg_" + base64.b32encode(digest).decode().rstrip("=").lower()[:26]


def build_event(change: Change) -> OutgoingEvent:
    """The Standard Webhooks payload for a change: type, timestamp, the payment (and why)."""
    payment = change.payment
    data = payment_resource(payment)
    if payment.reason:
        data["reason"] = payment.reason
    data.update(change.details)
    body = json.dumps(
        {
            "type": change.event_type,
            "timestamp": iso(payment.updated_at),
            "data": data,
        },
        separators=(",", ":"),
    )
    return OutgoingEvent(
        id=event_id(payment.booking_id, payment.version, body),
        type=change.event_type,
        booking_id=payment.booking_id,
        body=body,
    )
