"""Auth, problem+json everywhere, body limits, request ids, health and Redis outages."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.redis_server import RedisServer
from tests.support.settings import API_TOKEN, OTHER_TOKEN
from tests.support.stripe_wire import StripeWire

BODY = {"booking_id": "bk_1", "amount": 1000, "description": "Two seats"}


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer wrong-token-000000000",
        f"Basic {API_TOKEN}",
        "Bearer",
        f"bearer{API_TOKEN}",
        f"Bearer {API_TOKEN}x",
    ],
)
def test_v1_needs_a_valid_bearer_token(client: Any, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    for method, path in [("GET", "/v1/config"), ("POST", "/v1/payments"), ("GET", "/v1/payments/bk_1")]:
        response = client.open(path, method=method, headers=headers, json=BODY)
        assert response.status_code == 401, (method, path)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.content_type == "application/problem+json"
        assert response.get_json()["title"] == "Unauthorized"


def test_every_configured_token_is_accepted(client: Any) -> None:
    for token in (API_TOKEN, OTHER_TOKEN):
        response = client.get("/v1/config", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        assert response.get_json() == {"publishable_key": "pk_test_unit"}


def test_unknown_routes_and_methods_are_problems(client: Any, auth: dict[str, str]) -> None:
    missing = client.get("/v1/nothing-here", headers=auth)
    assert missing.status_code == 404
    assert missing.content_type == "application/problem+json"
    assert missing.get_json()["status"] == 404
    wrong_method = client.delete("/v1/payments", headers=auth)
    assert wrong_method.status_code == 405
    assert wrong_method.content_type == "application/problem+json"
    assert "POST" in wrong_method.headers["Allow"]


def test_bodies_over_64_kib_are_refused(client: Any, auth: dict[str, str], stripe: StripeWire) -> None:
    body = {**BODY, "description": "x" * (64 * 1024)}
    response = client.post("/v1/payments", json=body, headers=auth)
    assert response.status_code == 413
    assert response.content_type == "application/problem+json"
    assert stripe.all_calls() == []


def test_a_body_that_is_not_json_is_refused(client: Any, auth: dict[str, str]) -> None:
    response = client.post("/v1/payments", data="{not json", content_type="application/json", headers=auth)
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert "Invalid JSON" in response.get_json()["detail"]


def test_every_response_carries_a_request_id(client: Any, auth: dict[str, str], stripe: StripeWire) -> None:
    given = client.get("/v1/config", headers={**auth, "X-Request-ID": "caller-abc.123"})
    assert given.headers["X-Request-ID"] == "caller-abc.123"
    generated = client.get("/v1/payments/unknown", headers=auth)
    assert generated.status_code == 404
    assert len(generated.headers["X-Request-ID"]) == 32
    unsafe = client.get("/health/live", headers={"X-Request-ID": "<script>" + "x" * 200})
    assert unsafe.headers["X-Request-ID"] != "<script>" + "x" * 200
    assert len(unsafe.headers["X-Request-ID"]) == 32
    unauthorized = client.get("/v1/config")
    assert unauthorized.headers["X-Request-ID"]


def test_get_returns_the_payment_or_404(client: Any, auth: dict[str, str], stripe: StripeWire) -> None:
    created = client.post("/v1/payments", json=BODY, headers=auth).get_json()
    response = client.get("/v1/payments/bk_1", headers=auth)
    assert response.status_code == 200
    assert response.get_json() == created
    unknown = client.get("/v1/payments/bk_404", headers=auth)
    assert unknown.status_code == 404
    assert "bk_404" in unknown.get_json()["detail"]
    assert client.get("/v1/payments/" + "x" * 65, headers=auth).status_code == 404


def test_health_reports_redis_and_the_event_backlog(client: Any, redis_url: str) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "checks": {"redis": "ok"},
        "primary": redis_url.removeprefix("redis://").removesuffix("/0"),
        "events": {"pending": 0, "dead": 0},
    }
    assert client.get("/health/live").status_code == 200


def test_redis_down_is_a_503_and_unready_health(
    own_redis: RedisServer, auth: dict[str, str], app_factory: Any
) -> None:
    app = app_factory(own_redis.url)
    client = app.test_client()
    own_redis.stop()
    created = client.post("/v1/payments", json=BODY, headers=auth)
    assert created.status_code == 503
    assert created.content_type == "application/problem+json"
    assert created.headers["Retry-After"]
    assert client.get("/v1/payments/bk_1", headers=auth).status_code == 503
    health = client.get("/health")
    assert health.status_code == 503
    assert health.get_json() == {
        "status": "unavailable",
        "checks": {"redis": "unavailable"},
        "primary": f"127.0.0.1:{own_redis.port}",
    }
    assert client.get("/health/live").status_code == 200
    own_redis.start()
    assert client.get("/health").status_code == 200


def test_openapi_document_covers_the_whole_api(client: Any) -> None:
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/v1/payments",
        "/v1/payments/{booking_id}",
        "/v1/payments/{booking_id}/cancel",
        "/v1/payments/{booking_id}/refunds",
        "/v1/config",
        "/webhooks/stripe",
        "/health",
        "/health/live",
        "/metrics",
    }
    create = document["paths"]["/v1/payments"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/CheckoutRequest")
    assert {"200", "201", "401", "409", "422", "502", "503"} <= set(create["responses"])
    problem = document["components"]["responses"]["CONFLICT"]["content"]
    assert "application/problem+json" in problem
    assert document["paths"]["/health"]["get"]["security"] == []
