"""`payments-service dev` (what `make dev` runs) driven by a real headless Chromium, as a customer would."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.processes import PAYMENTS_SERVICE, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path("test-artifacts/browser")
# The flags the machine needs: no sandbox as root, and no background calls to a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class DevRun:
    """A running `payments-service dev`, its terminal output collected line by line."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    api: str = ""
    token: str = ""

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def printed(self, pattern: str) -> bool:
        return any(re.search(pattern, line) for line in self.lines)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return requests.request(method, self.api + path, headers=headers, timeout=30, **kwargs)

    def open_payment(self, booking_id: str) -> dict[str, Any]:
        body = {
            "booking_id": booking_id,
            "amount": 3750,
            "currency": "usd",
            "description": "Dune: Part Two, 2 seats",
        }
        response = self.call("POST", "/v1/payments", json=body)
        assert response.status_code == 201, response.text
        payment: dict[str, Any] = response.json()
        return payment


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevRun]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    workdir = tmp_path_factory.mktemp("fresh-checkout")
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}  # nothing configured
    process = subprocess.Popen(
        [PAYMENTS_SERVICE, "dev"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    run = DevRun(process)
    threading.Thread(target=run.read, daemon=True).start()
    try:
        wait_for(lambda: run.printed(r"^Try it:"), 60, "make dev to report it is running")
        match = next(
            re.search(r"API\s+(\S+)\s+\(bearer token: (\S+)\)", line) for line in run.lines if "API " in line
        )
        assert match is not None
        run.api, run.token = match.group(1), match.group(2)
        yield run
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C, as a developer stops it
        process.wait(30)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def test_a_customer_pays_and_the_booking_service_hears_of_it(dev: DevRun, browser: Any) -> None:
    payment = dev.open_payment("bk_browser_pay")
    page = browser.new_page()
    page.goto(payment["checkout_url"])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "checkout-page.png"), full_page=True)
    assert page.get_by_role("heading", level=1).inner_text() == "Dune: Part Two, 2 seats"
    page.get_by_role("button", name="Pay $37.50").click()
    page.wait_for_url(re.compile(r"/bookings/bk_browser_pay/paid\?session=" + payment["session_id"]))
    assert "Payment received" in page.get_by_role("heading", level=1).inner_text()
    wait_for(
        lambda: dev.printed(
            rf"payment\.paid\s+booking=bk_browser_pay status=paid v{payment['version'] + 1}$"
        ),
        20,
        "payment.paid",
    )
    assert dev.call("GET", "/v1/payments/bk_browser_pay").json()["status"] == "paid"
    page.close()


def test_a_customer_cancels_and_the_booking_is_released(dev: DevRun, browser: Any) -> None:
    payment = dev.open_payment("bk_browser_cancel")
    page = browser.new_page()
    page.goto(payment["checkout_url"])
    page.get_by_role("link", name="Cancel and return to the merchant").click()
    page.wait_for_url(re.compile(r"/bookings/bk_browser_cancel$"))
    assert "without paying" in page.content()
    # Back on its page, the booking service gives the seats back.
    assert dev.call("POST", "/v1/payments/bk_browser_cancel/cancel").json()["status"] == "canceled"
    wait_for(lambda: dev.printed(r"payment\.canceled\s+booking=bk_browser_cancel"), 20, "payment.canceled")
    page.goto(payment["checkout_url"])
    assert "expired" in page.get_by_role("alert").inner_text()
    page.close()


def test_a_delayed_payment_that_fails_ends_failed(dev: DevRun, browser: Any) -> None:
    payment = dev.open_payment("bk_browser_delayed")
    page = browser.new_page()
    page.goto(payment["checkout_url"])
    page.get_by_role("button", name="Pay with a delayed method (bank debit)").click()
    page.wait_for_url(re.compile(r"/bookings/bk_browser_delayed/paid"))
    wait_for(
        lambda: dev.printed(r"payment\.processing\s+booking=bk_browser_delayed"), 20, "payment.processing"
    )
    page.goto(payment["checkout_url"])
    page.screenshot(path=str(ARTIFACTS / "delayed-payment-processing.png"), full_page=True)
    page.get_by_role("button", name="The payment fails").click()
    assert "failed" in page.get_by_role("status").inner_text()
    wait_for(lambda: dev.printed(r"payment\.failed\s+booking=bk_browser_delayed"), 20, "payment.failed")
    assert dev.call("GET", "/v1/payments/bk_browser_delayed").json()["status"] == "failed"
    page.close()
