"""Failovers under a steady load, with real Sentinels and a real Cluster: nothing acknowledged is lost.

Each test runs `serve` and `worker` against a Redis deployment, opens and pays a few bookings a
second, fails the primary over, and then checks that every 201 and every 200 the service gave is on
the new primary, that every paid booking's payment.paid reached the booking service under one
webhook-id, that the worker is still running, and how long answers failed. The only timing assert
is a generous recovery bound: the deployment's own time to name a new primary, plus 5 seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
import redis
import requests

from payments_service.storage import keys
from payments_service.storage.records import decode
from tests.support.processes import wait_for
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer
from tests.support.sentinel_set import SERVICE, SentinelSet
from tests.support.stack import Stack, open_and_pay, running_stack
from tests.support.steady_load import SteadyLoad, paid_events_by_booking

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

RECOVERY_MARGIN_SECONDS = 5.0
LOAD_AFTER_RECOVERY_SECONDS = 2.0
# Small values so a delivery cut off by a failover is found abandoned, and retried, within seconds.
FAST_DELIVERY = {"EVENT_DELIVERY_TIMEOUT": "2", "EVENT_RETRY_SCHEDULE": "1,1,2,2,5"}
ACKS = {"REDIS_REPLICA_ACKS": "1", "REDIS_REPLICA_ACK_TIMEOUT_MS": "500"}


@contextmanager
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    deployment = SentinelSet(tmp_path / "redis")
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.stop()


@contextmanager
def cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    deployment = RedisCluster(tmp_path / "redis")
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.stop()


def sentinel_stack(tmp_path: Path, deployment: SentinelSet) -> AbstractContextManager[Stack]:
    env = {"REDIS_SENTINELS": deployment.setting, "REDIS_SENTINEL_MASTER": SERVICE, **ACKS, **FAST_DELIVERY}
    # REDIS_URL's host is not used: the Sentinels name the primary.
    return running_stack(tmp_path, "redis://localhost:6379/0", **env)


def cluster_stack(tmp_path: Path, deployment: RedisCluster) -> AbstractContextManager[Stack]:
    env = {"REDIS_CLUSTER_NODES": deployment.setting, **ACKS, **FAST_DELIVERY}
    return running_stack(tmp_path, "redis://localhost:6379/0", **env)


def fail_over_under_load(
    name: str, stack: Stack, fail_over: Callable[[], float], new_primary: Callable[[], RedisServer]
) -> None:
    """Load, fail over (which returns the deployment's seconds to name a new primary), load, then check."""
    worker = stack.start_worker()
    with SteadyLoad(stack, prefix=name) as load:
        wait_for(lambda: len(load.acknowledged()) >= 5, 30, "the first bookings to be acknowledged")
        began = time.monotonic()
        named_after = fail_over()
        bound = named_after + RECOVERY_MARGIN_SECONDS
        wait_for(
            lambda: time.monotonic() - began > named_after and load.recovered_after(began) < bound,
            bound + 10,
            "answers to be successes again",
        )
        time.sleep(LOAD_AFTER_RECOVERY_SECONDS)  # load on the new primary: it must keep working
    recovered = load.recovered_after(began)
    last_failure, failing_for = load.error_window(began)
    print(
        f"\n[{name}] new primary named after {named_after:.2f}s; answers failed for {failing_for:.2f}s "
        f"(last failure {last_failure:.2f}s after the failover began); recovered after {recovered:.2f}s; "
        f"{len(load.acknowledged())} bookings; answers: {load.counts()}"
    )
    assert recovered <= bound, f"recovered after {recovered:.1f}s, more than {bound:.1f}s"
    node = new_primary()
    with node.client() as primary:
        assert_every_acknowledgment_is_on(primary, load)
    assert_every_paid_booking_was_announced_once(stack, load)
    assert worker.process.poll() is None, worker.log()
    assert_operators_see_the_new_primary(stack, f"127.0.0.1:{node.port}")


def assert_operators_see_the_new_primary(stack: Stack, address: str) -> None:
    health = requests.get(stack.api_url + "/health", timeout=10)
    assert (health.status_code, health.json()["primary"]) == (200, address), health.text
    metrics = requests.get(stack.api_url + "/metrics", timeout=10).text
    assert f'address="{address}"' in metrics
    [failovers] = [line for line in metrics.splitlines() if line.startswith("payments_redis_failovers_total")]
    assert float(failovers.split()[-1]) >= 1


def assert_every_acknowledgment_is_on(primary: redis.Redis, load: SteadyLoad) -> None:
    acknowledged = load.acknowledged()
    for booking_id, ack in acknowledged.items():
        raw = primary.get(keys.payment(booking_id))
        assert raw is not None, f"{booking_id}: answered 201/200, missing on the new primary"
        payment = decode(raw)  # the stored form leaves out fields at their usual values
        assert ack.session_id in payment.sessions, (booking_id, ack, payment)
        if ack.paid_event:
            assert payment.status == "paid", (booking_id, payment.status)
            assert primary.exists(keys.stripe_event(ack.paid_event)), f"{booking_id}: event mark lost"
    assert any(ack.paid_event for ack in acknowledged.values())


def assert_every_paid_booking_was_announced_once(stack: Stack, load: SteadyLoad) -> None:
    paid = {b for b, ack in load.acknowledged().items() if ack.paid_event}

    def missing() -> set[str]:
        return paid - set(paid_events_by_booking(stack.receiver.accepted()))

    try:
        wait_for(lambda: not missing(), 90, "every paid booking's payment.paid to reach the booking service")
    except TimeoutError:
        lost = missing()
        listed = [
            line for line in stack.cli("events", "list").stdout.splitlines() if set(line.split()) & lost
        ]
        raise AssertionError(f"not announced: {sorted(lost)}; their events: {listed}") from None
    announced = paid_events_by_booking(stack.receiver.accepted())
    assert all(len(announced[b]) == 1 for b in paid), {b: ids for b, ids in announced.items() if len(ids) > 1}


def test_sentinel_failover_loses_nothing_acknowledged(tmp_path: Path) -> None:
    with sentinels(tmp_path) as deployment, sentinel_stack(tmp_path, deployment) as stack:

        def fail_over() -> float:
            old = deployment.primary_address()
            deployment.failover()
            return deployment.wait_for_new_primary(old)

        fail_over_under_load("sentinel_failover", stack, fail_over, deployment.primary)


def test_a_killed_primary_restarted_from_its_aof_loses_nothing_acknowledged(tmp_path: Path) -> None:
    with sentinels(tmp_path) as deployment, sentinel_stack(tmp_path, deployment) as stack:
        old_node = deployment.primary()

        def kill_and_restart() -> float:
            old = old_node.address
            old_node.kill()
            named_after = deployment.wait_for_new_primary(old)
            old_node.start()  # from its own AOF, as a primary until Sentinel turns it into a replica
            with old_node.client() as restarted:
                # Cut off from any replica, it refuses writes (min-replicas-to-write) from whoever
                # still knew its address; the checks below show nothing acknowledged went there.
                with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
                    restarted.set("{payments}:probe", "1")
            return named_after

        fail_over_under_load("sentinel_kill", stack, kill_and_restart, deployment.primary)
        with old_node.client() as restarted:
            # And Sentinel then turns it into a replica of the new primary.
            wait_for(lambda: restarted.info("replication")["role"] == "slave", 30, "the old primary demoted")


def test_cluster_failover_of_the_slot_owner(tmp_path: Path) -> None:
    with cluster(tmp_path) as deployment, cluster_stack(tmp_path, deployment) as stack:
        owner = deployment.owner()
        replica = deployment.replica_of(owner)

        def fail_over() -> float:
            began = time.monotonic()
            deployment.failover(replica)
            wait_for(lambda: deployment.owner() is replica, 30, "the replica to own the slot")
            return time.monotonic() - began

        fail_over_under_load("cluster_failover", stack, fail_over, deployment.owner)


def test_cluster_slot_migration(tmp_path: Path) -> None:
    with cluster(tmp_path) as deployment, cluster_stack(tmp_path, deployment) as stack:
        owner = deployment.owner()
        target = deployment.other_primary(owner)

        def migrate() -> float:
            began = time.monotonic()
            deployment.migrate_slot(owner, target)
            wait_for(lambda: deployment.owner() is target, 30, "the target to own the slot")
            return time.monotonic() - began

        fail_over_under_load("cluster_migration", stack, migrate, deployment.owner)


def test_a_worker_whose_redis_is_down_waits_for_it_and_then_delivers(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    with running_stack(tmp_path, own_redis.url) as stack:
        own_redis.stop()
        worker = stack.start("worker", "worker")
        worker.wait_until(lambda: worker.log().count("work loop ended") >= 2, 30)
        own_redis.start()
        worker.wait_until(lambda: "Listening on" in worker.log(), 30)
        open_and_pay(stack, "bk_after_outage")
        wait_for(lambda: len(stack.receiver.accepted()) == 1, 30, "payment.paid once Redis is back")
        assert worker.process.poll() is None
