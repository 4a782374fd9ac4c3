"""Where this process writes: the current Redis primary, found through Sentinel or a Cluster, or a URL.

Every connection asks `Primary` for the address when it connects, and every connection a pool hands
out belongs to the primary's current generation: when the primary moves (Sentinel names another,
a Cluster node answers MOVED, the old one answers READONLY) the generation grows and every older
connection is closed at its next hand-out, so nothing more is written to the old primary.

Sentinel is asked again at most every SENTINEL_POLL_SECONDS while connections are handed out (a
demoted primary keeps taking writes until Sentinel reconfigures it, seconds later), and at once
after an error. It also tells how many replicas are healthy: a write is acknowledged only once each
of them has it (storage/replicas.py), because Sentinel may promote any of them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from redis import Redis
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import ConnectionError, RedisError
from redis.retry import Retry
from redis.sentinel import Sentinel

from .keys import KEY_TAG

log = logging.getLogger(__name__)

Address = tuple[str, int]
# Between Sentinel's switch to a new primary and our next look, writes still reach the old one.
SENTINEL_POLL_SECONDS = 1.0
# After an error, ask again soon, but not once per failing request.
LOOK_AGAIN_SECONDS = 0.2
# Sentinels and Cluster seeds answer in microseconds; one that does not is skipped quickly, and
# not retried (redis-py's clients retry ten times by default): the next one is asked instead.
DISCOVERY_TIMEOUT_SECONDS = 0.5


def _discovery_options() -> dict[str, Any]:
    return {
        "socket_timeout": DISCOVERY_TIMEOUT_SECONDS,
        "socket_connect_timeout": DISCOVERY_TIMEOUT_SECONDS,
        "retry": Retry(NoBackoff(), 0),
    }


SLOT = key_slot(KEY_TAG.encode())


class Located(Protocol):
    """Asks the deployment where the primary is."""

    mode: str
    poll_seconds: float | None  # ask again this often even without errors (None: only after errors)

    def locate(self) -> tuple[Address, int | None]:
        """The primary's address and its healthy replicas (None: not known); ConnectionError if none."""


class Primary:
    """This process's view of where the primary is; shared by all its connections (and pools)."""

    def __init__(
        self,
        locator: Located | None = None,
        url_address: Address | None = None,
        on_move: Callable[[], None] | None = None,
    ) -> None:
        self._locator = locator
        self._url_address = url_address
        self._on_move = on_move
        self._address: Address | None = None
        self._replicas = 0
        self._next_look = 0.0
        self._lock = threading.Lock()
        self.generation = 0
        self.moves = 0

    @property
    def mode(self) -> str:
        return self._locator.mode if self._locator else "url"

    @property
    def healthy_replicas(self) -> int:
        """Replicas the deployment reports healthy and following this primary (0 when it cannot tell)."""
        return self._replicas

    def describe(self) -> str:
        """host:port of the primary in use, as far as this process knows."""
        address = self._address or self._url_address
        return f"{address[0]}:{address[1]}" if address else "unknown"

    def address(self) -> Address | None:
        """Where a connection should connect now (None: the host in REDIS_URL)."""
        if self._locator is None:
            return None
        if self._address is None:
            self._look(force=True)
        return self._address

    def look_if_due(self) -> None:
        """Ask the locator again when it is time; called at each connection hand-out, so it must be cheap."""
        if self._locator is not None and time.monotonic() >= self._next_look:
            self._look()

    def moved(self, generation: int, hint: Address | None = None) -> None:
        """A connection of `generation` was told it no longer talks to the primary (READONLY, MOVED)."""
        if self._locator is not None and hint is None:
            self.unreachable(generation)
            return
        with self._lock:
            if generation != self.generation:
                return  # another connection already reported it
            # Without a locator: a URL's host (a managed primary endpoint) resolves anew on reconnect.
            self._switch(hint)

    def unreachable(self, generation: int) -> None:
        """A connection of `generation` failed: ask the locator again soon."""
        if self._locator is not None and generation == self.generation:
            self._next_look = min(self._next_look, time.monotonic() + LOOK_AGAIN_SECONDS)

    def _look(self, force: bool = False) -> None:
        if self._locator is None:
            return
        if not self._lock.acquire(blocking=force):
            return  # someone else is asking; use what we know meanwhile
        try:
            if not force and time.monotonic() < self._next_look:
                return
            poll = self._locator.poll_seconds
            self._next_look = time.monotonic() + (poll if poll is not None else float("inf"))
            try:
                address, replicas = self._locator.locate()
            except ConnectionError:
                self._next_look = time.monotonic() + LOOK_AGAIN_SECONDS
                if self._address is None:
                    raise
                log.warning("redis primary: cannot locate it; keeping %s", self.describe())
                return
            if replicas is not None and replicas != self._replicas:
                # A count that could not be read keeps the last one: a lower count would let a
                # write be acknowledged by fewer replicas than Sentinel may promote from.
                log.info(
                    "redis primary: healthy replicas changed",
                    extra={"primary": f"{address[0]}:{address[1]}", "from": self._replicas, "to": replicas},
                )
                self._replicas = replicas
            if self._address is None:
                self._address = address
            elif address != self._address:
                self._switch(address)
        finally:
            self._lock.release()

    def _switch(self, address: Address | None) -> None:
        old = self.describe()
        if address is not None:
            if address == self._address:
                return
            self._address = address
        self.generation += 1
        self.moves += 1
        log.warning("redis primary moved", extra={"from": old, "to": self.describe()})
        if self._on_move is not None:
            self._on_move()


class SentinelLocator:
    """The primary the Sentinels name for a service, with its healthy replicas.

    Every Sentinel is asked and the newest configuration wins (its config epoch). The Sentinel that
    runs a failover announces the new primary to the others at once, but names it itself only once
    the other replicas follow it, seconds later: while its answer says "failover in progress", the
    others' answers are taken.
    """

    mode = "sentinel"
    poll_seconds: float | None = SENTINEL_POLL_SECONDS

    def __init__(self, sentinels: Sequence[Address], service: str, options: dict[str, Any]) -> None:
        self._service = service
        self._sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(sentinels),
            sentinel_kwargs={**_discovery_options(), **options},
        )

    def locate(self) -> tuple[Address, int | None]:
        newest: tuple[int, Address, Redis] | None = None
        errors = []
        for sentinel in self._sentinel.sentinels:
            try:
                state: Any = sentinel.sentinel_master(self._service, return_responses=True)
            except RedisError as exc:
                where = sentinel.connection_pool.connection_kwargs
                errors.append(f"{where.get('host')}:{where.get('port')} {type(exc).__name__}")
                continue
            flags = state["flags"]
            flags = set(flags.split(",")) if isinstance(flags, str) else set(flags)
            if "failover_in_progress" in flags or not self._sentinel.check_master_state(  # type: ignore[no-untyped-call]
                state, self._service
            ):
                continue
            epoch = int(state.get("config-epoch", 0))
            if newest is None or epoch > newest[0]:
                newest = (epoch, (str(state["ip"]), int(state["port"])), sentinel)
        if newest is None:
            reason = ", ".join(errors) if errors else "a failover is in progress"
            raise ConnectionError(f"no Sentinel names a primary for {self._service!r} now: {reason}")
        _, address, sentinel = newest
        try:
            replicas = sentinel.sentinel_slaves(self._service)
        except RedisError as exc:
            # Without the replicas, the answer is incomplete: as if this Sentinel had not answered.
            raise ConnectionError(f"Sentinel did not list the replicas: {type(exc).__name__}") from None
        # Every replica Sentinel could promote: one not marked down, that follows this primary. One
        # still copying the primary's data counts, and so does one Sentinel has just lost its link to
        # (promoting a replica closes every client connection to it, Sentinels' links included);
        # the old primary, listed as a replica before it has been told to follow, does not.
        promotable = [
            r
            for r in replicas
            if not (r["is_sdown"] or r["is_odown"])
            and (str(r.get("master-host")), int(r.get("master-port", 0))) == address
        ]
        return address, len(promotable)


class ClusterLocator:
    """The Cluster node that owns the one hash slot every key of ours is in, asked through any seed."""

    mode = "cluster"
    poll_seconds: float | None = None  # a node that lost the slot answers MOVED with its new owner

    def __init__(self, seeds: Sequence[Address], options: dict[str, Any]) -> None:
        self._seeds = list(seeds)
        self._options = options

    def locate(self) -> tuple[Address, int | None]:
        errors = []
        for host, port in self._seeds:
            try:
                with Redis(host, port, **_discovery_options(), **self._options) as node:
                    ranges: Any = node.execute_command("CLUSTER SLOTS")
            except RedisError as exc:
                errors.append(f"{host}:{port} {type(exc).__name__}")
                continue
            for start, end, (owner_host, owner_port, *_), *_replicas in ranges:
                if int(start) <= SLOT <= int(end):
                    owner = owner_host.decode() if isinstance(owner_host, bytes) else str(owner_host)
                    # A node that does not know its own address announces it as "" or "?".
                    return (owner if owner not in ("", "?") else host, int(owner_port)), 0
            errors.append(f"{host}:{port} has no owner for slot {SLOT}")
        raise ConnectionError(f"no Redis Cluster seed named the owner of slot {SLOT}: {', '.join(errors)}")
