"""Rebuilding a payment from Stripe's sessions: which session is the booking's, what it announces."""

from __future__ import annotations

import dataclasses

from payments_service.domain.facts import SessionFact, SessionOutcome, SessionRecord
from payments_service.domain.payments import Change, PaymentStatus, apply_session
from payments_service.domain.rebuild import adopt, duplicates_to_refund, rebuild
from payments_service.usecases.checkout import idempotency_key
from tests.support.payments import NOW, pending_payment
from tests.unit.test_idempotency_keys import REQUEST


def record(
    session: str,
    outcome: SessionOutcome,
    created: int,
    refunded: int = 0,
    amount: int = 3750,
) -> SessionRecord:
    intent = f"pi_{session}" if outcome in (SessionOutcome.PAID, SessionOutcome.PROCESSING) else None
    fact = SessionFact(session, "bk_1", outcome, amount, "usd", intent, "default")
    return SessionRecord(
        fact=fact,
        created=created,
        expires_at=created + 1800,
        url=f"https://checkout/{session}" if outcome is SessionOutcome.OPEN else None,
        description="Dune",
        amount_refunded=refunded,
        paid_at=created + 60 if outcome is SessionOutcome.PAID else None,
    )


def test_nothing_at_stripe_rebuilds_nothing() -> None:
    assert rebuild("bk_1", [], NOW) is None


def test_a_paid_session_rebuilds_a_paid_payment_with_its_refunds_and_a_fresh_version() -> None:
    payment = rebuild("bk_1", [record("cs_1", SessionOutcome.PAID, NOW - 600, refunded=1000)], NOW)
    assert payment is not None
    assert (payment.status, payment.amount, payment.amount_refunded) == (
        PaymentStatus.PARTIALLY_REFUNDED,
        3750,
        1000,
    )
    assert (payment.session_id, payment.payment_intent, payment.paid_at) == ("cs_1", "pi_cs_1", NOW - 540)
    assert (payment.description, payment.created_at, payment.version) == ("Dune", NOW - 600, NOW * 1000)
    # For a refund fact about to bring the total, the refunds are left out.
    without = rebuild(
        "bk_1", [record("cs_1", SessionOutcome.PAID, NOW - 600, refunded=1000)], NOW, refunds=False
    )
    assert without is not None and (without.status, without.amount_refunded) == (PaymentStatus.PAID, 0)


def test_before_a_fact_the_payment_is_as_it_stood_so_the_fact_announces_its_change() -> None:
    paid = record("cs_1", SessionOutcome.PAID, NOW - 600)
    payment = rebuild("bk_1", [paid], NOW, before=paid.fact)
    assert payment is not None and (payment.status, payment.session_id) == (PaymentStatus.PENDING, "cs_1")
    change = apply_session(payment, paid.fact, NOW)
    assert isinstance(change, Change) and change.event_type == "payment.paid"
    failing = dataclasses.replace(paid.fact, outcome=SessionOutcome.FAILED)
    processing = rebuild("bk_1", [dataclasses.replace(paid, fact=failing)], NOW, before=failing)
    assert processing is not None and processing.status is PaymentStatus.PROCESSING


def test_the_oldest_session_still_holding_money_is_the_booking_s_the_rest_are_duplicates() -> None:
    first_refunded = record("cs_1", SessionOutcome.PAID, NOW - 900, refunded=3750)  # a duplicate, given back
    kept = record("cs_2", SessionOutcome.PAID, NOW - 600)
    unrefunded = record("cs_3", SessionOutcome.PAID, NOW - 300)
    payment = rebuild("bk_1", [first_refunded, kept, unrefunded], NOW)
    assert payment is not None
    assert (payment.status, payment.session_id, payment.amount_refunded) == (PaymentStatus.PAID, "cs_2", 0)
    assert payment.sessions == ("cs_1", "cs_2", "cs_3") and set(payment.duplicates) == {"cs_1"}
    assert [f.session_id for f in duplicates_to_refund(payment, [first_refunded, kept, unrefunded])] == [
        "cs_3"
    ]


def test_without_money_the_newest_session_decides() -> None:
    expired = record("cs_1", SessionOutcome.EXPIRED, NOW - 4000)
    open_ = record("cs_2", SessionOutcome.OPEN, NOW - 60)
    payment = rebuild("bk_1", [expired, open_], NOW)
    assert payment is not None
    assert (payment.status, payment.session_id, payment.checkout_url) == (
        PaymentStatus.PENDING,
        "cs_2",
        "https://checkout/cs_2",
    )
    # The old session's expiry, applied to it, changes nothing: the booking's checkout is cs_2.
    assert apply_session(payment, dataclasses.replace(expired.fact), NOW) is None
    only_expired = rebuild("bk_1", [expired], NOW)
    assert only_expired is not None and only_expired.status is PaymentStatus.EXPIRED


def test_an_adopted_session_jumps_the_version_above_anything_announced() -> None:
    payment = pending_payment(version=NOW * 1000 - 100)
    adopted = adopt(payment, "cs_9", NOW + 0.25)
    assert adopted.sessions == ("cs_1", "cs_2", "cs_9") and adopted.version == NOW * 1000 + 250
    assert adopt(pending_payment(version=NOW * 1000 + 900), "cs_9", NOW).version == NOW * 1000 + 900


def test_the_deployment_is_part_of_the_checkout_idempotency_key() -> None:
    staging = dataclasses.replace(REQUEST, deployment="staging")
    assert idempotency_key(staging, 1) != idempotency_key(REQUEST, 1)
    assert idempotency_key(staging, 1) == idempotency_key(dataclasses.replace(staging), 1)
