"""`payments-service dev` (make dev): the whole flow on one machine, offline. Development only.

Fills in what the environment leaves unset: a private Redis, the Stripe sandbox (unless real
test keys are set), a demo booking-service receiver, then runs the API and the worker.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import requests

# Published development-only values: make dev prints them; nothing real is protected by them.
DEV_TOKEN = "dev-token-change-me-0123"  # noqa: S105
DEV_EVENT_SECRET = "whsec_" + base64.b64encode(b"payments-service-dev-signing-key").decode()
SANDBOX_WEBHOOK_SECRET = "whsec_sandbox_development_only"  # noqa: S105
PREFERRED_PORTS = {"api": 8000, "sandbox": 12111, "receiver": 8025}


def _port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str, timeout: float = 30) -> bool:
    """Poll until the URL answers with anything but a 5xx, or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return True
        except requests.RequestException:
            time.sleep(0.05)
    return False


class DevStack:
    """Child processes in their own sessions; Ctrl-C or SIGTERM stops them all."""

    def __init__(self, root: Path, out: Callable[[str], None]) -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: Mapping[str, str], to_terminal: bool = False) -> None:
        log = None if to_terminal else (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(  # noqa: S603 (our own commands)
            args, env=dict(env), stdout=log, stderr=subprocess.STDOUT if log else None, start_new_session=True
        )
        self.children.append((name, process))

    def wait_http(self, name: str, url: str, timeout: float = 30) -> None:
        if not answers(url, timeout):
            raise RuntimeError(f"{name} did not come up at {url}; see {self.logs}/{name}.log")

    def run_until_stopped(self) -> int:
        stop = False

        def _stop(*_: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        while not stop:
            for name, process in self.children:
                if process.poll() is not None:
                    self.out(f"{name} exited ({process.returncode}); stopping. See {self.logs}/{name}.log")
                    stop = True
            time.sleep(0.2)
        self.shutdown()
        return 0

    def shutdown(self) -> None:
        for _, process in reversed(self.children):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _, process in self.children:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def run(environ: Mapping[str, str], out: Callable[[str], None] = print) -> int:
    """Start everything the environment does not already provide, print where, and wait."""
    env = dict(environ)
    key = env.get("STRIPE_SECRET_KEY", "")
    if "_live_" in key:
        out("make dev refuses live Stripe keys: use test keys (sk_test_...) or none for the sandbox.")
        return 2
    stack = DevStack(Path.cwd() / ".dev", out)
    command = [str(Path(sys.executable).parent / "payments-service")]
    ports = {name: _port(port) for name, port in PREFERRED_PORTS.items()}
    api = f"http://127.0.0.1:{ports['api']}"
    env.update(PORT=str(ports["api"]), PYTHONUNBUFFERED="1")
    env.setdefault("WEB_CONCURRENCY", "1")
    lines = []
    try:
        if not env.get("REDIS_URL"):
            redis_port = _port(6390)
            redis_dir = stack.root / "redis"
            redis_dir.mkdir(parents=True, exist_ok=True)
            stack.start(
                "redis",
                [
                    shutil.which("redis-server") or "redis-server",
                    "--port",
                    str(redis_port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(redis_dir),
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                ],
                env,
            )
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            lines.append(f"  Redis     {env['REDIS_URL']} (private, data in .dev/redis)")
        else:
            lines.append(f"  Redis     {env['REDIS_URL'].split('@')[-1]} (from REDIS_URL)")
        if not key:
            sandbox = f"http://127.0.0.1:{ports['sandbox']}"
            env.update(
                STRIPE_SECRET_KEY="sk_test_sandbox",  # noqa: S106
                STRIPE_API_BASE=sandbox,
                STRIPE_WEBHOOK_SECRET=SANDBOX_WEBHOOK_SECRET,
                STRIPE_PUBLISHABLE_KEY="pk_test_sandbox",
            )
            env.setdefault("SANDBOX_RATE_LIMIT", "25")  # Stripe's test-mode limit: the budget at work
            stack.start(
                "sandbox",
                [
                    *command,
                    "sandbox",
                    "--port",
                    str(ports["sandbox"]),
                    "--webhook-url",
                    f"{api}/webhooks/stripe",
                    "--webhook-secret",
                    SANDBOX_WEBHOOK_SECRET,
                ],
                env,
            )
            stack.wait_http("sandbox", f"{sandbox}/_sandbox/health")
            lines.append(
                f"  Stripe    SANDBOX at {sandbox} (development only; set STRIPE_SECRET_KEY for real Stripe)"
            )
        else:
            lines.append(
                "  Stripe    real Stripe (test mode); forward webhooks with the Stripe CLI (see README)"
            )
        if not env.get("BOOKING_EVENTS_URL"):
            receiver = f"http://127.0.0.1:{ports['receiver']}"
            env.setdefault("EVENT_SIGNING_SECRET", DEV_EVENT_SECRET)
            env.update(BOOKING_EVENTS_URL=f"{receiver}/events")
            env.setdefault(
                "CHECKOUT_SUCCESS_URL",
                f"{receiver}/bookings/{{booking_id}}/paid?session={{CHECKOUT_SESSION_ID}}",
            )
            env.setdefault("CHECKOUT_CANCEL_URL", f"{receiver}/bookings/{{booking_id}}")
            stack.start(
                "receiver",
                [*command, "demo-receiver", "--port", str(ports["receiver"])],
                env,
                to_terminal=True,
            )
            lines.append(
                f"  Receiver  {receiver}/events (demo booking service: verifies and prints each event)"
            )
        env.setdefault("INTERNAL_API_TOKENS", DEV_TOKEN)
        env.setdefault("EVENT_SIGNING_SECRET", DEV_EVENT_SECRET)
        stack.start("api", [*command, "serve"], env)
        stack.start("worker", [*command, "worker"], env)
        stack.wait_http("api", f"{api}/health")
    except Exception:
        stack.shutdown()
        raise
    token = env["INTERNAL_API_TOKENS"].split(",")[0].strip()
    out("payments-service is running (development):")
    out(f"  API       {api}  (bearer token: {token})")
    for line in lines:
        out(line)
    out(f"  Logs      {stack.logs}/ (api.log, worker.log, ...)")
    out("Try it:")
    out(f"  curl -s -X POST {api}/v1/payments -H 'Authorization: Bearer {token}' \\")
    out("    -H 'Content-Type: application/json' \\")
    example = {
        "booking_id": "bk_1",
        "amount": 3750,
        "currency": "usd",
        "description": "Dune: Part Two, 2 seats",
    }
    out(f"    -d '{json.dumps(example)}'")
    out("then open the checkout_url from the answer in a browser. Ctrl-C stops everything.")
    return stack.run_until_stopped()
