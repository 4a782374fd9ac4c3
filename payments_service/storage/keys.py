"""Every Redis key the service uses. One hash tag for all of them, RQ's included.

The webhook's atomic step writes the payment, the Stripe event mark, the status index and the
outgoing event in one script (compare_and_write.py); the relay moves events into RQ's queue in one
MULTI/EXEC. On Redis Cluster a script or transaction must stay in one hash slot, so every key
carries the same tag; booking ids cannot contain braces, so they never add a tag of their own.
"""

from __future__ import annotations

KEY_TAG = "{payments}"
RQ_KEY_PREFIX = f"{KEY_TAG}:rq"


def payment(booking_id: str) -> str:
    return f"{KEY_TAG}:payment:{booking_id}"


def booking_lock(booking_id: str) -> str:
    return f"{KEY_TAG}:lock:{booking_id}"


def stripe_event(event_id: str) -> str:
    return f"{KEY_TAG}:stripe-event:{event_id}"


def intent(payment_intent: str) -> str:
    return f"{KEY_TAG}:intent:{payment_intent}"


def refund_request(booking_id: str, idempotency_key: str) -> str:
    return f"{KEY_TAG}:refund-request:{booking_id}:{idempotency_key}"


def status_index(status: str) -> str:
    return f"{KEY_TAG}:status:{status}"


# The transactional outbox (a stream): events written with their state change, before RQ has them.
OUTBOX = f"{KEY_TAG}:outbox"
RECONCILE_LOCK = f"{KEY_TAG}:reconcile:lock"
RECONCILE_EVENTS_CHECKPOINT = f"{KEY_TAG}:reconcile:events-checkpoint"
STATS = f"{KEY_TAG}:stats"
# The last deliveries, for `events list` (a capped stream: delivered events leave RQ at once).
DELIVERED_LOG = f"{KEY_TAG}:delivered"
# Written before a WAIT that must cover changes made on other connections (storage/replicas.py).
REPLICA_BARRIER = f"{KEY_TAG}:replica-barrier"


def stripe_budget(mode: str, limit: str) -> str:
    """A calendar of reserved Stripe calls; Stripe counts live and test mode apart."""
    return f"{KEY_TAG}:stripe-budget:{mode}:{limit}"
