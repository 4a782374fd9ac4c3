"""Round trips to Redis: replies in order, errors isolated, and in gevent workers shared writes."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from redis import BlockingConnectionPool, Redis
from redis.exceptions import ResponseError

from payments_service.storage.pipelining import Pipelined
from tests.support.processes import wait_for
from tests.support.redis_server import free_port


@pytest.fixture
def pool(redis_url: str) -> Any:
    pool = BlockingConnectionPool.from_url(redis_url, max_connections=1)
    yield pool
    pool.disconnect()


def test_replies_come_back_in_order_and_an_error_reply_leaves_the_connection_clean(pool: Any) -> None:
    trips = Pipelined(pool)
    assert trips.run([("SET", "k", "v"), ("GET", "k"), ("GET", "missing")]) == [b"OK", b"v", None]
    with pytest.raises(ResponseError):
        trips.run([("SET", "n", "x"), ("INCR", "n"), ("SET", "after", "1")])
    # Every reply of the failed call was read: the next call gets its own.
    assert trips.run([("GET", "after"), ("GET", "n")]) == [b"1", b"x"]


def test_a_connection_the_server_closed_is_replaced_before_it_is_used(pool: Any, redis_url: str) -> None:
    trips = Pipelined(pool)
    assert trips.run([("CLIENT", "SETNAME", "pooled")]) == [b"OK"]
    with Redis.from_url(redis_url) as operator:
        [pooled] = [c for c in operator.client_list() if c["name"] == "pooled"]
        operator.client_kill_filter(_id=pooled["id"])
        wait_for(lambda: all(c["name"] != "pooled" for c in operator.client_list()), 5, "the kill to land")
    assert trips.run([("PING",)]) == [b"PONG"]  # no error: reconnected first


def gevent_scenario(name: str, redis_url: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.gevent_batching", name, redis_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_under_gevent_concurrent_requests_share_writes_and_each_gets_its_own_replies(redis_url: str) -> None:
    result = gevent_scenario("concurrent", redis_url)
    assert result["seen"] == [[1, 2, 3, 4, 5]] * 100
    assert result["writes"] < result["calls"] / 5  # 500 round trips' commands went out in far fewer writes


def test_under_gevent_an_unreachable_redis_fails_every_request_and_leaves_none_waiting() -> None:
    result = gevent_scenario("refused", f"redis://127.0.0.1:{free_port()}/0")
    assert result["outcomes"] == ["ConnectionError"] * 20


def test_under_gevent_a_request_killed_mid_write_takes_no_one_elses_answer(redis_url: str) -> None:
    result = gevent_scenario("one_killed", redis_url)
    assert result == {"other": [1], "doomed": "killed", "written": ["1"]}


def test_under_gevent_requests_sharing_a_write_share_one_wait_for_the_replicas(redis_url: str) -> None:
    # A WAIT confirms every write before it on its connection: one, sent last, answers them all.
    result = gevent_scenario("shared_wait", redis_url)
    assert result["replies"] == [[1, 0]] * 50  # each its own INCR; WAIT counts the (zero) replicas
    assert 1 <= result["waits"] < 10  # one per shared write, not one per request
