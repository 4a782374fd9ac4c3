"""Stripe is the ledger: our sessions carry our mark, and a booking Redis lost is rebuilt from them."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from payments_service.storage import keys as redis_keys
from payments_service.usecases.reconcile import MAX_EVENT_PAGES
from payments_service.wiring import Components
from tests.support.flows import components_of, open_payment, payment, post_event, queued, queued_types
from tests.support.stripe_wire import StripeWire, form, query

CREATE = "/v1/checkout/sessions"
SEARCH = "/v1/payment_intents/search"


@pytest.fixture
def reconcile_now(redis_url: str, app_factory: Any) -> Any:
    return app_factory(redis_url, reconcile_after=0, reconcile_max_rps=1000)


def forget_everything(components: Components) -> None:
    """Redis loses every write (a restore from before the booking existed)."""
    components.redis.flushall()


def paid_by_webhook(
    client: Any, auth: dict[str, str], stripe: StripeWire, booking_id: str = "bk_1", **fields: Any
) -> str:
    session_id: str = open_payment(client, auth, booking_id, **fields)["session_id"]
    stripe.state.pay(session_id, notify=False)
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "processed"
    return session_id


def test_every_session_and_its_intent_carry_the_deployment_and_the_caller_cannot_forge_it(
    redis_url: str, app_factory: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    client = app_factory(redis_url, payments_deployment="eu-staging").test_client()
    open_payment(client, auth, "bk_1", metadata={"payments_service": "default", "show_id": "s1"})
    sent = form(stripe.calls("POST", CREATE)[0])
    assert sent["metadata[payments_service]"] == "eu-staging"
    assert sent["payment_intent_data[metadata][payments_service]"] == "eu-staging"
    assert (sent["metadata[show_id]"], sent["payment_intent_data[metadata][booking_id]"]) == ("s1", "bk_1")


def test_sessions_of_another_deployment_or_of_nobody_stay_foreign(
    redis_url: str, app_factory: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    staging = app_factory(redis_url, payments_deployment="staging").test_client()
    theirs = open_payment(staging, auth, "bk_theirs")["session_id"]
    components.redis.flushall()  # only our Redis forgets; the session is still the other deployment's
    stripe.state.pay(theirs, notify=False)
    ours = app_factory(redis_url).test_client()
    calls = len(stripe.all_calls())
    assert post_event(ours, stripe.state.events[-1]).get_json()["outcome"] == "ignored"
    status, unmarked = stripe.api.request(
        "POST",
        CREATE,
        {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": "1",
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": "3750",
                        "product_data": {"name": "2 seats"},
                    },
                }
            ],
            "metadata": {"booking_id": "bk_nobody"},
            "success_url": "https://x.test/s",
            "cancel_url": "https://x.test/c",
        },
    )
    assert status == 200
    stripe.state.pay(unmarked["id"], notify=False)
    assert post_event(ours, stripe.state.events[-1]).get_json()["outcome"] == "ignored"
    assert len(stripe.all_calls()) == calls  # nothing looked up for sessions that are not ours
    assert components.redis.keys(redis_keys.payment("*")) == []


def test_a_webhook_for_a_booking_redis_lost_rebuilds_it_and_announces_the_change(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    opened = open_payment(client, auth, "bk_1", description="Dune: Part Two, 2 seats")
    forget_everything(components)
    stripe.state.pay(opened["session_id"], notify=False)
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "processed"
    rebuilt = payment(client, auth)
    assert (rebuilt["status"], rebuilt["session_id"], rebuilt["amount"]) == (
        "paid",
        opened["session_id"],
        3750,
    )
    assert rebuilt["description"] == "Dune: Part Two, 2 seats"  # from the session's line item
    assert rebuilt["version"] > opened["version"]
    [event] = queued(components)
    assert (event.type, json.loads(event.body)["data"]) == ("payment.paid", rebuilt)
    assert "payments_rebuilt_total 1.0" in client.get("/metrics").get_data(as_text=True)


def test_get_for_a_booking_redis_does_not_hold_answers_from_stripe_and_stores_nothing(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    session_id = paid_by_webhook(client, auth, stripe)
    stripe.state.create_refund(
        {"payment_intent": stripe.state.sessions[session_id]["payment_intent"], "amount": "750"}
    )
    forget_everything(components)
    found = payment(client, auth)
    assert (found["status"], found["session_id"], found["amount_refunded"]) == (
        "partially_refunded",
        session_id,
        750,
    )
    [search] = stripe.calls("GET", SEARCH)
    assert (
        query(search)["query"] == "metadata['booking_id']:'bk_1' AND metadata['payments_service']:'default'"
    )
    refreshed = client.get("/v1/payments/bk_1?refresh=true", headers=auth)
    assert refreshed.status_code == 200 and refreshed.get_json()["status"] == "partially_refunded"
    # A read stores nothing and announces nothing (the shared Stripe budget counts its calls).
    assert [k for k in components.redis.keys("*") if b":stripe-budget:" not in k] == []
    nobody = client.get("/v1/payments/bk_nobody", headers=auth)
    assert nobody.status_code == 404 and "at Stripe" in nobody.get_json()["detail"]


def test_a_refund_of_a_booking_that_left_redis_is_made_and_announced(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    paid_by_webhook(client, auth, stripe)
    assert client.post("/v1/payments/bk_1/refunds", json={"amount": 1000}, headers=auth).status_code == 200
    forget_everything(components)
    response = client.post("/v1/payments/bk_1/refunds", json={"amount": 500}, headers=auth)
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["status"], response.get_json()["amount_refunded"]) == (
        "partially_refunded",
        1500,
    )
    assert stripe.calls("POST", "/v1/refunds")[-1].headers["Idempotency-Key"] == "refund:bk_1:1000+500"
    assert queued_types(components) == ["payment.partially_refunded"]  # the refund only, not paid again
    assert client.post("/v1/payments/bk_nobody/refunds", json={}, headers=auth).status_code == 404


def test_a_dashboard_refund_of_a_booking_that_left_redis_is_applied(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    session_id = paid_by_webhook(client, auth, stripe)
    forget_everything(components)
    intent = stripe.state.sessions[session_id]["payment_intent"]
    stripe.state.create_refund({"payment_intent": intent}, notify=False)
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "processed"
    assert (payment(client, auth)["status"], payment(client, auth)["amount_refunded"]) == ("refunded", 3750)
    assert queued_types(components) == ["payment.refunded"]


def test_a_session_of_ours_that_redis_does_not_list_is_adopted(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    first = open_payment(client, auth)
    before_reopen = components.redis.get(redis_keys.payment("bk_1"))
    reopened = client.post(
        "/v1/payments", json={"booking_id": "bk_1", "amount": 4000, "description": "Dune"}, headers=auth
    ).get_json()
    components.redis.set(redis_keys.payment("bk_1"), before_reopen or b"")  # the reopen's write was lost
    stripe.state.pay(reopened["session_id"], notify=False)
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "processed"
    adopted = payment(client, auth)
    assert (adopted["status"], adopted["session_id"], adopted["amount"]) == (
        "paid",
        reopened["session_id"],
        4000,
    )
    assert adopted["version"] > reopened["version"] > first["version"]  # above what the lost write held


def test_a_booking_paid_twice_across_a_lost_write_is_refunded_once(
    reconcile_now: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    client, components = reconcile_now.test_client(), components_of(reconcile_now)
    first = paid_by_webhook(client, auth, stripe)
    forget_everything(components)  # a caller who believes the booking unpaid opens another checkout
    second = paid_by_webhook(client, auth, stripe, amount=4000)
    report = components.reconciler().run_once()  # Stripe's event list still has the first completion
    assert report is not None
    [refund] = stripe.state.refunds.values()
    assert refund["payment_intent"] == stripe.state.sessions[first]["payment_intent"]
    kept = payment(client, auth)
    assert (kept["status"], kept["session_id"], kept["amount_refunded"]) == ("paid", second, 0)
    assert queued_types(components) == ["payment.paid", "payment.duplicate_refunded"]
    assert components.reconciler().run_once() is not None and len(stripe.state.refunds) == 1


def test_one_session_stripe_does_not_know_never_stops_a_pass(
    reconcile_now: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    client, components = reconcile_now.test_client(), components_of(reconcile_now)
    lost = open_payment(client, auth, "bk_lost")["session_id"]
    paid = open_payment(client, auth, "bk_paid")["session_id"]
    del stripe.state.sessions[lost]  # e.g. Redis was filled against another Stripe account
    stripe.state.pay(paid, notify=False)
    stripe.state.events.clear()
    lines: list[str] = []
    for _ in range(2):
        report = components.reconciler(progress=lines.append).run_once()
        assert report is not None and report.skipped == 1
    assert payment(client, auth, "bk_paid")["status"] == "paid"
    assert payment(client, auth, "bk_lost")["status"] == "pending"
    assert "skipped: 1 that Stripe refused (logged)" in lines
    assert "payments_reconcile_skipped_total 2.0" in client.get("/metrics").get_data(as_text=True)


def test_a_listed_event_for_a_booking_redis_lost_rebuilds_it_in_reconciliation(
    reconcile_now: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    client, components = reconcile_now.test_client(), components_of(reconcile_now)
    session_id = open_payment(client, auth)["session_id"]
    stripe.state.pay(session_id, notify=False)  # the webhook never came
    forget_everything(components)
    report = components.reconciler().run_once()
    assert report is not None and len(report.changes) == 1
    assert payment(client, auth)["status"] == "paid"
    assert queued_types(components) == ["payment.paid"]


def test_a_long_look_back_is_read_in_windows_oldest_first_within_one_pass(
    reconcile_now: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    client, components = reconcile_now.test_client(), components_of(reconcile_now)
    ours = open_payment(client, auth)["session_id"]
    stripe.state.pay(ours, notify=False)  # the oldest event of all, and the only one of ours
    params = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": "1",
                "price_data": {"currency": "usd", "unit_amount": "100", "product_data": {"name": "a ticket"}},
            }
        ],
        "success_url": "https://x.test/s",
        "cancel_url": "https://x.test/c",
    }
    for _ in range(3000):  # someone else's checkouts on the same account, over the last hour
        stripe.state.expire(stripe.state.create_session(params)["id"])
    now = int(time.time())
    for n, event in enumerate(stripe.state.events):
        event["created"] = now - 3600 + n
    report = components.reconciler().run_once()
    assert report is not None and report.events_read == 3001
    assert report.changes == [f"checkout.session.completed {stripe.state.events[0]['id']} applied"]
    # 31 pages hold them; a window that came back too full was read again, narrowed.
    assert 31 < report.stripe_calls <= 2 * 31 < MAX_EVENT_PAGES
    assert components.store.events_checkpoint() is not None
    assert components.store.events_checkpoint() >= now - 1
    assert payment(client, auth)["status"] == "paid"
