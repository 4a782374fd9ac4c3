"""Inputs a hostile client controls never make a 500, a traceback, an unbounded label or a buffer.

Bodies are fed to the app's WSGI callable directly where a test needs to control how a body
arrives (a client that hangs up, one that never sends it); everything else goes through Flask's
test client. Slow clients over real sockets are in tests/e2e/test_http_server.py.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from typing import Any

import pytest
from werkzeug.exceptions import RequestTimeout
from werkzeug.test import EnvironBuilder

from payments_service.web.webhooks import MAX_WEBHOOK_BYTES, WEBHOOK_BYTES_IN_FLIGHT
from payments_service.wiring import Components
from tests.support.flows import BODY, open_payment, post_event
from tests.support.metrics import metric
from tests.support.settings import WEBHOOK_SECRET
from tests.support.signing import stripe_signature
from tests.support.stripe_wire import StripeWire


def call(app: Any, environ: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Run the whole app (middleware included) on one WSGI environ; the status and the JSON body."""
    status: list[str] = []
    body = b"".join(app.wsgi_app(environ, lambda code, headers, exc_info=None: status.append(code)))
    return int(status[0][:3]), json.loads(body) if body else {}


def environ(path: str, body: Any, headers: dict[str, str], length: int | None = None) -> dict[str, Any]:
    env = EnvironBuilder(path=path, method="POST", headers=headers).get_environ()
    env["wsgi.input"] = body
    if length is None:
        env.pop("CONTENT_LENGTH", None)
    else:
        env["CONTENT_LENGTH"] = str(length)
    return env


class Unreadable:
    """A body that fails the test if anyone reads it."""

    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body was read")


class HangsUp:
    """A client that sends a little of its body, then closes the connection (pywsgi's error)."""

    def read(self, size: int = -1) -> bytes:
        raise OSError("unexpected end of file while reading request at position 10")


class TooSlow:
    """What the serving worker raises when a body misses its deadline."""

    def read(self, size: int = -1) -> bytes:
        raise RequestTimeout("the request body did not arrive within 5 s")


class Held:
    """A body that arrives only when the test lets it."""

    def __init__(self, release: threading.Event) -> None:
        self._release = release

    def read(self, size: int = -1) -> bytes:
        self._release.wait(10)
        return b"{}"


def fresh_signature() -> dict[str, str]:
    return {"Stripe-Signature": stripe_signature(b"{}", WEBHOOK_SECRET)}


# --- bodies a client controls ---------------------------------------------------------------


def test_a_booking_id_ending_in_a_newline_is_refused(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    response = client.post("/v1/payments", json={**BODY, "booking_id": "bk_1\n"}, headers=auth)
    assert response.status_code == 422
    assert "booking_id" in response.get_json()["errors"]
    assert client.get("/v1/payments/bk_1%0A", headers=auth).status_code == 404
    assert stripe.all_calls() == []


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ('{"booking_id": "bk_1", "amount": ' + "9" * 5000 + ', "description": "x"}', "number too long"),
        ("[" * 30000 + "]" * 30000, "nested too deeply"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/payments", "/v1/payments/bk_1/refunds"])
def test_json_that_python_cannot_load_is_a_400_not_a_500(
    client: Any, auth: dict[str, str], stripe: StripeWire, caplog: Any, body: str, detail: str, path: str
) -> None:
    response = client.post(path, data=body, content_type="application/json", headers=auth)
    assert response.status_code == 400
    assert detail in response.get_json()["detail"]
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: e.update(created=float("inf")),  # `created: 1e400` in the JSON
        lambda e: e.update(created=1.7e9),
        lambda e: e.update(created=True),
        lambda e: e.update(created=10**4000),
        lambda e: e["data"]["object"].update(amount_total=3750.5),
        lambda e: e["data"]["object"].update(amount_total=-1),
        lambda e: e["data"]["object"].update(id=["cs_1"]),
    ],
)
def test_a_signed_event_with_fields_stripe_never_sends_is_a_400(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components, caplog: Any, tamper: Any
) -> None:
    stripe.state.pay(open_payment(client, auth)["session_id"], notify=False)
    event = stripe.state.events[-1]
    tamper(event)
    text = json.dumps(event).replace("Infinity", "1e400")
    body = text.encode()
    response = client.post(
        "/webhooks/stripe", data=body, headers={"Stripe-Signature": stripe_signature(body, WEBHOOK_SECRET)}
    )
    assert response.status_code == 400
    assert client.get("/v1/payments/bk_1", headers=auth).get_json()["status"] == "pending"
    assert not [r for r in caplog.records if r.exc_info]


def test_a_signed_body_nested_thousands_deep_is_a_400(client: Any, components: Components) -> None:
    body = b"[" * 30000 + b"]" * 30000
    response = client.post(
        "/webhooks/stripe", data=body, headers={"Stripe-Signature": stripe_signature(body, WEBHOOK_SECRET)}
    )
    assert response.status_code == 400
    assert components.redis.keys("*") == []


def test_a_signature_dated_in_the_future_is_refused(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    stripe.state.pay(open_payment(client, auth)["session_id"], notify=False)
    event = stripe.state.events[-1]
    before = metric(client, "payments_webhook_rejections_total", reason="future_timestamp")
    response = post_event(client, event, timestamp=int(time.time()) + 301)
    assert response.status_code == 400
    assert "future" in response.get_json()["detail"]
    assert metric(client, "payments_webhook_rejections_total", reason="future_timestamp") == before + 1
    assert post_event(client, event, timestamp=int(time.time()) + 60).status_code == 200  # clock skew


# --- how a body arrives -----------------------------------------------------------------------


def test_a_webhook_without_a_valid_signature_header_is_refused_before_its_body_is_read(app: Any) -> None:
    for headers in ({}, {"Stripe-Signature": "v1=abc"}, {"Stripe-Signature": "t=1,v1=abc"}):
        status, _ = call(app, environ("/webhooks/stripe", Unreadable(), headers, MAX_WEBHOOK_BYTES))
        assert status == 400


def test_an_unauthenticated_body_is_never_read(app: Any) -> None:
    chunked = {"Transfer-Encoding": "chunked", "Content-Type": "application/json"}
    status, problem = call(app, environ("/v1/payments", Unreadable(), chunked))
    assert status == 401
    assert problem["title"] == "Unauthorized"


def test_a_client_hanging_up_mid_body_is_one_line_not_a_traceback(app: Any, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    status, problem = call(app, environ("/webhooks/stripe", HangsUp(), fresh_signature(), 1000))
    assert status == 400
    assert "ended before it was complete" in problem["detail"]
    assert [r.getMessage() for r in caplog.records] == ["request"]
    assert not [r for r in caplog.records if r.exc_info]


def test_a_body_that_misses_its_deadline_is_a_408(app: Any, auth: dict[str, str]) -> None:
    status, _ = call(app, environ("/webhooks/stripe", TooSlow(), fresh_signature(), 1000))
    assert status == 408
    chunked = {**auth, "Transfer-Encoding": "chunked", "Content-Type": "application/json"}
    status, _ = call(app, environ("/v1/payments", TooSlow(), chunked))
    assert status == 408
    status, _ = call(
        app, environ("/v1/payments", TooSlow(), {**auth, "Content-Type": "application/json"}, 10)
    )
    assert status == 408


def test_webhook_bodies_in_flight_are_bounded_and_the_rest_asked_to_retry(app: Any) -> None:
    release = threading.Event()
    answers: list[int] = []
    room = WEBHOOK_BYTES_IN_FLIGHT // MAX_WEBHOOK_BYTES

    def send() -> None:
        answers.append(
            call(app, environ("/webhooks/stripe", Held(release), fresh_signature(), MAX_WEBHOOK_BYTES))[0]
        )

    threads = [threading.Thread(target=send) for _ in range(room)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # every held body has taken its room
            status, problem = call(
                app, environ("/webhooks/stripe", io.BytesIO(b"{}"), fresh_signature(), MAX_WEBHOOK_BYTES)
            )
            if status == 503:
                break
            time.sleep(0.01)
        assert status == 503
        assert "retry" in problem["detail"]
    finally:
        release.set()
        for thread in threads:
            thread.join()
    assert answers == [400] * room  # read once let through (and not signed for that body)
    status, _ = call(app, environ("/webhooks/stripe", io.BytesIO(b"{}"), fresh_signature(), 2))
    assert status == 400  # the room is given back


# --- what reaches the metrics and the router --------------------------------------------------


def test_metric_labels_come_from_fixed_sets_whatever_the_client_sends(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    for method in ("FROBNICATE", "X" * 200, "GET "):
        client.open("/health/live", method=method)
    client.open("/v1/anything/" + "z" * 100, method="GET", headers=auth)
    stripe.state.pay(open_payment(client, auth)["session_id"], notify=False)
    event = {**stripe.state.events[-1], "id": "evt_custom", "type": "customer.anything_" + "q" * 50}
    before = metric(client, "payments_webhook_events_total", outcome="ignored", type="other")
    assert post_event(client, event).status_code == 200
    text = client.get("/metrics").text
    assert "FROBNICATE" not in text and "XXXX" not in text and "zzzz" not in text and "qqqq" not in text
    assert 'method="other"' in text
    assert metric(client, "payments_webhook_events_total", outcome="ignored", type="other") == before + 1


@pytest.mark.parametrize(
    "path", ["/v1//payments", "//v1/payments", "/v1//config", "//evil.example/v1/config", "/openapi.json/"]
)
def test_no_path_answers_a_redirect_built_from_the_host_header(
    client: Any, auth: dict[str, str], path: str
) -> None:
    response = client.get(
        "/", headers={**auth, "Host": "evil.example"}, environ_overrides={"PATH_INFO": path}
    )
    assert not 300 <= response.status_code < 400, response.headers.get("Location")
    assert "Location" not in response.headers
