"""Blueprint for operators: readiness, liveness and Prometheus metrics (no token)."""

from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint
from redis.exceptions import RedisError

from ..observability import metrics
from .middleware import components
from .schemas import HealthSchema

blp = Blueprint("ops", __name__, description="Health and metrics for operators")
NO_TOKEN: dict[str, list[object]] = {"security": []}


@blp.route("/health", methods=["GET"])
@blp.response(200, HealthSchema, description="Ready: the Redis primary answers and takes writes")
@blp.alt_response(
    503,
    schema=HealthSchema,
    description="Not ready: Redis cannot be reached, answers as a replica, refuses writes, or has "
    "fewer replicas than a write must reach",
)
@blp.doc(**NO_TOKEN)
def health() -> tuple[dict[str, object], int]:
    """Readiness, with the outgoing event backlog."""
    primary = components().primary.describe()
    try:
        redis = components().redis_writable()
        events = components().outbox.counts()
    except RedisError:
        return {"status": "unavailable", "checks": {"redis": "unavailable"}, "primary": primary}, 503
    ready = redis == "ok"
    answer = {"status": "ok" if ready else "unavailable", "checks": {"redis": redis}, "primary": primary}
    return {**answer, "events": events}, 200 if ready else 503


@blp.route("/health/live", methods=["GET"])
@blp.response(200, HealthSchema)
@blp.doc(**NO_TOKEN)
def live() -> dict[str, object]:
    """Liveness: the process answers."""
    return {"status": "ok", "checks": {}}


@blp.route("/metrics", methods=["GET"])
@blp.doc(
    responses={"200": {"description": "Prometheus text format", "content": {"text/plain": {}}}}, **NO_TOKEN
)
def prometheus() -> Response:
    """Prometheus metrics, summed over every gunicorn worker."""
    body = metrics.render(
        components().state_collector(),
        components().settings.prometheus_multiproc_dir,
        components().primary_collector(),
        components().stripe_budget_collector(),
    )
    return Response(body, mimetype=None, content_type=metrics.CONTENT_TYPE)
