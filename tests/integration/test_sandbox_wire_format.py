"""The sandbox speaks Stripe's wire format: stripe-python's typed methods parse every answer (no warnings)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from payments_service.devtools.sandbox.webhooks import signature_header
from tests.support.stripe_wire import STRIPE_BASE, StripeWire


def stripe_client() -> Any:
    import stripe as sdk

    return sdk.StripeClient("sk_test_wire", base_addresses={"api": STRIPE_BASE}, max_network_retries=0)


SESSION = {
    "mode": "payment",
    "line_items": [
        {
            "quantity": 1,
            "price_data": {"currency": "usd", "unit_amount": 3750, "product_data": {"name": "Dune"}},
        }
    ],
    "client_reference_id": "bk_1",
    "metadata": {"booking_id": "bk_1"},
    "payment_intent_data": {"metadata": {"booking_id": "bk_1"}},
    "success_url": "https://app.test/ok?s={CHECKOUT_SESSION_ID}",
    "cancel_url": "https://app.test/back",
}


def test_checkout_sessions_parse_into_sdk_objects(stripe: StripeWire) -> None:
    import stripe as sdk

    client = stripe_client()
    created = client.v1.checkout.sessions.create({**SESSION, "expires_at": int(time.time()) + 3600})  # type: ignore[arg-type]
    assert isinstance(created, sdk.checkout.Session)
    assert (created.status, created.payment_status, created.amount_total) == ("open", "unpaid", 3750)
    assert created.metadata is not None and created.metadata["booking_id"] == "bk_1"
    assert created.url is not None and created.url.endswith(created.id)
    stripe.state.pay(created.id, notify=False)
    retrieved = client.v1.checkout.sessions.retrieve(created.id, {"expand": ["payment_intent"]})
    assert isinstance(retrieved.payment_intent, sdk.PaymentIntent)
    assert retrieved.payment_intent.status == "succeeded"
    assert retrieved.payment_intent.metadata["booking_id"] == "bk_1"
    page = client.v1.checkout.sessions.list({"limit": 10, "expand": ["data.payment_intent"]})
    assert isinstance(page.data[0], sdk.checkout.Session) and page.has_more is False
    other = client.v1.checkout.sessions.create({**SESSION, "expires_at": int(time.time()) + 3600})  # type: ignore[arg-type]
    expired = client.v1.checkout.sessions.expire(other.id)
    assert isinstance(expired, sdk.checkout.Session) and expired.status == "expired" and expired.url is None


def test_refunds_and_events_parse_into_sdk_objects(stripe: StripeWire) -> None:
    import stripe as sdk

    client = stripe_client()
    session = client.v1.checkout.sessions.create({**SESSION, "expires_at": int(time.time()) + 3600})  # type: ignore[arg-type]
    stripe.state.pay(session.id, notify=False)
    intent = stripe.state.sessions[session.id]["payment_intent"]
    refund = client.v1.refunds.create({"payment_intent": intent, "amount": 1000, "expand": ["charge"]})
    assert isinstance(refund, sdk.Refund) and refund.status == "succeeded"
    assert isinstance(refund.charge, sdk.Charge) and refund.charge.amount_refunded == 1000
    events = client.v1.events.list({"types": ["checkout.session.completed", "charge.refunded"], "limit": 100})
    kinds = {e.type: e for e in events.data}
    assert set(kinds) == {"checkout.session.completed", "charge.refunded"}
    assert all(isinstance(e, sdk.Event) for e in events.data)
    assert isinstance(kinds["checkout.session.completed"].data.object, sdk.checkout.Session)
    assert isinstance(kinds["charge.refunded"].data.object, sdk.Charge)


def test_sandbox_webhooks_pass_stripes_own_signature_check(stripe: StripeWire) -> None:
    import stripe as sdk

    session = stripe_client().v1.checkout.sessions.create({**SESSION, "expires_at": int(time.time()) + 3600})  # type: ignore[arg-type]
    stripe.state.pay(session.id, notify=False)
    payload = json.dumps(stripe.state.events[-1]).encode()
    header = signature_header(payload, "whsec_wire", int(time.time()))
    event = stripe_client().construct_event(payload, header, "whsec_wire")
    assert isinstance(event, sdk.Event) and event.type == "checkout.session.completed"
    with pytest.raises(sdk.SignatureVerificationError):
        stripe_client().construct_event(payload, header, "whsec_other")


def test_sandbox_errors_are_stripe_errors(stripe: StripeWire) -> None:
    import stripe as sdk

    client = stripe_client()
    session = client.v1.checkout.sessions.create({**SESSION, "expires_at": int(time.time()) + 3600})  # type: ignore[arg-type]
    client.v1.checkout.sessions.expire(session.id)
    with pytest.raises(sdk.InvalidRequestError) as not_open:
        client.v1.checkout.sessions.expire(session.id)
    assert not_open.value.http_status == 400 and "open" in str(not_open.value.user_message)
    with pytest.raises(sdk.InvalidRequestError) as missing:
        client.v1.checkout.sessions.retrieve("cs_test_nope")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    client.v1.checkout.sessions.create(
        {**SESSION, "expires_at": int(time.time()) + 3600},
        {"idempotency_key": "k1"},  # type: ignore[arg-type]
    )
    with pytest.raises(sdk.IdempotencyError):
        client.v1.checkout.sessions.create(
            {**SESSION, "expires_at": int(time.time()) + 4000},
            {"idempotency_key": "k1"},  # type: ignore[arg-type]
        )


@pytest.mark.parametrize("work_ms", [0, 60])
def test_a_latency_sandbox_answers_that_long_after_the_request_arrived_its_own_work_included(
    work_ms: int,
) -> None:
    from werkzeug.test import Client

    from payments_service.devtools.sandbox.app import create_sandbox_app
    from payments_service.devtools.sandbox.stripe_state import StripeState

    class SlowState(StripeState):
        def create_session(self, *args: Any, **kwargs: Any) -> Any:
            time.sleep(work_ms / 1000)  # the sandbox busy with this request
            return super().create_session(*args, **kwargs)

    client = Client(create_sandbox_app(SlowState("https://checkout.test"), latency_ms=200))
    body = "mode=payment&line_items[0][quantity]=1&line_items[0][price_data][currency]=usd"
    body += "&line_items[0][price_data][unit_amount]=100&line_items[0][price_data][product_data][name]=x"
    body += "&success_url=https://app.test/ok&cancel_url=https://app.test/back"
    started = time.monotonic()
    response = client.post(
        "/v1/checkout/sessions",
        data=body,
        headers={"Authorization": "Bearer sk_test_x", "Content-Type": "application/x-www-form-urlencoded"},
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.get_data(as_text=True)
    assert 0.2 <= elapsed < 0.25  # not 200 ms plus the work
