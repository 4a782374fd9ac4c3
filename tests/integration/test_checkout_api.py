"""POST /v1/payments: one Stripe Checkout Session per booking, exactly as the contract says."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import pytest
import requests

from payments_service.domain.payments import PaymentStatus
from payments_service.storage import keys as redis_keys
from payments_service.wiring import Components
from tests.support.stripe_limits import keys_besides_the_budget
from tests.support.stripe_wire import StripeWire, form

CREATE = "/v1/checkout/sessions"
BODY = {"booking_id": "bk_42", "amount": 3750, "currency": "usd", "description": "Dune: Part Two, 2 seats"}


def create(client: Any, auth: dict[str, str], **overrides: Any) -> Any:
    return client.post("/v1/payments", json={**BODY, **overrides}, headers=auth)


def test_a_new_booking_opens_a_checkout_session(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    before = int(time.time())
    response = create(
        client,
        auth,
        customer_email="a@example.com",
        success_url="https://app.example/loading/{booking_id}",
        cancel_url="https://app.example/my-bookings",
        metadata={"show_id": "s1"},
    )
    assert response.status_code == 201
    payment = response.get_json()
    [call] = stripe.calls("POST", CREATE)
    sent = form(call)
    expires_at = int(sent.pop("expires_at"))
    assert before + 30 * 60 < expires_at <= int(time.time()) + 31 * 60
    assert sent == {
        "mode": "payment",
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "3750",
        "line_items[0][price_data][product_data][name]": "Dune: Part Two, 2 seats",
        "client_reference_id": "bk_42",
        "metadata[show_id]": "s1",
        "metadata[booking_id]": "bk_42",
        "metadata[payments_service]": "default",
        "payment_intent_data[metadata][booking_id]": "bk_42",
        "payment_intent_data[metadata][payments_service]": "default",
        "success_url": "https://app.example/loading/bk_42",
        "cancel_url": "https://app.example/my-bookings",
        "customer_email": "a@example.com",
    }
    assert call.headers["Authorization"] == "Bearer sk_test_unit"
    assert call.headers["Idempotency-Key"].startswith("checkout:bk_42:1:")
    assert call.headers["Stripe-Version"]
    session = stripe.state.sessions[payment["session_id"]]
    assert payment == {
        "booking_id": "bk_42",
        "status": "pending",
        "amount": 3750,
        "currency": "usd",
        "description": "Dune: Part Two, 2 seats",
        "checkout_url": session["url"],
        "session_id": session["id"],
        "payment_intent": None,
        "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires_at)),
        "paid_at": None,
        "amount_refunded": 0,
        "version": payment["version"],
        "created_at": payment["created_at"],
        "updated_at": payment["created_at"],
    }
    assert before * 1000 <= payment["version"] <= time.time() * 1000  # versions start at the clock (ms)


def test_configured_redirects_are_used_with_the_booking_filled_in(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    assert create(client, auth, booking_id="bk:7.a").status_code == 201
    sent = form(stripe.calls("POST", CREATE)[0])
    assert sent["success_url"] == "https://app.test/bookings/bk%3A7.a/paid?session={CHECKOUT_SESSION_ID}"
    assert sent["cancel_url"] == "https://app.test/bookings/bk%3A7.a"


@pytest.mark.parametrize(
    ("currency", "major", "minor"),
    [("usd", "37.50", 3750), ("jpy", "4200", 4200), ("kwd", "5.120", 5120)],
)
def test_amount_major_is_converted_by_the_currency_exponent(
    client: Any, auth: dict[str, str], stripe: StripeWire, currency: str, major: str, minor: int
) -> None:
    body = {k: v for k, v in BODY.items() if k != "amount"}
    response = client.post(
        "/v1/payments", json={**body, "currency": currency, "amount_major": major}, headers=auth
    )
    assert response.status_code == 201
    assert response.get_json()["amount"] == minor
    assert form(stripe.calls("POST", CREATE)[0])["line_items[0][price_data][unit_amount]"] == str(minor)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"amount": 12.5}, "amount", "Not a valid integer"),
        ({"amount": "12"}, "amount", "Not a valid integer"),
        ({"amount": True}, "amount", "Not a valid integer"),
        ({"amount": -5}, "amount", "greater than 0"),
        ({"amount": 0}, "amount", "greater than 0"),
        ({"amount": None, "amount_major": "37.505"}, "amount_major", "at most 2 decimal places"),
        ({"amount": None, "amount_major": "100.5", "currency": "jpy"}, "amount_major", "no decimal places"),
        ({"amount": None, "amount_major": 12.5}, "amount_major", "Not a valid string"),
        ({"amount_major": "37.50"}, "amount", "exactly one of amount"),
        ({"amount": None}, "amount", "exactly one of amount"),
        ({"amount": 1234, "currency": "kwd"}, "amount", "multiples of 10"),
        ({"booking_id": "bk 42"}, "booking_id", "must be 1 to 64"),
        ({"booking_id": "b" * 65}, "booking_id", "must be 1 to 64"),
        ({"booking_id": "{tag}"}, "booking_id", "must be 1 to 64"),
        ({"description": ""}, "description", "Length must be between 1 and 250"),
        ({"description": "d" * 251}, "description", "Length must be between 1 and 250"),
        ({"currency": "dollars"}, "currency", "three-letter"),
        ({"customer_email": "not-an-email"}, "customer_email", "Not a valid email"),
        ({"success_url": "javascript:alert(1)"}, "success_url", "Not a valid URL"),
        ({"metadata": {f"k{i}": "v" for i in range(21)}}, "metadata", "at most 20 pairs"),
        ({"metadata": {"booking_id": "other"}}, "metadata", "set by the service"),
        ({"metadata": {"k": 5}}, "metadata.k.value", "Not a valid string"),
        ({"surprise": 1}, "surprise", "Unknown field"),
    ],
)
def test_invalid_input_is_a_422_that_says_why(
    client: Any, auth: dict[str, str], stripe: StripeWire, changes: dict[str, Any], field: str, message: str
) -> None:
    body = {k: v for k, v in {**BODY, **changes}.items() if v is not None}
    response = client.post("/v1/payments", json=body, headers=auth)
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == 422 and problem["title"] == "Unprocessable Entity"
    assert any(message in m for m in problem["errors"][field]), problem["errors"]
    assert stripe.all_calls() == []


def test_missing_fields_are_each_named(client: Any, auth: dict[str, str]) -> None:
    response = client.post("/v1/payments", json={}, headers=auth)
    assert response.status_code == 422
    assert {"booking_id", "description"} <= set(response.get_json()["errors"])


def test_a_request_without_redirects_and_no_defaults_is_a_422(
    redis_url: str, auth: dict[str, str], stripe: StripeWire, app_factory: Any
) -> None:
    app = app_factory(redis_url, checkout_success_url=None, checkout_cancel_url=None)
    response = create(app.test_client(), auth)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"success_url", "cancel_url"}
    assert stripe.all_calls() == []


def test_redirects_must_point_at_allowed_hosts(
    redis_url: str, auth: dict[str, str], stripe: StripeWire, app_factory: Any
) -> None:
    app = app_factory(redis_url, checkout_redirect_hosts=("app.test",))
    client = app.test_client()
    response = create(client, auth, success_url="https://evil.example/steal")
    assert response.status_code == 422
    assert "evil.example" in response.get_json()["errors"]["success_url"][0]
    assert create(client, auth).status_code == 201


def test_the_open_session_is_reused_without_calling_stripe(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    first = create(client, auth)
    second = create(client, auth, description="a changed description")
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.get_json() == first.get_json()
    assert len(stripe.all_calls()) == 1


def test_while_another_request_holds_the_booking_its_open_session_is_handed_out_at_once(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    first = create(client, auth)
    lock = redis_keys.booking_lock("bk_42")
    held = f"another-request:{components.redis.info('replication')['master_replid']}"
    components.redis.set(lock, held, px=60_000)  # someone is talking to Stripe about it
    started = time.monotonic()
    second = create(client, auth)
    assert second.status_code == 200 and second.get_json() == first.get_json()
    assert time.monotonic() - started < 1.0  # did not wait for the lock
    assert components.redis.get(lock) == held.encode()  # and left the holder's lock alone
    assert len(stripe.all_calls()) == 1


def test_a_lock_taken_before_the_primary_changed_does_not_hold_the_booking(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    # Taken on a primary that has failed over (or restarted) since: its holder's answer went nowhere.
    lock = redis_keys.booking_lock("bk_42")
    components.redis.set(lock, "gone-request:" + "0" * 40, px=60_000)
    started = time.monotonic()
    assert create(client, auth).status_code == 201
    assert time.monotonic() - started < 1.0  # not LOCK_WAIT_SECONDS, nor the lock's 150 s
    assert components.redis.exists(lock) == 0  # taken over, and released with the save


def test_a_repeated_request_releases_the_lock_it_took(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    assert create(client, auth).status_code == 201
    assert create(client, auth).status_code == 200
    assert components.redis.exists(redis_keys.booking_lock("bk_42")) == 0


def test_a_changed_amount_expires_the_old_session_first(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    old = create(client, auth).get_json()
    response = create(client, auth, amount=4000)
    assert response.status_code == 201
    new = response.get_json()
    assert new["session_id"] != old["session_id"]
    assert (new["amount"], new["version"]) == (4000, old["version"] + 1)
    assert stripe.state.sessions[old["session_id"]]["status"] == "expired"
    methods = [(c.method, c.path) for c in stripe.all_calls()]
    assert methods[1] == ("POST", f"/v1/checkout/sessions/{old['session_id']}/expire".lower())
    assert stripe.calls("POST", CREATE)[1].headers["Idempotency-Key"].startswith("checkout:bk_42:2:")


def test_a_changed_currency_opens_a_new_session(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    create(client, auth)
    response = create(client, auth, currency="eur")
    assert response.status_code == 201
    assert response.get_json()["currency"] == "eur"


def test_a_session_past_its_expiry_is_replaced(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    old = create(client, auth).get_json()
    stored = components.store.get("bk_42")
    assert stored is not None
    stripe.state.expire(old["session_id"])
    components.store.save(dataclasses.replace(stored, expires_at=int(time.time()) - 1), stored)
    response = create(client, auth)
    assert response.status_code == 201
    assert response.get_json()["session_id"] != old["session_id"]


@pytest.mark.parametrize(
    "status",
    [PaymentStatus.EXPIRED, PaymentStatus.FAILED, PaymentStatus.CANCELED],
)
def test_a_finished_unpaid_payment_gets_a_new_session(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components, status: PaymentStatus
) -> None:
    create(client, auth)
    stored = components.store.get("bk_42")
    assert stored is not None
    components.store.save(stored.evolve(int(time.time()), status=status, checkout_url=None), stored)
    response = create(client, auth)
    assert response.status_code == 201
    assert response.get_json()["status"] == "pending"
    assert len(stripe.calls("POST", CREATE)) == 2
    assert not any(c.path.endswith("/expire") for c in stripe.all_calls())


@pytest.mark.parametrize(
    "status",
    [PaymentStatus.PAID, PaymentStatus.PROCESSING, PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED],
)
def test_a_paid_booking_cannot_be_charged_again(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components, status: PaymentStatus
) -> None:
    create(client, auth)
    stored = components.store.get("bk_42")
    assert stored is not None
    components.store.save(stored.evolve(int(time.time()), status=status), stored)
    response = create(client, auth, amount=9999)
    assert response.status_code == 409
    assert response.content_type == "application/problem+json"
    assert status.value in response.get_json()["detail"]
    assert len(stripe.all_calls()) == 1


def test_twenty_concurrent_requests_open_exactly_one_session(
    app: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    stripe.latency = 0.2  # Stripe is slow, so the requests really overlap
    statuses: list[int] = []
    sessions: set[str] = set()
    start = threading.Barrier(20)

    def request() -> None:
        start.wait()
        response = create(app.test_client(), auth)
        statuses.append(response.status_code)
        sessions.add(response.get_json()["session_id"])

    threads = [threading.Thread(target=request) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stripe.calls("POST", CREATE)) == 1
    assert len(sessions) == 1
    assert sorted(statuses) == [200] * 19 + [201]


@pytest.mark.parametrize(
    ("status", "message"),
    [(500, "An unknown error occurred"), (400, "Invalid currency: xyz")],
)
def test_stripe_refusing_is_a_502_with_its_message_and_nothing_is_stored(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components, status: int, message: str
) -> None:
    stripe.fail("POST", CREATE, status, message)
    response = create(client, auth)
    assert response.status_code == 502
    problem = response.get_json()
    assert message in problem["detail"] and "req_failed" in problem["detail"]
    assert problem["stripe_request_id"] == "req_failed"
    assert components.store.get("bk_42") is None
    assert keys_besides_the_budget(components.redis) == []
    retries = 1 if status >= 500 else 0
    calls = stripe.calls("POST", CREATE)
    assert len(calls) == 1 + retries
    assert len({c.headers["Idempotency-Key"] for c in calls}) == 1  # a retry reuses the key


def test_stripe_unreachable_is_a_502_and_the_booking_is_not_left_locked(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    stripe.mocker.register_uri(
        "POST", "https://stripe.test" + CREATE, exc=requests.exceptions.ConnectionError
    )
    response = create(client, auth)
    assert response.status_code == 502
    assert keys_besides_the_budget(components.redis) == []
    stripe.mocker.register_uri("POST", "https://stripe.test" + CREATE, text=stripe._respond)
    assert create(client, auth).status_code == 201
