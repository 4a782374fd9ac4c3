"""A payment rebuilt from the Checkout Sessions Stripe keeps for a booking, when Redis has none.

Stripe is the ledger: every session this service opens carries the booking and the deployment,
so a payment that left Redis (its retention ended, or a Redis restored from an older snapshot
lost it) can be made again from them: as it stood when its checkout opened, plus Stripe's facts
about it in order. Applied through the usual path, those facts announce what Redis lost;
applied here, quietly, they give the payment as it stands. The rules only read sessions; the
use cases find them at Stripe and store the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from .facts import RefundFact, SessionFact, SessionOutcome, SessionRecord
from .payments import (
    SETTLED,
    Change,
    Decision,
    Payment,
    PaymentStatus,
    apply_refund,
    apply_session,
    first_version,
)

_MONEY = (SessionOutcome.PAID, SessionOutcome.PROCESSING)


@dataclass(frozen=True)
class Rebuilt:
    """A booking's payment as its checkout opened it, and what Stripe says happened since."""

    payment: Payment
    # The booking's session's outcome (and its charge's refunds), in the order they happened.
    facts: tuple[SessionFact | RefundFact, ...]
    # Other sessions that took money and still hold it: second payments, to be refunded.
    duplicates: tuple[SessionFact, ...]
    paid_at: int | None


def rebuild(booking_id: str, records: Sequence[SessionRecord], clock: float) -> Rebuilt | None:
    """The payment from its sessions (oldest first); None without any.

    The booking's session is its oldest that took money and still holds it (else the oldest
    that took money, else the newest): a second payment is refunded whole, so the one still
    holding money is the one that was kept. Other sessions that took money are duplicates: those
    already refunded are recorded so, the rest are handed back to be refunded.
    """
    if not records:
        return None
    money = [r for r in records if r.fact.outcome in _MONEY and r.fact.payment_intent]
    holding = [r for r in money if not _fully_refunded(r)]
    chosen = holding[0] if holding else money[0] if money else records[-1]
    fact = chosen.fact
    opened = Payment(
        booking_id=booking_id,
        status=PaymentStatus.PENDING,
        amount=fact.amount_total or 0,
        currency=fact.currency or "",
        description=chosen.description or next((r.description for r in records if r.description), ""),
        session_id=fact.session_id,
        checkout_url=chosen.url if fact.outcome is SessionOutcome.OPEN else None,
        expires_at=chosen.expires_at,
        created_at=records[0].created,
        updated_at=int(clock),
        version=first_version(clock),
        attempt=len(records),
        sessions=tuple(r.fact.session_id for r in records),
        # The refund ids of duplicates refunded before Redis lost them are at Stripe, not here.
        duplicates={r.fact.session_id: "" for r in money if r is not chosen and _fully_refunded(r)},
    )
    facts: list[SessionFact | RefundFact] = []
    if fact.outcome is SessionOutcome.FAILED:
        facts.append(dataclasses.replace(fact, outcome=SessionOutcome.PROCESSING))  # failed from processing
    if fact.outcome is not SessionOutcome.OPEN:
        facts.append(fact)
    if chosen.amount_refunded and fact.payment_intent:
        facts.append(RefundFact(fact.payment_intent, chosen.amount_refunded))
    duplicates = tuple(r.fact for r in holding if r is not chosen and r.fact.outcome is SessionOutcome.PAID)
    return Rebuilt(opened, tuple(facts), duplicates, chosen.paid_at)


def current(rebuilt: Rebuilt, clock: float, refunds: bool = True) -> Payment:
    """The payment as it stands: Stripe's facts applied quietly (`refunds` False leaves refunds out)."""
    now, payment = int(clock), rebuilt.payment
    for fact in rebuilt.facts:
        decision: Decision
        if isinstance(fact, RefundFact):
            decision = apply_refund(payment, fact, now) if refunds else None
        else:
            decision = apply_session(payment, fact, now)
        if isinstance(decision, Change):
            payment = decision.payment
    if payment.status in SETTLED and rebuilt.paid_at is not None:
        payment = dataclasses.replace(payment, paid_at=rebuilt.paid_at)
    return payment


def adopt(payment: Payment, session_id: str, clock: float) -> Payment:
    """A session of ours Redis did not list for the booking: it lost writes, so jump the version."""
    return dataclasses.replace(
        payment, sessions=(*payment.sessions, session_id), version=max(payment.version, first_version(clock))
    )


def _fully_refunded(record: SessionRecord) -> bool:
    return record.amount_refunded >= (record.fact.amount_total or 0) > 0
