"""`payments-service serve` and `gunicorn wsgi:app` as real processes, driven over HTTP."""

from __future__ import annotations

import subprocess
import time

import pytest
import requests

from tests.support.processes import BIN, PAYMENTS_SERVICE, ServiceProcess
from tests.support.redis_server import free_port
from tests.support.stack import Stack, base_env

pytestmark = pytest.mark.e2e

BODY = {"booking_id": "bk_e2e_1", "amount": 3750, "currency": "usd", "description": "Dune: Part Two, 2 seats"}


def test_serve_opens_and_reuses_a_checkout_over_http(stack: Stack) -> None:
    created = stack.api("POST", "/v1/payments", json=BODY)
    assert created.status_code == 201, created.text
    payment = created.json()
    assert payment["checkout_url"] == f"{stack.sandbox_url}/c/pay/{payment['session_id']}"
    assert created.headers["X-Request-ID"]
    again = stack.api("POST", "/v1/payments", json=BODY)
    assert again.status_code == 200
    assert again.json()["session_id"] == payment["session_id"]
    fetched = stack.api("GET", "/v1/payments/bk_e2e_1")
    assert fetched.json() == payment
    assert (
        stack.api("GET", "/v1/payments/bk_e2e_1", headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    health = requests.get(stack.api_url + "/health", timeout=5)
    assert health.json()["checks"] == {"redis": "ok"}


def test_metrics_count_requests_across_every_gunicorn_worker(stack: Stack) -> None:
    for _ in range(40):  # new connections, so both workers answer some
        assert requests.get(stack.api_url + "/health/live", timeout=5, headers={"Connection": "close"}).ok
    text = requests.get(stack.api_url + "/metrics", timeout=5).text
    line = next(
        row
        for row in text.splitlines()
        if row.startswith("payments_http_requests_total{")
        and 'route="/health/live"' in row
        and 'status="200"' in row
    )
    assert float(line.rsplit(" ", 1)[1]) >= 40  # counted whichever worker answered
    assert "payments_events_pending 0.0" in text


def test_gunicorn_wsgi_app_serves_the_same_app(stack: Stack) -> None:
    port = free_port()
    process = ServiceProcess(
        "gunicorn",
        [str(BIN / "gunicorn"), "wsgi:app", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        stack.env,
        stack.tmp,
    )
    try:
        process.wait_http(f"http://127.0.0.1:{port}/health")
        created = stack.api("POST", "/v1/payments", json={**BODY, "booking_id": "bk_wsgi"})
        assert created.status_code == 201
        response = requests.get(
            f"http://127.0.0.1:{port}/v1/payments/bk_wsgi",
            headers={"Authorization": stack.api("GET", "/v1/config").request.headers["Authorization"]},
            timeout=5,
        )
        assert response.json()["session_id"] == created.json()["session_id"]
    finally:
        process.stop()


@pytest.mark.parametrize(
    "command", [["serve"], ["worker"], ["reconcile"], ["check-config"], ["events", "list"]]
)
def test_every_command_stops_at_start_naming_every_bad_variable(command: list[str], redis_url: str) -> None:
    env = base_env(redis_url, "https://booking.test/events", "http://127.0.0.1:1")
    env.update(INTERNAL_API_TOKENS="", EVENT_SIGNING_SECRET="nope", CHECKOUT_EXPIRES_MINUTES="5")
    started = time.monotonic()
    result = subprocess.run([PAYMENTS_SERVICE, *command], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert time.monotonic() - started < 10
    for name in ("INTERNAL_API_TOKENS", "EVENT_SIGNING_SECRET", "CHECKOUT_EXPIRES_MINUTES"):
        assert name in result.stderr


def test_check_config_accepts_a_good_environment(stack: Stack) -> None:
    result = stack.cli("check-config")
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout
    assert "sk_test" not in result.stdout


def test_check_config_refuses_a_live_key_beside_development_values(redis_url: str) -> None:
    from payments_service.devtools.devstack import DEV_TOKEN, SANDBOX_WEBHOOK_SECRET

    env = base_env(redis_url, "https://booking.test/events", "http://127.0.0.1:12111")
    env.update(
        STRIPE_SECRET_KEY="sk_live_e2e",
        INTERNAL_API_TOKENS=DEV_TOKEN,
        STRIPE_WEBHOOK_SECRET=SANDBOX_WEBHOOK_SECRET,
    )
    result = subprocess.run(
        [PAYMENTS_SERVICE, "check-config"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    for name in ("STRIPE_API_BASE", "INTERNAL_API_TOKENS", "STRIPE_WEBHOOK_SECRET"):
        assert name in result.stderr
    assert "sk_live_e2e" not in result.stderr + result.stdout
