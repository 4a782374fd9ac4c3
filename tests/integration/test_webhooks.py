"""POST /webhooks/stripe: verified, processed at most once, forward only, atomic with its event."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import redis

from payments_service.storage import keys as redis_keys
from payments_service.wiring import Components
from tests.support.flows import open_payment, post_event, queued, queued_events, queued_types
from tests.support.redis_server import RedisServer
from tests.support.settings import OLD_WEBHOOK_SECRET, WEBHOOK_SECRET
from tests.support.signing import stripe_signature
from tests.support.stripe_wire import StripeWire


def test_a_paid_completion_marks_the_booking_paid_and_queues_one_event(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    opened = open_payment(client, auth)
    session_id = opened["session_id"]
    stripe.state.pay(session_id, notify=False)
    event = stripe.state.events[-1]
    response = post_event(client, event)
    assert response.status_code == 200
    assert response.get_json() == {"received": True, "outcome": "processed"}
    payment = client.get("/v1/payments/bk_1", headers=auth).get_json()
    assert (payment["status"], payment["version"], payment["checkout_url"]) == (
        "paid",
        opened["version"] + 1,
        None,
    )
    assert payment["payment_intent"] == stripe.state.sessions[session_id]["payment_intent"]
    [queued_event] = queued(components)
    assert queued_event.type == "payment.paid"
    assert json.loads(queued_event.body)["data"] == payment
    mark_ttl = components.redis.ttl(redis_keys.stripe_event(event["id"]))
    assert mark_ttl >= 3 * 86400  # beyond Stripe's three days of webhook retries


def test_a_rotated_out_secret_is_still_accepted(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    stripe.state.pay(open_payment(client, auth)["session_id"], notify=False)
    assert post_event(client, stripe.state.events[-1], secret=OLD_WEBHOOK_SECRET).status_code == 200


@pytest.mark.parametrize(
    ("tamper", "detail"),
    [
        ("wrong_secret", "signature"),
        ("stale", "tolerance"),
        ("missing", "missing Stripe-Signature"),
        ("malformed", "signature"),
        ("tampered_body", "signature"),
    ],
)
def test_unverified_webhooks_are_refused_and_change_nothing(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components, tamper: str, detail: str
) -> None:
    stripe.state.pay(open_payment(client, auth)["session_id"], notify=False)
    event = stripe.state.events[-1]
    body = json.dumps(event).encode()
    signature = {
        "wrong_secret": stripe_signature(body, "whsec_not_ours"),
        "stale": stripe_signature(body, WEBHOOK_SECRET, timestamp=int(time.time()) - 301),
        "malformed": "t=abc,v1=",
        "tampered_body": stripe_signature(body.replace(b'"paid"', b'"unpaid"'), WEBHOOK_SECRET),
    }.get(tamper)
    headers = {"Stripe-Signature": signature} if signature else {}
    response = client.post("/webhooks/stripe", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert detail in response.get_json()["detail"]
    assert client.get("/v1/payments/bk_1", headers=auth).get_json()["status"] == "pending"
    assert components.redis.keys(redis_keys.stripe_event("*")) == []
    assert queued_events(components) == []


@pytest.mark.parametrize(
    "body",
    [b"not json at all", b'{"hello": "world"}', b'{"object": "event", "id": "evt_1"}', b"\xff\xfe"],
)
def test_a_signed_body_that_is_not_an_event_is_refused(
    client: Any, components: Components, body: bytes
) -> None:
    response = client.post(
        "/webhooks/stripe", data=body, headers={"Stripe-Signature": stripe_signature(body, WEBHOOK_SECRET)}
    )
    assert response.status_code == 400
    assert components.redis.keys("*") == []


def test_bodies_over_one_mib_are_refused(client: Any) -> None:
    body = b'{"object": "event", "pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = client.post(
        "/webhooks/stripe", data=body, headers={"Stripe-Signature": stripe_signature(body, WEBHOOK_SECRET)}
    )
    assert response.status_code == 413


def test_a_repeated_event_is_acknowledged_and_changes_nothing(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    opened = open_payment(client, auth)
    stripe.state.pay(opened["session_id"], notify=False)
    event = stripe.state.events[-1]
    assert post_event(client, event).get_json()["outcome"] == "processed"
    again = post_event(client, event)
    assert again.status_code == 200
    assert again.get_json()["outcome"] == "duplicate"
    assert client.get("/v1/payments/bk_1", headers=auth).get_json()["version"] == opened["version"] + 1
    assert len(queued_events(components)) == 1


def test_ten_concurrent_deliveries_of_one_event_change_the_payment_once(
    app: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    client = app.test_client()
    opened = open_payment(client, auth)
    stripe.state.pay(opened["session_id"], notify=False)
    event = stripe.state.events[-1]
    outcomes: list[str] = []
    start = threading.Barrier(10)

    def deliver() -> None:
        start.wait()
        outcomes.append(post_event(app.test_client(), event).get_json()["outcome"])

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["duplicate"] * 9 + ["processed"]
    assert client.get("/v1/payments/bk_1", headers=auth).get_json()["version"] == opened["version"] + 1
    assert len(queued_events(components)) == 1


def test_two_different_stripe_events_for_one_payment_publish_one_paid_event(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    session_id = open_payment(client, auth)["session_id"]
    stripe.state.pay(session_id, delayed=True, notify=False)
    stripe.state.settle(session_id, succeed=True, notify=False)
    completed, succeeded = stripe.state.events[-2:]
    # Stripe delivers the later event first; the earlier one arrives afterwards.
    assert post_event(client, succeeded).get_json()["outcome"] == "processed"
    assert post_event(client, completed).get_json()["outcome"] == "ignored"
    payment = client.get("/v1/payments/bk_1", headers=auth).get_json()
    assert payment["status"] == "paid"
    assert queued_types(components) == ["payment.paid"]


def test_a_delayed_method_goes_processing_then_paid_or_failed(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    paid_session = open_payment(client, auth, "bk_ok")["session_id"]
    failed_session = open_payment(client, auth, "bk_fail")["session_id"]
    for session_id, succeed in ((paid_session, True), (failed_session, False)):
        stripe.state.pay(session_id, delayed=True, notify=False)
        assert post_event(client, stripe.state.events[-1]).status_code == 200
        stripe.state.settle(session_id, succeed=succeed, notify=False)
        assert post_event(client, stripe.state.events[-1]).status_code == 200
    assert client.get("/v1/payments/bk_ok", headers=auth).get_json()["status"] == "paid"
    assert client.get("/v1/payments/bk_fail", headers=auth).get_json()["status"] == "failed"
    assert queued_types(components) == [
        "payment.processing",
        "payment.paid",
        "payment.processing",
        "payment.failed",
    ]


def test_a_late_expiry_never_undoes_paid(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    session_id = open_payment(client, auth)["session_id"]
    stripe.state.pay(session_id, notify=False)
    completed = stripe.state.events[-1]
    expired = {**completed, "id": "evt_late_expiry", "type": "checkout.session.expired"}
    expired["data"] = {"object": {**completed["data"]["object"], "status": "expired"}}
    assert post_event(client, completed).status_code == 200
    assert post_event(client, expired).get_json()["outcome"] == "ignored"
    assert client.get("/v1/payments/bk_1", headers=auth).get_json()["status"] == "paid"
    assert len(queued_events(components)) == 1


def test_an_expired_session_expires_the_payment(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    session_id = open_payment(client, auth)["session_id"]
    stripe.state.expire(session_id)
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "processed"
    payment = client.get("/v1/payments/bk_1", headers=auth).get_json()
    assert (payment["status"], payment["checkout_url"]) == ("expired", None)
    [queued_event] = queued(components)
    assert json.loads(queued_event.body)["data"]["reason"] == "checkout_session_expired"


def test_an_event_for_a_session_we_did_not_open_for_that_booking_changes_nothing(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    open_payment(client, auth)
    # Somebody else opened a session naming our booking (another integration, a forged intent).
    status, foreign = stripe.api.request(
        "POST",
        "/v1/checkout/sessions",
        {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": "1",
                    "price_data": {"currency": "usd", "unit_amount": "1000", "product_data": {"name": "x"}},
                }
            ],
            "metadata": {"booking_id": "bk_1"},
            "success_url": "https://x.test/s",
            "cancel_url": "https://x.test/c",
        },
    )
    assert status == 200
    stripe.state.pay(foreign["id"], notify=False)
    response = post_event(client, stripe.state.events[-1])
    assert response.get_json()["outcome"] == "ignored"
    assert client.get("/v1/payments/bk_1", headers=auth).get_json()["status"] == "pending"
    assert queued_events(components) == []


def test_unknown_bookings_and_unhandled_types_are_acknowledged_and_ignored(
    client: Any, stripe: StripeWire, components: Components
) -> None:
    unhandled = {
        "id": "evt_x",
        "object": "event",
        "type": "payment_intent.created",
        "created": 1,
        "data": {"object": {"id": "pi_1", "object": "payment_intent"}},
    }
    assert post_event(client, unhandled).get_json() == {"received": True, "outcome": "ignored"}
    unknown = {
        **unhandled,
        "id": "evt_y",
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": "cs_nobody",
                "object": "checkout.session",
                "status": "complete",
                "payment_status": "paid",
                "metadata": {"booking_id": "bk_nobody"},
            }
        },
    }
    assert post_event(client, unknown).get_json()["outcome"] == "ignored"
    assert components.redis.keys("*") == []


def test_redis_down_is_a_503_so_that_stripe_delivers_again(
    own_redis: RedisServer, auth: dict[str, str], stripe: StripeWire, app_factory: Any
) -> None:
    app = app_factory(own_redis.url)
    client = app.test_client()
    stripe.state.pay(open_payment(client, auth)["session_id"], notify=False)
    event = stripe.state.events[-1]
    own_redis.stop()
    refused = post_event(client, event)
    assert refused.status_code == 503
    own_redis.start()  # appendonly: the payment survived the restart
    assert post_event(client, event).get_json()["outcome"] == "processed"
    assert client.get("/v1/payments/bk_1", headers=auth).get_json()["status"] == "paid"
    with redis.Redis.from_url(own_redis.url) as check:
        assert check.xlen(redis_keys.OUTBOX) == 1
