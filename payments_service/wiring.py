"""The wiring: builds the object graph from Settings; shared by the app, the worker and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from redis import Redis

from .delivery.outbox import Outbox
from .delivery.queue import DeliveryQueue
from .domain.payments import OPEN
from .observability import metrics
from .observability.metrics import PrimaryCollector, StateCollector, StripeBudgetCollector
from .settings import Settings
from .storage.client import primary_for, redis_client
from .storage.pipelining import Pipelined
from .storage.primary import Primary
from .storage.replicas import ReplicaAcks, writable
from .storage.store import PaymentStore
from .storage.stripe_budget import BudgetCalendar
from .stripe_api.budget import StripeBudget
from .stripe_api.gateway import StripeGateway
from .usecases.checkout import CheckoutService
from .usecases.ledger import Ledger
from .usecases.reconcile import Reconciler
from .usecases.refunds import RefundService
from .usecases.stripe_facts import StripeFactsService


@dataclass(frozen=True)
class Components:
    """Everything a request, a job or a command needs, built once per process."""

    settings: Settings
    runtime: Runtime
    redis: Redis
    store: PaymentStore
    outbox: Outbox
    deliveries: DeliveryQueue
    stripe: StripeGateway
    facts: StripeFactsService
    checkout: CheckoutService
    refunds: RefundService
    primary: Primary
    acks: ReplicaAcks
    budget: StripeBudget

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
            "reconcile_skipped": stats.get("reconcile:skipped", 0),
            "rebuilt": stats.get("rebuilt", 0),
        }

    def state_collector(self) -> StateCollector:
        return StateCollector(self.state)

    def primary_collector(self) -> PrimaryCollector:
        return PrimaryCollector(lambda: (self.primary.mode, self.primary.describe()))

    def redis_writable(self) -> str:
        """'ok', or why Redis would refuse our writes now: 'replica', 'read_only', 'too_few_replicas'."""
        return writable(self.redis, self.acks)

    def new_redis(self, socket_timeout: float) -> Redis:
        """Another client on the same primary (the worker's, whose blocking reads need a longer timeout)."""
        return redis_client(self.settings.redis_url, socket_timeout=socket_timeout, primary=self.primary)

    def stripe_budget_collector(self) -> StripeBudgetCollector:
        return StripeBudgetCollector(self.budget.usage)

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


class Runtime(StrEnum):
    """How the process runs requests, which decides a few of the objects the wiring builds."""

    THREADS = "threads"  # the worker, the CLI, the tests, `gunicorn wsgi:app` with sync workers
    GEVENT = "gevent"  # serve's gunicorn workers: gevent has patched the process

    @classmethod
    def of_this_process(cls) -> Runtime:
        """For entry points that cannot be told (`gunicorn wsgi:app -k ...`): ask gevent."""
        from gevent import monkey

        return cls.GEVENT if monkey.is_module_patched("socket") else cls.THREADS


def build(settings: Settings, runtime: Runtime = Runtime.THREADS, redis: Redis | None = None) -> Components:
    """Wire the object graph for a runtime; no network calls happen here."""
    trips: type[Pipelined] = Pipelined
    connection_class = None
    if runtime is Runtime.GEVENT:
        # Concurrent requests share Redis round trips, and hand-out checks never yield to the hub.
        from .storage.gevent_io import GeventBatching, GeventFriendlyConnection

        trips, connection_class = GeventBatching, GeventFriendlyConnection
    primary = primary_for(settings, on_move=metrics.redis_failover)
    redis = redis or redis_client(settings.redis_url, connection_class=connection_class, primary=primary)
    acks = ReplicaAcks(settings.redis_replica_acks, settings.redis_replica_ack_timeout_ms, primary)
    deliveries = DeliveryQueue(redis, settings.event_retry_schedule, settings.event_delivery_timeout)
    store = PaymentStore(redis, trips(redis.connection_pool), settings.payment_retention_seconds, acks)
    outbox = Outbox(redis, deliveries, confirm=lambda: acks.confirm(store.trips))
    # One budget of Stripe calls shared with every other process, kept beside the payments.
    calendar = BudgetCalendar(redis, store.trips, "live" if settings.stripe_live_mode else "test")
    budget = StripeBudget.from_settings(settings, calendar)
    stripe = StripeGateway.from_settings(settings, gevent=runtime is Runtime.GEVENT, budget=budget)
    ledger = Ledger(store, stripe, settings.payments_deployment)
    facts = StripeFactsService(store, stripe, ledger, published=metrics.payment_event_published)
    return Components(
        settings=settings,
        runtime=runtime,
        redis=redis,
        store=store,
        outbox=outbox,
        deliveries=deliveries,
        stripe=stripe,
        facts=facts,
        checkout=CheckoutService(store, stripe, facts, settings),
        refunds=RefundService(store, stripe, facts),
        primary=primary,
        acks=acks,
        budget=budget,
    )
