"""Settings are read once, typed, and every bad or missing variable is named at once."""

from __future__ import annotations

import base64

import pytest

from payments_service.settings import DEFAULT_RETRY_SCHEDULE, ConfigError, Settings

SIGNING = "whsec_" + base64.b64encode(b"x" * 32).decode()
REQUIRED = {
    "STRIPE_SECRET_KEY": "sk_test_abc",
    "STRIPE_WEBHOOK_SECRET": "whsec_one",
    "INTERNAL_API_TOKENS": "a-token-of-16-chars",
    "BOOKING_EVENTS_URL": "https://booking.example/events",
    "EVENT_SIGNING_SECRET": SIGNING,
}


def test_required_variables_alone_give_the_documented_defaults() -> None:
    settings = Settings.from_env(REQUIRED)
    assert settings.stripe_api_base == "https://api.stripe.com"
    assert settings.redis_url == "redis://localhost:6379/0"
    assert (
        settings.event_retry_schedule == DEFAULT_RETRY_SCHEDULE == (5, 300, 1800, 7200, 18000, 36000, 36000)
    )
    assert settings.event_delivery_timeout == 10.0
    assert settings.checkout_expires_minutes == 30
    assert settings.checkout_redirect_hosts is None
    assert (settings.reconcile_interval, settings.reconcile_after) == (300, 300)
    assert (settings.port, settings.log_level) == (8000, "INFO")
    assert settings.workers >= 1


def test_lists_are_split_on_commas() -> None:
    settings = Settings.from_env(
        {
            **REQUIRED,
            "STRIPE_WEBHOOK_SECRET": "whsec_new, whsec_old",
            "INTERNAL_API_TOKENS": "first-token-aaaaaaaa,second-token-bbbbbbb",
            "EVENT_RETRY_SCHEDULE": "1, 2,3",
            "CHECKOUT_REDIRECT_HOSTS": "App.Example, pay.example",
        }
    )
    assert settings.stripe_webhook_secrets == ("whsec_new", "whsec_old")
    assert settings.internal_api_tokens == ("first-token-aaaaaaaa", "second-token-bbbbbbb")
    assert settings.event_retry_schedule == (1, 2, 3)
    assert settings.checkout_redirect_hosts == ("app.example", "pay.example")


def test_every_missing_required_variable_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({})
    assert sorted(p.split()[0] for p in caught.value.problems) == sorted(REQUIRED)


def test_every_invalid_variable_is_named_in_one_error() -> None:
    env = {
        **REQUIRED,
        "STRIPE_SECRET_KEY": "pk_test_publishable",
        "STRIPE_WEBHOOK_SECRET": "not-a-whsec",
        "INTERNAL_API_TOKENS": "short",
        "BOOKING_EVENTS_URL": "ftp://booking",
        "EVENT_SIGNING_SECRET": "whsec_###",
        "EVENT_RETRY_SCHEDULE": "5,soon",
        "EVENT_DELIVERY_TIMEOUT": "-1",
        "CHECKOUT_EXPIRES_MINUTES": "20",
        "REDIS_URL": "http://localhost",
        "RECONCILE_INTERVAL": "often",
        "PORT": "70000",
        "LOG_LEVEL": "LOUD",
        "STRIPE_PUBLISHABLE_KEY": "sk_test_oops",
    }
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    named = {p.split()[0] for p in caught.value.problems}
    assert named == set(env)  # every one of them, nothing else
    assert "between 30 and 1440" in str(caught.value)


def test_signing_secret_must_decode_to_a_real_key() -> None:
    too_short = "whsec_" + base64.b64encode(b"short").decode()
    with pytest.raises(ConfigError, match="EVENT_SIGNING_SECRET key must decode to at least 24 bytes"):
        Settings.from_env({**REQUIRED, "EVENT_SIGNING_SECRET": too_short})


def test_live_keys_are_recognised() -> None:
    assert Settings.from_env({**REQUIRED, "STRIPE_SECRET_KEY": "sk_live_x"}).stripe_live_mode
    assert not Settings.from_env(REQUIRED).stripe_live_mode


def test_repr_never_shows_a_secret() -> None:
    settings = Settings.from_env(
        {
            **REQUIRED,
            "STRIPE_PUBLISHABLE_KEY": "pk_test_pub",
            "REDIS_URL": "redis://default:hunter2@redis.internal:6379/0",
        }
    )
    shown = repr(settings)
    for secret in ("sk_test_abc", "whsec_one", "a-token-of-16-chars", SIGNING, "hunter2"):
        assert secret not in shown, secret
    assert "redis://default:***@redis.internal:6379/0" in shown
    assert "https://booking.example/events" in shown and "stripe_secret_key='***'" in shown


LIVE = {**REQUIRED, "STRIPE_SECRET_KEY": "sk_live_abc"}


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("STRIPE_API_BASE", "http://localhost:12111", "STRIPE_API_BASE must be https://api.stripe.com"),
        ("STRIPE_API_BASE", "https://api.stripe.com.evil.example", "STRIPE_API_BASE must be"),
        ("STRIPE_API_BASE", "http://api.stripe.com", "STRIPE_API_BASE must be"),
        (
            "INTERNAL_API_TOKENS",
            "a-real-token-000001,dev-token-change-me-0123",
            "published development token",
        ),
        ("STRIPE_WEBHOOK_SECRET", "whsec_real,whsec_sandbox_development_only", "published sandbox secret"),
        (
            "EVENT_SIGNING_SECRET",
            "whsec_" + base64.b64encode(b"payments-service-dev-signing-key").decode(),
            "published development secret",
        ),
        ("STRIPE_PUBLISHABLE_KEY", "pk_test_abc", "test key (pk_test_) beside a live secret key"),
    ],
)
def test_a_live_key_refuses_development_values(variable: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env({**LIVE, variable: value})
    assert Settings.from_env({**REQUIRED, variable: value})  # with a test key they are fine


def test_a_live_key_with_stripes_own_api_is_accepted() -> None:
    settings = Settings.from_env({**LIVE, "STRIPE_API_BASE": "https://api.stripe.com/"})
    assert settings.stripe_live_mode and settings.stripe_api_base == "https://api.stripe.com"


def test_the_published_development_values_are_the_ones_make_dev_prints() -> None:
    from payments_service.devtools import devstack

    for variable, value in (
        ("INTERNAL_API_TOKENS", devstack.DEV_TOKEN),
        ("STRIPE_WEBHOOK_SECRET", devstack.SANDBOX_WEBHOOK_SECRET),
        ("EVENT_SIGNING_SECRET", devstack.DEV_EVENT_SECRET),
    ):
        with pytest.raises(ConfigError, match=variable):
            Settings.from_env({**LIVE, variable: value})


def test_retention_and_deployment_default_and_are_validated() -> None:
    defaults = Settings.from_env(REQUIRED)
    assert (defaults.payment_retention_seconds, defaults.payments_deployment) == (3 * 86400, "default")
    short = Settings.from_env(
        {**REQUIRED, "PAYMENT_RETENTION_SECONDS": "30", "PAYMENTS_DEPLOYMENT": "eu-2.live"}
    )
    assert (short.payment_retention_seconds, short.payments_deployment) == (30, "eu-2.live")
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**REQUIRED, "PAYMENT_RETENTION_SECONDS": "29", "PAYMENTS_DEPLOYMENT": "it's mine"})
    assert {p.split()[0] for p in caught.value.problems} == {
        "PAYMENT_RETENTION_SECONDS",
        "PAYMENTS_DEPLOYMENT",
    }
    for bad in ("x" * 41, "-lead", "a b", "a'b"):
        with pytest.raises(ConfigError, match="PAYMENTS_DEPLOYMENT"):
            Settings.from_env({**REQUIRED, "PAYMENTS_DEPLOYMENT": bad})


def test_a_sentinel_set_or_a_cluster_is_named_by_its_nodes() -> None:
    sentinel = Settings.from_env(
        {
            **REQUIRED,
            "REDIS_URL": "rediss://:secret@ignored:6379/2",
            "REDIS_SENTINELS": "s1:26379, s2:26380,[::1]:26381",
            "REDIS_SENTINEL_MASTER": "payments",
            "REDIS_SENTINEL_PASSWORD": "sentinel-secret",
            "REDIS_REPLICA_ACKS": "1",
            "REDIS_REPLICA_ACK_TIMEOUT_MS": "250",
        }
    )
    assert sentinel.redis_sentinels == (("s1", 26379), ("s2", 26380), ("::1", 26381))
    assert (sentinel.redis_sentinel_master, sentinel.redis_sentinel_password) == (
        "payments",
        "sentinel-secret",
    )
    assert (sentinel.redis_replica_acks, sentinel.redis_replica_ack_timeout_ms) == (1, 250)
    assert "sentinel-secret" not in repr(sentinel)
    cluster = Settings.from_env({**REQUIRED, "REDIS_CLUSTER_NODES": "n1:7000,n2:7001"})
    assert cluster.redis_cluster_nodes == (("n1", 7000), ("n2", 7001))
    plain = Settings.from_env(REQUIRED)
    assert (plain.redis_sentinels, plain.redis_cluster_nodes, plain.redis_replica_acks) == ((), (), 0)
    assert plain.redis_replica_ack_timeout_ms == 1000


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REDIS_SENTINELS": "no-port", "REDIS_SENTINEL_MASTER": "m"}, {"REDIS_SENTINELS"}),
        ({"REDIS_CLUSTER_NODES": "n1:7000,n2:http"}, {"REDIS_CLUSTER_NODES"}),
        (
            {"REDIS_REPLICA_ACKS": "-1", "REDIS_REPLICA_ACK_TIMEOUT_MS": "0"},
            {"REDIS_REPLICA_ACKS", "REDIS_REPLICA_ACK_TIMEOUT_MS"},
        ),
        ({"REDIS_SENTINEL_TLS": "maybe"}, {"REDIS_SENTINEL_TLS"}),
        ({"REDIS_SENTINELS": "s:26379"}, {"REDIS_SENTINEL_MASTER"}),
        ({"REDIS_SENTINEL_MASTER": "payments"}, {"REDIS_SENTINEL_MASTER"}),
        (
            {"REDIS_SENTINELS": "s:1", "REDIS_SENTINEL_MASTER": "m", "REDIS_CLUSTER_NODES": "n:2"},
            {"REDIS_SENTINELS"},
        ),
        ({"REDIS_CLUSTER_NODES": "n:7000", "REDIS_URL": "redis://x/3"}, {"REDIS_URL"}),
        ({"REDIS_CLUSTER_NODES": "n:7000", "REDIS_URL": "unix:///run/redis.sock"}, {"REDIS_URL"}),
    ],
)
def test_every_bad_redis_setting_or_combination_is_named(env: dict[str, str], named: set[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**REQUIRED, **env})
    assert {p.split()[0] for p in caught.value.problems} == named
