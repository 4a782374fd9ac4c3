"""`payments-service dev` (what `make dev` runs) driven by a real headless Chromium, as a customer would."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import CHROMIUM_ARGS, require_chromium
from tests.support.devstack import DevRun, bare_env, free_ports
from tests.support.processes import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ARTIFACTS = Path("test-artifacts/browser")
PHONE = {"width": 375, "height": 812}


@pytest.fixture(scope="module", autouse=True)
def chromium() -> Path:
    """Checked before make dev starts: without a browser there is nothing to start it for."""
    return require_chromium()


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevRun]:
    run = DevRun(tmp_path_factory.mktemp("fresh-checkout"), bare_env(**free_ports()))
    try:
        yield run.wait_ready()
    finally:
        run.stop()


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def heading(page: Any) -> str:
    return str(page.get_by_role("heading", level=1).inner_text())


def test_a_customer_pays_and_the_booking_service_hears_of_it(dev: DevRun, browser: Any) -> None:
    payment = dev.open_payment("bk_browser_pay")
    page = browser.new_page()
    page.goto(payment["checkout_url"])
    screenshot(page, "checkout-page")
    assert heading(page) == "Dune: Part Two, 2 seats"
    page.get_by_role("button", name="Pay $37.50").click()
    page.wait_for_url(re.compile(r"/bookings/bk_browser_pay/paid\?session=" + payment["session_id"]))
    assert heading(page) == "Payment received"
    wait_for(
        lambda: dev.printed(
            rf"payment\.paid\s+booking=bk_browser_pay status=paid v{payment['version'] + 1}$"
        ),
        20,
        "payment.paid",
    )
    assert dev.status("bk_browser_pay") == "paid"
    page.close()


def test_a_customer_cancels_and_the_booking_is_released(dev: DevRun, browser: Any) -> None:
    payment = dev.open_payment("bk_browser_cancel")
    page = browser.new_page()
    page.goto(payment["checkout_url"])
    page.get_by_role("link", name="Cancel and return to the merchant").click()
    page.wait_for_url(re.compile(r"/bookings/bk_browser_cancel$"))
    assert "without paying" in page.get_by_role("status").inner_text()
    # Back on its page, the booking service gives the seats back.
    assert dev.call("POST", "/v1/payments/bk_browser_cancel/cancel").json()["status"] == "canceled"
    wait_for(lambda: dev.printed(r"payment\.canceled\s+booking=bk_browser_cancel"), 20, "payment.canceled")
    page.goto(payment["checkout_url"])
    assert "expired" in page.get_by_role("alert").inner_text()
    page.close()


@pytest.mark.parametrize(
    ("button", "landing", "status"),
    [("The payment succeeds", "Payment received", "paid"), ("The payment fails", "Payment failed", "failed")],
)
def test_a_delayed_payment_is_processing_where_the_browser_lands_then_settles_from_there(
    dev: DevRun, browser: Any, button: str, landing: str, status: str
) -> None:
    booking = f"bk_browser_delayed_{status}"
    payment = dev.open_payment(booking)
    page = browser.new_page()
    page.goto(payment["checkout_url"])
    page.get_by_role("button", name="Pay with a delayed method (bank debit)").click()
    page.wait_for_url(re.compile(rf"/bookings/{booking}/paid"))
    assert heading(page) == "Payment processing"
    assert "Payment received" not in page.content()
    screenshot(page, f"delayed-payment-processing-{status}")
    wait_for(lambda: dev.printed(rf"payment\.processing\s+booking={booking}"), 20, "payment.processing")

    page.get_by_role("button", name=button).click()  # on the page the browser landed on

    page.wait_for_url(re.compile(rf"/bookings/{booking}/paid"))
    assert heading(page) == landing
    wait_for(lambda: dev.printed(rf"payment\.{status}\s+booking={booking}"), 20, f"payment.{status}")
    assert dev.status(booking) == status
    page.close()


def test_no_page_scrolls_sideways_on_a_375px_phone(dev: DevRun, browser: Any) -> None:
    payment = dev.open_payment("bk_browser_phone")
    page = browser.new_page(viewport=PHONE)

    def fits(name: str) -> None:
        screenshot(page, name)
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= PHONE["width"], f"{name} is {width}px wide"

    page.goto(payment["checkout_url"])
    fits("checkout-375px")
    page.get_by_role("button", name="Pay with a delayed method (bank debit)").click()
    page.wait_for_url(re.compile(r"/bookings/bk_browser_phone/paid"))
    fits("receiver-processing-375px")
    page.goto(dev.receiver_url + "/")
    wait_for(lambda: "bk_browser_phone" in (page.reload() and page.content()), 20, "the event listed")
    fits("receiver-events-375px")
    page.close()


def test_the_demo_booking_service_labels_itself_and_lists_the_events_it_received(
    dev: DevRun, browser: Any
) -> None:
    payment = dev.open_payment("bk_browser_events")
    page = browser.new_page()
    page.goto(payment["checkout_url"])
    page.get_by_role("button", name="Pay $37.50").click()
    page.wait_for_url(re.compile(r"/bookings/bk_browser_events/paid"))
    assert "Demo booking service" in page.get_by_role("note").inner_text()
    page.get_by_role("link", name="Events received").click()
    assert heading(page) == "Events received"
    wait_for(
        lambda: "bk_browser_events" in (page.reload() and page.locator("ol.events").inner_text()),
        20,
        "the event on the receiver's page",
    )
    assert re.search(r"payment\.paid for booking bk_browser_events", page.locator("ol.events").inner_text())
    page.close()
