"""/metrics and the JSON logs: what operators see, and what never reaches a log."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from payments_service.observability import logs
from payments_service.runtime import worker
from payments_service.wiring import Components
from tests.support.flows import open_payment, post_event
from tests.support.metrics import metric
from tests.support.redis_server import RedisServer
from tests.support.settings import BOOKING_EVENTS_URL, WEBHOOK_SECRET
from tests.support.signing import stripe_signature
from tests.support.stripe_wire import StripeWire


def test_requests_are_counted_by_route_and_status(client: Any, auth: dict[str, str]) -> None:
    before = metric(
        client, "payments_http_requests_total", method="GET", route="/v1/payments/<booking_id>", status="404"
    )
    assert client.get("/v1/payments/bk_none", headers=auth).status_code == 404
    after = metric(
        client, "payments_http_requests_total", method="GET", route="/v1/payments/<booking_id>", status="404"
    )
    assert after == before + 1
    assert (
        metric(
            client,
            "payments_http_request_duration_seconds_count",
            method="GET",
            route="/v1/payments/<booking_id>",
        )
        >= 1
    )
    client.get("/no/such/route")
    assert metric(client, "payments_http_requests_total", method="GET", route="unmatched", status="404") >= 1


def test_stripe_calls_are_timed_and_failures_counted(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    ok = metric(client, "payments_stripe_requests_total", operation="checkout.sessions.create", outcome="ok")
    open_payment(client, auth)
    assert (
        metric(client, "payments_stripe_requests_total", operation="checkout.sessions.create", outcome="ok")
        == ok + 1
    )
    failed = metric(
        client,
        "payments_stripe_requests_total",
        operation="checkout.sessions.create",
        outcome="InvalidRequestError",
    )
    stripe.fail("POST", "/v1/checkout/sessions", 400, "Invalid currency")
    client.post("/v1/payments", json={"booking_id": "bk_2", "amount": 100, "description": "x"}, headers=auth)
    assert (
        metric(
            client,
            "payments_stripe_requests_total",
            operation="checkout.sessions.create",
            outcome="InvalidRequestError",
        )
        == failed + 1
    )
    assert (
        metric(client, "payments_stripe_request_duration_seconds_count", operation="checkout.sessions.create")
        >= 2
    )


def test_webhooks_are_counted_by_type_and_outcome_and_rejections_by_reason(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    completed = "checkout.session.completed"
    counts = {
        o: metric(client, "payments_webhook_events_total", type=completed, outcome=o)
        for o in ("processed", "duplicate")
    }
    stripe.state.pay(open_payment(client, auth)["session_id"], notify=False)
    event = stripe.state.events[-1]
    post_event(client, event)
    post_event(client, event)
    for outcome in ("processed", "duplicate"):
        assert (
            metric(client, "payments_webhook_events_total", type=completed, outcome=outcome)
            == counts[outcome] + 1
        )
    rejected = {
        r: metric(client, "payments_webhook_rejections_total", reason=r)
        for r in ("bad_signature", "stale_timestamp", "missing_signature", "malformed")
    }
    body = json.dumps(event).encode()
    client.post(
        "/webhooks/stripe", data=body, headers={"Stripe-Signature": stripe_signature(body, "whsec_other")}
    )
    client.post(
        "/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": stripe_signature(body, WEBHOOK_SECRET, timestamp=1)},
    )
    client.post("/webhooks/stripe", data=body)
    client.post(
        "/webhooks/stripe", data=b"[]", headers={"Stripe-Signature": stripe_signature(b"[]", WEBHOOK_SECRET)}
    )
    for reason, before in rejected.items():
        assert metric(client, "payments_webhook_rejections_total", reason=reason) == before + 1, reason


def test_the_event_backlog_deliveries_and_reconciliation_are_reported(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    stripe.state.pay(open_payment(client, auth)["session_id"], notify=False)
    post_event(client, stripe.state.events[-1])
    assert metric(client, "payments_events_pending") == 1
    assert metric(client, "payments_events_queue_depth") == 1
    assert metric(client, "payments_events_oldest_pending_age_seconds") >= 0
    stripe.mocker.post(BOOKING_EVENTS_URL, [{"status_code": 500}, {"status_code": 204}])
    worker.run(components, burst=True)
    assert metric(client, "payments_event_deliveries_total", outcome="failed") == 1
    assert metric(client, "payments_event_deliveries_total", outcome="delivered") == 0
    assert metric(client, "payments_events_dead") == 0
    open_payment(client, auth, "bk_open")
    assert metric(client, "payments_open", status="pending") == 1
    stripe.state.expire(stripe.state.sessions[list(stripe.state.sessions)[-1]]["id"])
    components.reconciler().run_once()
    assert metric(client, "payments_reconcile_changes_total") == 1


def test_metrics_survive_a_redis_outage(own_redis: RedisServer, app_factory: Any) -> None:
    client = app_factory(own_redis.url).test_client()
    own_redis.stop()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "payments_redis_up 0.0" in response.get_data(as_text=True)
    own_redis.start()


@pytest.fixture
def json_logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """What the service writes, through its own JSON formatter and context filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.json_formatter())
    handler.addFilter(logs.ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def test_logs_are_json_lines_carrying_the_ids_of_what_happened(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components, json_logs: Any
) -> None:
    session_id = open_payment(client, auth, customer_email="someone@example.com")["session_id"]
    stripe.state.pay(session_id, notify=False)
    event = stripe.state.events[-1]
    post_event(client, event)
    stripe.mocker.post(BOOKING_EVENTS_URL, status_code=204)
    worker.run(components, burst=True)
    lines = json_logs()
    checkout = next(r for r in lines if r.get("path") == "/v1/payments")
    assert checkout["booking_id"] == "bk_1" and checkout["status"] == 201
    assert checkout["stripe_request_id"].startswith("req_") and checkout["request_id"]
    webhook = next(r for r in lines if r.get("path") == "/webhooks/stripe")
    assert webhook["stripe_event_id"] == event["id"] and webhook["request_id"]
    delivered = next(r for r in lines if r["message"] == "event delivered")
    assert delivered["event_id"].startswith("msg_") and delivered["booking_id"] == "bk_1"
    assert all({"time", "level", "logger", "message"} <= set(r) for r in lines)


def test_secrets_emails_and_webhook_bodies_never_reach_a_log(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components, json_logs: Any
) -> None:
    stripe.fail("POST", "/v1/checkout/sessions", 400, "No such customer: someone@example.com")
    client.post(
        "/v1/payments",
        json={
            "booking_id": "bk_1",
            "amount": 100,
            "description": "x",
            "customer_email": "someone@example.com",
        },
        headers=auth,
    )
    stripe.mocker.register_uri("POST", "https://stripe.test/v1/checkout/sessions", text=stripe._respond)
    stripe.state.pay(
        open_payment(client, auth, "bk_2", customer_email="someone@example.com")["session_id"], notify=False
    )
    post_event(client, stripe.state.events[-1])
    client.post("/webhooks/stripe", data=b'{"object": "event"}', headers={"Stripe-Signature": "t=1,v1=00"})
    logging.getLogger("anything").warning("careless: sk_live_abc123 whsec_zzz9 reach me at a.b@c.example")
    text = "\n".join(json.dumps(r) for r in json_logs())
    for secret in (
        "sk_test_unit",
        WEBHOOK_SECRET,
        "someone@example.com",
        "sk_live_abc123",
        "whsec_zzz9",
        "a.b@c.example",
        "Bearer test-token",
    ):
        assert secret not in text, secret
    assert not re.search(r'"object":\s*"checkout\.session"', text)  # no webhook bodies
    assert "[redacted]" in text
