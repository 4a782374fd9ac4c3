"""Redis commands the hot paths send: each call's commands in one write on one connection.

A webhook needs two round trips (read, then the compare-and-write script), and so does a
checkout. Under gevent, storage/gevent_io.py lets concurrent requests share these writes.
Pipelining is not a transaction: anything that must be atomic is one command (a script).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis import ConnectionPool
from redis.exceptions import ConnectionError, ResponseError

Command = Sequence[Any]


class Pipelined:
    """Each call's commands in one write on one pooled connection; raw replies back, in order."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def run(self, commands: Sequence[Command]) -> list[Any]:
        """The replies to `commands`; raises the first error reply (after reading them all)."""
        return raise_first(self._send(commands))

    def _send(self, commands: Sequence[Command]) -> list[Any]:
        """Replies, with error replies as ResponseError values; a dead connection raises."""
        connection: Any = self._pool.get_connection()  # redis-py's Connection is untyped
        try:
            if _unusable(connection):
                # Closed by the server (a restart, an idle timeout) or holding a stray answer.
                connection.disconnect()
                connection.connect()
            connection.send_packed_command(connection.pack_commands(commands))
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except ResponseError as error:
                    replies.append(error)
            return replies
        except BaseException:
            connection.disconnect()  # the replies left on it belong to no one now
            raise
        finally:
            self._pool.release(connection)


def _unusable(connection: Any) -> bool:
    try:
        return bool(connection.can_read())
    except ConnectionError:
        return True


def raise_first(replies: list[Any]) -> list[Any]:
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    return replies
