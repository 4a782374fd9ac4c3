"""Nobody is charged twice for one booking: a second payment is refunded once and announced."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from payments_service.wiring import Components
from tests.support.flows import open_payment, payment, post_event, queued, queued_types
from tests.support.stripe_wire import STRIPE_BASE, StripeWire, form


def two_paid_sessions(client: Any, auth: dict[str, str], stripe: StripeWire) -> tuple[dict[str, Any], ...]:
    """Two sessions for one booking, both paid: an expiry that Stripe confirmed but that never took effect."""
    first = open_payment(client, auth)["session_id"]
    lying_expiry = {**stripe.state.session(first), "status": "expired", "url": None}
    stripe.mocker.post(f"{STRIPE_BASE}/v1/checkout/sessions/{first}/expire", json=lying_expiry)
    response = client.post(
        "/v1/payments", json={"booking_id": "bk_1", "amount": 4000, "description": "Dune"}, headers=auth
    )
    second = response.get_json()["session_id"]
    assert stripe.state.sessions[first]["status"] == "open"  # still payable: the customer's old tab
    stripe.state.pay(first, notify=False)
    stripe.state.pay(second, notify=False)
    completed = {e["data"]["object"]["id"]: e for e in stripe.state.events if e["type"].endswith("completed")}
    return completed[first], completed[second]


@pytest.mark.parametrize("order", list(itertools.permutations([0, 1, 0, 1])))
def test_duplicate_completions_in_any_order_refund_the_second_payment_once(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components, order: tuple[int, ...]
) -> None:
    events = two_paid_sessions(client, auth, stripe)
    outcomes = [post_event(client, events[i]).get_json()["outcome"] for i in order]
    assert outcomes.count("processed") == 2 and outcomes.count("duplicate") == 2
    kept, refunded = events[order[0]], events[1 - order[0]]
    final = payment(client, auth)
    assert (final["status"], final["session_id"]) == ("paid", kept["data"]["object"]["id"])
    assert final["amount_refunded"] == 0  # the booking's own payment is untouched
    [refund] = stripe.state.refunds.values()
    assert refund["payment_intent"] == refunded["data"]["object"]["payment_intent"]
    assert refund["amount"] == refunded["data"]["object"]["amount_total"]
    [call] = stripe.calls("POST", "/v1/refunds")
    assert form(call)["reason"] == "duplicate"
    assert call.headers["Idempotency-Key"] == f"duplicate-refund:bk_1:{refunded['data']['object']['id']}"
    assert queued_types(components) == ["payment.paid", "payment.duplicate_refunded"]


def test_the_duplicate_refund_event_names_the_session_and_the_refund(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    import json

    first, second = two_paid_sessions(client, auth, stripe)
    post_event(client, first)
    post_event(client, second)
    data = json.loads(queued(components)[-1].body)["data"]
    [refund_id] = stripe.state.refunds
    assert (data["status"], data["duplicate_session_id"], data["refund_id"]) == (
        "paid",
        second["data"]["object"]["id"],
        refund_id,
    )
    # Stripe's charge.refunded for the duplicate's refund changes nothing on the booking.
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "ignored"


def test_a_failing_refund_is_retried_by_stripe_and_still_happens_once(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    first, second = two_paid_sessions(client, auth, stripe)
    post_event(client, first)
    stripe.fail("POST", "/v1/refunds", 500, "Stripe is down")
    assert post_event(client, second).status_code == 502  # Stripe will send the event again
    assert queued_types(components) == ["payment.paid"]
    stripe.mocker.register_uri("POST", f"{STRIPE_BASE}/v1/refunds", text=stripe._respond)
    assert post_event(client, second).get_json()["outcome"] == "processed"
    assert len(stripe.state.refunds) == 1
    assert queued_types(components) == ["payment.paid", "payment.duplicate_refunded"]
