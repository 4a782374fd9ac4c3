"""Signatures made for real: Stripe's webhook scheme, and a Standard Webhooks verifier."""

from __future__ import annotations

import json
import time
from typing import Any

from standardwebhooks.webhooks import Webhook

from payments_service.devtools.sandbox.webhooks import signature_header


def stripe_signature(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe would send (the sandbox's signer; stripe-python verifies it)."""
    return signature_header(payload, secret, int(time.time()) if timestamp is None else timestamp)


def stripe_event_body(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def verify_standard_webhook(secret: str, body: bytes, headers: dict[str, str]) -> Any:
    """What the booking service does: raise unless the event is signed with our secret."""
    return Webhook(secret).verify(body, {k.lower(): v for k, v in headers.items()})
