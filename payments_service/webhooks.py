"""Blueprint for POST /webhooks/stripe: raw body, signature, hand-off, answer. No business rules."""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint
from werkzeug.exceptions import BadRequest

from . import logs, metrics
from .http import services
from .schemas import WebhookAckSchema
from .stripe_objects import InvalidWebhook

MAX_WEBHOOK_BYTES = 1024 * 1024

blp = Blueprint("webhooks", __name__, description="Stripe calls this; signed with STRIPE_WEBHOOK_SECRET")


@blp.route("/webhooks/stripe", methods=["POST"])
@blp.response(200, WebhookAckSchema, description="Received; processed, a duplicate, or ignored")
@blp.alt_response(400, response="BAD_REQUEST", description="Unsigned, badly signed, stale, or not an event")
@blp.alt_response(
    409, response="CONFLICT", description="A refund for a payment not yet seen paid: send it again"
)
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
@blp.alt_response(
    502, response="BAD_GATEWAY", description="Stripe failed while refunding a duplicate payment"
)
@blp.alt_response(503, response="SERVICE_UNAVAILABLE", description="State not written: Stripe will retry")
@blp.doc(
    security=[],
    parameters=[{"in": "header", "name": "Stripe-Signature", "required": True, "schema": {"type": "string"}}],
    requestBody={"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
)
def stripe_webhook() -> dict[str, object]:
    """Verify a Stripe event and apply it once."""
    request.max_content_length = MAX_WEBHOOK_BYTES
    payload = request.get_data(cache=False)
    try:
        event = services().stripe.verify_webhook(payload, request.headers.get("Stripe-Signature"))
    except InvalidWebhook as exc:
        metrics.webhook_rejected(exc.reason)
        raise BadRequest(str(exc)) from None
    logs.bind(stripe_event_id=event.id)
    outcome = services().sync.handle_event(event)
    label = outcome.value if outcome is not None else "ignored"
    if label in ("unchanged", "unknown_booking"):
        label = "ignored"
    metrics.webhook_event(event.type, label)
    return {"received": True, "outcome": label}
