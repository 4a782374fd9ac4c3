"""SIGTERM (what `docker stop` sends) lets in-flight requests and deliveries finish."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.processes import wait_for
from tests.support.stack import open_and_pay, running_stack

pytestmark = pytest.mark.e2e


def test_serve_finishes_a_checkout_that_is_waiting_on_stripe(tmp_path: Path, redis_url: str) -> None:
    with running_stack(tmp_path, redis_url, stripe_latency_ms=1500) as stack:
        serve = next(p for p in stack.processes if p.name == "serve")
        answer: dict[str, Any] = {}

        def checkout() -> None:
            body = {"booking_id": "bk_inflight", "amount": 1000, "description": "2 seats"}
            answer["response"] = stack.api("POST", "/v1/payments", json=body)

        caller = threading.Thread(target=checkout)
        caller.start()
        time.sleep(0.5)  # the request is now waiting on Stripe's (sandbox's) answer
        os.kill(serve.process.pid, signal.SIGTERM)  # to the gunicorn master, as an orchestrator does
        caller.join(20)
        assert answer["response"].status_code == 201
        assert serve.process.wait(30) == 0
        with pytest.raises(requests.ConnectionError):
            requests.get(stack.api_url + "/health/live", timeout=2)


def test_the_worker_finishes_a_delivery_before_it_exits(tmp_path: Path, redis_url: str) -> None:
    with running_stack(tmp_path, redis_url) as stack:
        stack.receiver.delay = 2.0
        worker = stack.start_worker()
        open_and_pay(stack, "bk_slow_receiver")
        wait_for(lambda: len(stack.receiver.received) == 1, 20, "a delivery to start")
        os.kill(worker.process.pid, signal.SIGTERM)
        assert worker.process.wait(30) == 0
        [delivery] = stack.receiver.received
        assert delivery.answered == 204  # answered after the SIGTERM, and the worker waited for it
        listed = stack.cli("events", "list")
        assert "delivered" in listed.stdout and "retrying" not in listed.stdout
