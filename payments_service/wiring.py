"""Builds the service objects from Settings; shared by the app, the worker and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis import BlockingConnectionPool, Redis

from .delivery.outbox import Outbox
from .domain.payments import OPEN
from .observability.metrics import StateCollector
from .settings import Settings
from .storage.connection import connection_class
from .storage.pipelining import GeventBatching, Pipelined
from .storage.store import PaymentStore
from .stripe_api.gateway import StripeGateway
from .stripe_api.transport import gevent_patched
from .usecases.checkout import CheckoutService
from .usecases.refunds import RefundService
from .usecases.stripe_facts import StripeSync


@dataclass(frozen=True)
class Services:
    """Everything a request, a job or a command needs, built once per process."""

    settings: Settings
    redis: Redis
    store: PaymentStore
    outbox: Outbox
    stripe: StripeGateway
    sync: StripeSync
    checkout: CheckoutService
    refunds: RefundService

    def state(self) -> dict[str, Any]:
        """What /health and /metrics report from Redis."""
        stats = self.store.stats()
        return {
            "events": self.outbox.counts(),
            "queue_depth": self.outbox.ready(),
            "oldest_pending_age": self.outbox.oldest_pending_age(datetime.now(UTC)),
            "open": {status.value: self.store.count_in_status(status) for status in sorted(OPEN)},
            "deliveries": {
                k.removeprefix("deliveries:"): v for k, v in stats.items() if k.startswith("deliveries:")
            },
            "reconcile_changes": stats.get("reconcile:changes", 0),
        }

    def state_collector(self) -> StateCollector:
        return StateCollector(self.state)


# Connections per process. Hundreds of gevent requests share them: one that finds all busy
# waits for one (the default pool would fail it instead) for at most the socket timeout.
REDIS_MAX_CONNECTIONS = 64


def redis_client(settings: Settings, socket_timeout: float = 5) -> Redis:
    """Short timeouts: a Redis outage must become a 503 quickly, not a hung request."""
    options: dict[str, Any] = {}
    if settings.redis_url.startswith("redis://"):  # rediss:// and unix:// keep their own classes
        options["connection_class"] = connection_class()
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=socket_timeout,
        socket_connect_timeout=2,
        socket_timeout=socket_timeout,
        health_check_interval=30,
        **options,
    )
    return Redis(connection_pool=pool)


def build(settings: Settings, redis: Redis | None = None) -> Services:
    """Wire the object graph; no network calls happen here."""
    redis = redis or redis_client(settings)
    outbox = Outbox(redis, settings.event_retry_schedule, settings.event_delivery_timeout)
    # In serve's gevent workers, concurrent requests share Redis round trips (see redis_pipelining).
    batching = GeventBatching if gevent_patched() else Pipelined
    store = PaymentStore(redis, outbox, batching(redis.connection_pool))
    stripe = StripeGateway.from_settings(settings)
    sync = StripeSync(store, stripe)
    return Services(
        settings=settings,
        redis=redis,
        store=store,
        outbox=outbox,
        stripe=stripe,
        sync=sync,
        checkout=CheckoutService(store, stripe, sync, settings),
        refunds=RefundService(store, stripe, sync),
    )
