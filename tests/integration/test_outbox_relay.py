"""The outbox stream and its relay into RQ: nothing lost, nothing moved twice, visible throughout."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from payments_service.delivery.outbox import RELAY_GROUP
from payments_service.delivery.relay import Relay
from payments_service.storage import keys
from payments_service.wiring import Components
from tests.support.flows import open_payment, post_event, queued
from tests.support.processes import prove_nothing_happens_for, wait_for
from tests.support.stripe_wire import StripeWire


def pay(client: Any, auth: dict[str, str], stripe: StripeWire, booking_id: str) -> None:
    stripe.state.pay(open_payment(client, auth, booking_id)["session_id"], notify=False)
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "processed"


def delivery_jobs(components: Components) -> list[Any]:
    queue = components.deliveries.queue
    return [queue.fetch_job(job_id) for job_id in queue.get_job_ids()]


def test_an_event_waits_in_the_outbox_until_a_relay_moves_it_into_the_delivery_queue(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    pay(client, auth, stripe, "bk_1")
    [waiting] = queued(components)
    [listed] = components.outbox.events()
    assert (listed.id, listed.type, listed.booking_id, listed.state) == (
        waiting.id,
        "payment.paid",
        "bk_1",
        "queued",
    )
    assert client.get("/health").get_json()["events"] == {"pending": 1, "dead": 0}
    assert components.outbox.ready() == 1
    assert components.outbox.relay_all("relay-a") == 1
    assert queued(components) == []
    [job] = delivery_jobs(components)
    assert (job.id, job.args[1], job.meta["type"]) == (waiting.id, waiting.body, "payment.paid")
    assert json.loads(job.args[1])["data"]["status"] == "paid"
    assert client.get("/health").get_json()["events"] == {"pending": 1, "dead": 0}  # now in RQ's queue
    assert components.outbox.relay_all("relay-b") == 0


def test_entries_a_killed_relay_had_read_are_moved_once_by_another_after_they_idle(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    for booking_id in ("bk_a", "bk_b"):
        pay(client, auth, stripe, booking_id)
    assert components.outbox.relay_all("earlier") == 2  # moved as usual
    for booking_id in ("bk_c", "bk_d"):
        pay(client, auth, stripe, booking_id)
    # A relay reads the new entries and is killed before its MULTI/EXEC: they stay pending, unmoved.
    read = components.redis.xreadgroup(RELAY_GROUP, "killed", {keys.OUTBOX: ">"}, count=10)
    assert len(read[0][1]) == 2
    assert components.outbox.relay_all("alive") == 0  # not new any more
    assert components.outbox.reclaim("alive") == 0  # read moments ago: its relay may still be moving them
    assert components.outbox.counts()["pending"] == 4  # and yet counted, not lost
    assert components.outbox.reclaim("alive", min_idle_seconds=0) == 2
    assert components.outbox.reclaim("alive", min_idle_seconds=0) == 0
    assert sorted(job.meta["booking_id"] for job in delivery_jobs(components)) == [
        "bk_a",
        "bk_b",
        "bk_c",
        "bk_d",
    ]
    assert components.redis.xlen(keys.OUTBOX) == 0
    assert components.redis.xpending(keys.OUTBOX, RELAY_GROUP)["pending"] == 0


def test_the_relay_holds_still_while_workers_are_paused_and_moves_when_resumed(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    pay(client, auth, stripe, "bk_1")
    components.deliveries.pause_workers()
    stop = threading.Event()
    relay = threading.Thread(
        target=Relay(components.outbox, components.deliveries, "relay-thread").run, args=(stop,)
    )
    relay.start()
    try:
        prove_nothing_happens_for(0.3)  # the paused relay has looked at least once
        assert len(queued(components)) == 1
        components.deliveries.resume_workers()
        wait_for(lambda: not queued(components), 10, "the relay to move the event")
        assert queued(components) == []
        assert len(delivery_jobs(components)) == 1
    finally:
        stop.set()
        relay.join(timeout=5)
    assert not relay.is_alive()  # a stop is noticed within one blocking read


def test_the_oldest_pending_age_and_known_ids_include_events_still_in_the_outbox(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    assert components.outbox.oldest_pending_age(datetime.now(UTC)) == 0
    pay(client, auth, stripe, "bk_1")
    later = datetime.now(UTC) + timedelta(seconds=60)
    assert 59 <= components.outbox.oldest_pending_age(later) <= 65
    [waiting] = queued(components)
    assert components.outbox.unknown([waiting.id, "msg_nope"]) == ["msg_nope"]


def test_the_relay_leaves_events_in_the_outbox_while_the_delivery_queue_is_full(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    stop = threading.Event()
    relay = threading.Thread(
        target=Relay(components.outbox, components.deliveries, "relay-thread", queue_limit=1).run,
        args=(stop,),
    )
    relay.start()

    try:
        pay(client, auth, stripe, "bk_1")
        wait_for(lambda: components.deliveries.ready() == 1, 10, "the first event in RQ")
        assert components.deliveries.ready() == 1
        pay(client, auth, stripe, "bk_2")
        prove_nothing_happens_for(0.5)  # the relay looks every 0.2 s while the queue is full
        assert [e.booking_id for e in queued(components)] == ["bk_2"]  # held back: the queue is full
        components.deliveries.queue.empty()  # the workers caught up
        wait_for(lambda: not queued(components), 10, "the relay to move the second event")
        assert queued(components) == []
        assert [job.meta["booking_id"] for job in delivery_jobs(components)] == ["bk_2"]
    finally:
        stop.set()
        relay.join(timeout=5)
