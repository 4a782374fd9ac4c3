"""Stripe's JSON (events, Checkout Sessions, charges) read into our facts; no SDK, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..domain.facts import RefundFact, SessionFact, SessionOutcome, SessionRecord
from ..domain.money import MAX_AMOUNT

HANDLED_EVENT_TYPES = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "charge.refunded",
)
# Later than any Unix time Stripe will send; a bound for `created` (which must be an integer).
_MAX_TIMESTAMP = 2**40
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


class BadStripeField(ValueError):
    """A field of Stripe's JSON that is not of the type Stripe documents (amounts are integers)."""


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
    booking_id = metadata.get("booking_id") or session.get("client_reference_id")
    currency = session.get("currency")
    return SessionFact(
        session_id=_string(session["id"], "session id"),
        booking_id=None if booking_id is None else _string(booking_id, "booking id"),
        outcome=outcome,
        amount_total=_amount(session.get("amount_total"), "amount_total"),
        currency=None if currency is None else _string(currency, "currency"),
        payment_intent=None if intent_id is None else _string(intent_id, "payment_intent"),
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
        event_id, event_type = _string(data["id"], "id"), _string(data["type"], "type")
        created = _integer(data["created"], "created", _MAX_TIMESTAMP)
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
            # Since API version 2022-11-15 a charge no longer carries its refunds (unless expanded):
            # the reason is then looked up on the charge's refunds (StripeGateway.refund_reason).
            refunds = (obj.get("refunds") or {}).get("data") or []
            reason = refunds[0].get("reason") if refunds and isinstance(refunds[0], dict) else None
            fact = RefundFact(
                _string(obj["payment_intent"], "payment_intent"),
                _amount(obj.get("amount_refunded") or 0, "amount_refunded") or 0,
                None if reason is None else _string(reason, "reason"),
                charge=_string(obj["id"], "charge id") if obj.get("id") else None,
            )
            hint = metadata.get("booking_id")
        return StripeEvent(event_id, event_type, created, fact, hint, metadata.get(OWNER_KEY))
    except InvalidWebhook:
        raise
    except BadStripeField as exc:
        raise InvalidWebhook(f"body is not a well-formed Stripe event: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        raise InvalidWebhook("body is not a well-formed Stripe event") from None


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadStripeField(f"{name} is not a string")
    return value


def _integer(value: Any, name: str, maximum: int) -> int:
    """A JSON integer within bounds: 1e400, 12.5, true or a thousand digits are not Stripe's."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise BadStripeField(f"{name} is not an integer Stripe would send")
    return value


def _amount(value: Any, name: str) -> int | None:
    return None if value is None else _integer(value, name, MAX_AMOUNT)
