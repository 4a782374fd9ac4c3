"""What the tests configure the service with: tokens, secrets, URLs and a Settings builder."""

from __future__ import annotations

import base64
from typing import Any

from payments_service.settings import Settings
from tests.support.stripe_wire import STRIPE_BASE

API_TOKEN = "test-token-0123456789"
OTHER_TOKEN = "other-token-9876543210"
WEBHOOK_SECRET = "whsec_test_primary"
OLD_WEBHOOK_SECRET = "whsec_test_rotated_out"
EVENT_SECRET = "whsec_" + base64.b64encode(b"booking-events-signing-key-32by").decode()
BOOKING_EVENTS_URL = "https://booking.test/payment-events"


def make_settings(redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "stripe_secret_key": "sk_test_unit",
        "stripe_webhook_secrets": (WEBHOOK_SECRET, OLD_WEBHOOK_SECRET),
        "internal_api_tokens": (API_TOKEN, OTHER_TOKEN),
        "booking_events_url": BOOKING_EVENTS_URL,
        "event_signing_secret": EVENT_SECRET,
        "stripe_api_base": STRIPE_BASE,
        "stripe_publishable_key": "pk_test_unit",
        "stripe_max_network_retries": 1,
        "redis_url": redis_url,
        "checkout_success_url": "https://app.test/bookings/{booking_id}/paid?session={CHECKOUT_SESSION_ID}",
        "checkout_cancel_url": "https://app.test/bookings/{booking_id}",
    }
    values.update(overrides)
    return Settings(**values)
