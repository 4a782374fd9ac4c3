"""Typed, frozen settings read once from the environment; the only reader of os.environ."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")
HostPort = tuple[str, int]

DEFAULT_RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MIN_TOKEN_LENGTH = 16


class ConfigError(Exception):
    """Raised with every invalid or missing variable named, so one run shows them all."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured with; tests build it directly."""

    stripe_secret_key: str
    stripe_webhook_secrets: tuple[str, ...]
    internal_api_tokens: tuple[str, ...]
    booking_events_url: str
    event_signing_secret: str
    stripe_api_base: str = "https://api.stripe.com"
    stripe_publishable_key: str | None = None
    stripe_max_network_retries: int = 2
    stripe_timeout: float = 20.0
    redis_url: str = "redis://localhost:6379/0"
    event_retry_schedule: tuple[int, ...] = DEFAULT_RETRY_SCHEDULE
    event_delivery_timeout: float = 10.0
    checkout_expires_minutes: int = 30
    checkout_success_url: str | None = None
    checkout_cancel_url: str | None = None
    checkout_redirect_hosts: tuple[str, ...] | None = None
    reconcile_interval: int = 300
    reconcile_after: int = 300
    reconcile_max_rps: float = 20.0
    port: int = 8000
    web_concurrency: int = 0
    log_level: str = "INFO"
    prometheus_multiproc_dir: str | None = None
    # Stripe is the ledger, Redis the working set: a payment in a final state leaves Redis this
    # long after its last change. Three days: Stripe's webhook retries, a Checkout Session's
    # longest life (24 h) and the default delivery retries (~38 h) all end within it.
    payment_retention_seconds: int = 3 * 86400
    # Written on every Checkout Session and PaymentIntent: whose sessions are whose when several
    # deployments (staging, a second region) share one Stripe account.
    payments_deployment: str = "default"
    # Redis as deployed (issue 12): Sentinel or Cluster instead of REDIS_URL's host, replica acks.
    redis_sentinels: tuple[HostPort, ...] = ()
    redis_sentinel_master: str | None = None
    redis_sentinel_password: str | None = field(default=None, repr=False)
    redis_sentinel_tls: bool | None = None  # None: as REDIS_URL's scheme says
    redis_cluster_nodes: tuple[HostPort, ...] = ()
    redis_replica_acks: int = 0
    redis_replica_ack_timeout_ms: int = 1000
    # Stripe's rate limits, shared by every process (stripe_api/budget.py)
    stripe_rate_limit: float | None = None  # the account's global limit; None: Stripe's for the key's mode
    stripe_endpoint_rate_limit: float = 25.0
    stripe_checkout_rate_limit: float | None = None  # None: the endpoint limit
    checkout_wait_seconds: float = 10.0

    @property
    def workers(self) -> int:
        """Gunicorn worker processes: WEB_CONCURRENCY, or one per CPU."""
        return self.web_concurrency or (os.cpu_count() or 1)

    @property
    def stripe_live_mode(self) -> bool:
        """True for live keys; the development sandbox refuses to run beside them."""
        return "_live_" in self.stripe_secret_key

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every variable; raise ConfigError naming all problems at once."""
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        settings = cls(
            stripe_secret_key=reader.required("STRIPE_SECRET_KEY", _stripe_secret_key),
            stripe_webhook_secrets=reader.required("STRIPE_WEBHOOK_SECRET", _webhook_secrets),
            internal_api_tokens=reader.required("INTERNAL_API_TOKENS", _api_tokens),
            booking_events_url=reader.required("BOOKING_EVENTS_URL", _http_url),
            event_signing_secret=reader.required("EVENT_SIGNING_SECRET", _signing_secret),
            stripe_api_base=reader.optional("STRIPE_API_BASE", _http_url, cls.stripe_api_base).rstrip("/"),
            stripe_publishable_key=reader.optional("STRIPE_PUBLISHABLE_KEY", _publishable_key, None),
            stripe_max_network_retries=reader.optional(
                "STRIPE_MAX_NETWORK_RETRIES", _int_between(0, 10), cls.stripe_max_network_retries
            ),
            stripe_timeout=reader.optional("STRIPE_TIMEOUT", _positive_float(120), cls.stripe_timeout),
            redis_url=reader.optional("REDIS_URL", _redis_url, cls.redis_url),
            event_retry_schedule=reader.optional(
                "EVENT_RETRY_SCHEDULE", _retry_schedule, DEFAULT_RETRY_SCHEDULE
            ),
            event_delivery_timeout=reader.optional(
                "EVENT_DELIVERY_TIMEOUT", _positive_float(300), cls.event_delivery_timeout
            ),
            checkout_expires_minutes=reader.optional(
                "CHECKOUT_EXPIRES_MINUTES", _int_between(30, 1440), cls.checkout_expires_minutes
            ),
            checkout_success_url=reader.optional("CHECKOUT_SUCCESS_URL", _http_url, None),
            checkout_cancel_url=reader.optional("CHECKOUT_CANCEL_URL", _http_url, None),
            checkout_redirect_hosts=reader.optional("CHECKOUT_REDIRECT_HOSTS", _host_list, None),
            reconcile_interval=reader.optional("RECONCILE_INTERVAL", _int_between(0, 86400), 300),
            reconcile_after=reader.optional("RECONCILE_AFTER", _int_between(0, 86400 * 30), 300),
            reconcile_max_rps=reader.optional(
                "RECONCILE_MAX_RPS", _positive_float(1000, "requests per second"), 20.0
            ),
            port=reader.optional("PORT", _int_between(1, 65535), cls.port),
            web_concurrency=reader.optional("WEB_CONCURRENCY", _int_between(1, 64), 0),
            log_level=reader.optional("LOG_LEVEL", _log_level, cls.log_level),
            prometheus_multiproc_dir=reader.optional("PROMETHEUS_MULTIPROC_DIR", str, None),
            payment_retention_seconds=reader.optional(
                "PAYMENT_RETENTION_SECONDS",
                _int_between(MIN_PAYMENT_RETENTION_SECONDS, MAX_PAYMENT_RETENTION_SECONDS),
                cls.payment_retention_seconds,
            ),
            payments_deployment=reader.optional("PAYMENTS_DEPLOYMENT", _deployment, cls.payments_deployment),
            redis_sentinels=reader.optional("REDIS_SENTINELS", _host_ports, ()),
            redis_sentinel_master=reader.optional("REDIS_SENTINEL_MASTER", _sentinel_master, None),
            redis_sentinel_password=reader.optional("REDIS_SENTINEL_PASSWORD", str, None),
            redis_sentinel_tls=reader.optional("REDIS_SENTINEL_TLS", _boolean, None),
            redis_cluster_nodes=reader.optional("REDIS_CLUSTER_NODES", _host_ports, ()),
            redis_replica_acks=reader.optional("REDIS_REPLICA_ACKS", _int_between(0, 16), 0),
            redis_replica_ack_timeout_ms=reader.optional(
                "REDIS_REPLICA_ACK_TIMEOUT_MS", _int_between(1, 60000), 1000
            ),
            stripe_rate_limit=reader.optional("STRIPE_RATE_LIMIT", _rate_limit, None),
            stripe_endpoint_rate_limit=reader.optional(
                "STRIPE_ENDPOINT_RATE_LIMIT", _rate_limit, cls.stripe_endpoint_rate_limit
            ),
            stripe_checkout_rate_limit=reader.optional("STRIPE_CHECKOUT_RATE_LIMIT", _rate_limit, None),
            checkout_wait_seconds=reader.optional(
                "CHECKOUT_WAIT_SECONDS", _positive_float(MAX_CHECKOUT_WAIT_SECONDS), cls.checkout_wait_seconds
            ),
        )
        reader.problems += live_mode_problems(settings)
        if not any(
            p.startswith(("REDIS_URL ", "REDIS_SENTINELS ", "REDIS_CLUSTER_NODES ")) for p in reader.problems
        ):
            reader.problems += _redis_topology_problems(settings)
        if reader.problems:
            raise ConfigError(reader.problems)
        return settings

    def __repr__(self) -> str:
        """Every field, with secrets, tokens and URL passwords masked (settings end up in tracebacks)."""
        shown = ", ".join(
            f"{f.name}={_masked(f.name, getattr(self, f.name))!r}" for f in dataclasses.fields(self)
        )
        return f"{type(self).__name__}({shown})"


class _Reader:
    """Collects problems instead of stopping at the first one."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.problems: list[str] = []

    def required(self, name: str, parse: Callable[[str], T]) -> T:
        raw = self._environ.get(name, "").strip()
        if not raw:
            self.problems.append(f"{name} is required")
            return cast(T, None)  # never reaches a caller: from_env raises when problems exist
        return self._parse(name, raw, parse, cast(T, None))

    def optional(self, name: str, parse: Callable[[str], T], default: T) -> T:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        return self._parse(name, raw, parse, default)

    def _parse(self, name: str, raw: str, parse: Callable[[str], T], default: T) -> T:
        try:
            return parse(raw)
        except ValueError as exc:
            self.problems.append(f"{name} {exc}")
            return default


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _stripe_secret_key(raw: str) -> str:
    if not raw.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")):
        raise ValueError("must be a Stripe secret key (sk_test_..., sk_live_..., or a restricted rk_ key)")
    return raw


def _publishable_key(raw: str) -> str:
    if not raw.startswith(("pk_test_", "pk_live_")):
        raise ValueError("must be a Stripe publishable key (pk_test_... or pk_live_...)")
    return raw


def _webhook_secrets(raw: str) -> tuple[str, ...]:
    secrets = _split(raw)
    if not secrets or any(not s.startswith("whsec_") or len(s) <= len("whsec_") for s in secrets):
        raise ValueError("must be one or more comma-separated whsec_... secrets")
    return tuple(secrets)


def _api_tokens(raw: str) -> tuple[str, ...]:
    tokens = _split(raw)
    if not tokens:
        raise ValueError("must list at least one token")
    if any(len(t) < MIN_TOKEN_LENGTH for t in tokens):
        raise ValueError(f"tokens must be at least {MIN_TOKEN_LENGTH} characters each")
    return tuple(tokens)


def _signing_secret(raw: str) -> str:
    if not raw.startswith("whsec_"):
        raise ValueError("must be whsec_ followed by a base64 key (Standard Webhooks format)")
    try:
        key = base64.b64decode(raw[len("whsec_") :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be whsec_ followed by valid base64") from None
    if len(key) < 24:
        raise ValueError("key must decode to at least 24 bytes")
    return raw


def _http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an absolute http(s) URL, got {raw!r}")
    return raw


def _redis_url(raw: str) -> str:
    if urlsplit(raw).scheme not in ("redis", "rediss", "unix"):
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    return raw


def _host_list(raw: str) -> tuple[str, ...]:
    hosts = tuple(h.lower() for h in _split(raw))
    if not hosts:
        raise ValueError("must list at least one host")
    return hosts


def _retry_schedule(raw: str) -> tuple[int, ...]:
    try:
        delays = tuple(int(part) for part in _split(raw))
    except ValueError:
        raise ValueError("must be comma-separated whole seconds, such as 5,300,1800") from None
    if not delays or any(d < 1 for d in delays):
        raise ValueError("must list at least one delay, each at least 1 second")
    return delays


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"must be a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def _positive_float(high: float, unit: str = "seconds") -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"must be a number of {unit}, got {raw!r}") from None
        if not 0 < value <= high:
            raise ValueError(f"must be above 0 and at most {high:g}, got {raw}")
        return value

    return parse


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


# Where live keys may be sent: Stripe's API, over TLS, and nowhere else.
STRIPE_LIVE_API_BASE = "https://api.stripe.com"
# Field names that hold a secret whatever their type; their values never appear in repr().
_SECRET_FIELD_WORDS = ("secret", "token", "password", "key")


def live_mode_problems(settings: Settings) -> list[str]:
    """With a live key, refuse what only makes sense in development.

    A live key sent to a stand-in (or a typo'd host) is a leaked key; the published development
    token and secrets (`make dev` prints them) would let anyone call the API or forge webhooks.
    """
    key = settings.stripe_secret_key
    if not key or "_live_" not in key:
        return []
    from .devtools.devstack import DEV_EVENT_SECRET, DEV_TOKEN, SANDBOX_WEBHOOK_SECRET

    problems = []
    parts = urlsplit(settings.stripe_api_base or "")
    if parts.scheme != "https" or parts.hostname != "api.stripe.com" or parts.port not in (None, 443):
        problems.append(f"STRIPE_API_BASE must be {STRIPE_LIVE_API_BASE} with a live key (sk_live_/rk_live_)")
    if SANDBOX_WEBHOOK_SECRET in (settings.stripe_webhook_secrets or ()):
        problems.append("STRIPE_WEBHOOK_SECRET is the published sandbox secret; it cannot go with a live key")
    if DEV_TOKEN in (settings.internal_api_tokens or ()):
        problems.append(
            "INTERNAL_API_TOKENS holds the published development token; it cannot go with a live key"
        )
    if settings.event_signing_secret == DEV_EVENT_SECRET:
        problems.append(
            "EVENT_SIGNING_SECRET is the published development secret; it cannot go with a live key"
        )
    if (settings.stripe_publishable_key or "").startswith("pk_test_"):
        problems.append("STRIPE_PUBLISHABLE_KEY is a test key (pk_test_) beside a live secret key")
    return problems


def _masked(name: str, value: object) -> object:
    if value is None:
        return None
    if any(word in name for word in _SECRET_FIELD_WORDS):
        if isinstance(value, tuple):
            return tuple("***" for _ in value)
        return "***"
    if isinstance(value, str) and "@" in value and "://" in value:
        parts = urlsplit(value)
        if parts.password:
            netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
            return urlunsplit(parts._replace(netloc=netloc))
    return value


MIN_PAYMENT_RETENTION_SECONDS = 30
MAX_PAYMENT_RETENTION_SECONDS = 400 * 86400
# Stripe metadata values allow 500 characters; a short plain name also sits safely in search queries.
_DEPLOYMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")


def _deployment(raw: str) -> str:
    if not _DEPLOYMENT_NAME.fullmatch(raw):
        raise ValueError("must be 1 to 40 of A-Z a-z 0-9 _ . - (starting with a letter or digit)")
    return raw


def _host_ports(raw: str) -> tuple[HostPort, ...]:
    """host:port,host:port (IPv6 hosts in brackets: [::1]:26379)."""
    nodes = []
    for part in _split(raw):
        host, _, port = part.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"must be comma-separated host:port pairs, got {part!r}")
        nodes.append((host, int(port)))
    if not nodes:
        raise ValueError("must list at least one host:port")
    return tuple(nodes)


def _sentinel_master(raw: str) -> str:
    if any(c.isspace() for c in raw):
        raise ValueError("must be the Sentinel service name (no spaces)")
    return raw


def _boolean(raw: str) -> bool:
    value = raw.lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"must be true or false, got {raw!r}")
    return value in ("true", "1", "yes")


def _redis_topology_problems(settings: Settings) -> list[str]:
    """Combinations of the Redis settings that cannot work together, each naming its variables."""
    problems = []
    sentinels, cluster = bool(settings.redis_sentinels), bool(settings.redis_cluster_nodes)
    if sentinels and cluster:
        problems.append("REDIS_SENTINELS and REDIS_CLUSTER_NODES cannot both be set: choose one")
    if sentinels and not settings.redis_sentinel_master:
        problems.append("REDIS_SENTINEL_MASTER is required with REDIS_SENTINELS (the monitored service name)")
    if not sentinels and settings.redis_sentinel_master:
        problems.append("REDIS_SENTINEL_MASTER is set but REDIS_SENTINELS is not")
    if (sentinels or cluster) and urlsplit(settings.redis_url).scheme == "unix":
        problems.append("REDIS_URL cannot be a unix:// socket with REDIS_SENTINELS or REDIS_CLUSTER_NODES")
    if cluster and urlsplit(settings.redis_url).path.strip("/") not in ("", "0"):
        problems.append("REDIS_URL must use database 0 with REDIS_CLUSTER_NODES (a Cluster has only db 0)")
    return problems


# A caller's wait for a Stripe slot is bounded by its own HTTP timeout in practice; the budget's
# calendar reaches this far ahead (storage/stripe_budget.lua).
MAX_CHECKOUT_WAIT_SECONDS = 60.0


def _rate_limit(raw: str) -> float:
    """Requests per second, as Stripe states its limits (raised limits can be far above the defaults)."""
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"must be a number of requests per second, got {raw!r}") from None
    if not 1 <= value <= 100_000:
        raise ValueError(f"must be between 1 and 100000 requests per second, got {raw}")
    return value
