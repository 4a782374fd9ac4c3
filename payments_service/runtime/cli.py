"""The `payments-service` console commands. Each reads the environment once (and .env if present)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..settings import ConfigError, Settings

if TYPE_CHECKING:
    from ..wiring import Components

# Long enough for a running reconciliation pass to finish before ours starts.
RECONCILE_LOCK_WAIT_SECONDS = 600.0


def load_settings() -> Settings:
    """Settings from the environment, or exit 2 naming every bad variable."""
    from dotenv import load_dotenv

    load_dotenv(Path.cwd() / ".env", override=False)
    try:
        return Settings.from_env()
    except ConfigError as exc:
        click.echo(f"payments-service: {exc}", err=True)
        sys.exit(2)


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
        click.echo(f"unhealthy: redis unavailable ({type(exc).__name__})", err=True)
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
    click.echo(f"  redis: {settings.redis_url.split('@')[-1]}")
    click.echo(f"  events: {settings.booking_events_url}, retries {list(settings.event_retry_schedule)}")


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
    rate_limit: int,
    endpoint_rate_limit: int,
) -> None:
    """DEVELOPMENT ONLY: a local stand-in for Stripe (test keys only, state in memory)."""
    from gevent import monkey

    monkey.patch_all()
    import logging
    import socket
    from typing import Any

    from gevent.pywsgi import WSGIServer

    from ..devtools.sandbox.app import create_sandbox_app
    from ..devtools.sandbox.stripe_state import StripeState
    from ..devtools.sandbox.webhooks import WebhookSender

    logging.basicConfig(level=logging.INFO, format="sandbox %(levelname)s %(message)s")
    base = (public_url or f"http://{host}:{port}").rstrip("/")
    state = StripeState(base)
    if webhook_url:
        state.listeners.append(WebhookSender(webhook_url, webhook_secret))
    click.echo(
        f"Stripe SANDBOX (development only, never real money) on {base}; "
        f"webhooks to {webhook_url or 'nowhere'}"
    )

    class NoDelayServer(WSGIServer):  # type: ignore[misc]
        # pywsgi writes headers and body separately; without TCP_NODELAY, Nagle holds the body
        # back until the client's delayed ACK, 40 ms on every keep-alive request.
        def handle(self, sock: Any, address: Any) -> None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().handle(sock, address)

    app = create_sandbox_app(state, latency_ms)
    if rate_limit:
        from ..devtools.sandbox.rate_limits import RateLimits

        app = RateLimits(app, rate_limit, endpoint_rate_limit)
        click.echo(f"enforcing Stripe's rate limits: {rate_limit}/s, {endpoint_rate_limit}/s per endpoint")
    NoDelayServer((host, port), app, log=None).serve_forever()


@main.command("demo-receiver")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8025, show_default=True)
@click.option(
    "--signing-secret", envvar="EVENT_SIGNING_SECRET", required=True, help="[env: EVENT_SIGNING_SECRET]"
)
def demo_receiver(host: str, port: int, signing_secret: str) -> None:
    """DEVELOPMENT ONLY: a booking service that verifies each event's signature and prints it."""
    import logging

    from werkzeug.serving import make_server

    from ..devtools.sandbox.receiver import create_receiver_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    app = create_receiver_app(signing_secret, out=lambda line: click.echo(line))
    click.echo(f"demo booking service on http://{host}:{port}/events: verified events appear below")
    make_server(host, port, app, threaded=True).serve_forever()


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
