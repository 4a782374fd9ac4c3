"""A Redis restarted from an older snapshot: Stripe, the ledger, puts every booking right again.

Bookings are opened, paid, canceled, refunded and delivered; a snapshot is taken; more of that
happens; Redis restarts from the snapshot, losing it all; callers who now see an unknown booking
open a new checkout and their customers pay again; one reconciliation pass runs, the worker
delivers. Every paid booking must end paid, every second payment refunded exactly once, and no
webhook-id ever carried two different bodies.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from payments_service.runtime import worker
from tests.support.flows import components_of, open_payment, payment, post_event
from tests.support.redis_server import RedisServer
from tests.support.rollback import restart_from, snapshot
from tests.support.settings import BOOKING_EVENTS_URL
from tests.support.stripe_wire import StripeWire

BEFORE = ["bk_a1", "bk_a2", "bk_a3"]  # paid before the snapshot
LOST = ["bk_b1", "bk_b2", "bk_b3", "bk_b4"]  # opened and paid after it: unknown after the rollback
PAID_AGAIN = ["bk_b2", "bk_b3"]  # their callers open a new checkout after the rollback: paid twice


def test_a_rollback_leaves_every_paid_booking_paid_every_second_payment_refunded_once_and_ids_unique(
    own_redis: RedisServer, app_factory: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    app = app_factory(own_redis.url, reconcile_after=0, reconcile_max_rps=1000)
    client, components = app.test_client(), components_of(app)
    stripe.mocker.post(BOOKING_EVENTS_URL, status_code=204)

    def paid(booking_id: str, **fields: Any) -> str:
        session_id: str = open_payment(client, auth, booking_id, **fields)["session_id"]
        stripe.state.pay(session_id, notify=False)
        assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "processed"
        return session_id

    def deliver() -> None:
        components.outbox.relay_all("test")
        worker.run(components, burst=True)

    for booking_id in BEFORE:
        paid(booking_id)
    paid("bk_refunded_after")
    open_payment(client, auth, "bk_paid_after")
    open_payment(client, auth, "bk_canceled_after")
    assert components.reconciler().run_once() is not None  # the checkpoint the snapshot keeps
    deliver()
    copy = snapshot(own_redis)

    for booking_id in LOST[:3]:
        paid(booking_id)
    open_payment(client, auth, "bk_b4")
    reopened = client.post(  # bk_b4 changes amount and is paid through its second session
        "/v1/payments", json={"booking_id": "bk_b4", "amount": 4000, "description": "Dune"}, headers=auth
    )
    assert reopened.status_code == 201
    stripe.state.pay(reopened.get_json()["session_id"], notify=False)
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "processed"
    stripe.state.pay(payment(client, auth, "bk_paid_after")["session_id"], notify=False)
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "processed"
    assert client.post("/v1/payments/bk_canceled_after/cancel", headers=auth).status_code == 200
    assert (
        client.post("/v1/payments/bk_refunded_after/refunds", json={"amount": 1000}, headers=auth).status_code
        == 200
    )
    deliver()
    before_rollback = len(stripe.mocker.request_history)

    restart_from(own_redis, copy)
    assert payment(client, auth, "bk_paid_after")["status"] == "pending"  # Redis is back in the past
    for booking_id in PAID_AGAIN:
        # The caller opens another checkout (another request: a later time, another description).
        paid(booking_id, description="Dune, tried again")
    calls = len(stripe.all_calls())
    report = components.reconciler().run_once()
    assert report is not None and report.skipped == 0
    calls = len(stripe.all_calls()) - calls
    deliver()

    # Every paid booking is paid (one partly refunded, as it was), with nothing left pending.
    statuses = {b: payment(client, auth, b)["status"] for b in [*BEFORE, *LOST, "bk_paid_after"]}
    assert set(statuses.values()) == {"paid"}, statuses
    refunded_after = payment(client, auth, "bk_refunded_after")
    assert (refunded_after["status"], refunded_after["amount_refunded"]) == ("partially_refunded", 1000)
    # The lost cancel comes back as Stripe saw it, an expiry: same version, another body, another id.
    [(canceled_id, canceled), (expired_id, expired)] = [
        (r.headers["webhook-id"], json.loads(r.text))
        for r in stripe.mocker.request_history
        if r.url == BOOKING_EVENTS_URL and "bk_canceled_after" in r.text
    ]
    assert (canceled["type"], expired["type"]) == ("payment.canceled", "payment.expired")
    assert canceled["data"]["version"] == expired["data"]["version"] and canceled_id != expired_id
    # Every second payment is refunded exactly once, and nothing else but the asked-for refund.
    refunds = Counter(r["metadata"]["booking_id"] for r in stripe.state.refunds.values())
    assert refunds == {"bk_b2": 1, "bk_b3": 1, "bk_refunded_after": 1}, refunds
    for booking_id in PAID_AGAIN:
        kept = payment(client, auth, booking_id)
        intents = {
            s["payment_intent"]
            for s in stripe.state.sessions.values()
            if s["client_reference_id"] == booking_id and s["payment_intent"]
        }
        [refund] = [r for r in stripe.state.refunds.values() if r["metadata"]["booking_id"] == booking_id]
        assert intents == {kept["payment_intent"], refund["payment_intent"]}  # one kept, one given back
    # No webhook-id ever carried two different bodies, before or after the rollback.
    sent = [r for r in stripe.mocker.request_history if r.url == BOOKING_EVENTS_URL]
    bodies: defaultdict[str, set[str]] = defaultdict(set)
    for request in sent:
        bodies[request.headers["webhook-id"]].add(request.text)
    assert all(len(b) == 1 for b in bodies.values())
    after = [
        json.loads(r.text)
        for r in stripe.mocker.request_history[before_rollback:]
        if r.url == BOOKING_EVENTS_URL
    ]
    before = [
        json.loads(r.text)
        for r in stripe.mocker.request_history[:before_rollback]
        if r.url == BOOKING_EVENTS_URL
    ]
    for booking_id in LOST:
        # Whatever the receiver saw before, it hears of the payment again, at higher versions.
        again = [e for e in after if e["data"]["booking_id"] == booking_id]
        assert "payment.paid" in [e["type"] for e in again]
        seen = max(e["data"]["version"] for e in before if e["data"]["booking_id"] == booking_id)
        assert min(e["data"]["version"] for e in again) > seen
    duplicates = sorted(e["data"]["booking_id"] for e in after if e["type"] == "payment.duplicate_refunded")
    assert duplicates == PAID_AGAIN
    print(
        f"\nrollback: {len(statuses) + 1} paid bookings all paid, {len(duplicates)} second payments refunded "
        f"once each, {len(sent)} deliveries under {len(bodies)} ids, none reused for another body; "
        f"the pass made {len(report.changes)} changes with {calls} Stripe calls"
    )
