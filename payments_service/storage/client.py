"""The Redis clients every process uses: a blocking pool, short timeouts, connections that follow the primary.

Where the primary is comes from the settings: REDIS_SENTINELS (Sentinel names it), REDIS_CLUSTER_NODES
(the node that owns our one slot), or REDIS_URL's host. REDIS_URL still gives the database,
credentials and TLS in every case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from redis import Redis
from redis.connection import Connection, SSLConnection, parse_url

from .connections import FollowingConnection, FollowingSSLConnection, PrimaryPool
from .primary import ClusterLocator, Located, Primary, SentinelLocator

if TYPE_CHECKING:
    from ..settings import Settings

# Connections per process. Hundreds of gevent requests share them: one that finds all busy
# waits for one (the default pool would fail it instead) for at most the socket timeout.
REDIS_MAX_CONNECTIONS = 64


def primary_for(settings: Settings, on_move: Callable[[], None] | None = None) -> Primary:
    """Where this process finds its primary; one per process, shared by all its Redis clients."""
    options = url_options(settings.redis_url)
    locator: Located | None = None
    if settings.redis_sentinels:
        sentinel_options: dict[str, Any] = {}
        if settings.redis_sentinel_password:
            sentinel_options["password"] = settings.redis_sentinel_password
        tls = settings.redis_sentinel_tls
        if tls is None:
            tls = urlsplit(settings.redis_url).scheme == "rediss"
        if tls:
            sentinel_options.update(ssl=True, **_tls_options(options))
        service = str(settings.redis_sentinel_master)
        locator = SentinelLocator(settings.redis_sentinels, service, sentinel_options)
    elif settings.redis_cluster_nodes:
        node_options = {k: v for k, v in options.items() if k in ("username", "password")}
        if options.get("connection_class") is SSLConnection:
            node_options.update(ssl=True, **_tls_options(options))
        locator = ClusterLocator(settings.redis_cluster_nodes, node_options)
    url_address = None
    if "host" in options:
        url_address = (str(options["host"]), int(options.get("port", 6379)))
    return Primary(locator, url_address, on_move)


def redis_client(
    url: str,
    socket_timeout: float = 5,
    connection_class: type[Connection] | None = None,
    primary: Primary | None = None,
) -> Redis:
    """Short timeouts: a Redis outage must become a 503 quickly, not a hung request.

    `connection_class` replaces ours for redis:// URLs (a FollowingConnection subclass, such as
    serve's gevent one); rediss:// connects over TLS and unix:// keeps redis-py's own.
    """
    options = url_options(url)
    scheme = urlsplit(url).scheme
    if scheme == "redis":
        options["connection_class"] = connection_class or FollowingConnection
    elif scheme == "rediss":
        options["connection_class"] = FollowingSSLConnection
    if primary is None:
        primary = Primary(url_address=(str(options.get("host", "localhost")), int(options.get("port", 6379))))
    pool = PrimaryPool(
        primary,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=socket_timeout,
        socket_connect_timeout=2,
        socket_timeout=socket_timeout,
        health_check_interval=30,
        **options,
    )
    return Redis(connection_pool=pool)


def url_options(url: str) -> dict[str, Any]:
    """What redis-py reads from a URL (host, port, db, credentials, TLS options, connection class)."""
    return dict(parse_url(url))  # type: ignore[no-untyped-call]


def _tls_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k.startswith("ssl_")}
