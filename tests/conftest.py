"""Fixtures: a private Redis, Stripe faked on the wire, and a fresh app per test built from Settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests_mock

from payments_service import create_app
from payments_service.devtools.sandbox.stripe_state import StripeState
from payments_service.settings import Settings
from payments_service.wiring import Components, build
from tests.support.redis_server import RedisServer
from tests.support.settings import API_TOKEN, make_settings
from tests.support.stripe_wire import StripeWire


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis only this test uses, so it can be stopped and started again."""
    server = RedisServer(tmp_path / "own-redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(redis_url)


@pytest.fixture
def components(settings: Settings) -> Iterator[Components]:
    built = build(settings)
    yield built
    built.redis.connection_pool.disconnect()


@pytest.fixture
def app_factory() -> Iterator[Callable[..., Any]]:
    """Apps with their own settings (another Redis, other defaults); their connections are closed after."""
    built: list[Components] = []

    def make(redis_url: str, **overrides: Any) -> Any:
        components = build(make_settings(redis_url, **overrides))
        built.append(components)
        return create_app(components.settings, components)

    yield make
    for components in built:
        components.redis.connection_pool.disconnect()


@pytest.fixture
def app(settings: Settings, components: Components) -> Any:
    return create_app(settings, components)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def stripe_state() -> StripeState:
    return StripeState("https://checkout.stripe.test")


@pytest.fixture
def stripe(requests_mock: requests_mock.Mocker, stripe_state: StripeState) -> StripeWire:
    return StripeWire(requests_mock, stripe_state)
