"""redis-py under gevent (`serve`'s workers): shared round trips, and a hand-out check that never yields.

Shared round trips: dozens of requests are in flight at once in a gevent worker, so the ones that
are ready in the same turn of the hub put their commands into one write on one connection (what
ioredis calls auto-pipelining). Sent one request at a time, each round trip's send, Redis wakeup
and reply parse was the largest part of a webhook's CPU. Each request still gets exactly its own
replies, in order.

The hand-out check: before handing out a pooled connection, redis-py polls it
(`can_read(timeout=0)`) for a closed socket or unread data. Under gevent, `select.poll` is
gevent's, which parks the greenlet on the hub for a loop turn even with a zero timeout: CPU on
every Redis call, and a place at the back of the run queue. Here the socket is asked with the
operating system's poll, which answers at once; a readable socket (data or EOF) still goes
through redis-py's own check, so the answer is the same.
"""

from __future__ import annotations

import select
from collections.abc import Sequence
from typing import Any

import gevent
from gevent import monkey
from gevent.event import AsyncResult
from redis import ConnectionPool

from .connections import FollowingConnection
from .pipelining import Command, Pipelined, raise_first

_os_poll: Any = monkey.get_original("select", "poll")


class GeventFriendlyConnection(FollowingConnection):
    """A connection that follows the primary, whose zero-timeout readiness check never yields to gevent."""

    def can_read(self, timeout: float = 0) -> bool:
        sock = self._sock
        if timeout == 0 and sock is not None:
            poller = _os_poll()
            poller.register(sock.fileno(), select.POLLIN)
            if not poller.poll(0):
                # Nothing on the socket and not closed. (Bytes already inside redis-py's parser
                # are only left behind by a read it abandoned, and then it disconnects.)
                return False
        return bool(super().can_read(timeout))


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
        return raise_first(replies)

    def _send_waiting(self) -> None:
        batch, self._waiting = self._waiting, []
        sent = [command for commands, _ in batch for command in commands if not _is_wait(command)]
        waits = [command for commands, _ in batch for command in commands if _is_wait(command)]
        if waits:
            # One WAIT, sent last, confirms every write before it on the connection: each request's
            # WAIT gets its answer, and the write costs one replica round trip instead of one each.
            sent.append(("WAIT", max(int(w[1]) for w in waits), max(int(w[2]) for w in waits)))
        try:
            replies = self._send(sent)
        except Exception as error:  # every request in the write fails the same way
            for _, result in batch:
                result.set_exception(error)
            return
        position = 0
        for commands, result in batch:
            own = []
            for command in commands:
                if _is_wait(command):
                    own.append(replies[-1])
                else:
                    own.append(replies[position])
                    position += 1
            result.set(own)


def _is_wait(command: Command) -> bool:
    return str(command[0]).upper() == "WAIT"
