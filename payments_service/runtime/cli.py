"""The `payments-service` console commands. Each reads the environment once (and .env if present)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import click

from ..settings import ConfigError, Settings

if TYPE_CHECKING:
    from ..wiring import Components

P = ParamSpec("P")
R = TypeVar("R")

# Long enough for a running reconciliation pass to finish before ours starts.
RECONCILE_LOCK_WAIT_SECONDS = 600.0


def load_settings() -> Settings:
    """Settings from the environment, .env and a dev stack running here; or exit 2 naming every problem."""
    import os

    from dotenv import load_dotenv

    from ..devtools.instance import running_env

    load_dotenv(Path.cwd() / ".env", override=False)
    # `make dev` fills in what the environment leaves unset (its Redis, the sandbox, dev tokens);
    # while it runs, the commands in its folder use the same values, the environment still first.
    dev_env = running_env(Path.cwd()) or {}
    if dev_env:
        click.echo("payments-service: using the settings of the dev stack running here (.dev/env)", err=True)
    try:
        settings = Settings.from_env({**dev_env, **os.environ})
    except ConfigError as exc:
        click.echo(f"payments-service: {exc}", err=True)
        sys.exit(2)
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta["redis_address"] = settings.redis_url.split("@")[-1]
    return settings


def exits_cleanly_without_redis(command: Callable[P, R]) -> Callable[P, R]:
    """One line naming Redis's address instead of a traceback when Redis cannot be reached."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from redis.exceptions import RedisError

        try:
            return command(*args, **kwargs)
        except RedisError as exc:
            address = click.get_current_context().meta.get("redis_address", "REDIS_URL")
            click.echo(
                f"payments-service: Redis at {address} is unavailable ({type(exc).__name__}: {exc}). "
                "Is it running? (make dev starts one.)",
                err=True,
            )
            sys.exit(1)

    return wrapper


def _components(settings: Settings) -> Components:
    from ..observability import logs
    from ..wiring import build

    logs.configure(settings.log_level)
    return build(settings)


@click.group()
def main() -> None:
    """payments-service: Stripe Checkout for bookings."""


@main.command()
def serve() -> None:
    """The HTTP API under gunicorn (gevent workers, bind 0.0.0.0:$PORT)."""
    settings = load_settings()
    from ..observability import logs
    from . import server

    logs.configure(settings.log_level)
    server.serve(settings)


@main.command()
@click.option("--burst", is_flag=True, help="Deliver what is queued now, then exit.")
def worker(burst: bool) -> None:
    """Deliver events to the booking service; reconcile every RECONCILE_INTERVAL seconds."""
    from . import worker as event_worker

    event_worker.run(_components(load_settings()), burst=burst)


@main.command()
@exits_cleanly_without_redis
def reconcile() -> None:
    """One reconciliation pass: print what changed, then exit 0."""

    reconciler = _components(load_settings()).reconciler(progress=click.echo)
    report = reconciler.run_once(RECONCILE_LOCK_WAIT_SECONDS)
    if report is None:
        click.echo("another reconciliation pass is still running; nothing done", err=True)
        sys.exit(1)
    for change in report.changes:
        click.echo(f"changed: {change}")
    click.echo(
        f"reconciled: {len(report.changes)} changed, {report.checked} payments checked, "
        f"{report.events_read} events read, {report.stripe_calls} Stripe calls, {report.seconds:.1f}s"
    )


@main.group()
def events() -> None:
    """Outgoing events to the booking service."""


@events.command("list")
@click.option("--dead", is_flag=True, help="Only events past their retry schedule.")
@click.option("--limit", default=200, show_default=True, help="At most this many per delivery state.")
@exits_cleanly_without_redis
def list_events(dead: bool, limit: int) -> None:
    """Outgoing events with their delivery state."""
    components = _components(load_settings())
    rows = components.outbox.events(dead_only=dead, limit=limit)
    click.echo(f"{'EVENT':<32} {'TYPE':<28} {'BOOKING':<24} {'STATE':<10} {'TRIES':>5}  LAST ERROR")
    for e in rows:
        click.echo(
            f"{e.id:<32} {e.type:<28} {e.booking_id:<24} {e.state:<10} {e.attempts:>5}  {e.last_error or ''}"
        )
    click.echo(f"{len(rows)} event(s)")


@events.command("replay")
@click.argument("event_ids", nargs=-1)
@click.option("--all-dead", is_flag=True, help="Replay every dead event.")
@exits_cleanly_without_redis
def replay_events(event_ids: tuple[str, ...], all_dead: bool) -> None:
    """Queue dead events again, with a fresh retry schedule."""
    if bool(event_ids) == all_dead:
        raise click.UsageError("give EVENT_ID... or --all-dead, not both and not neither")
    components = _components(load_settings())
    unknown = components.outbox.unknown(event_ids) if event_ids else []
    if unknown:
        click.echo(f"unknown event(s): {', '.join(unknown)}", err=True)
        sys.exit(1)
    replayed = components.deliveries.replay(list(event_ids) if event_ids else None)
    for event_id in replayed:
        click.echo(f"replayed: {event_id}")
    skipped = [e for e in event_ids if e not in replayed]
    for event_id in skipped:
        click.echo(f"skipped (not dead): {event_id}")
    click.echo(f"{len(replayed)} event(s) queued again")


@main.command()
@click.option("--worker", "worker_check", is_flag=True, help="Also require a live worker on this host.")
def health(worker_check: bool) -> None:
    """Exit 0 if Redis answers (and, with --worker, a worker here is alive); for container healthchecks."""
    import socket

    from redis.exceptions import RedisError

    components = _components(load_settings())
    try:
        components.store.ping()
        counts = components.outbox.counts()
        workers = components.deliveries.live_workers(socket.gethostname())
    except RedisError as exc:
        address = components.settings.redis_url.split("@")[-1]
        click.echo(f"unhealthy: Redis at {address} is unavailable ({type(exc).__name__}: {exc})", err=True)
        sys.exit(1)
    click.echo(f"redis ok; events pending {counts['pending']}, dead {counts['dead']}; workers here {workers}")
    if worker_check and workers == 0:
        click.echo("unhealthy: no live worker on this host", err=True)
        sys.exit(1)


@main.command("check-config")
def check_config() -> None:
    """Validate the environment; exit non-zero naming every problem."""
    settings = load_settings()
    click.echo("configuration OK")
    click.echo(
        f"  stripe: {'live' if settings.stripe_live_mode else 'test'} mode, api {settings.stripe_api_base}"
    )
    click.echo(f"  redis: {_redis_target(settings)}")
    click.echo(f"  events: {settings.booking_events_url}, retries {list(settings.event_retry_schedule)}")


def _redis_target(settings: Settings) -> str:
    """Where Redis is, as configured (no credentials)."""
    from urllib.parse import urlsplit

    url = urlsplit(settings.redis_url)
    database = f"db {url.path.strip('/') or '0'}, tls {'on' if url.scheme == 'rediss' else 'off'}"
    acks = (
        f"{settings.redis_replica_acks} replica ack(s) within {settings.redis_replica_ack_timeout_ms} ms"
        if settings.redis_replica_acks
        else "no replica acks"
    )
    if settings.redis_sentinels:
        nodes = ", ".join(f"{h}:{p}" for h, p in settings.redis_sentinels)
        where = f"Sentinel service {settings.redis_sentinel_master!r} via {nodes}"
    elif settings.redis_cluster_nodes:
        where = "Cluster via " + ", ".join(f"{h}:{p}" for h, p in settings.redis_cluster_nodes)
    else:
        where = settings.redis_url.split("@")[-1]
    return f"{where} ({database}); {acks}"


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=12111, show_default=True)
@click.option("--public-url", help="Base URL browsers use for checkout pages (default: http://HOST:PORT).")
@click.option("--webhook-url", help="Where to send signed webhooks, like Stripe (none: no webhooks).")
@click.option("--webhook-secret", default="whsec_sandbox_development_only", show_default=True)
@click.option(
    "--latency-ms", default=0, show_default=True, help="Delay every API answer, as a distant Stripe."
)
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep the state in this JSON file across restarts (default: in memory only).",
)
@click.option(
    "--rate-limit",
    envvar="SANDBOX_RATE_LIMIT",
    default=0,
    show_default=True,
    help="Answer 429 past this many requests per second, as Stripe does (0: none). [env: SANDBOX_RATE_LIMIT]",
)
@click.option("--endpoint-rate-limit", default=25, show_default=True, help="The same, per endpoint.")
def sandbox(
    host: str,
    port: int,
    public_url: str | None,
    webhook_url: str | None,
    webhook_secret: str,
    latency_ms: int,
    state_file: Path | None,
    rate_limit: int,
    endpoint_rate_limit: int,
) -> None:
    """DEVELOPMENT ONLY: a local stand-in for Stripe (test keys only)."""
    from gevent import monkey

    monkey.patch_all()
    from ..devtools.sandbox import server

    server.serve(
        host,
        port,
        public_url,
        webhook_url,
        webhook_secret,
        latency_ms,
        state_file,
        out=click.echo,
        rate_limit=rate_limit,
        endpoint_rate_limit=endpoint_rate_limit,
    )


@main.command("demo-receiver")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8025, show_default=True)
@click.option(
    "--signing-secret", envvar="EVENT_SIGNING_SECRET", required=True, help="[env: EVENT_SIGNING_SECRET]"
)
@click.option("--payments-api", help="The payments API to ask about a returning customer's payment.")
@click.option("--api-token", envvar="DEMO_RECEIVER_API_TOKEN", help="[env: DEMO_RECEIVER_API_TOKEN]")
@click.option(
    "--stripe-sandbox", help="The sandbox's URL: show its bank buttons beside a processing payment."
)
def demo_receiver(
    host: str,
    port: int,
    signing_secret: str,
    payments_api: str | None,
    api_token: str | None,
    stripe_sandbox: str | None,
) -> None:
    """DEVELOPMENT ONLY: a booking service that verifies each event's signature and prints it."""
    from ..devtools.sandbox import receiver

    config = receiver.ReceiverConfig(signing_secret, payments_api, api_token, stripe_sandbox)
    receiver.serve(host, port, config, out=click.echo)


@main.command()
def dev() -> None:
    """DEVELOPMENT ONLY: Redis, Stripe sandbox, API, worker and a demo receiver, all local."""
    import os

    from dotenv import dotenv_values

    from ..devtools import devstack

    # The dev tool reads the environment only to decide what to start; the services it runs
    # read their settings the usual way.
    from_file = {k: v for k, v in dotenv_values(Path.cwd() / ".env").items() if v is not None}
    sys.exit(devstack.run({**from_file, **os.environ}, out=click.echo))


if __name__ == "__main__":
    main()
