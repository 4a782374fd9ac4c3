"""Memory is bounded: final payments leave Redis after their retention, delivered events at once.

The clock is Redis's own: a retention of one second (Settings built directly; the environment
allows 30 and up), then polling with a deadline until the keys are gone.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from payments_service.runtime import worker
from payments_service.storage import compare_and_write as cw
from payments_service.storage import keys as redis_keys
from payments_service.storage.pipelining import Pipelined
from payments_service.storage.records import encode
from payments_service.wiring import Components
from tests.support.flows import components_of, open_payment, payment, post_event, queued_types
from tests.support.payments import pending_payment
from tests.support.processes import wait_for
from tests.support.settings import BOOKING_EVENTS_URL
from tests.support.stripe_wire import StripeWire

KEY = "{payments}:payment:bk_cw"


@pytest.fixture
def short(redis_url: str, app_factory: Any) -> Any:
    """An app whose final payments stay one second."""
    return app_factory(redis_url, payment_retention_seconds=1)


def gone(components: Components, *names: str) -> bool:
    return components.redis.exists(*names) == 0


def test_the_expire_operation_is_written_with_the_change_and_cleared_by_a_later_one(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        trips = Pipelined(client.connection_pool)
        first, second = pending_payment(booking_id="bk_cw"), pending_payment(booking_id="bk_cw", version=3)
        expire = [
            cw.expire(KEY, 600),
            cw.set_value("{payments}:other", "x"),
            cw.expire("{payments}:other", 60),
        ]
        assert cw.run(trips, client, KEY, None, encode(first), expire) == cw.WRITTEN
        assert 590 < client.ttl(KEY) <= 600 and 50 < client.ttl("{payments}:other") <= 60
        # A payment written again (a refund, a reopened checkout) keeps no expiry unless told again.
        assert cw.run(trips, client, KEY, first, encode(second), []) == cw.WRITTEN
        assert client.ttl(KEY) == -1


def test_a_paid_payment_and_its_index_entries_leave_redis_and_stripe_still_answers(
    short: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    client, components = short.test_client(), components_of(short)
    opened = open_payment(client, auth)
    assert components.redis.ttl(redis_keys.payment("bk_1")) == -1  # open payments stay
    assert components.redis.zscore(redis_keys.status_index("pending"), "bk_1") is not None
    stripe.state.pay(opened["session_id"], notify=False)
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "processed"
    intent = stripe.state.sessions[opened["session_id"]]["payment_intent"]
    names = (redis_keys.payment("bk_1"), redis_keys.intent(intent))
    assert all(0 < components.redis.pttl(name) <= 1000 for name in names)
    assert components.redis.zscore(redis_keys.status_index("pending"), "bk_1") is None
    wait_for(lambda: gone(components, *names), 5, "the paid payment to leave Redis")
    found = payment(client, auth)
    assert (found["status"], found["session_id"], found["payment_intent"]) == (
        "paid",
        opened["session_id"],
        intent,
    )
    # A refund after the retention still works, is announced, and the payment leaves again.
    refunded = client.post("/v1/payments/bk_1/refunds", json={"amount": 1000}, headers=auth)
    assert refunded.status_code == 200 and refunded.get_json()["amount_refunded"] == 1000
    assert queued_types(components) == ["payment.paid", "payment.partially_refunded"]
    wait_for(lambda: gone(components, *names), 5, "the refunded payment to leave Redis")


def test_an_expired_booking_paid_later_announces_versions_above_its_first_life(
    short: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    client, components = short.test_client(), components_of(short)
    first = open_payment(client, auth)
    stripe.state.expire(first["session_id"])
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "processed"
    wait_for(lambda: gone(components, redis_keys.payment("bk_1")), 5, "the expired payment to leave Redis")
    # Never paid: Stripe has no intent to find it by, so it is unknown now, and can be opened again.
    assert client.get("/v1/payments/bk_1", headers=auth).status_code == 404
    again = open_payment(client, auth)
    stripe.state.pay(again["session_id"], notify=False)
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "processed"
    expired_event, paid_event = (e for e in components.outbox.waiting())
    assert (expired_event.type, paid_event.type) == ("payment.expired", "payment.paid")
    assert payment(client, auth)["version"] > first["version"] + 1  # the receiver keeps the paid one


def test_delivered_events_leave_no_job_or_result_and_are_still_listed(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    stripe.mocker.post(BOOKING_EVENTS_URL, status_code=204)
    for booking in ("bk_1", "bk_2"):
        session_id = open_payment(client, auth, booking)["session_id"]
        stripe.state.pay(session_id, notify=False)
        post_event(client, stripe.state.events[-1])
    worker.run(components, burst=True)
    rq_keys = [k.decode() for k in components.redis.keys(f"{redis_keys.RQ_KEY_PREFIX}:*")]
    assert not [k for k in rq_keys if ":job:" in k or ":results:" in k or ":execution" in k], rq_keys
    listed = components.outbox.events()
    assert [(e.state, e.booking_id) for e in listed] == [("delivered", "bk_2"), ("delivered", "bk_1")]
    assert components.outbox.unknown([listed[0].id]) == []
