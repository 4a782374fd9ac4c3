"""Steps many tests share: open a payment over the API, be Stripe posting a signed event."""

from __future__ import annotations

import json
from typing import Any

from payments_service.domain.events import OutgoingEvent
from payments_service.wiring import Components
from tests.support.settings import WEBHOOK_SECRET
from tests.support.signing import stripe_signature

BODY = {"booking_id": "bk_1", "amount": 3750, "currency": "usd", "description": "Dune"}


def open_payment(
    client: Any, auth: dict[str, str], booking_id: str = "bk_1", **fields: Any
) -> dict[str, Any]:
    response = client.post("/v1/payments", json={**BODY, "booking_id": booking_id, **fields}, headers=auth)
    assert response.status_code == 201, response.get_json()
    result: dict[str, Any] = response.get_json()
    return result


def post_event(client: Any, event: dict[str, Any], secret: str = WEBHOOK_SECRET, **sign: Any) -> Any:
    body = json.dumps(event).encode()
    return client.post(
        "/webhooks/stripe",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": stripe_signature(body, secret, **sign)},
    )


def components_of(app: Any) -> Components:
    """The components an app was built with (create_app keeps them in its extensions)."""
    components: Components = app.extensions["payments"]
    return components


def queued(components: Components) -> list[OutgoingEvent]:
    """Events written with their change and not yet taken by a worker (the outbox), oldest first."""
    return components.outbox.waiting()


def queued_events(components: Components) -> list[str]:
    return [event.id for event in queued(components)]


def queued_types(components: Components) -> list[str]:
    return [event.type for event in queued(components)]


def payment(client: Any, auth: dict[str, str], booking_id: str = "bk_1") -> dict[str, Any]:
    result: dict[str, Any] = client.get(f"/v1/payments/{booking_id}", headers=auth).get_json()
    return result
