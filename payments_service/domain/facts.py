"""What Stripe tells us and what we ask of it, in the domain's terms (no SDK, no I/O).

Facts come from webhooks, refreshes and reconciliation alike; requests and answers are what the
use cases hand the Stripe gateway and get back from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class SessionOutcome(StrEnum):
    """What a Checkout Session says happened, whichever way we learned it."""

    OPEN = "open"
    EXPIRED = "expired"
    PROCESSING = "processing"
    PAID = "paid"
    FAILED = "failed"


@dataclass(frozen=True)
class SessionFact:
    """Stripe's word on one Checkout Session, from a webhook, a refresh or reconciliation."""

    session_id: str
    booking_id: str | None
    outcome: SessionOutcome
    amount_total: int | None = None
    currency: str | None = None
    payment_intent: str | None = None
    # The deployment named in the session's metadata: whose session it is (None: not this service's).
    deployment: str | None = None


@dataclass(frozen=True)
class SessionRecord:
    """A Checkout Session as Stripe keeps it: enough to rebuild the payment it belongs to."""

    fact: SessionFact
    created: int
    expires_at: int
    url: str | None
    description: str
    # From its PaymentIntent's charge, when it has one: refunded so far, and when it was paid.
    amount_refunded: int = 0
    paid_at: int | None = None


@dataclass(frozen=True)
class RefundFact:
    """Stripe's word on how much of a payment intent's charge is refunded in all."""

    payment_intent: str
    amount_refunded: int
    reason: str | None = None
    # The charge the refunds are on, so that a reason left out of the event can be looked up.
    charge: str | None = None


@dataclass(frozen=True)
class CheckoutRequest:
    """What we ask Stripe for: one line item for one booking."""

    booking_id: str
    amount: int
    currency: str
    description: str
    expires_at: int
    success_url: str
    cancel_url: str
    customer_email: str | None
    metadata: Mapping[str, str]
    # Which deployment opens it: written on the session and its PaymentIntent (see Settings).
    deployment: str = "default"


@dataclass(frozen=True)
class CheckoutSession:
    """The parts of a created Checkout Session we keep."""

    id: str
    url: str
    expires_at: int


@dataclass(frozen=True)
class Refund:
    """A refund Stripe made, with the charge's refunded total after it."""

    id: str
    amount: int
    charge_amount_refunded: int | None
