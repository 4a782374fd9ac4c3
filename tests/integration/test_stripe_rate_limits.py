"""Stripe's rate limits: the app against a Stripe stand-in that answers 429 past its rates.

The stand-in counts in a strict sliding second; the service must stay under it by itself
(the shared budget in Redis), make callers wait instead of failing, and let refunds through
ahead of a queue of checkouts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from stripe import StripeClient

from payments_service.domain.errors import StripeRateLimited
from payments_service.stripe_api.budget import HEADROOM
from payments_service.stripe_api.gateway import StripeGateway
from payments_service.stripe_api.requests_transport import requests_http_client
from payments_service.wiring import Components
from tests.support.flows import BODY, components_of, post_event
from tests.support.metrics import metric
from tests.support.processes import wait_for
from tests.support.settings import WEBHOOK_SECRET
from tests.support.stripe_limits import (
    CREATE_REFUND,
    CREATE_SESSION,
    LATE_WAKE_UPS,
    LimitedStripe,
    limited_stripe,
)
from tests.support.stripe_wire import StripeWire, checkout_request

CREATE = "/v1/checkout/sessions"


@pytest.fixture
def limited() -> Iterator[Callable[[int, int], LimitedStripe]]:
    """Stand-ins with the given global and per-endpoint limits (requests per second)."""
    opened = []

    def start(global_limit: int, endpoint_limit: int) -> LimitedStripe:
        context = limited_stripe(global_limit, endpoint_limit)
        opened.append(context)
        return context.__enter__()

    yield start
    for context in opened:
        context.__exit__(None, None, None)


def limited_app(app_factory: Any, redis_url: str, stripe: LimitedStripe, **settings: Any) -> Any:
    return app_factory(redis_url, stripe_api_base=stripe.url, stripe_max_network_retries=0, **settings)


def checkouts_at_once(client: Any, auth: dict[str, str], booking_ids: list[str]) -> list[Any]:
    """Every booking's POST /v1/payments at the same moment, one thread each; answers in that order."""
    answers: list[Any] = [None] * len(booking_ids)
    start = threading.Barrier(len(booking_ids))

    def one(index: int) -> None:
        start.wait()
        answers[index] = client.post(
            "/v1/payments", json={**BODY, "booking_id": booking_ids[index]}, headers=auth
        )

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(booking_ids))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def test_a_burst_of_checkouts_waits_for_places_and_stripe_never_answers_429(
    app_factory: Any, redis_url: str, auth: dict[str, str], limited: Callable[[int, int], LimitedStripe]
) -> None:
    stripe = limited(100, 10)
    client = limited_app(
        app_factory, redis_url, stripe, stripe_rate_limit=100, stripe_checkout_rate_limit=10
    ).test_client()
    quick = ("payments_stripe_budget_wait_seconds_bucket", {"priority": "checkout", "le": "0.25"})
    quick_before = metric(client, quick[0], **quick[1])
    answers = checkouts_at_once(client, auth, [f"bk_burst_{n}" for n in range(16)])
    assert [a.status_code for a in answers] == [201] * 16
    assert len({a.get_json()["session_id"] for a in answers}) == 16
    assert stripe.accepted() == 16 and stripe.refused() <= LATE_WAKE_UPS
    # They were held back (a second holds at most 10): some waited for their place.
    assert metric(client, quick[0], **quick[1]) - quick_before < 16


def test_a_checkout_that_cannot_get_a_place_within_its_bound_is_a_503_with_retry_after(
    app_factory: Any, redis_url: str, auth: dict[str, str], limited: Callable[[int, int], LimitedStripe]
) -> None:
    stripe = limited(100, 5)
    client = limited_app(
        app_factory,
        redis_url,
        stripe,
        stripe_rate_limit=100,
        stripe_checkout_rate_limit=5,
        checkout_wait_seconds=1.0,
    ).test_client()
    turned_away_before = metric(client, "payments_stripe_budget_turned_away_total", priority="checkout")
    bookings = [f"bk_bound_{n}" for n in range(14)]
    answers = checkouts_at_once(client, auth, bookings)
    statuses = [a.status_code for a in answers]
    assert set(statuses) == {201, 503}  # never a 502
    refused = [(booking, a) for booking, a in zip(bookings, answers, strict=True) if a.status_code == 503]
    for _, answer in refused:
        assert int(answer.headers["Retry-After"]) >= 1
        assert answer.get_json()["type"] == "urn:payments-service:problem:stripe-rate-limit"
    assert stripe.accepted() == statuses.count(201) and stripe.refused() <= LATE_WAKE_UPS
    turned_away = metric(client, "payments_stripe_budget_turned_away_total", priority="checkout")
    assert turned_away == turned_away_before + len(refused)
    # Nothing of a turned-away booking is kept: asking again later opens its checkout.
    booking, _ = refused[0]
    again = client.post("/v1/payments", json={**BODY, "booking_id": booking}, headers=auth)
    assert again.status_code in (201, 503)
    assert stripe.sessions_for(booking) == (
        [again.get_json()["session_id"]] if again.status_code == 201 else []
    )


def test_callers_waiting_for_one_booking_get_the_same_session(
    app_factory: Any, redis_url: str, auth: dict[str, str], limited: Callable[[int, int], LimitedStripe]
) -> None:
    stripe = limited(100, 5)
    client = limited_app(
        app_factory, redis_url, stripe, stripe_rate_limit=100, stripe_checkout_rate_limit=5
    ).test_client()
    # Others queued first, then six callers for one booking (a customer pressing Pay again).
    answers = checkouts_at_once(client, auth, [f"bk_other_{n}" for n in range(6)] + ["bk_same"] * 6)
    same = answers[6:]
    assert sorted(a.status_code for a in same) == [200] * 5 + [201]
    assert len({a.get_json()["session_id"] for a in same}) == 1
    assert stripe.sessions_for("bk_same") == [same[0].get_json()["session_id"]]
    assert stripe.refused() <= LATE_WAKE_UPS


def paid_booking(client: Any, auth: dict[str, str], stripe: LimitedStripe, booking_id: str) -> None:
    opened = client.post("/v1/payments", json={**BODY, "booking_id": booking_id}, headers=auth)
    assert opened.status_code == 201
    stripe.state.pay(opened.get_json()["session_id"], notify=False)
    assert post_event(client, stripe.state.events[-1]).status_code == 200


def test_a_refund_goes_ahead_of_a_queue_of_checkouts(
    app_factory: Any, redis_url: str, auth: dict[str, str], limited: Callable[[int, int], LimitedStripe]
) -> None:
    # The account's global limit is what checkouts queue for; refunds keep a reserve of it.
    stripe = limited(10, 25)
    app = limited_app(app_factory, redis_url, stripe, stripe_rate_limit=10, stripe_endpoint_rate_limit=25)
    client = app.test_client()
    paid_booking(client, auth, stripe, "bk_paid")
    queue = threading.Thread(
        target=checkouts_at_once, args=(client, auth, [f"bk_queued_{n}" for n in range(24)])
    )
    queue.start()
    components = components_of(app)
    wait_until_queued(components, seconds=1.5)
    refund = client.post("/v1/payments/bk_paid/refunds", json={}, headers=auth)
    answered_before = stripe.accepted()
    queue.join(60)
    assert refund.status_code == 200 and refund.get_json()["status"] == "refunded"
    assert stripe.accepted(CREATE_REFUND) == 1
    # The refund was answered while most of the queue still waited for its places.
    assert answered_before < 1 + 24 // 2 and stripe.accepted() == 1 + 24
    assert stripe.refused() <= LATE_WAKE_UPS


def wait_until_queued(components: Components, seconds: float) -> None:
    """Until the global calendar is booked `seconds` ahead (the queue has formed)."""
    wait_for(lambda: components.budget.usage()["global"][2] >= seconds, 10, "a queue of checkouts")


def test_a_429_that_happens_anyway_is_retried_with_the_same_key_and_counted(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    # Another integration on the same account spent the budget: Stripe refuses twice.
    too_many = {
        "status_code": 429,
        "json": {"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many"}},
    }
    stripe.mocker.register_uri(
        "POST", "https://stripe.test" + CREATE, [too_many, too_many, {"text": stripe._respond}]
    )
    before = metric(
        client,
        "payments_stripe_requests_total",
        operation="checkout.sessions.create",
        outcome="RateLimitError",
    )
    response = client.post("/v1/payments", json=BODY, headers=auth)
    assert response.status_code == 201
    calls = stripe.calls("POST", CREATE)
    assert len(calls) == 3 and len({c.headers["Idempotency-Key"] for c in calls}) == 1
    after = metric(
        client,
        "payments_stripe_requests_total",
        operation="checkout.sessions.create",
        outcome="RateLimitError",
    )
    assert after == before + 2


def test_stripe_refusing_with_429_past_the_bound_is_a_503_never_a_502(
    app_factory: Any, redis_url: str, auth: dict[str, str], stripe: StripeWire
) -> None:
    client = app_factory(redis_url, checkout_wait_seconds=1.0).test_client()
    stripe.fail("POST", CREATE, 429, "Too many requests hit the API too quickly.", code="rate_limit")
    response = client.post("/v1/payments", json=BODY, headers=auth)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert 2 <= len(stripe.calls("POST", CREATE)) <= 6  # backed off, not hammered


def test_the_budget_left_is_on_metrics(
    app_factory: Any, redis_url: str, auth: dict[str, str], limited: Callable[[int, int], LimitedStripe]
) -> None:
    stripe = limited(100, 10)
    client = limited_app(
        app_factory, redis_url, stripe, stripe_rate_limit=100, stripe_checkout_rate_limit=10
    ).test_client()
    assert metric(client, "payments_stripe_budget_rate", limit="checkout.sessions.create") == pytest.approx(
        10 * HEADROOM
    )
    assert metric(client, "payments_stripe_budget_rate", limit="global") == pytest.approx(100 * HEADROOM)
    # Idle: a second's places, less those of the current bucket whose time has passed.
    assert metric(client, "payments_stripe_budget_free", limit="checkout.sessions.create") >= 8
    granted_before = metric(client, "payments_stripe_budget_calls_total", priority="checkout")
    queue = threading.Thread(
        target=checkouts_at_once, args=(client, auth, [f"bk_metrics_{n}" for n in range(20)])
    )
    queue.start()
    wait_for(
        lambda: (
            metric(client, "payments_stripe_budget_booked_seconds", limit="checkout.sessions.create") >= 1
        ),
        10,
        "the line to show",
    )
    assert metric(client, "payments_stripe_budget_free", limit="checkout.sessions.create") <= 1
    queue.join(60)
    assert metric(client, "payments_stripe_budget_calls_total", priority="checkout") - granted_before >= 20


def test_the_sandbox_enforces_stripes_limits_per_endpoint_and_the_sdk_reads_its_429(
    limited: Callable[[int, int], LimitedStripe],
) -> None:
    stripe_api = limited(100, 2)
    client = StripeClient(
        "sk_test_limits",
        base_addresses={"api": stripe_api.url},
        max_network_retries=2,
        http_client=requests_http_client(5.0, {}),
    )
    gateway = StripeGateway(client, [WEBHOOK_SECRET])  # no budget: nothing holds it back
    first = gateway.create_checkout_session(checkout_request("bk_a"), "key-a")
    gateway.create_checkout_session(checkout_request("bk_b"), "key-b")
    with pytest.raises(StripeRateLimited):
        gateway.create_checkout_session(checkout_request("bk_c"), "key-c")
    # Other objects, another endpoint: Stripe counts each named operation apart.
    assert gateway.retrieve_session(first.id).session_id == first.id
    counts = stripe_api.limits.counts()
    assert counts["limited"] == {CREATE_SESSION: 1}  # the SDK did not retry it on its own
    assert counts["accepted"] == {CREATE_SESSION: 2, "GET /v1/checkout/sessions/{id}": 1}
