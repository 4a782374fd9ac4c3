"""The domain: a booking's payment, its statuses, and the forward-only rules for Stripe's facts; no I/O."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .facts import RefundFact, SessionFact, SessionOutcome


class PaymentStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELED = "canceled"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


# Money has been taken: the booking cannot be paid again, only refunded.
SETTLED = frozenset({PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED})
# A new checkout cannot be opened: money is taken or on its way.
LOCKED_IN = SETTLED | {PaymentStatus.PROCESSING}
# No money has moved: a completion of any of the booking's sessions is accepted.
UNPAID = frozenset(
    {PaymentStatus.PENDING, PaymentStatus.FAILED, PaymentStatus.EXPIRED, PaymentStatus.CANCELED}
)
# Checked against Stripe by reconciliation.
OPEN = frozenset({PaymentStatus.PENDING, PaymentStatus.PROCESSING})


@dataclass(frozen=True)
class Payment:
    """One booking's payment as we store it; `sessions` are every Checkout Session we opened for it."""

    booking_id: str
    status: PaymentStatus
    amount: int
    currency: str
    description: str
    session_id: str
    checkout_url: str | None
    expires_at: int
    created_at: int
    updated_at: int
    version: int = 1
    attempt: int = 1
    payment_intent: str | None = None
    paid_at: int | None = None
    amount_refunded: int = 0
    reason: str | None = None
    sessions: tuple[str, ...] = ()
    # duplicate session id -> the refund that gave its money back
    duplicates: Mapping[str, str] = field(default_factory=dict)
    # Set before a cancel asks Stripe to expire the session: Stripe's expiry event can arrive
    # before Stripe's answer does, and must then cancel the payment, not expire it. Internal only.
    cancel_requested: bool = False

    def reopens_for(self, amount: int, currency: str, now: int) -> bool:
        """True when a request must open a new session rather than reuse this one."""
        if self.status is not PaymentStatus.PENDING:
            return True
        return self.amount != amount or self.currency != currency or self.expires_at <= now

    def evolve(self, now: int, **changes: object) -> Payment:
        """A copy with the changes applied, one version later."""
        return dataclasses.replace(self, version=self.version + 1, updated_at=now, **changes)  # type: ignore[arg-type]


def first_version(clock: float) -> int:
    """The version of a payment Redis did not hold: the clock in milliseconds, then one more per change.

    Redis forgets a booking (its retention ended, or a rollback lost it) but a receiver does not:
    a booking paid again after its expired checkout left Redis, or rebuilt from Stripe, must
    announce versions above those it announced before, or receivers that keep the highest
    version would drop them. Every change waits on Redis and most on Stripe, so a payment never
    changes once a millisecond: a clock start stays above every earlier version of the booking.
    """
    return int(clock * 1000)


@dataclass(frozen=True)
class Change:
    """A new state for a payment and the event that announces it."""

    payment: Payment
    event_type: str
    # A session that can no longer be paid for and should be expired at Stripe after commit.
    superseded_session: str | None = None
    # Extra fields for the event's data (the duplicate's session and refund).
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DuplicatePayment:
    """A second payment for a booking that is already paid: it must be refunded."""

    session_id: str
    payment_intent: str


Decision = Change | DuplicatePayment | None


def _change(payment: Payment, status: PaymentStatus, now: int, **changes: object) -> Change:
    new = payment.evolve(now, status=status, **changes)
    return Change(new, f"payment.{status.value}")


def apply_session(payment: Payment, fact: SessionFact, now: int) -> Decision:
    """The forward-only rules: what a session's outcome does to the payment, if anything."""
    if fact.session_id not in payment.sessions:
        return None  # not a session we opened for this booking
    if fact.outcome is SessionOutcome.EXPIRED:
        if payment.status is PaymentStatus.PENDING and fact.session_id == payment.session_id:
            if payment.cancel_requested:
                return cancel(payment, now)
            return _change(payment, PaymentStatus.EXPIRED, now, reason="checkout_session_expired")
        return None
    if fact.outcome is SessionOutcome.FAILED:
        if payment.status is PaymentStatus.PROCESSING and fact.session_id == payment.session_id:
            return _change(payment, PaymentStatus.FAILED, now, reason="async_payment_failed")
        return None
    if fact.outcome in (SessionOutcome.PAID, SessionOutcome.PROCESSING):
        return _completed(payment, fact, now)
    return None


def _completed(payment: Payment, fact: SessionFact, now: int) -> Decision:
    paid = fact.outcome is SessionOutcome.PAID
    same_session = fact.session_id == payment.session_id
    if payment.status in UNPAID:
        if payment.status is PaymentStatus.FAILED and same_session:
            return None  # a stale "completed, unpaid" for a session whose payment already failed
        change = _change(
            payment,
            PaymentStatus.PAID if paid else PaymentStatus.PROCESSING,
            now,
            session_id=fact.session_id,
            checkout_url=None,
            payment_intent=fact.payment_intent,
            amount=fact.amount_total or payment.amount,
            currency=fact.currency or payment.currency,
            paid_at=now if paid else None,
            reason=None,
        )
        open_session = payment.session_id if payment.status is PaymentStatus.PENDING else None
        if open_session and not same_session:
            return dataclasses.replace(change, superseded_session=open_session)
        return change
    if same_session:
        if payment.status is PaymentStatus.PROCESSING and paid:
            return _change(payment, PaymentStatus.PAID, now, paid_at=now)
        return None
    if not paid or fact.session_id in payment.duplicates or fact.payment_intent is None:
        return None  # a duplicate is refunded once its money has actually arrived
    return DuplicatePayment(fact.session_id, fact.payment_intent)


def record_duplicate_refund(payment: Payment, session_id: str, refund_id: str, now: int) -> Change | None:
    """The booking stays paid with its first payment; the second is recorded as refunded."""
    if session_id in payment.duplicates:
        return None
    duplicates = {**payment.duplicates, session_id: refund_id}
    new = payment.evolve(now, duplicates=duplicates, reason="duplicate_payment")
    details = {"duplicate_session_id": session_id, "refund_id": refund_id}
    return Change(new, "payment.duplicate_refunded", details=details)


def apply_refund(payment: Payment, fact: RefundFact, now: int) -> Change | None:
    """Refunds only ever grow; the total comes from Stripe's charge, so repeats change nothing."""
    if payment.status not in SETTLED or payment.payment_intent != fact.payment_intent:
        return None
    total = max(payment.amount_refunded, fact.amount_refunded)
    if total == payment.amount_refunded:
        return None
    status = PaymentStatus.REFUNDED if total >= payment.amount else PaymentStatus.PARTIALLY_REFUNDED
    return _change(payment, status, now, amount_refunded=total, reason=fact.reason)


def cancel(payment: Payment, now: int) -> Change:
    """The open session was expired at Stripe on request."""
    return _change(payment, PaymentStatus.CANCELED, now, checkout_url=None, reason="canceled_by_request")
