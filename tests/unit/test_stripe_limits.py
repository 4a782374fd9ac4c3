"""Stripe's rate limits as configured: Stripe's published defaults by mode, overridable, with headroom."""

from __future__ import annotations

import pytest

from payments_service.settings import ConfigError, Settings
from payments_service.stripe_api.budget import HEADROOM, Limits
from tests.support.settings import API_TOKEN, BOOKING_EVENTS_URL, EVENT_SECRET, WEBHOOK_SECRET

REQUIRED = {
    "STRIPE_SECRET_KEY": "sk_test_abc",
    "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "INTERNAL_API_TOKENS": API_TOKEN,
    "BOOKING_EVENTS_URL": BOOKING_EVENTS_URL,
    "EVENT_SIGNING_SECRET": EVENT_SECRET,
}


def test_by_default_the_budget_follows_stripes_published_limits_for_the_keys_mode() -> None:
    test_mode = Limits.from_settings(Settings.from_env(REQUIRED))
    live_mode = Limits.from_settings(Settings.from_env({**REQUIRED, "STRIPE_SECRET_KEY": "sk_live_abc"}))
    assert test_mode.global_rate == pytest.approx(25 * HEADROOM)
    assert live_mode.global_rate == pytest.approx(100 * HEADROOM)
    for limits in (test_mode, live_mode):
        assert limits.of("checkout.sessions.create") == pytest.approx(25 * HEADROOM)
        assert limits.of("refunds.create") == pytest.approx(25 * HEADROOM)
    assert Settings.from_env(REQUIRED).checkout_wait_seconds == 10.0


def test_an_account_with_raised_limits_overrides_them() -> None:
    settings = Settings.from_env(
        {
            **REQUIRED,
            "STRIPE_RATE_LIMIT": "500",
            "STRIPE_ENDPOINT_RATE_LIMIT": "50",
            "STRIPE_CHECKOUT_RATE_LIMIT": "200",
            "CHECKOUT_WAIT_SECONDS": "2.5",
        }
    )
    limits = Limits.from_settings(settings)
    assert limits.global_rate == pytest.approx(500 * HEADROOM)
    assert limits.of("checkout.sessions.create") == pytest.approx(200 * HEADROOM)
    assert limits.of("checkout.sessions.expire") == pytest.approx(50 * HEADROOM)
    assert settings.checkout_wait_seconds == 2.5


def test_bad_limits_are_named() -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env(
            {
                **REQUIRED,
                "STRIPE_RATE_LIMIT": "fast",
                "STRIPE_CHECKOUT_RATE_LIMIT": "0",
                "CHECKOUT_WAIT_SECONDS": "600",
            }
        )
    named = " ".join(error.value.problems)
    assert "STRIPE_RATE_LIMIT" in named and "STRIPE_CHECKOUT_RATE_LIMIT" in named
    assert "CHECKOUT_WAIT_SECONDS" in named
