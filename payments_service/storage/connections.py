"""Connections that follow the primary: they connect where `Primary` says, and report when it moved.

An answer that says this node is not (or no longer) where we may write is turned into an error that
callers can tell from a lost connection: `WriteRefused` means Redis did not run the command, so
nothing was written and retrying elsewhere is safe. These are ConnectionErrors too, so redis-py and
RQ, which already retry those, retry these; the connection is closed either way.
"""

from __future__ import annotations

from typing import Any

from redis import BlockingConnectionPool
from redis.connection import Connection, SSLConnection
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ConnectionError,
    MasterDownError,
    MovedError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TimeoutError,
    TryAgainError,
)

from .primary import Primary


class WriteRefused(RedisError):
    """Redis refused the command without running it: nothing was written."""


class NotPrimary(WriteRefused, ConnectionError):
    """The node answered as a replica (READONLY, UNBLOCKED, MASTERDOWN) or sent us elsewhere (MOVED)."""


class SlotMoving(WriteRefused, ConnectionError):
    """A Cluster slot is being migrated or the Cluster is down (ASK, TRYAGAIN, CLUSTERDOWN): try again."""


class NotEnoughReplicas(WriteRefused, ConnectionError):
    """The primary has fewer good replicas than its `min-replicas-to-write` (NOREPLICAS)."""


class FollowingConnection(Connection):
    """A redis-py connection that connects to the current primary and reports when it moved."""

    def __init__(self, *, primary: Primary | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self.primary = primary or Primary()
        self.generation = self.primary.generation

    def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        if self._sock:
            return
        # Pools other than ours (RQ's scheduler builds its own) never ask at hand-out: ask here too,
        # or a connection lost with a dead primary would reopen to it once it is back.
        self.primary.look_if_due()
        # Generation first: if the primary moves meanwhile, this connection is only reopened once more.
        self.generation = self.primary.generation
        address = self.primary.address()
        if address is not None:
            self.host, self.port = address
        try:
            super().connect_check_health(check_health, retry_socket_connect)
        except (ConnectionError, TimeoutError):
            self.primary.unreachable(self.generation)
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except (ConnectionError, TimeoutError):
            self.primary.unreachable(self.generation)
            raise
        except ResponseError as error:
            refused = self._refusal(error)
            if refused is None:
                raise
            # Replies still unread on this connection belong to nobody now.
            self.disconnect()  # type: ignore[no-untyped-call]
            raise refused from None

    def _refusal(self, error: ResponseError) -> WriteRefused | None:
        where = f"{self.host}:{self.port}"
        code = str(error).split(" ", 1)[0]
        if isinstance(error, MovedError):
            self.primary.moved(self.generation, (str(error.host), int(error.port)))
            return NotPrimary(f"{where} answered MOVED to {error.host}:{error.port}")
        if isinstance(error, ReadOnlyError | MasterDownError) or code == "UNBLOCKED":
            self.primary.moved(self.generation)
            return NotPrimary(f"{where} is not the primary ({code})")
        if isinstance(error, AskError | TryAgainError | ClusterDownError):
            if isinstance(error, ClusterDownError):
                self.primary.unreachable(self.generation)
            return SlotMoving(f"{where}: the slot is moving or the Cluster is down ({code})")
        if code == "NOREPLICAS":
            self.primary.unreachable(self.generation)
            return NotEnoughReplicas(f"{where} has too few good replicas to write (NOREPLICAS)")
        return None


class FollowingSSLConnection(FollowingConnection, SSLConnection):
    """FollowingConnection over TLS (rediss://)."""


class PrimaryPool(BlockingConnectionPool):
    """A blocking pool whose connections all belong to the primary's current generation.

    The primary is looked for at hand-out when due, and a connection opened before it last
    moved is reopened before anyone writes on it.
    """

    def __init__(self, primary: Primary, **kwargs: Any) -> None:
        self.primary = primary
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        if issubclass(self.connection_class, FollowingConnection):
            self.connection_kwargs["primary"] = primary

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        self.primary.look_if_due()
        connection = super().get_connection()  # type: ignore[no-untyped-call]
        if getattr(connection, "generation", self.primary.generation) != self.primary.generation:
            try:
                connection.disconnect()
                connection.connect()
            except BaseException:
                self.release(connection)  # type: ignore[no-untyped-call]
                raise
        return connection
