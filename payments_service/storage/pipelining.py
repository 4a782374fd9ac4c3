"""Redis commands the hot paths send: one write per round trip, shared by concurrent requests in `serve`.

A webhook needs two round trips (read, then a compare-and-set script), and so does a checkout. Sent
one request at a time, each round trip costs a send, a wakeup of Redis and a reply parse, which
was the largest part of a webhook's CPU. Inside a gevent worker dozens of requests are in
flight at once, so GeventBatching lets the requests that are ready in the same turn of the hub
put their commands into one write on one connection (what ioredis calls auto-pipelining).
Each request still gets exactly its own replies, in order. Pipelining is not a transaction:
anything that must be atomic is one command (a script).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gevent
from gevent.event import AsyncResult
from redis import ConnectionPool
from redis.exceptions import ConnectionError, ResponseError

Command = Sequence[Any]


class Pipelined:
    """Each call's commands in one write on one pooled connection; raw replies back, in order."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def run(self, commands: Sequence[Command]) -> list[Any]:
        """The replies to `commands`; raises the first error reply (after reading them all)."""
        return _raise_first(self._send(commands))

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


class GeventBatching(Pipelined):
    """Pipelined, and requests ready in the same turn of gevent's hub share one write."""

    def __init__(self, pool: ConnectionPool) -> None:
        super().__init__(pool)
        self._waiting: list[tuple[Sequence[Command], AsyncResult]] = []

    def run(self, commands: Sequence[Command]) -> list[Any]:
        result = AsyncResult()
        self._waiting.append((commands, result))
        if len(self._waiting) == 1:
            # A greenlet of its own sends the write: it starts after every greenlet that is ready
            # now, and those add their commands to it. It belongs to no request, so a request
            # that is killed meanwhile takes nobody else's answer with it.
            gevent.spawn(self._send_waiting)
        replies: list[Any] = result.get()
        return _raise_first(replies)

    def _send_waiting(self) -> None:
        batch, self._waiting = self._waiting, []
        try:
            replies = self._send([command for commands, _ in batch for command in commands])
        except Exception as error:  # every request in the write fails the same way
            for _, result in batch:
                result.set_exception(error)
            return
        start = 0
        for commands, result in batch:
            result.set(replies[start : start + len(commands)])
            start += len(commands)


def _unusable(connection: Any) -> bool:
    try:
        return bool(connection.can_read())
    except ConnectionError:
        return True


def _raise_first(replies: list[Any]) -> list[Any]:
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    return replies
