"""`payments-service dev` (make dev): the whole flow on one machine, offline. Development only.

Fills in what the environment leaves unset: a private Redis, the Stripe sandbox (unless real
test keys are set), a demo booking-service receiver, then runs the API and the worker. Everything
it keeps is under `.dev/` in the current folder: Redis's data and the sandbox's Stripe (kept
together across restarts), logs, the lock that allows one stack per folder, and while it runs,
the settings it filled in (`.dev/env`, for the console commands).
"""

from __future__ import annotations

import base64
import json
import shutil
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import redis
import requests

from ..settings import ConfigError, Settings
from . import ports
from .children import Children, StartFailure
from .devdata import keep_data_consistent
from .instance import DEV_DIR, AlreadyRunning, InstanceLock, write_env

# Published development-only values: make dev prints them; nothing real is protected by them.
DEV_TOKEN = "dev-token-change-me-0123"  # noqa: S105
DEV_EVENT_SECRET = "whsec_" + base64.b64encode(b"payments-service-dev-signing-key").decode()
SANDBOX_WEBHOOK_SECRET = "whsec_sandbox_development_only"  # noqa: S105
# What each part listens on, and the variable that moves it. Fixed, not "any free port": the
# checkout URLs stored in Redis point at the sandbox's port, and a developer's bookmarks at the API.
PORTS = {
    "api": ("PORT", 8000),
    "sandbox": ("DEV_SANDBOX_PORT", 12111),
    "receiver": ("DEV_RECEIVER_PORT", 8025),
    "redis": ("DEV_REDIS_PORT", 6390),
}


class SetupError(Exception):
    """Something to fix before anything starts; the message says what and how."""


@dataclass
class Plan:
    """What to start, on which ports, and the environment every service gets."""

    env: dict[str, str]
    ports: dict[str, int]
    filled: dict[str, str] = field(default_factory=dict)  # the settings make dev chose (for .dev/env)
    lines: list[str] = field(default_factory=list)  # what to print about each part once it runs

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def url(self, part: str) -> str:
        return f"http://127.0.0.1:{self.ports[part]}"

    def fill(self, **values: str) -> None:
        self.env.update(values)
        self.filled.update(values)


def make_plan(environ: Mapping[str, str]) -> Plan:
    """Decide what to start; raise SetupError naming the problem if the environment will not do."""
    env = dict(environ)
    key = env.get("STRIPE_SECRET_KEY", "")
    chosen = {name: _port_setting(env, variable, default) for name, (variable, default) in PORTS.items()}
    plan = Plan(env, {"api": chosen["api"]})
    if "_live_" in key:
        raise SetupError(
            "make dev refuses live Stripe keys: use test keys (sk_test_...) or none for the sandbox."
        )
    if key and not env.get("STRIPE_WEBHOOK_SECRET"):
        raise SetupError(
            "STRIPE_SECRET_KEY is set, so make dev uses real Stripe, but STRIPE_WEBHOOK_SECRET is not: no "
            "webhook could be verified.\n"
            f"  Run `stripe listen --forward-to localhost:{chosen['api']}/webhooks/stripe`, export the "
            "whsec_... it prints as STRIPE_WEBHOOK_SECRET, and run make dev again.\n"
            "  Or unset STRIPE_SECRET_KEY to use the offline Stripe sandbox."
        )
    if not env.get("REDIS_URL"):
        if shutil.which("redis-server") is None:
            raise SetupError(
                "make dev runs a private Redis but redis-server is not on PATH: install it "
                "(sudo apt-get install redis-server, or brew install redis), or set REDIS_URL "
                "to a Redis that holds nothing else."
            )
        plan.ports["redis"] = chosen["redis"]
        plan.fill(REDIS_URL=f"redis://127.0.0.1:{chosen['redis']}/0")
    if not key:
        plan.ports["sandbox"] = chosen["sandbox"]
        plan.fill(
            STRIPE_SECRET_KEY="sk_test_sandbox",  # noqa: S106
            STRIPE_API_BASE=plan.url("sandbox"),
            STRIPE_WEBHOOK_SECRET=SANDBOX_WEBHOOK_SECRET,
            STRIPE_PUBLISHABLE_KEY="pk_test_sandbox",
        )
    if not env.get("BOOKING_EVENTS_URL"):
        plan.ports["receiver"] = chosen["receiver"]
        receiver = plan.url("receiver")
        plan.fill(BOOKING_EVENTS_URL=f"{receiver}/events")
        for variable, value in (
            (
                "CHECKOUT_SUCCESS_URL",
                f"{receiver}/bookings/{{booking_id}}/paid?session={{CHECKOUT_SESSION_ID}}",
            ),
            ("CHECKOUT_CANCEL_URL", f"{receiver}/bookings/{{booking_id}}"),
        ):
            if not env.get(variable):
                plan.fill(**{variable: value})
    for variable, value in (("INTERNAL_API_TOKENS", DEV_TOKEN), ("EVENT_SIGNING_SECRET", DEV_EVENT_SECRET)):
        if not env.get(variable):
            plan.fill(**{variable: value})
    env.update(PORT=str(chosen["api"]), PYTHONUNBUFFERED="1")
    env.setdefault("WEB_CONCURRENCY", "1")
    try:
        Settings.from_env(env)
    except ConfigError as exc:
        raise SetupError(f"make dev cannot start the service: {exc}") from None
    return plan


def _port_setting(env: Mapping[str, str], variable: str, default: int) -> int:
    text = env.get(variable) or str(default)
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise SetupError(f"{variable}={text!r} is not a port number (1-65535).")
    return int(text)


def check_ports(plan: Plan) -> None:
    """Every port must be free now: a stack that moved to other ports would break stored checkout URLs."""
    busy = []
    for part, port in plan.ports.items():
        if not ports.is_free(port):
            variable = PORTS[part][0]
            held_by = ports.holder(port) or "another process"
            busy.append(
                f"  port {port} ({part}) is taken by {held_by}; stop it, or set {variable}=<another port>"
            )
    if busy:
        raise SetupError("make dev cannot listen where it needs to:\n" + "\n".join(busy))


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code < 500
    except requests.RequestException:
        return False


def answers(url: str, timeout: float = 30) -> bool:
    """Poll until the URL answers with anything but a 5xx, or the time is up (the benchmarks use it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _answers(url):
            return True
        time.sleep(0.05)
    return False


def _redis_answers(port: int) -> bool:
    try:
        with redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=1) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


class _Stop(Exception):
    """Ctrl-C, SIGTERM or a closed terminal: stop everything, also during start-up."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def start_all(plan: Plan, root: Path, children: Children) -> None:
    """Start each part and wait until it answers; StartFailure carries the cause if one does not."""
    command = [str(Path(sys.executable).parent / "payments-service")]
    env = plan.env
    if "redis" in plan.ports:
        redis_args = ["--port", str(plan.ports["redis"]), "--bind", "127.0.0.1", "--dir", str(root / "redis")]
        server = shutil.which("redis-server") or "redis-server"
        children.start("redis", [server, *redis_args, "--save", "", "--appendonly", "yes"], env)
        children.wait_until("redis", lambda: _redis_answers(plan.ports["redis"]), "answer PING")
        plan.lines.append(f"  Redis     {plan.env['REDIS_URL']} (private; data in .dev/redis)")
    else:
        plan.lines.append(f"  Redis     {env['REDIS_URL'].split('@')[-1]} (from REDIS_URL)")
    if "sandbox" in plan.ports:
        sandbox = plan.url("sandbox")
        children.start(
            "sandbox",
            [
                *command,
                "sandbox",
                "--port",
                str(plan.ports["sandbox"]),
                "--webhook-url",
                f"{plan.api}/webhooks/stripe",
                "--webhook-secret",
                SANDBOX_WEBHOOK_SECRET,
                "--state-file",
                str(root / "sandbox" / "stripe.json"),
                # Stripe's test-mode limit, so the budget is seen at work (SANDBOX_RATE_LIMIT=0: none).
                "--rate-limit",
                env.get("SANDBOX_RATE_LIMIT", "25"),
            ],
            env,
        )
        children.wait_until("sandbox", lambda: _answers(f"{sandbox}/_sandbox/health"), "answer")
        plan.lines.append(f"  Stripe    SANDBOX at {sandbox} (development only; state in .dev/sandbox)")
    else:
        plan.lines.append(
            "  Stripe    real Stripe (test mode); forward webhooks with the Stripe CLI (see README)"
        )
    if "receiver" in plan.ports:
        receiver = plan.url("receiver")
        args = [*command, "demo-receiver", "--port", str(plan.ports["receiver"]), "--payments-api", plan.api]
        if "sandbox" in plan.ports:
            args += ["--stripe-sandbox", plan.url("sandbox")]
        token = env["INTERNAL_API_TOKENS"].split(",")[0].strip()
        children.start("receiver", args, {**env, "DEMO_RECEIVER_API_TOKEN": token}, echo=True)
        children.wait_until("receiver", lambda: _answers(receiver + "/"), "answer")
        plan.lines.append(
            f"  Receiver  {receiver}/ (demo booking service: verifies each event, prints it below and "
            "in .dev/logs/receiver.log)"
        )
    children.start("api", [*command, "serve"], env)
    children.start("worker", [*command, "worker"], env)
    children.wait_until("api", lambda: _answers(f"{plan.api}/health"), "answer /health")


def run(environ: Mapping[str, str], out: Callable[[str], None] = print) -> int:
    """Start everything the environment does not already provide, print where, and wait."""
    began = time.monotonic()
    root = Path.cwd() / DEV_DIR
    lock = InstanceLock(root)
    try:
        lock.acquire()
    except AlreadyRunning as exc:
        out(str(exc))
        return 1
    env_file = root / "env"
    env_file.unlink(missing_ok=True)  # left by a stack that was killed: not this one's settings
    children = Children(root / "logs", out)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop)
    try:
        plan = make_plan(environ)
        check_ports(plan)
        if "redis" in plan.ports:
            keep_data_consistent(root, "sandbox" if "sandbox" in plan.ports else "stripe-test", out)
        start_all(plan, root, children)
        write_env(root, plan.filled)
        lock.record(plan.api)
        _print_ready(plan, root, out, time.monotonic() - began)
        while (exited := children.exited()) is None:
            time.sleep(0.2)
        out(f"make dev: stopping everything, because {children.describe_exit(*exited)}")
        return 1
    except SetupError as exc:
        out(str(exc))
        return 2
    except (StartFailure, OSError) as exc:
        out(f"make dev could not start: {exc}")
        return 1
    except _Stop:
        return 0
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
        children.stop_all()
        env_file.unlink(missing_ok=True)
        lock.release()


def _print_ready(plan: Plan, root: Path, out: Callable[[str], None], seconds: float) -> None:
    token = plan.env["INTERNAL_API_TOKENS"].split(",")[0].strip()
    out(f"payments-service is running (development), ready in {seconds:.1f}s:")
    out(f"  API       {plan.api}  (bearer token: {token})")
    for line in plan.lines:
        out(line)
    out(f"  Logs      {root / 'logs'}/ (api.log, worker.log, ...)")
    out("  CLI       payments-service events list / reconcile / ... in this folder use this stack")
    out("  Restarts  keep payments and the sandbox's sessions; rm -rf .dev to start from nothing")
    out("Try it:")
    out(f"  curl -s -X POST {plan.api}/v1/payments -H 'Authorization: Bearer {token}' \\")
    out("    -H 'Content-Type: application/json' \\")
    example = {
        "booking_id": "bk_1",
        "amount": 3750,
        "currency": "usd",
        "description": "Dune: Part Two, 2 seats",
    }
    out(f"    -d '{json.dumps(example)}'")
    out("then open the checkout_url from the answer in a browser. Ctrl-C stops everything.")
