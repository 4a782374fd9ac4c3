"""Delivery to the booking service: Standard Webhooks signatures, retries on schedule, dead letters."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from payments_service.runtime import worker
from payments_service.wiring import Components
from tests.support.flows import components_of, open_payment, post_event
from tests.support.processes import wait_for
from tests.support.settings import BOOKING_EVENTS_URL, EVENT_SECRET
from tests.support.signing import verify_standard_webhook
from tests.support.stripe_wire import StripeWire


@pytest.fixture
def fast_app(redis_url: str, app_factory: Any) -> Any:
    """Two retries a second apart (fixed on each event when it is queued), so a test walks a schedule."""
    return app_factory(redis_url, event_retry_schedule=(1, 1))


@pytest.fixture
def fast_retries(fast_app: Any) -> Components:
    return components_of(fast_app)


@pytest.fixture
def fast_client(fast_app: Any) -> Any:
    return fast_app.test_client()


def pay(client: Any, auth: dict[str, str], stripe: StripeWire, booking_id: str = "bk_1") -> str:
    session_id = open_payment(client, auth, booking_id)["session_id"]
    stripe.state.pay(session_id, notify=False)
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "processed"
    return session_id


def deliveries(stripe: StripeWire) -> list[Any]:
    return [r for r in stripe.mocker.request_history if r.url == BOOKING_EVENTS_URL]


def run_worker(components: Components) -> None:
    """The real RQ worker, in burst mode: deliver what is due now, then return."""
    worker.run(components, burst=True)


def wait_until_due(components: Components, timeout: float = 5.0) -> None:
    """Poll, as an operator's `events list` would, until the next scheduled retry is due."""

    def due() -> bool:
        now = datetime.now(UTC)
        retrying = [e for e in components.outbox.events() if e.state == "retrying"]
        return any(e.next_attempt_at is not None and e.next_attempt_at <= now for e in retrying)

    wait_for(due, timeout, "a retry to fall due")


def walk_the_schedule(components: Components) -> None:
    """The first attempt, then each retry of the two-step schedule as it falls due."""
    run_worker(components)
    for _ in range(2):
        wait_until_due(components)
        run_worker(components)


def test_a_paid_booking_is_announced_signed_per_standard_webhooks(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    stripe.mocker.post(BOOKING_EVENTS_URL, status_code=204)
    pay(client, auth, stripe)
    run_worker(components)
    [delivery] = deliveries(stripe)
    assert delivery.timeout == 10.0  # EVENT_DELIVERY_TIMEOUT
    assert not delivery.allow_redirects
    headers = delivery.headers
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"].startswith("msg_")
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 10
    event = verify_standard_webhook(EVENT_SECRET, delivery.body, dict(headers))
    assert event["type"] == "payment.paid"
    assert datetime.fromisoformat(event["timestamp"]).tzinfo is not None
    assert event["data"] == client.get("/v1/payments/bk_1", headers=auth).get_json()
    [info] = components.outbox.events()
    assert (info.id, info.state, info.attempts, info.last_error) == (
        headers["webhook-id"],
        "delivered",
        1,
        None,
    )
    assert client.get("/health").get_json()["events"] == {"pending": 0, "dead": 0}


def test_the_signature_is_the_spec_computed_by_hand(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    import base64
    import hashlib
    import hmac

    stripe.mocker.post(BOOKING_EVENTS_URL, status_code=200)
    pay(client, auth, stripe)
    run_worker(components)
    delivery = deliveries(stripe)[0]
    key = base64.b64decode(EVENT_SECRET.removeprefix("whsec_"))
    signed = (
        f"{delivery.headers['webhook-id']}.{delivery.headers['webhook-timestamp']}.".encode() + delivery.body
    )
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert delivery.headers["webhook-signature"] == expected


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"status_code": 503}, "HTTP 503"),
        ({"status_code": 302, "headers": {"Location": "https://elsewhere.test/"}}, "HTTP 302"),
        ({"exc": requests.exceptions.ReadTimeout}, "ReadTimeout"),
        ({"exc": requests.exceptions.ConnectionError}, "ConnectionError"),
    ],
)
def test_a_refused_delivery_is_retried_later_with_the_same_id_and_body(
    fast_client: Any,
    auth: dict[str, str],
    stripe: StripeWire,
    fast_retries: Components,
    answer: dict[str, Any],
    error: str,
) -> None:
    stripe.mocker.post(BOOKING_EVENTS_URL, **answer)
    stripe.mocker.get("https://elsewhere.test/", status_code=200)
    pay(fast_client, auth, stripe)
    run_worker(fast_retries)
    [info] = fast_retries.outbox.events()
    assert (info.state, info.attempts) == ("retrying", 1)
    assert error in (info.last_error or "")
    assert info.next_attempt_at is not None
    assert not any(r.url == "https://elsewhere.test/" for r in stripe.mocker.request_history)  # no redirects
    stripe.mocker.post(BOOKING_EVENTS_URL, status_code=204)
    wait_until_due(fast_retries)
    run_worker(fast_retries)
    first, second = deliveries(stripe)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body  # the bytes were made once
    assert fast_retries.outbox.events()[0].state == "delivered"


def test_an_event_past_its_schedule_is_dead_until_replayed(
    fast_client: Any, auth: dict[str, str], stripe: StripeWire, fast_retries: Components
) -> None:
    stripe.mocker.post(BOOKING_EVENTS_URL, status_code=500)
    pay(fast_client, auth, stripe)
    walk_the_schedule(fast_retries)
    assert len(deliveries(stripe)) == 3  # the first attempt and one per delay in the schedule
    [dead] = fast_retries.outbox.events(dead_only=True)
    assert (dead.state, dead.attempts, dead.last_error) == ("dead", 3, "booking service answered HTTP 500")
    assert fast_client.get("/health").get_json()["events"] == {"pending": 0, "dead": 1}
    stripe.mocker.post(BOOKING_EVENTS_URL, status_code=202)
    assert fast_retries.deliveries.replay([dead.id]) == [dead.id]
    assert fast_retries.outbox.events(dead_only=True) == []
    run_worker(fast_retries)
    assert len(deliveries(stripe)) == 4
    assert fast_retries.outbox.events()[0].state == "delivered"
    assert fast_client.get("/health").get_json()["events"] == {"pending": 0, "dead": 0}
    assert json.loads(deliveries(stripe)[-1].body)["type"] == "payment.paid"


def test_replay_all_dead_and_unknown_ids(
    fast_client: Any, auth: dict[str, str], stripe: StripeWire, fast_retries: Components
) -> None:
    stripe.mocker.post(BOOKING_EVENTS_URL, status_code=500)
    for booking_id in ("bk_a", "bk_b"):
        pay(fast_client, auth, stripe, booking_id)
    walk_the_schedule(fast_retries)
    dead = {e.id for e in fast_retries.outbox.events(dead_only=True)}
    assert len(dead) == 2
    assert fast_retries.outbox.unknown(["msg_nope", *dead]) == ["msg_nope"]
    assert set(fast_retries.deliveries.replay(None)) == dead
    assert fast_retries.outbox.counts() == {"pending": 2, "dead": 0}


def test_delivery_outcomes_are_counted_for_metrics(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    stripe.mocker.post(BOOKING_EVENTS_URL, [{"status_code": 503}, {"status_code": 204}])
    pay(client, auth, stripe)
    run_worker(components)
    assert components.store.stats() == {"deliveries:failed": 1}
    stamp = datetime.now(UTC)
    assert components.outbox.oldest_pending_age(stamp) >= 0


def test_a_dead_schedulers_lock_is_released_and_a_live_ones_is_kept(components: Components) -> None:
    from datetime import timedelta

    from rq.scheduler import SCHEDULER_KEY_TEMPLATE, SCHEDULER_LOCKING_KEY_TEMPLATE
    from rq.utils import utcformat

    lock = SCHEDULER_LOCKING_KEY_TEMPLATE % "payment-events"
    redis = components.redis

    def holder(name: str, silent_for: float | None) -> None:
        redis.set(lock, name, ex=61)
        if silent_for is not None:
            beat = datetime.now(UTC) - timedelta(seconds=silent_for)
            redis.hset(SCHEDULER_KEY_TEMPLATE % name, "last_heartbeat", utcformat(beat))

    holder("alive", silent_for=1)
    assert components.deliveries.release_dead_scheduler_lock() is False
    assert redis.get(lock) == b"alive"
    holder("killed", silent_for=30)
    assert components.deliveries.release_dead_scheduler_lock() is True
    assert redis.get(lock) is None
    holder("vanished", silent_for=None)  # its metadata already expired
    assert components.deliveries.release_dead_scheduler_lock() is True
    assert components.deliveries.release_dead_scheduler_lock() is False  # nothing left to release


def test_the_worker_runs_only_delivery_jobs_and_fails_any_other_without_running_it(
    components: Components, tmp_path: Path
) -> None:
    witness = tmp_path / "ran"
    queue = components.deliveries.queue
    foreign = queue.enqueue_call("tests.support.side_effects.touch", args=(str(witness),))
    run_worker(components)
    assert not witness.exists()
    failed = queue.fetch_job(foreign.id)
    assert failed is not None and failed.get_status() == "failed"
    assert "UnknownJob" in (failed.latest_result().exc_string or "")
