"""Stripe's rate limits in tests: the budget's keys, and a Stripe stand-in that answers 429 past a rate."""

from __future__ import annotations

from typing import Any

from redis import Redis

from payments_service.storage import keys

BUDGET_PREFIX = f"{keys.KEY_TAG}:stripe-budget:".encode()


def keys_besides_the_budget(redis: Redis) -> list[Any]:
    """Every key but the Stripe budget's calendars (a call that reached Stripe took a place there)."""
    return [k for k in redis.keys("*") if not k.startswith(BUDGET_PREFIX)]
