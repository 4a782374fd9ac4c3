"""The commands and Redis as deployed: check-config names the Sentinels, an unreachable Redis is one line."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.processes import PAYMENTS_SERVICE
from tests.support.redis_server import free_port
from tests.support.stack import base_env

pytestmark = pytest.mark.e2e


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **base_env("redis://localhost:6379/0", "https://booking.test/events", "http://127.0.0.1:1"),
        **env,
    }
    return subprocess.run(
        [PAYMENTS_SERVICE, *args], env=environment, capture_output=True, text=True, timeout=60
    )


def test_check_config_says_where_redis_is_without_its_secrets() -> None:
    result = run(
        "check-config",
        REDIS_URL="rediss://:data-secret@ignored:6380/0",
        REDIS_SENTINELS="10.0.0.1:26379,10.0.0.2:26379",
        REDIS_SENTINEL_MASTER="payments",
        REDIS_SENTINEL_PASSWORD="sentinel-secret",
        REDIS_REPLICA_ACKS="1",
    )
    assert result.returncode == 0, result.stderr
    [redis_line] = [line for line in result.stdout.splitlines() if "redis:" in line]
    assert "Sentinel service 'payments' via 10.0.0.1:26379, 10.0.0.2:26379" in redis_line
    assert "tls on" in redis_line and "1 replica ack(s) within 1000 ms" in redis_line
    assert "secret" not in result.stdout + result.stderr


def test_a_command_whose_redis_is_unreachable_says_so_in_one_line() -> None:
    result = run("events", "list", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert result.returncode == 1
    assert (
        result.stderr.startswith("payments-service: Redis at redis://127.0.0.1:")
        and "ConnectionError" in result.stderr
    )
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_command_whose_sentinels_name_no_primary_says_so_in_one_line() -> None:
    result = run(
        "events", "list", REDIS_SENTINELS=f"127.0.0.1:{free_port()}", REDIS_SENTINEL_MASTER="payments"
    )
    assert result.returncode == 1
    assert "no Sentinel names a primary for 'payments'" in result.stderr
    assert "Traceback" not in result.stderr
