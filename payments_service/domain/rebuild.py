"""A payment rebuilt from the Checkout Sessions Stripe keeps for a booking, when Redis has none.

Stripe is the ledger: every session this service opens carries the booking and the deployment,
so a payment that left Redis (its retention ended, or a Redis restored from an older snapshot
lost it) can be made again from them. The rules here only read sessions; the use cases find
them at Stripe and store the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from .facts import SessionFact, SessionOutcome, SessionRecord
from .payments import Payment, PaymentStatus, first_version

_MONEY = (SessionOutcome.PAID, SessionOutcome.PROCESSING)
_WITHOUT_MONEY = {
    SessionOutcome.OPEN: (PaymentStatus.PENDING, None),
    SessionOutcome.EXPIRED: (PaymentStatus.EXPIRED, "checkout_session_expired"),
    SessionOutcome.FAILED: (PaymentStatus.FAILED, "async_payment_failed"),
}


def rebuild(
    booking_id: str,
    records: Sequence[SessionRecord],
    clock: float,
    before: SessionFact | None = None,
    refunds: bool = True,
) -> Payment | None:
    """The booking's payment as its sessions show it (oldest first); None without sessions.

    `before` is a fact about to be applied: the payment is made as it stood before it, so that
    applying it announces the change. `refunds` False leaves refunds out, for a refund fact that
    is about to bring the charge's refunded total. The booking's payment is its oldest session
    that took money and still holds it; other sessions that took money are duplicates (those
    already refunded are recorded so; the rest are refunded when their completion is applied).
    """
    if not records:
        return None
    now = int(clock)
    money = [
        r
        for r in records
        if r.fact.outcome in _MONEY
        and r.fact.payment_intent
        and (before is None or r.fact.session_id != before.session_id)
    ]
    holding = [r for r in money if not _fully_refunded(r)]
    primary = holding[0] if holding else money[0] if money else None
    # The refund ids of duplicates refunded before Redis lost them are at Stripe, not here.
    duplicates = {r.fact.session_id: "" for r in money if r is not primary and _fully_refunded(r)}
    base = Payment(
        booking_id=booking_id,
        status=PaymentStatus.PENDING,
        amount=0,
        currency="",
        description=next((r.description for r in reversed(records) if r.description), ""),
        session_id="",
        checkout_url=None,
        expires_at=0,
        created_at=records[0].created,
        updated_at=now,
        version=first_version(clock),
        attempt=len(records),
        sessions=tuple(r.fact.session_id for r in records),
        duplicates=duplicates,
    )
    if primary is not None:
        return _with_money(base, primary, now, refunds)
    return _without_money(base, records[-1], before)


def _with_money(base: Payment, record: SessionRecord, now: int, refunds: bool) -> Payment:
    fact = record.fact
    paid = fact.outcome is SessionOutcome.PAID
    amount = fact.amount_total or 0
    refunded = min(record.amount_refunded, amount) if refunds and paid else 0
    status = PaymentStatus.PAID if paid else PaymentStatus.PROCESSING
    if refunded:
        status = PaymentStatus.REFUNDED if refunded >= amount else PaymentStatus.PARTIALLY_REFUNDED
    return dataclasses.replace(
        base,
        status=status,
        amount=amount,
        currency=fact.currency or "",
        session_id=fact.session_id,
        expires_at=record.expires_at,
        payment_intent=fact.payment_intent,
        paid_at=(record.paid_at or now) if paid else None,
        amount_refunded=refunded,
    )


def _without_money(base: Payment, latest: SessionRecord, before: SessionFact | None) -> Payment:
    """The newest session decides; the one a fact is about to change is still open (or processing)."""
    fact = latest.fact
    if before is not None and before.session_id == fact.session_id:
        # A delayed payment fails from processing; anything else happens to an open session.
        failing = before.outcome is SessionOutcome.FAILED
        status, reason, url = (PaymentStatus.PROCESSING if failing else PaymentStatus.PENDING), None, None
    else:
        status, reason = _WITHOUT_MONEY.get(fact.outcome, (PaymentStatus.PENDING, None))
        url = latest.url if fact.outcome is SessionOutcome.OPEN else None
    return dataclasses.replace(
        base,
        status=status,
        amount=fact.amount_total or 0,
        currency=fact.currency or "",
        session_id=fact.session_id,
        checkout_url=url,
        expires_at=latest.expires_at,
        payment_intent=fact.payment_intent if status is PaymentStatus.PROCESSING else None,
        reason=reason,
    )


def duplicates_to_refund(payment: Payment, records: Sequence[SessionRecord]) -> list[SessionFact]:
    """Sessions of a rebuilt payment that took money that it does not keep, nor has given back."""
    return [
        r.fact
        for r in records
        if r.fact.outcome is SessionOutcome.PAID
        and r.fact.session_id != payment.session_id
        and r.fact.session_id not in payment.duplicates
        and not _fully_refunded(r)
    ]


def adopt(payment: Payment, session_id: str, clock: float) -> Payment:
    """A session of ours Redis did not list for the booking: it lost writes, so jump the version."""
    return dataclasses.replace(
        payment, sessions=(*payment.sessions, session_id), version=max(payment.version, first_version(clock))
    )


def _fully_refunded(record: SessionRecord) -> bool:
    return record.amount_refunded >= (record.fact.amount_total or 0) > 0
