"""The worker's recovery from a Redis failure mid-delivery: what RQ would leave waiting, requeued at once."""

from __future__ import annotations

from typing import Any

from payments_service.delivery.queue import CLEANING_LOCK_SECONDS
from payments_service.wiring import Components
from tests.support.flows import open_payment, post_event
from tests.support.stripe_wire import StripeWire


def queued_delivery(client: Any, auth: dict[str, str], stripe: StripeWire, components: Components) -> str:
    session_id = open_payment(client, auth, "bk_stranded")["session_id"]
    stripe.state.pay(session_id, notify=False)
    assert post_event(client, stripe.state.events[-1]).status_code == 200
    assert components.outbox.relay_all("relay-1") == 1
    [job_id] = components.deliveries.queue.get_job_ids()
    return str(job_id)


def test_a_delivery_taken_but_never_started_is_queued_again_at_once(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    job_id = queued_delivery(client, auth, stripe, components)
    queue = components.deliveries.queue
    # What RQ's dequeue does before it starts a job: into its intermediate list. Redis fails here.
    components.redis.lmove(queue.key, queue.intermediate_queue.key)
    assert queue.get_job_ids() == []
    assert components.deliveries.requeue_if_stranded(job_id) is True
    assert queue.get_job_ids() == [job_id]
    assert queue.intermediate_queue.get_job_ids() == []
    assert components.deliveries.requeue_if_stranded(job_id) is False  # nothing stranded any more


def test_a_started_delivery_is_left_to_rqs_abandoned_job_check(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    job_id = queued_delivery(client, auth, stripe, components)
    queue = components.deliveries.queue
    components.redis.lmove(queue.key, queue.intermediate_queue.key)
    components.redis.zadd(queue.started_job_registry.key, {f"{job_id}:execution-1": 2**31})
    assert components.deliveries.requeue_if_stranded(job_id) is False
    assert queue.get_job_ids() == []


def test_a_registry_cleaning_cut_off_holds_its_lock_for_seconds_not_fifteen_minutes(
    components: Components,
) -> None:
    queue = components.deliveries.queue
    assert queue.acquire_maintenance_lock() is True
    assert 0 < components.redis.ttl(queue.registry_cleaning_key) <= CLEANING_LOCK_SECONDS < 60
    assert queue.acquire_maintenance_lock() is False  # still one cleaning at a time
