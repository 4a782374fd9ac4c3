"""The compare-and-write script, operation by operation, against a real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from payments_service.domain.payments import Payment
from payments_service.storage import compare_and_write as cw
from payments_service.storage.pipelining import Pipelined
from payments_service.storage.records import encode
from tests.support.payments import pending_payment

KEY = "{payments}:payment:bk_cw"
OTHER = "{payments}:other"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as connection:
        yield connection


def payment(version: int = 1, cancel_requested: bool = False) -> Payment:
    return pending_payment(booking_id="bk_cw", version=version, cancel_requested=cancel_requested)


def write(client: redis.Redis, previous: Payment | None, new: Payment | None, *ops: cw.Op) -> int:
    return cw.run(Pipelined(client.connection_pool), client, KEY, previous, encode(new) if new else "", ops)


def test_a_first_write_needs_no_payment_and_a_second_first_write_is_refused(client: redis.Redis) -> None:
    assert write(client, None, payment()) == cw.WRITTEN
    assert write(client, None, payment(version=9)) == cw.CHANGED
    assert b'"version":1' in (client.get(KEY) or b"")


def test_a_write_over_another_version_or_cancel_mark_changes_nothing(client: redis.Redis) -> None:
    write(client, None, payment())
    assert write(client, payment(version=2), payment(version=3), cw.set_value(OTHER, "x")) == cw.CHANGED
    assert write(client, payment(cancel_requested=True), payment(version=2)) == cw.CHANGED
    assert client.exists(OTHER) == 0
    assert write(client, payment(), payment(version=2), cw.set_value(OTHER, "x")) == cw.WRITTEN
    assert client.get(OTHER) == b"x"


def test_mark_sets_an_expiring_key_once_and_a_second_mark_writes_nothing(client: redis.Redis) -> None:
    write(client, None, payment())
    assert write(client, payment(), payment(version=2), cw.mark("{payments}:mark", 60)) == cw.WRITTEN
    assert 0 < client.ttl("{payments}:mark") <= 60
    assert write(client, payment(version=2), payment(version=3), cw.mark("{payments}:mark", 60)) == cw.MARKED
    assert b'"version":2' in (client.get(KEY) or b"")


def test_zadd_and_zrem_keep_an_index(client: redis.Redis) -> None:
    write(client, None, payment(), cw.zadd("{payments}:index", "bk_cw", 42))
    assert client.zscore("{payments}:index", "bk_cw") == 42
    write(client, payment(), payment(version=2), cw.zrem("{payments}:index", "bk_cw"))
    assert client.zcard("{payments}:index") == 0


def test_release_deletes_a_lock_only_for_its_owner(client: redis.Redis) -> None:
    client.set("{payments}:lock", "someone-else")
    write(client, None, payment(), cw.release("{payments}:lock", "me"))
    assert client.get("{payments}:lock") == b"someone-else"
    client.set("{payments}:lock", "me")
    write(client, payment(), payment(version=2), cw.release("{payments}:lock", "me"))
    assert client.exists("{payments}:lock") == 0


def test_xadd_appends_the_fields_as_one_stream_entry(client: redis.Redis) -> None:
    write(client, None, payment(), cw.xadd("{payments}:stream", ("id", "msg_1", "body", "{}")))
    [(_, fields)] = client.xrange("{payments}:stream")
    assert fields == {b"id": b"msg_1", b"body": b"{}"}


def test_an_empty_new_payment_leaves_the_payment_and_still_writes_the_operations(client: redis.Redis) -> None:
    write(client, None, payment())
    assert write(client, payment(), None, cw.set_value(OTHER, "y")) == cw.WRITTEN
    assert b'"version":1' in (client.get(KEY) or b"") and client.get(OTHER) == b"y"


def test_an_unknown_operation_is_refused_before_anything_is_written(client: redis.Redis) -> None:
    write(client, None, payment())
    with pytest.raises(redis.ResponseError, match="unknown operation bogus"):
        write(client, payment(), payment(version=2), cw.set_value(OTHER, "z"), cw.Op("bogus", OTHER, ()))
    assert b'"version":1' in (client.get(KEY) or b"")  # neither the payment nor the earlier op
    assert client.exists(OTHER) == 0


def test_a_redis_that_forgot_the_script_gets_it_again(client: redis.Redis) -> None:
    write(client, None, payment())
    client.script_flush()
    assert write(client, payment(), payment(version=2)) == cw.WRITTEN
