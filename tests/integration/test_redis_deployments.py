"""Redis as deployed: replica acknowledgment, a managed primary endpoint that moves, /health and /metrics.

Sentinel and Cluster failovers under load are in tests/e2e/test_redis_failover.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from payments_service.storage import keys
from tests.support.flows import BODY, open_payment, post_event
from tests.support.movable_endpoint import MovableEndpoint
from tests.support.processes import wait_for
from tests.support.redis_server import RedisServer
from tests.support.stripe_wire import StripeWire


@pytest.fixture
def primary_and_replica(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    # A full sync starts at once instead of waiting 5 s for more replicas to share it.
    primary = RedisServer(tmp_path / "primary", args=["--repl-diskless-sync-delay", "0"])
    primary.start()
    replica = RedisServer(tmp_path / "replica", args=["--replicaof", "127.0.0.1", str(primary.port)])
    replica.start()
    wait_for(lambda: replicas_online(primary) == 1, 10, "the replica to be online")
    yield primary, replica
    replica.kill()
    primary.kill()


def replicas_online(node: RedisServer) -> int:
    with node.client() as client:
        info = client.info("replication")
        return sum(1 for n in range(int(info["connected_slaves"])) if info[f"slave{n}"]["state"] == "online")


def test_a_write_no_replica_confirmed_is_a_503_and_its_retry_a_200_once_one_does(
    primary_and_replica: tuple[RedisServer, RedisServer],
    auth: dict[str, str],
    stripe: StripeWire,
    app_factory: Any,
) -> None:
    primary, replica = primary_and_replica
    client = app_factory(primary.url, redis_replica_acks=1, redis_replica_ack_timeout_ms=100).test_client()
    session_id = open_payment(client, auth, "bk_acked")["session_id"]
    assert client.get("/health").get_json()["checks"] == {"redis": "ok"}

    replica.kill()
    wait_for(lambda: replicas_online(primary) == 0, 10, "the primary to see its replica gone")
    stripe.state.pay(session_id, notify=False)
    event = stripe.state.events[-1]
    refused = post_event(client, event)
    assert refused.status_code == 503 and refused.headers["Retry-After"]  # Stripe delivers it again
    opened = client.post("/v1/payments", json={**BODY, "booking_id": "bk_unconfirmed"}, headers=auth)
    assert opened.status_code == 503
    health = client.get("/health")
    assert (health.status_code, health.get_json()["checks"]) == (503, {"redis": "too_few_replicas"})

    replica.start()  # from its AOF; it catches up with the primary
    # Stripe delivers again until it gets a 200. The first delivery's change reached the primary:
    # a retry finds its mark and, before answering 200, has the replica confirm it.
    answers = []

    def delivered() -> bool:
        answers.append(post_event(client, event))
        return bool(answers[-1].status_code == 200)

    wait_for(delivered, 10, "Stripe's retry to get a 200")
    assert answers[-1].get_json()["outcome"] == "duplicate"
    with replica.client() as copy:
        wait_for(lambda: copy.exists(keys.stripe_event(event["id"])) == 1, 5, "the mark on the replica")
    assert client.get("/v1/payments/bk_acked", headers=auth).get_json()["status"] == "paid"
    # The caller's retry reuses the session it was not told about, once the replica has it.
    reused = client.post("/v1/payments", json={**BODY, "booking_id": "bk_unconfirmed"}, headers=auth)
    assert reused.status_code in (200, 201), reused.get_json()
    assert len(stripe.calls("POST", "/v1/checkout/sessions")) == 2  # no third session for the retry


def test_without_replica_acks_a_lone_primary_acknowledges_every_write(
    primary_and_replica: tuple[RedisServer, RedisServer],
    auth: dict[str, str],
    stripe: StripeWire,
    app_factory: Any,
) -> None:
    primary, replica = primary_and_replica
    replica.kill()
    client = app_factory(primary.url).test_client()  # REDIS_REPLICA_ACKS=0, as for make dev's Redis
    assert open_payment(client, auth, "bk_alone")["status"] == "pending"
    assert client.get("/health").status_code == 200


def test_a_managed_endpoint_moved_to_the_promoted_replica_is_followed(
    primary_and_replica: tuple[RedisServer, RedisServer],
    auth: dict[str, str],
    stripe: StripeWire,
    app_factory: Any,
) -> None:
    old, new = primary_and_replica
    endpoint = MovableEndpoint(old.port)
    try:
        client = app_factory(endpoint.url).test_client()
        open_payment(client, auth, "bk_before")
        with new.client() as replica:
            wait_for(lambda: replica.exists(keys.payment("bk_before")) == 1, 5, "the payment on the replica")

        # The provider fails over: promotes the replica, demotes the old primary; its DNS lags.
        with new.client() as promoted, old.client() as demoted:
            promoted.replicaof("NO", "ONE")
            demoted.replicaof("127.0.0.1", new.port)
        health = client.get("/health")
        assert (health.status_code, health.get_json()["checks"]) == (503, {"redis": "replica"})
        refused = client.post("/v1/payments", json={**BODY, "booking_id": "bk_during"}, headers=auth)
        assert refused.status_code == 503

        endpoint.point_to(new.port)  # the endpoint's name now leads to the new primary
        assert open_payment(client, auth, "bk_after")["status"] == "pending"
        assert client.get("/v1/payments/bk_before", headers=auth).status_code == 200
        assert client.get("/health").status_code == 200
        metrics = client.get("/metrics").get_data(as_text=True)
        [failovers] = [
            line for line in metrics.splitlines() if line.startswith("payments_redis_failovers_total")
        ]
        assert float(failovers.split()[-1]) >= 1
        assert f'payments_redis_primary_info{{address="127.0.0.1:{endpoint.port}",mode="url"}} 1.0' in metrics
    finally:
        endpoint.close()


def test_the_old_primary_refuses_writes_once_its_replicas_are_gone(
    tmp_path: Path, auth: dict[str, str], stripe: StripeWire, app_factory: Any
) -> None:
    # min-replicas-to-write, as the README recommends: cut off from its replicas, a primary stops.
    lone = RedisServer(tmp_path / "lone", args=["--min-replicas-to-write", "1"])
    lone.start()
    try:
        client = app_factory(lone.url).test_client()
        refused = client.post("/v1/payments", json=BODY, headers=auth)
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert stripe.calls("POST", "/v1/checkout/sessions") == []  # refused before Stripe was asked
        health = client.get("/health")
        assert (health.status_code, health.get_json()["checks"]) == (503, {"redis": "read_only"})
        with redis.Redis(port=lone.port) as operator:
            operator.config_set("min-replicas-to-write", 0)
        assert client.get("/health").status_code == 200
    finally:
        lone.stop()
