"""Prometheus metrics: per-process counters (merged across gunicorn workers) and Redis-backed state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DELIVERY_OUTCOMES = ("delivered", "failed", "dead")
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "payments_http_requests_total",
    "HTTP requests answered, by route and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "payments_http_request_duration_seconds", "HTTP request duration", ["method", "route"], buckets=_BUCKETS
)
STRIPE_CALLS = Counter("payments_stripe_requests_total", "Calls to Stripe's API", ["operation", "outcome"])
STRIPE_LATENCY = Histogram(
    "payments_stripe_request_duration_seconds",
    "Stripe API call duration, retries included",
    ["operation"],
    buckets=_BUCKETS,
)
WEBHOOK_EVENTS = Counter(
    "payments_webhook_events_total",
    "Verified Stripe webhooks, by type and what they did",
    ["type", "outcome"],
)
WEBHOOK_REJECTIONS = Counter(
    "payments_webhook_rejections_total", "Stripe webhooks refused before processing, by reason", ["reason"]
)
EVENTS_PUBLISHED = Counter(
    "payments_events_published_total", "Payment events written to the outbox, by type", ["type"]
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(seconds)


def observe_stripe_call(operation: str, outcome: str, seconds: float) -> None:
    STRIPE_CALLS.labels(operation, outcome).inc()
    STRIPE_LATENCY.labels(operation).observe(seconds)


def webhook_event(event_type: str, outcome: str) -> None:
    WEBHOOK_EVENTS.labels(event_type, outcome).inc()


def webhook_rejected(reason: str) -> None:
    WEBHOOK_REJECTIONS.labels(reason).inc()


def payment_event_published(event_type: str) -> None:
    EVENTS_PUBLISHED.labels(event_type).inc()


class StateCollector:
    """Gauges and worker-side counters read from Redis at scrape time, so every process agrees."""

    def __init__(self, read_state: Callable[[], dict[str, Any]]) -> None:
        self._read_state = read_state

    def collect(self) -> Iterator[Metric]:
        try:
            state = self._read_state()
        except RedisError:
            yield GaugeMetricFamily("payments_redis_up", "Whether Redis answered this scrape", value=0)
            return
        yield GaugeMetricFamily("payments_redis_up", "Whether Redis answered this scrape", value=1)
        gauges = (
            ("payments_events_pending", "Outgoing events not yet delivered", state["events"]["pending"]),
            ("payments_events_dead", "Outgoing events past their retry schedule", state["events"]["dead"]),
            ("payments_events_queue_depth", "Outgoing events ready for a worker now", state["queue_depth"]),
            (
                "payments_events_oldest_pending_age_seconds",
                "Age of the oldest undelivered event",
                state["oldest_pending_age"],
            ),
        )
        for name, doc, value in gauges:
            yield GaugeMetricFamily(name, doc, value=value)
        open_payments = GaugeMetricFamily(
            "payments_open", "Payments awaiting Stripe, by status", labels=["status"]
        )
        for status, count in state["open"].items():
            open_payments.add_metric([status], count)
        yield open_payments
        deliveries = CounterMetricFamily(
            "payments_event_deliveries",
            "Delivery attempts to the booking service, by outcome",
            labels=["outcome"],
        )
        for outcome in DELIVERY_OUTCOMES:
            deliveries.add_metric([outcome], state["deliveries"].get(outcome, 0))
        yield deliveries
        yield CounterMetricFamily(
            "payments_reconcile_changes",
            "Payments changed by reconciliation",
            value=state["reconcile_changes"],
        )
        yield CounterMetricFamily(
            "payments_rebuilt",
            "Payments rebuilt from Stripe when Redis no longer held them",
            value=state.get("rebuilt", 0),
        )
        yield CounterMetricFamily(
            "payments_reconcile_skipped",
            "Payments or events reconciliation passed over because Stripe refused them",
            value=state.get("reconcile_skipped", 0),
        )


class _ThisProcess:
    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def render(state: StateCollector, multiprocess_dir: str | None, *more: Collector) -> bytes:
    """The exposition text; with gunicorn, counters are summed over every worker's files."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir:
        MultiProcessCollector(registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    registry.register(state)
    for collector in more:
        registry.register(collector)
    return generate_latest(registry)


REDIS_FAILOVERS = Counter(
    "payments_redis_failovers",
    "Times a process found its Redis primary moved: Sentinel or the Cluster named another node, "
    "or the old primary answered as a replica",
)


def redis_failover() -> None:
    REDIS_FAILOVERS.inc()


class PrimaryCollector:
    """Which Redis primary the scraped process writes to, as an info gauge (no Redis call)."""

    def __init__(self, describe: Callable[[], tuple[str, str]]) -> None:
        self._describe = describe

    def collect(self) -> Iterator[Metric]:
        mode, address = self._describe()
        info = GaugeMetricFamily(
            "payments_redis_primary_info",
            "The Redis primary this process writes to (mode: url, sentinel or cluster)",
            labels=["mode", "address"],
        )
        info.add_metric([mode, address], 1)
        yield info


# Stripe's rate limits (stripe_api/budget.py). Stripe's own 429s are
# payments_stripe_requests_total{outcome="RateLimitError"}.
STRIPE_BUDGET_GRANTED = Counter(
    "payments_stripe_budget_calls_total", "Stripe calls given a place in the shared budget", ["priority"]
)
STRIPE_BUDGET_WAIT = Histogram(
    "payments_stripe_budget_wait_seconds",
    "Time a Stripe call waited for its place in the shared budget",
    ["priority"],
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0),
)
STRIPE_BUDGET_TURNED_AWAY = Counter(
    "payments_stripe_budget_turned_away_total",
    "Callers answered 503 for Stripe's rate limits: no place within their wait bound, or 429s outlasting it",
    ["priority"],
)


def stripe_budget_granted(priority: str, waited: float) -> None:
    STRIPE_BUDGET_GRANTED.labels(priority).inc()
    STRIPE_BUDGET_WAIT.labels(priority).observe(waited)


def stripe_budget_turned_away(priority: str) -> None:
    STRIPE_BUDGET_TURNED_AWAY.labels(priority).inc()


class StripeBudgetCollector:
    """What is left of the shared Stripe budget, read from Redis at scrape time (every process agrees).

    `read_usage` returns, per limit, (rate planned to, free places over the next second, seconds
    ahead the last place is booked).
    """

    def __init__(self, read_usage: Callable[[], dict[str, tuple[float, int, float]]]) -> None:
        self._read_usage = read_usage

    def collect(self) -> Iterator[Metric]:
        try:
            usage = self._read_usage()
        except RedisError:
            return
        planned = GaugeMetricFamily(
            "payments_stripe_budget_rate", "Calls per second planned to, by limit", labels=["limit"]
        )
        free = GaugeMetricFamily(
            "payments_stripe_budget_free",
            "Places left in the Stripe budget over the next second, by limit",
            labels=["limit"],
        )
        booked = GaugeMetricFamily(
            "payments_stripe_budget_booked_seconds",
            "How far ahead the Stripe budget is reserved (the queue), by limit",
            labels=["limit"],
        )
        for limit, (rate, left, ahead) in usage.items():
            planned.add_metric([limit], rate)
            free.add_metric([limit], left)
            booked.add_metric([limit], ahead)
        yield from (planned, free, booked)
