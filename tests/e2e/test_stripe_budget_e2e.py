"""Two `serve` processes (two gunicorn workers each) share one Redis, and so one Stripe budget."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests

from payments_service.stripe_api.budget import HEADROOM
from tests.support.metrics import sample
from tests.support.receiver import Receiver
from tests.support.redis_server import free_port
from tests.support.settings import API_TOKEN
from tests.support.stack import Stack, base_env
from tests.support.stripe_limits import CREATE_SESSION, LATE_WAKE_UPS

pytestmark = pytest.mark.e2e

STRIPE_LIMIT = 10  # requests per second, for the account and for Checkout Session creation
BOOKINGS_PER_SERVE = 15


def test_two_serve_processes_together_stay_inside_one_stripe_budget(tmp_path: Path, redis_url: str) -> None:
    with Receiver() as receiver:
        sandbox_port, api_ports = free_port(), [free_port(), free_port()]
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        env = {
            **base_env(redis_url, receiver.url, sandbox_url),
            "STRIPE_RATE_LIMIT": str(STRIPE_LIMIT),
            "STRIPE_CHECKOUT_RATE_LIMIT": str(STRIPE_LIMIT),
        }
        stack = Stack(tmp_path, env, f"http://127.0.0.1:{api_ports[0]}", sandbox_url, receiver)
        try:
            sandbox = stack.start(
                "sandbox",
                "sandbox",
                "--port",
                str(sandbox_port),
                "--rate-limit",
                str(STRIPE_LIMIT),
                "--endpoint-rate-limit",
                str(STRIPE_LIMIT),
            )
            serves = [
                stack.start(f"serve{n}", "serve", env={"PORT": str(port)}) for n, port in enumerate(api_ports)
            ]
            sandbox.wait_http(sandbox_url + "/_sandbox/health")
            for serve, port in zip(serves, api_ports, strict=True):
                serve.wait_http(f"http://127.0.0.1:{port}/health/live")

            statuses: list[int] = []
            start = threading.Barrier(2 * BOOKINGS_PER_SERVE)

            def checkout(port: int, booking_id: str) -> None:
                start.wait()
                answer = requests.post(
                    f"http://127.0.0.1:{port}/v1/payments",
                    json={"booking_id": booking_id, "amount": 3750, "description": "Dune, 2 seats"},
                    headers={"Authorization": f"Bearer {API_TOKEN}"},
                    timeout=30,
                )
                statuses.append(answer.status_code)

            callers = [
                threading.Thread(target=checkout, args=(port, f"bk_{port}_{n}"))
                for port in api_ports
                for n in range(BOOKINGS_PER_SERVE)
            ]
            for caller in callers:
                caller.start()
            for caller in callers:
                caller.join(60)

            # Each process alone plans most of the limit; without one shared budget Stripe would
            # refuse about a third of these.
            assert statuses == [201] * (2 * BOOKINGS_PER_SERVE)
            counts = requests.get(sandbox_url + "/_sandbox/rate-limits", timeout=5).json()
            assert counts["accepted"][CREATE_SESSION] == 2 * BOOKINGS_PER_SERVE
            assert sum(counts["limited"].values()) <= LATE_WAKE_UPS
            text = requests.get(f"http://127.0.0.1:{api_ports[1]}/metrics", timeout=5).text
            assert (
                sample(text, "payments_stripe_budget_calls_total", priority="checkout") >= BOOKINGS_PER_SERVE
            )
            assert sample(text, "payments_stripe_budget_rate", limit="global") == pytest.approx(
                STRIPE_LIMIT * HEADROOM
            )
        finally:
            for process in reversed(stack.processes):
                process.stop()
