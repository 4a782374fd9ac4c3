"""Idempotency keys: the same request always gets the same key; a different one never does."""

from __future__ import annotations

import dataclasses

from payments_service.domain.facts import CheckoutRequest
from payments_service.usecases.checkout import idempotency_key
from payments_service.usecases.refunds import refund_key

REQUEST = CheckoutRequest(
    booking_id="bk_42",
    amount=3750,
    currency="usd",
    description="Dune",
    expires_at=1_800_000_000,
    success_url="https://a/s",
    cancel_url="https://a/c",
    customer_email=None,
    metadata={"show_id": "s1"},
)


def test_checkout_keys_are_per_booking_and_attempt_and_request() -> None:
    key = idempotency_key(REQUEST, 1)
    assert key == idempotency_key(dataclasses.replace(REQUEST), 1)  # deterministic
    assert key.startswith("checkout:bk_42:1:")
    assert idempotency_key(REQUEST, 2).startswith("checkout:bk_42:2:")
    # Stripe replays a key's first answer for 24 h (even a 500) and refuses it for other
    # parameters, so a different request must never reuse a key.
    assert idempotency_key(dataclasses.replace(REQUEST, amount=4000), 1) != key
    assert idempotency_key(dataclasses.replace(REQUEST, expires_at=1_800_000_001), 1) != key


def test_refund_keys_come_from_the_booking_and_the_refunded_total() -> None:
    assert refund_key("bk_42", 0, 1000, None) == "refund:bk_42:0+1000"
    assert refund_key("bk_42", 1000, 1000, None) == "refund:bk_42:1000+1000"
    assert refund_key("bk_42", 0, 1000, "caller-key") == refund_key("bk_42", 500, 200, "caller-key")
    assert refund_key("bk_42", 0, 1000, "caller-key") != refund_key("bk_42", 0, 1000, "other-key")
