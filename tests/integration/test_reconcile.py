"""Reconciliation and ?refresh=true: Stripe's truth through the webhook's path, one event per change."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from payments_service.usecases.reconcile import ReconcileReport
from payments_service.wiring import Components
from tests.support.flows import components_of, open_payment, payment, post_event, queued_types
from tests.support.stripe_wire import StripeWire


@pytest.fixture
def reconcile_now(redis_url: str, app_factory: Any) -> Any:
    """An app whose reconciliation checks every pending payment, however young."""
    return app_factory(redis_url, reconcile_after=0, reconcile_max_rps=1000)


def run_pass(components: Components, lines: list[str] | None = None) -> ReconcileReport:
    report = components.reconciler(progress=(lines.append if lines is not None else None)).run_once()
    assert report is not None
    return report


def test_a_missed_completion_is_paid_by_reconciliation_with_one_event(
    reconcile_now: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    client, components = reconcile_now.test_client(), components_of(reconcile_now)
    session_id = open_payment(client, auth)["session_id"]
    stripe.state.pay(session_id, notify=False)
    stripe.state.events.clear()  # the webhook never came, and Stripe's event list does not help
    report = run_pass(components)
    assert report.changes == ["bk_1: pending -> paid"]
    assert payment(client, auth)["status"] == "paid"
    assert queued_types(components) == ["payment.paid"]
    assert run_pass(components).changes == []  # a second pass changes nothing


def test_missed_events_are_read_from_stripes_event_list(
    reconcile_now: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    client, components = reconcile_now.test_client(), components_of(reconcile_now)
    session_id = open_payment(client, auth)["session_id"]
    stripe.state.pay(session_id, notify=False)
    intent = stripe.state.sessions[session_id]["payment_intent"]
    stripe.state.create_refund({"payment_intent": intent, "amount": "1000"}, notify=False)
    report = run_pass(components)
    assert len(report.changes) == 2 and report.events_read == 2
    final = payment(client, auth)
    assert (final["status"], final["amount_refunded"]) == ("partially_refunded", 1000)
    assert queued_types(components) == ["payment.paid", "payment.partially_refunded"]
    # The next pass reads from the checkpoint (minus an overlap), not from a day ago.
    run_pass(components)
    listed = [dict(parse_qsl(urlsplit(c.url).query)) for c in stripe.calls("GET", "/v1/events")]
    assert int(listed[-1]["created[gt]"]) >= int(time.time()) - 400
    assert int(listed[0]["created[gt]"]) <= int(time.time()) - 86000


def test_an_expired_session_without_a_webhook_expires_the_payment(
    reconcile_now: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    client, components = reconcile_now.test_client(), components_of(reconcile_now)
    stripe.state.expire(open_payment(client, auth)["session_id"])
    stripe.state.events.clear()
    assert run_pass(components).changes == ["bk_1: pending -> expired"]
    assert queued_types(components) == ["payment.expired"]


@pytest.mark.parametrize(("succeed", "status"), [(True, "paid"), (False, "failed")])
def test_a_processing_payment_is_settled_by_reconciliation(
    reconcile_now: Any, auth: dict[str, str], stripe: StripeWire, succeed: bool, status: str
) -> None:
    client, components = reconcile_now.test_client(), components_of(reconcile_now)
    session_id = open_payment(client, auth)["session_id"]
    stripe.state.pay(session_id, delayed=True, notify=False)
    post_event(client, stripe.state.events[-1])
    stripe.state.settle(session_id, succeed=succeed, notify=False)
    stripe.state.events.clear()
    assert run_pass(components).changes == [f"bk_1: processing -> {status}"]
    retrieve = stripe.calls("GET", f"/v1/checkout/sessions/{session_id}".lower())[-1]
    assert "payment_intent" in dict(parse_qsl(urlsplit(retrieve.url).query)).values()  # expanded
    assert queued_types(components) == ["payment.processing", f"payment.{status}"]


def test_young_pending_payments_are_left_alone(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    open_payment(client, auth)  # RECONCILE_AFTER is 300 s in these settings
    run_pass(components)
    assert [c for c in stripe.all_calls() if "/v1/checkout/sessions" in c.url and c.method == "GET"] == []


def test_a_pass_over_many_pending_payments_lists_sessions_in_pages_under_a_rate_cap(
    redis_url: str, app_factory: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    app = app_factory(redis_url, reconcile_after=0, reconcile_max_rps=40)
    client, components = app.test_client(), components_of(app)
    sessions = [open_payment(client, auth, f"bk_{n}")["session_id"] for n in range(250)]
    for session_id in sessions[:30]:
        stripe.state.pay(session_id, notify=False)
    stripe.state.events.clear()
    lines: list[str] = []
    started = time.monotonic()
    report = run_pass(components, lines)
    elapsed = time.monotonic() - started
    assert len(report.changes) == 30 and report.checked == 250
    assert report.stripe_calls == 1 + 3  # one events page, three pages of 100 sessions; no retrieves
    assert elapsed >= (report.stripe_calls - 1) / 40  # paced
    assert lines[-1] == "pending: 250/250 checked, 30 changed, 4 Stripe calls"
    assert sum(1 for t in queued_types(components) if t == "payment.paid") == 30


def test_sessions_the_listing_misses_are_retrieved_one_by_one(
    reconcile_now: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    client, components = reconcile_now.test_client(), components_of(reconcile_now)
    for n in range(25):
        open_payment(client, auth, f"bk_{n}")
    for session in stripe.state.sessions.values():
        session["created"] -= 3600  # Stripe's clock says they are older than our records think
    report = run_pass(components)
    assert report.checked == 25
    assert len(stripe.calls("GET", "/v1/checkout/sessions")) == 1
    assert report.stripe_calls == 1 + 1 + 25


def test_refresh_asks_stripe_and_applies_its_answer(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    session_id = open_payment(client, auth)["session_id"]
    assert client.get("/v1/payments/bk_1?refresh=true", headers=auth).get_json()["status"] == "pending"
    stripe.state.pay(session_id, notify=False)
    refreshed = client.get("/v1/payments/bk_1?refresh=true", headers=auth).get_json()
    assert refreshed["status"] == "paid"
    calls = len(stripe.all_calls())
    assert client.get("/v1/payments/bk_1?refresh=true", headers=auth).get_json() == refreshed
    assert len(stripe.all_calls()) == calls  # settled: nothing to ask
    assert queued_types(components) == ["payment.paid"]
    assert client.get("/v1/payments/bk_x?refresh=true", headers=auth).status_code == 404


def test_webhook_refresh_and_reconciliation_racing_make_one_change_and_one_event(
    redis_url: str, app_factory: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    app = app_factory(redis_url, reconcile_after=0, reconcile_max_rps=1000)
    components = components_of(app)
    opened = open_payment(app.test_client(), auth)
    session_id = opened["session_id"]
    stripe.state.pay(session_id, notify=False)
    event = stripe.state.events[-1]
    stripe.latency = 0.02
    start = threading.Barrier(3)

    def webhook() -> None:
        start.wait()
        assert post_event(app.test_client(), event).status_code == 200

    def refresh() -> None:
        start.wait()
        assert app.test_client().get("/v1/payments/bk_1?refresh=true", headers=auth).status_code == 200

    def reconcile() -> None:
        start.wait()
        run_pass(components)

    threads = [threading.Thread(target=f) for f in (webhook, refresh, reconcile)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert payment(app.test_client(), auth)["version"] == opened["version"] + 1
    assert queued_types(components) == ["payment.paid"]


def test_one_pass_at_a_time(components: Components, stripe: StripeWire) -> None:
    with components.store.reconcile_lock(60, 0):
        assert components.reconciler().run_once() is None
    assert components.reconciler().run_once() is not None
