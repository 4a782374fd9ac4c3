"""The forward-only rules: what each Stripe fact does to a payment, and what it never does."""

from __future__ import annotations

import dataclasses

import pytest

from payments_service.domain.facts import RefundFact, SessionFact, SessionOutcome
from payments_service.domain.payments import (
    Change,
    DuplicatePayment,
    Payment,
    PaymentStatus,
    apply_refund,
    apply_session,
    cancel,
    record_duplicate_refund,
)
from tests.support.payments import NOW, pending_payment

PENDING = pending_payment()


def fact(
    outcome: SessionOutcome, session: str = "cs_2", intent: str | None = "pi_1", amount: int = 3750
) -> SessionFact:
    return SessionFact(session, "bk_1", outcome, amount, "usd", intent)


def changed(decision: object) -> Change:
    assert isinstance(decision, Change), decision
    return decision


def at(status: PaymentStatus, **fields: object) -> Payment:
    return dataclasses.replace(PENDING, status=status, **fields)  # type: ignore[arg-type]


def test_a_completed_paid_session_pays_the_booking() -> None:
    change = changed(apply_session(PENDING, fact(SessionOutcome.PAID), NOW))
    assert change.event_type == "payment.paid"
    paid = change.payment
    assert (paid.status, paid.version, paid.paid_at, paid.payment_intent) == (
        PaymentStatus.PAID,
        3,
        NOW,
        "pi_1",
    )
    assert paid.checkout_url is None and paid.updated_at == NOW
    assert change.superseded_session is None


def test_a_completed_unpaid_session_is_processing_until_it_settles() -> None:
    processing = changed(apply_session(PENDING, fact(SessionOutcome.PROCESSING), NOW)).payment
    assert processing.status is PaymentStatus.PROCESSING and processing.paid_at is None
    settled = changed(apply_session(processing, fact(SessionOutcome.PAID), NOW + 5))
    assert (settled.event_type, settled.payment.paid_at) == ("payment.paid", NOW + 5)
    failed = changed(apply_session(processing, fact(SessionOutcome.FAILED), NOW + 5))
    assert (failed.event_type, failed.payment.reason) == ("payment.failed", "async_payment_failed")


def test_the_current_session_expiring_expires_the_payment() -> None:
    change = changed(apply_session(PENDING, fact(SessionOutcome.EXPIRED), NOW))
    assert (change.event_type, change.payment.checkout_url) == ("payment.expired", "https://checkout/cs_2")


@pytest.mark.parametrize(
    ("payment", "incoming"),
    [
        (at(PaymentStatus.PAID), fact(SessionOutcome.EXPIRED)),  # a late expiry never undoes paid
        (at(PaymentStatus.PAID), fact(SessionOutcome.PAID)),  # a replayed completion
        (at(PaymentStatus.PAID), fact(SessionOutcome.PROCESSING)),  # "completed, unpaid" after it settled
        (at(PaymentStatus.PROCESSING), fact(SessionOutcome.PROCESSING)),
        (at(PaymentStatus.FAILED), fact(SessionOutcome.PROCESSING)),  # stale completion after the failure
        (at(PaymentStatus.REFUNDED), fact(SessionOutcome.PAID)),
        (at(PaymentStatus.CANCELED), fact(SessionOutcome.EXPIRED)),
        (PENDING, fact(SessionOutcome.EXPIRED, session="cs_1")),  # the old session expiring
        (PENDING, fact(SessionOutcome.OPEN)),
        (PENDING, fact(SessionOutcome.FAILED)),  # only a processing payment can fail
        (PENDING, fact(SessionOutcome.PAID, session="cs_other")),  # not a session we opened
    ],
)
def test_late_repeated_or_foreign_facts_change_nothing(payment: Payment, incoming: SessionFact) -> None:
    assert apply_session(payment, incoming, NOW) is None


def test_an_older_session_completing_pays_with_that_session_and_retires_the_open_one() -> None:
    change = changed(apply_session(PENDING, fact(SessionOutcome.PAID, session="cs_1", amount=3000), NOW))
    assert (change.payment.session_id, change.payment.amount) == ("cs_1", 3000)
    assert change.superseded_session == "cs_2"


def test_a_payment_after_expiry_or_cancel_still_counts() -> None:
    for status in (PaymentStatus.EXPIRED, PaymentStatus.CANCELED):
        change = changed(apply_session(at(status), fact(SessionOutcome.PAID), NOW))
        assert change.payment.status is PaymentStatus.PAID
        assert change.superseded_session is None


def test_a_second_paid_session_is_a_duplicate_payment_until_refunded() -> None:
    paid = at(PaymentStatus.PAID, session_id="cs_1", payment_intent="pi_first")
    duplicate = apply_session(paid, fact(SessionOutcome.PAID, session="cs_2", intent="pi_second"), NOW)
    assert duplicate == DuplicatePayment("cs_2", "pi_second")
    recorded = changed(record_duplicate_refund(paid, "cs_2", "re_1", NOW))
    assert recorded.event_type == "payment.duplicate_refunded"
    assert recorded.payment.status is PaymentStatus.PAID and recorded.payment.session_id == "cs_1"
    assert recorded.details == {"duplicate_session_id": "cs_2", "refund_id": "re_1"}
    assert record_duplicate_refund(recorded.payment, "cs_2", "re_1", NOW) is None
    assert apply_session(recorded.payment, fact(SessionOutcome.PAID, session="cs_2"), NOW) is None


def test_a_duplicate_waits_until_its_money_arrives() -> None:
    paid = at(PaymentStatus.PAID, session_id="cs_1")
    assert apply_session(paid, fact(SessionOutcome.PROCESSING, session="cs_2"), NOW) is None
    processing = at(PaymentStatus.PROCESSING, session_id="cs_1")
    assert isinstance(
        apply_session(processing, fact(SessionOutcome.PAID, session="cs_2"), NOW), DuplicatePayment
    )


def test_refunds_only_grow_and_name_the_right_status() -> None:
    paid = at(PaymentStatus.PAID, payment_intent="pi_1")
    partial = changed(apply_refund(paid, RefundFact("pi_1", 1000, "requested_by_customer"), NOW))
    assert (partial.event_type, partial.payment.amount_refunded) == ("payment.partially_refunded", 1000)
    assert apply_refund(partial.payment, RefundFact("pi_1", 1000), NOW) is None  # repeated
    assert apply_refund(partial.payment, RefundFact("pi_1", 500), NOW) is None  # older, out of order
    full = changed(apply_refund(partial.payment, RefundFact("pi_1", 3750), NOW))
    assert (full.event_type, full.payment.status) == ("payment.refunded", PaymentStatus.REFUNDED)
    assert apply_refund(paid, RefundFact("pi_duplicate", 3750), NOW) is None
    assert apply_refund(PENDING, RefundFact("pi_1", 100), NOW) is None


def test_cancel_clears_the_checkout_url() -> None:
    change = cancel(PENDING, NOW)
    assert (change.event_type, change.payment.checkout_url, change.payment.version) == (
        "payment.canceled",
        None,
        3,
    )


def test_an_expiry_a_cancel_asked_for_cancels_and_any_other_expires() -> None:
    expired = fact(SessionOutcome.EXPIRED)
    asked = dataclasses.replace(PENDING, cancel_requested=True)
    assert changed(apply_session(asked, expired, NOW)).event_type == "payment.canceled"
    assert changed(apply_session(PENDING, expired, NOW)).event_type == "payment.expired"
