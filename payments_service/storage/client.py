"""The Redis client every process uses: a blocking pool and short timeouts."""

from __future__ import annotations

from typing import Any

from redis import BlockingConnectionPool, Redis
from redis.connection import Connection

# Connections per process. Hundreds of gevent requests share them: one that finds all busy
# waits for one (the default pool would fail it instead) for at most the socket timeout.
REDIS_MAX_CONNECTIONS = 64


def redis_client(
    url: str, socket_timeout: float = 5, connection_class: type[Connection] | None = None
) -> Redis:
    """Short timeouts: a Redis outage must become a 503 quickly, not a hung request.

    `connection_class` replaces redis-py's for plain redis:// URLs (rediss:// and unix:// keep theirs).
    """
    options: dict[str, Any] = {}
    if connection_class is not None and url.startswith("redis://"):
        options["connection_class"] = connection_class
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=socket_timeout,
        socket_connect_timeout=2,
        socket_timeout=socket_timeout,
        health_check_interval=30,
        **options,
    )
    return Redis(connection_pool=pool)
