"""The wiring: builds the object graph from Settings; shared by the app, the worker and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis import BlockingConnectionPool, Redis

from .delivery.outbox import Outbox
from .domain.payments import OPEN
from .observability import metrics
from .observability.metrics import StateCollector
from .settings import Settings
from .storage.connection import connection_class
from .storage.pipelining import GeventBatching, Pipelined
from .storage.store import PaymentStore
from .stripe_api.gateway import StripeGateway
from .stripe_api.transport import gevent_patched
from .usecases.checkout import CheckoutService
from .usecases.reconcile import Reconciler
from .usecases.refunds import RefundService
from .usecases.stripe_facts import StripeFactsService


@dataclass(frozen=True)
class Components:
    """Everything a request, a job or a command needs, built once per process."""

    settings: Settings
    redis: Redis
    store: PaymentStore
    outbox: Outbox
    stripe: StripeGateway
    facts: StripeFactsService
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

    def reconciler(self, progress: Callable[[str], None] | None = None) -> Reconciler:
        """A reconciliation pass's driver, paced by RECONCILE_MAX_RPS."""
        return Reconciler(
            self.store,
            self.stripe,
            self.facts,
            max_rps=self.settings.reconcile_max_rps,
            pending_after=self.settings.reconcile_after,
            progress=progress,
        )


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


def build(settings: Settings, redis: Redis | None = None) -> Components:
    """Wire the object graph; no network calls happen here."""
    redis = redis or redis_client(settings)
    outbox = Outbox(redis, settings.event_retry_schedule, settings.event_delivery_timeout)
    # In serve's gevent workers, concurrent requests share Redis round trips (see redis_pipelining).
    batching = GeventBatching if gevent_patched() else Pipelined
    store = PaymentStore(redis, outbox, batching(redis.connection_pool))
    stripe = StripeGateway.from_settings(settings)
    facts = StripeFactsService(store, stripe, published=metrics.payment_event_published)
    return Components(
        settings=settings,
        redis=redis,
        store=store,
        outbox=outbox,
        stripe=stripe,
        facts=facts,
        checkout=CheckoutService(store, stripe, facts, settings),
        refunds=RefundService(store, stripe, facts),
    )
