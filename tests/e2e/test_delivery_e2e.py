"""Delivery with real processes: serve + worker + sandbox Stripe + a local booking-service receiver."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from tests.support.processes import prove_nothing_happens_for, wait_for
from tests.support.redis_server import RedisServer
from tests.support.settings import EVENT_SECRET
from tests.support.signing import verify_standard_webhook
from tests.support.stack import Stack, open_and_pay, running_stack, status

pytestmark = pytest.mark.e2e


def test_a_503_then_204_is_delivered_once_with_the_same_id(tmp_path: Path, redis_url: str) -> None:
    with running_stack(tmp_path, redis_url, EVENT_RETRY_SCHEDULE="1,1") as stack:
        stack.receiver.script = [503]
        stack.start_worker()
        open_and_pay(stack, "bk_retry")
        wait_for(lambda: len(stack.receiver.accepted()) == 1, 30, "a delivery accepted")
        first, second = stack.receiver.received
        assert (first.answered, second.answered) == (503, 204)
        assert first.headers["webhook-id"] == second.headers["webhook-id"]
        assert first.body == second.body
        event = verify_standard_webhook(EVENT_SECRET, second.body, second.headers)
        assert (event["type"], event["data"]["booking_id"], event["data"]["status"]) == (
            "payment.paid",
            "bk_retry",
            "paid",
        )
        prove_nothing_happens_for(1.5)  # the schedule's next slot passes: nothing more may arrive
        assert len(stack.receiver.received) == 2


def test_a_receiver_down_past_the_schedule_leaves_a_dead_event_to_replay(
    tmp_path: Path, redis_url: str
) -> None:
    with running_stack(tmp_path, redis_url, EVENT_RETRY_SCHEDULE="1,1") as stack:
        stack.receiver.script = [500, 500, 500]
        stack.start_worker()
        open_and_pay(stack, "bk_dead")
        wait_for(
            lambda: requests.get(stack.api_url + "/health", timeout=5).json()["events"]["dead"] == 1,
            30,
            "the event to be dead",
        )
        listed = stack.cli("events", "list", "--dead")
        assert listed.returncode == 0, listed.stderr
        [row] = [line for line in listed.stdout.splitlines() if "payment.paid" in line]
        event_id = row.split()[0]
        assert "bk_dead" in row and "dead" in row and "HTTP 500" in row
        replayed = stack.cli("events", "replay", event_id)
        assert replayed.returncode == 0 and f"replayed: {event_id}" in replayed.stdout
        wait_for(lambda: len(stack.receiver.accepted()) == 1, 30, "the replayed event to arrive")
        assert stack.receiver.accepted()[0].headers["webhook-id"] == event_id
        assert "delivered" in stack.cli("events", "list").stdout
        assert stack.cli("events", "replay", "msg_unknown").returncode == 1


@pytest.mark.timeout(240)
def test_an_event_whose_worker_was_killed_mid_delivery_is_delivered_by_the_next_worker(
    tmp_path: Path, redis_url: str
) -> None:
    with running_stack(tmp_path, redis_url, EVENT_RETRY_SCHEDULE="1,1") as stack:
        stack.receiver.hang.set()
        doomed = stack.start_worker("worker-1")
        open_and_pay(stack, "bk_crash")
        wait_for(lambda: len(stack.receiver.received) == 1, 30, "the first delivery to start")
        doomed.kill()  # SIGKILL to the worker's process group, mid-request
        stack.receiver.hang.clear()
        stack.receiver.release.set()
        restarted = time.time()
        stack.start_worker("worker-2")
        wait_for(lambda: len(stack.receiver.accepted()) == 1, 150, "delivery after the restart")
        delivered = stack.receiver.accepted()[0]
        assert delivered.headers["webhook-id"] == stack.receiver.received[0].headers["webhook-id"]
        assert delivered.arrived - restarted < 120
        print(f"\nworker crash: delivered {delivered.arrived - restarted:.1f}s after the new worker started")


def test_redis_stopped_during_a_webhook_is_a_503_then_stripes_retry_succeeds(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    with running_stack(tmp_path, own_redis.url) as stack:
        stack.start_worker()
        payment = open_and_pay(stack, "bk_outage", webhook=False)
        events = requests.get(
            stack.sandbox_url + "/v1/events", headers={"Authorization": "Bearer sk_test_e2e"}, timeout=5
        ).json()["data"]
        [event] = [e for e in events if e["data"]["object"]["id"] == payment["session_id"]]
        own_redis.stop()
        refused = stack.send_webhook(event)
        assert refused.status_code == 503
        own_redis.start()  # the same data directory: the append-only file brings the payment back
        accepted = stack.send_webhook(event)  # Stripe delivers again
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["outcome"] == "processed"
        assert status(stack, "bk_outage") == "paid"
        wait_for(lambda: len(stack.receiver.accepted()) == 1, 30, "payment.paid after the outage")
        assert json.loads(stack.receiver.accepted()[0].body)["type"] == "payment.paid"


def test_webhook_to_delivery_latency_with_a_healthy_receiver(stack: Stack) -> None:
    stack.start_worker()
    latencies = []
    for n in range(20):
        started = time.time()
        open_and_pay(stack, f"bk_fast_{n}")
        wait_for(lambda n=n: len(stack.receiver.accepted()) == n + 1, 10, "delivery")
        latencies.append(stack.receiver.accepted()[-1].arrived - started)
    assert max(latencies) < 2.0
    print(
        f"\nhealthy receiver: pay -> delivered p50 {sorted(latencies)[10] * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms over 20 payments"
    )
