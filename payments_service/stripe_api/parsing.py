"""Stripe's JSON (events, Checkout Sessions, charges) read into our facts; no SDK, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..domain.facts import RefundFact, SessionFact, SessionOutcome, SessionRecord

HANDLED_EVENT_TYPES = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "charge.refunded",
)
# The metadata key naming the deployment that opened a session (on it and on its PaymentIntent).
OWNER_KEY = "payments_service"
# How a completed session's "unpaid" payment intent tells a delayed method apart from a failed one.
_INTENT_OUTCOME = {
    "succeeded": SessionOutcome.PAID,
    "processing": SessionOutcome.PROCESSING,
    "requires_payment_method": SessionOutcome.FAILED,
    "canceled": SessionOutcome.FAILED,
}


class InvalidWebhook(Exception):
    """A webhook that is not signed by Stripe with one of our secrets, or is not an event."""

    def __init__(self, detail: str, reason: str = "malformed") -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class StripeEvent:
    """A verified Stripe event reduced to what we act on; `fact` is None for types we ignore."""

    id: str
    type: str
    created: int
    fact: SessionFact | RefundFact | None
    booking_hint: str | None
    # The deployment its object's metadata names (a charge carries its PaymentIntent's metadata).
    deployment_hint: str | None = None


def session_fact(session: Mapping[str, Any], outcome: SessionOutcome | None = None) -> SessionFact:
    """Read a Checkout Session (a plain dict) into what it means for the booking."""
    metadata = session.get("metadata") or {}
    intent = session.get("payment_intent")
    intent_id = intent.get("id") if isinstance(intent, dict) else intent
    if outcome is None:
        outcome = _session_outcome(session, intent)
    return SessionFact(
        session_id=session["id"],
        booking_id=metadata.get("booking_id") or session.get("client_reference_id"),
        outcome=outcome,
        amount_total=session.get("amount_total"),
        currency=session.get("currency"),
        payment_intent=intent_id,
        deployment=metadata.get(OWNER_KEY),
    )


def session_record(session: Mapping[str, Any]) -> SessionRecord:
    """A session retrieved with its line items and its PaymentIntent's charge expanded."""
    items = (session.get("line_items") or {}).get("data") or [{}]
    intent = session.get("payment_intent")
    charge = intent.get("latest_charge") if isinstance(intent, dict) else None
    charge = charge if isinstance(charge, dict) else {}
    return SessionRecord(
        fact=session_fact(session),
        created=int(session["created"]),
        expires_at=int(session.get("expires_at") or session["created"]),
        url=session.get("url"),
        description=str(items[0].get("description") or ""),
        amount_refunded=int(charge.get("amount_refunded") or 0),
        paid_at=int(charge["created"]) if charge.get("created") else None,
    )


def _session_outcome(session: Mapping[str, Any], intent: Any) -> SessionOutcome:
    status = session.get("status")
    if status == "open":
        return SessionOutcome.OPEN
    if status == "expired":
        return SessionOutcome.EXPIRED
    if session.get("payment_status") in ("paid", "no_payment_required"):
        return SessionOutcome.PAID
    if isinstance(intent, dict):
        return _INTENT_OUTCOME.get(str(intent.get("status")), SessionOutcome.PROCESSING)
    return SessionOutcome.PROCESSING


_EVENT_OUTCOMES = {
    "checkout.session.async_payment_succeeded": SessionOutcome.PAID,
    "checkout.session.async_payment_failed": SessionOutcome.FAILED,
    "checkout.session.expired": SessionOutcome.EXPIRED,
}


def parse_event(data: Any) -> StripeEvent:
    """Turn a Stripe event (already trusted) into our facts; raises InvalidWebhook if it is not one."""
    try:
        if data.get("object") != "event":
            raise InvalidWebhook("body is not a Stripe event")
        event_id, event_type, created = str(data["id"]), str(data["type"]), int(data["created"])
        obj = data["data"]["object"]
        if not event_id or not isinstance(obj, dict):
            raise InvalidWebhook("event has no id or object")
        fact: SessionFact | RefundFact | None = None
        hint: str | None = None
        metadata = obj.get("metadata") or {}
        if event_type.startswith("checkout.session.") and event_type in HANDLED_EVENT_TYPES:
            fact = session_fact(obj, _EVENT_OUTCOMES.get(event_type))
            hint = fact.booking_id
        elif event_type == "charge.refunded" and obj.get("payment_intent"):
            refunds = (obj.get("refunds") or {}).get("data") or []
            reason = refunds[0].get("reason") if refunds and isinstance(refunds[0], dict) else None
            fact = RefundFact(str(obj["payment_intent"]), int(obj.get("amount_refunded") or 0), reason)
            hint = metadata.get("booking_id")
        return StripeEvent(event_id, event_type, created, fact, hint, metadata.get(OWNER_KEY))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InvalidWebhook("body is not a well-formed Stripe event") from None
