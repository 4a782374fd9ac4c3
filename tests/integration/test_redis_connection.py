"""The Redis connection `serve` uses: its hand-out check answers at once and still spots a dead socket."""

from __future__ import annotations

from redis import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError

from payments_service.storage.gevent_io import GeventFriendlyConnection
from tests.support.processes import wait_for


def dead(connection: GeventFriendlyConnection) -> bool:
    try:
        return connection.can_read()
    except ConnectionError:
        return True


def test_the_check_answers_no_for_an_idle_connection_and_yes_for_a_closed_or_unread_one(
    redis_url: str,
) -> None:
    pool = BlockingConnectionPool.from_url(
        redis_url, max_connections=1, connection_class=GeventFriendlyConnection
    )
    client = Redis(connection_pool=pool)
    try:
        first_id = client.client_id()
        connection = pool.get_connection()
        assert isinstance(connection, GeventFriendlyConnection)
        assert connection.can_read() is False  # idle and healthy: handed out as it is
        with Redis.from_url(redis_url) as operator:
            assert operator.client_kill_filter(_id=first_id) == 1
        wait_for(lambda: dead(connection), 5, "the server to close the connection")
        assert dead(connection)  # the server closed it: readable (EOF), as redis-py's own check sees it
        pool.release(connection)
        assert client.client_id() != first_id  # and the next command runs on a new connection
        connection = pool.get_connection()
        connection.send_command("PING")  # an answer nobody reads
        wait_for(connection.can_read, 5, "the unread answer to arrive")
        assert connection.can_read() is True
        connection.disconnect()
        pool.release(connection)
    finally:
        pool.disconnect()
