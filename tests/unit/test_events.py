"""Outgoing events: ids are deterministic per change, bodies carry the payment and why."""

from __future__ import annotations

import json

from payments_service.domain.events import build_event, event_id
from payments_service.domain.facts import SessionOutcome
from payments_service.domain.payments import PaymentStatus, apply_session, cancel, record_duplicate_refund
from tests.unit.test_payment_rules import NOW, PENDING, at, changed, fact


def test_an_id_names_one_booking_version_and_body() -> None:
    assert event_id("bk_1", 3, "{}") == event_id("bk_1", 3, "{}")
    ids = {event_id("bk_1", 3, "{}"), event_id("bk_1", 4, "{}"), event_id("bk_2", 3, "{}")}
    assert len(ids | {event_id("bk_1", 3, '{"type":"payment.expired"}')}) == 4
    assert event_id("bk_1", 3, "{}").startswith("msg_")


def test_after_a_rollback_another_change_at_the_same_version_gets_another_id() -> None:
    canceled = build_event(changed(cancel(PENDING, NOW)))
    expired = build_event(changed(apply_session(PENDING, fact(SessionOutcome.EXPIRED), NOW)))
    assert json.loads(canceled.body)["data"]["version"] == json.loads(expired.body)["data"]["version"]
    assert canceled.id != expired.id
    # The same change re-made later carries another timestamp, hence another id too.
    later = build_event(changed(cancel(PENDING, NOW + 5)))
    assert later.id != canceled.id and build_event(changed(cancel(PENDING, NOW))).id == canceled.id


def test_the_body_is_the_payment_resource_with_type_and_timestamp() -> None:
    change = changed(apply_session(PENDING, fact(SessionOutcome.PAID), NOW))
    event = build_event(change)
    body = json.loads(event.body)
    assert (event.id, event.type, event.booking_id) == (
        event_id("bk_1", 3, event.body),
        "payment.paid",
        "bk_1",
    )
    assert body["type"] == "payment.paid"
    assert body["timestamp"] == "2030-03-17T17:46:40Z"
    assert body["data"]["status"] == "paid" and body["data"]["version"] == 3
    assert "reason" not in body["data"]
    assert build_event(change).body == event.body  # made the same way every time


def test_a_duplicate_refund_event_names_the_duplicate_and_the_refund() -> None:
    paid = at(PaymentStatus.PAID, session_id="cs_1", payment_intent="pi_1")
    body = json.loads(build_event(changed(record_duplicate_refund(paid, "cs_2", "re_9", NOW))).body)
    assert body["type"] == "payment.duplicate_refunded"
    assert body["data"]["status"] == "paid"
    assert (body["data"]["duplicate_session_id"], body["data"]["refund_id"]) == ("cs_2", "re_9")
    assert body["data"]["reason"] == "duplicate_payment"


def test_the_event_resource_is_exactly_what_the_schema_documents() -> None:
    from payments_service.domain.events import payment_resource
    from payments_service.web.schemas import PaymentSchema

    schema = PaymentSchema()
    for status in PaymentStatus:
        for fields in ({}, {"paid_at": NOW, "payment_intent": "pi_1", "amount_refunded": 5}):
            payment = at(status, **fields)
            assert payment_resource(payment) == schema.dump(payment), status
    assert set(payment_resource(PENDING)) == set(schema.fields)
