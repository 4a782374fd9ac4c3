"""Cancel and refunds: Stripe first, then one state change and one event; never twice."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from payments_service.wiring import Components
from tests.support.flows import open_payment, payment, post_event, queued, queued_types
from tests.support.stripe_wire import StripeWire, form, query

REFUNDS = "/v1/refunds"


def paid(client: Any, auth: dict[str, str], stripe: StripeWire, booking_id: str = "bk_1") -> dict[str, Any]:
    session_id = open_payment(client, auth, booking_id)["session_id"]
    stripe.state.pay(session_id, notify=False)
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "processed"
    return payment(client, auth, booking_id)


def cancel(client: Any, auth: dict[str, str], booking_id: str = "bk_1") -> Any:
    return client.post(f"/v1/payments/{booking_id}/cancel", headers=auth)


def refund(client: Any, auth: dict[str, str], booking_id: str = "bk_1", **body: Any) -> Any:
    headers = {**auth, **body.pop("headers", {})}
    return client.post(f"/v1/payments/{booking_id}/refunds", json=body, headers=headers)


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_expires_the_session_at_stripe_first(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    opened = open_payment(client, auth)
    session_id = opened["session_id"]
    response = cancel(client, auth)
    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["checkout_url"], body["version"]) == (
        "canceled",
        None,
        opened["version"] + 1,
    )
    assert stripe.state.sessions[session_id]["status"] == "expired"
    assert len(stripe.calls("POST", f"/v1/checkout/sessions/{session_id}/expire".lower())) == 1
    assert queued_types(components) == ["payment.canceled"]
    # Stripe's own expiry event for the session we expired changes nothing more.
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "ignored"


def test_stripes_expiry_event_arriving_before_its_answer_still_cancels(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    session_id = open_payment(client, auth)["session_id"]
    answers = []
    # Stripe sends checkout.session.expired while our expire call is still waiting for its answer.
    stripe.state.listeners.append(lambda event: answers.append(post_event(client, event).get_json()))
    response = cancel(client, auth)
    assert answers == [{"received": True, "outcome": "processed"}]
    assert (response.status_code, response.get_json()["status"]) == (200, "canceled")
    assert stripe.state.sessions[session_id]["status"] == "expired"
    assert queued_types(components) == ["payment.canceled"]


def test_canceling_a_canceled_or_expired_payment_calls_nobody(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    open_payment(client, auth)
    assert cancel(client, auth).status_code == 200
    calls = len(stripe.all_calls())
    again = cancel(client, auth)
    assert (again.status_code, again.get_json()["status"]) == (200, "canceled")
    session_id = open_payment(client, auth, "bk_2")["session_id"]
    stripe.state.expire(session_id)
    post_event(client, stripe.state.events[-1])
    calls = len(stripe.all_calls())
    expired = cancel(client, auth, "bk_2")
    assert (expired.status_code, expired.get_json()["status"]) == (200, "expired")
    assert len(stripe.all_calls()) == calls


def test_cancel_after_the_customer_paid_syncs_and_is_a_409(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    session_id = open_payment(client, auth)["session_id"]
    stripe.state.pay(session_id, notify=False)  # paid; the webhook has not arrived yet
    response = cancel(client, auth)
    assert response.status_code == 409
    assert "paid" in response.get_json()["detail"]
    assert payment(client, auth)["status"] == "paid"
    assert queued_types(components) == ["payment.paid"]
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "ignored"
    assert queued_types(components) == ["payment.paid"]


@pytest.mark.parametrize("booking_id", ["bk_unknown"])
def test_cancel_refuses_unknown_and_paid_bookings(
    client: Any, auth: dict[str, str], stripe: StripeWire, booking_id: str
) -> None:
    assert cancel(client, auth, booking_id).status_code == 404
    paid(client, auth, stripe)
    calls = len(stripe.all_calls())
    assert cancel(client, auth).status_code == 409
    assert len(stripe.all_calls()) == calls


def test_cancel_racing_the_completion_webhook_ends_paid_with_one_event(
    app: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    client = app.test_client()
    session_id = open_payment(client, auth)["session_id"]
    stripe.state.pay(session_id, notify=False)
    event = stripe.state.events[-1]
    stripe.latency = 0.05
    start = threading.Barrier(2)
    answers: dict[str, int] = {}

    def do_cancel() -> None:
        start.wait()
        answers["cancel"] = cancel(app.test_client(), auth).status_code

    def do_webhook() -> None:
        start.wait()
        answers["webhook"] = post_event(app.test_client(), event).status_code

    threads = [threading.Thread(target=do_cancel), threading.Thread(target=do_webhook)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {"cancel": 409, "webhook": 200}
    assert payment(client, auth)["status"] == "paid"
    assert queued_types(components) == ["payment.paid"]


def test_stripe_failing_on_cancel_is_a_502_and_changes_nothing(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    session_id = open_payment(client, auth)["session_id"]
    stripe.fail("POST", f"/v1/checkout/sessions/{session_id}/expire", 500, "Stripe is down")
    assert cancel(client, auth).status_code == 502
    assert payment(client, auth)["status"] == "pending"


# --- refunds --------------------------------------------------------------------------------


def test_a_full_refund_by_default(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    before = paid(client, auth, stripe)
    response = refund(client, auth, reason="requested_by_customer")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["amount_refunded"], body["version"]) == (
        "refunded",
        3750,
        before["version"] + 1,
    )
    [call] = stripe.calls("POST", REFUNDS)
    assert form(call) == {
        "payment_intent": before["payment_intent"],
        "amount": "3750",
        "reason": "requested_by_customer",
        "metadata[booking_id]": "bk_1",
        "expand[0]": "charge",
    }
    assert call.headers["Idempotency-Key"] == "refund:bk_1:0+3750"
    assert queued_types(components) == ["payment.paid", "payment.refunded"]


def test_partial_refunds_add_up(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    paid(client, auth, stripe)
    first = refund(client, auth, amount=1000).get_json()
    assert (first["status"], first["amount_refunded"]) == ("partially_refunded", 1000)
    too_much = refund(client, auth, amount=2751)
    assert too_much.status_code == 422
    assert "2750" in too_much.get_json()["errors"]["amount"][0]
    second = refund(client, auth, amount=2750).get_json()
    assert (second["status"], second["amount_refunded"]) == ("refunded", 3750)
    keys = [c.headers["Idempotency-Key"] for c in stripe.calls("POST", REFUNDS)]
    assert keys == ["refund:bk_1:0+1000", "refund:bk_1:1000+2750"]
    assert queued_types(components)[1:] == ["payment.partially_refunded", "payment.refunded"]
    assert refund(client, auth).status_code == 409  # nothing left


@pytest.mark.parametrize(
    ("body", "field"),
    [({"amount": 0}, "amount"), ({"amount": 1.5}, "amount"), ({"reason": "because"}, "reason")],
)
def test_refund_input_is_validated(
    client: Any, auth: dict[str, str], stripe: StripeWire, body: dict[str, Any], field: str
) -> None:
    paid(client, auth, stripe)
    response = refund(client, auth, **body)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    assert stripe.calls("POST", REFUNDS) == []


def test_only_paid_payments_can_be_refunded(client: Any, auth: dict[str, str], stripe: StripeWire) -> None:
    assert refund(client, auth, "bk_none").status_code == 404
    open_payment(client, auth)
    response = refund(client, auth)
    assert response.status_code == 409
    assert "pending" in response.get_json()["detail"]
    assert stripe.calls("POST", REFUNDS) == []


def test_the_same_refund_request_sent_twice_at_once_refunds_once(
    app: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    client = app.test_client()
    paid(client, auth, stripe)
    stripe.latency = 0.1
    start = threading.Barrier(2)
    answers: list[dict[str, Any]] = []

    def send() -> None:
        start.wait()
        answers.append(refund(app.test_client(), auth, amount=1000).get_json())

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(stripe.state.refunds) == 1
    assert {a["amount_refunded"] for a in answers} == {1000}
    assert payment(client, auth)["amount_refunded"] == 1000
    assert queued_types(components) == ["payment.paid", "payment.partially_refunded"]


def test_a_retried_request_with_an_idempotency_key_never_refunds_twice(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    paid(client, auth, stripe)
    first = refund(client, auth, amount=500, headers={"Idempotency-Key": "ops-ticket-77"})
    retry = refund(client, auth, amount=500, headers={"Idempotency-Key": "ops-ticket-77"})
    assert first.status_code == retry.status_code == 200
    assert retry.get_json() == first.get_json()
    assert len(stripe.state.refunds) == 1
    other = refund(client, auth, amount=500, headers={"Idempotency-Key": "ops-ticket-78"})
    assert other.get_json()["amount_refunded"] == 1000


def test_a_dashboard_refund_arrives_as_charge_refunded(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    before = paid(client, auth, stripe)
    stripe.state.create_refund({"payment_intent": before["payment_intent"], "amount": "750"}, notify=False)
    event = stripe.state.events[-1]
    assert event["type"] == "charge.refunded"
    assert post_event(client, event).get_json()["outcome"] == "processed"
    after = payment(client, auth)
    assert (after["status"], after["amount_refunded"]) == ("partially_refunded", 750)
    assert post_event(client, event).get_json()["outcome"] == "duplicate"
    assert queued_types(components) == ["payment.paid", "payment.partially_refunded"]


def test_a_dashboard_refunds_reason_is_read_from_the_charges_refunds(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    before = paid(client, auth, stripe)
    stripe.state.create_refund(
        {"payment_intent": before["payment_intent"], "amount": "750", "reason": "fraudulent"}, notify=False
    )
    event = stripe.state.events[-1]
    assert "refunds" not in event["data"]["object"]  # not expanded in webhooks since 2022-11-15
    assert post_event(client, event).get_json()["outcome"] == "processed"
    [lookup] = stripe.calls("GET", REFUNDS)
    assert query(lookup)["charge"] == event["data"]["object"]["id"]
    announced = json.loads(queued(components)[-1].body)
    assert (announced["type"], announced["data"]["reason"]) == ("payment.partially_refunded", "fraudulent")


def test_our_own_refunds_webhook_needs_no_reason_lookup(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    paid(client, auth, stripe)
    refund(client, auth, amount=1000, reason="requested_by_customer")
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "ignored"
    assert stripe.calls("GET", REFUNDS) == []


@pytest.mark.parametrize("key", ["k" * 256, "with space", "caf\u00e9", "tab\there"])
def test_an_idempotency_key_must_be_short_printable_ascii(
    client: Any, auth: dict[str, str], stripe: StripeWire, key: str
) -> None:
    paid(client, auth, stripe)
    response = refund(client, auth, headers={"Idempotency-Key": key})
    assert response.status_code == 422, response.get_json()
    assert "Idempotency-Key" in response.get_json()["errors"]
    assert stripe.calls("POST", REFUNDS) == []


def test_an_idempotency_key_is_tied_to_the_request_it_was_first_used_with(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    paid(client, auth, stripe)
    key = {"Idempotency-Key": "ops-ticket-77"}
    assert refund(client, auth, amount=500, headers=key).status_code == 200
    other = refund(client, auth, amount=900, headers=key)
    assert other.status_code == 422
    assert "other parameters" in other.get_json()["errors"]["Idempotency-Key"][0]
    assert refund(client, auth, amount=500, reason="duplicate", headers=key).status_code == 422
    assert len(stripe.state.refunds) == 1
    assert payment(client, auth)["amount_refunded"] == 500
    assert refund(client, auth, amount=500, headers={"Idempotency-Key": "k" * 255}).status_code == 200


def test_our_own_refunds_webhook_changes_nothing_more(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    paid(client, auth, stripe)
    refund(client, auth, amount=1000)
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "ignored"
    assert queued_types(components) == ["payment.paid", "payment.partially_refunded"]


def test_stripe_refusing_a_refund_is_a_502_and_changes_nothing(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    paid(client, auth, stripe)
    stripe.fail("POST", REFUNDS, 400, "Charge ch_1 has been charged back.")
    response = refund(client, auth)
    assert response.status_code == 502
    assert "charged back" in response.get_json()["detail"]
    assert payment(client, auth)["status"] == "paid"
