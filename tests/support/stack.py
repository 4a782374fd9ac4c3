"""A running service for end-to-end tests and the fuzz: the Stripe sandbox and `payments-service serve`."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.support.processes import PAYMENTS_SERVICE, ServiceProcess
from tests.support.receiver import Receiver
from tests.support.redis_server import free_port
from tests.support.settings import API_TOKEN, EVENT_SECRET, WEBHOOK_SECRET
from tests.support.signing import stripe_signature


def base_env(redis_url: str, receiver_url: str, stripe_url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONUNBUFFERED": "1",
        "STRIPE_SECRET_KEY": "sk_test_e2e",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": stripe_url,
        "STRIPE_MAX_NETWORK_RETRIES": "1",
        "REDIS_URL": redis_url,
        "INTERNAL_API_TOKENS": API_TOKEN,
        "BOOKING_EVENTS_URL": receiver_url,
        "EVENT_SIGNING_SECRET": EVENT_SECRET,
        "CHECKOUT_SUCCESS_URL": "https://app.test/bookings/{booking_id}/paid",
        "CHECKOUT_CANCEL_URL": "https://app.test/bookings/{booking_id}",
        "WEB_CONCURRENCY": "2",
        "LOG_LEVEL": "INFO",
    }


@dataclass
class Stack:
    """Sandbox Stripe + `payments-service serve` (+ workers on demand) + a booking-service receiver."""

    tmp: Path
    env: dict[str, str]
    api_url: str
    sandbox_url: str
    receiver: Receiver
    processes: list[ServiceProcess] = field(default_factory=list)

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> ServiceProcess:
        process = ServiceProcess(name, [PAYMENTS_SERVICE, *args], {**self.env, **(env or {})}, self.tmp)
        self.processes.append(process)
        return process

    def start_worker(self, name: str = "worker", **env: str) -> ServiceProcess:
        worker = self.start(name, "worker", env=env)
        worker.wait_until(lambda: "Listening on" in worker.log() or "listening" in worker.log().lower())
        return worker

    def cli(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PAYMENTS_SERVICE, *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {API_TOKEN}", **kwargs.pop("headers", {})}
        return requests.request(method, self.api_url + path, headers=headers, timeout=30, **kwargs)

    def sandbox(self, path: str, **params: str) -> requests.Response:
        return requests.post(self.sandbox_url + path, params=params, timeout=10)

    def send_webhook(self, event: dict[str, Any]) -> requests.Response:
        """Be Stripe: sign an event and POST it to the service."""
        body = json.dumps(event).encode()
        headers = {
            "Stripe-Signature": stripe_signature(body, WEBHOOK_SECRET),
            "Content-Type": "application/json",
        }
        return requests.post(self.api_url + "/webhooks/stripe", data=body, headers=headers, timeout=30)


@contextmanager
def running_stack(
    tmp_path: Path, redis_url: str, stripe_latency_ms: int = 0, **env_overrides: str
) -> Iterator[Stack]:
    """Sandbox + serve against a Redis, with a receiver; workers are started by the test."""
    with Receiver() as receiver:
        api_port, sandbox_port = free_port(), free_port()
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        env = {**base_env(redis_url, receiver.url, sandbox_url), "PORT": str(api_port), **env_overrides}
        stack = Stack(tmp_path, env, f"http://127.0.0.1:{api_port}", sandbox_url, receiver)
        try:
            sandbox = stack.start(
                "sandbox",
                "sandbox",
                "--port",
                str(sandbox_port),
                "--webhook-url",
                f"{stack.api_url}/webhooks/stripe",
                "--webhook-secret",
                WEBHOOK_SECRET,
                "--latency-ms",
                str(stripe_latency_ms),
            )
            serve = stack.start("serve", "serve")
            sandbox.wait_http(sandbox_url + "/_sandbox/health")
            serve.wait_http(stack.api_url + "/health/live")
            yield stack
        finally:
            for process in reversed(stack.processes):
                process.stop()


def open_and_pay(stack: Stack, booking_id: str, webhook: bool = True) -> dict[str, Any]:
    """A sibling service opens the checkout; the customer pays on the sandbox's page."""
    created = stack.api(
        "POST",
        "/v1/payments",
        json={"booking_id": booking_id, "amount": 3750, "description": "Dune, 2 seats"},
    )
    assert created.status_code == 201, created.text
    payment: dict[str, Any] = created.json()
    paid = stack.sandbox(f"/_sandbox/sessions/{payment['session_id']}/pay", webhook="1" if webhook else "0")
    assert paid.ok, paid.text
    return payment


def status(stack: Stack, booking_id: str) -> str:
    return str(stack.api("GET", f"/v1/payments/{booking_id}").json()["status"])
