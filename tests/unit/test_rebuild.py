"""Rebuilding a payment from Stripe's sessions: which session is the booking's, what it announces."""

from __future__ import annotations

import dataclasses

from payments_service.domain.facts import RefundFact, SessionFact, SessionOutcome, SessionRecord
from payments_service.domain.payments import DuplicatePayment, PaymentStatus, apply_session
from payments_service.domain.rebuild import adopt, current, rebuild
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


def test_a_paid_session_rebuilds_as_opened_plus_stripe_s_facts_with_a_fresh_version() -> None:
    rebuilt = rebuild("bk_1", [record("cs_1", SessionOutcome.PAID, NOW - 600, refunded=1000)], NOW)
    assert rebuilt is not None
    opened = rebuilt.payment
    assert (opened.status, opened.session_id, opened.amount, opened.description) == (
        PaymentStatus.PENDING,
        "cs_1",
        3750,
        "Dune",
    )
    assert (opened.created_at, opened.version, opened.checkout_url) == (NOW - 600, NOW * 1000, None)
    assert rebuilt.facts == (
        SessionFact("cs_1", "bk_1", SessionOutcome.PAID, 3750, "usd", "pi_cs_1", "default"),
        RefundFact("pi_cs_1", 1000),
    )
    now = current(rebuilt, NOW)
    assert (now.status, now.amount_refunded, now.paid_at) == (
        PaymentStatus.PARTIALLY_REFUNDED,
        1000,
        NOW - 540,
    )
    assert now.version == NOW * 1000 + 2  # one per fact, as if announced
    # Before a refund fact that brings the total, the refunds are left out.
    assert current(rebuilt, NOW, refunds=False).status is PaymentStatus.PAID


def test_a_failed_delayed_payment_replays_processing_then_failed() -> None:
    rebuilt = rebuild("bk_1", [record("cs_1", SessionOutcome.FAILED, NOW - 600)], NOW)
    assert rebuilt is not None
    assert [f.outcome for f in rebuilt.facts if isinstance(f, SessionFact)] == [
        SessionOutcome.PROCESSING,
        SessionOutcome.FAILED,
    ]
    assert current(rebuilt, NOW).status is PaymentStatus.FAILED


def test_the_oldest_session_still_holding_money_is_the_booking_s_the_rest_are_duplicates() -> None:
    first_refunded = record("cs_1", SessionOutcome.PAID, NOW - 900, refunded=3750)  # a duplicate, given back
    kept = record("cs_2", SessionOutcome.PAID, NOW - 600)
    unrefunded = record("cs_3", SessionOutcome.PAID, NOW - 300)
    rebuilt = rebuild("bk_1", [first_refunded, kept, unrefunded], NOW)
    assert rebuilt is not None
    payment = current(rebuilt, NOW)
    assert (payment.status, payment.session_id, payment.amount_refunded) == (PaymentStatus.PAID, "cs_2", 0)
    assert payment.sessions == ("cs_1", "cs_2", "cs_3") and set(payment.duplicates) == {"cs_1"}
    assert [f.session_id for f in rebuilt.duplicates] == ["cs_3"]
    # The duplicate's completion, applied to the rebuilt payment, asks for its refund.
    assert isinstance(apply_session(payment, unrefunded.fact, NOW), DuplicatePayment)
    assert apply_session(payment, first_refunded.fact, NOW) is None  # already given back


def test_without_money_the_newest_session_decides() -> None:
    expired = record("cs_1", SessionOutcome.EXPIRED, NOW - 4000)
    open_ = record("cs_2", SessionOutcome.OPEN, NOW - 60)
    rebuilt = rebuild("bk_1", [expired, open_], NOW)
    assert rebuilt is not None and rebuilt.facts == ()
    payment = current(rebuilt, NOW)
    assert (payment.status, payment.session_id, payment.checkout_url) == (
        PaymentStatus.PENDING,
        "cs_2",
        "https://checkout/cs_2",
    )
    # The old session's expiry, applied to it, changes nothing: the booking's checkout is cs_2.
    assert apply_session(payment, expired.fact, NOW) is None
    only_expired = rebuild("bk_1", [expired], NOW)
    assert only_expired is not None and current(only_expired, NOW).status is PaymentStatus.EXPIRED


def test_an_adopted_session_jumps_the_version_above_anything_announced() -> None:
    payment = pending_payment(version=NOW * 1000 - 100)
    adopted = adopt(payment, "cs_9", NOW + 0.25)
    assert adopted.sessions == ("cs_1", "cs_2", "cs_9") and adopted.version == NOW * 1000 + 250
    assert adopt(pending_payment(version=NOW * 1000 + 900), "cs_9", NOW).version == NOW * 1000 + 900


def test_the_deployment_is_part_of_the_checkout_idempotency_key() -> None:
    staging = dataclasses.replace(REQUEST, deployment="staging")
    assert idempotency_key(staging, 1) != idempotency_key(REQUEST, 1)
    assert idempotency_key(staging, 1) == idempotency_key(dataclasses.replace(staging), 1)
