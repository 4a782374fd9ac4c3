"""docker-compose.yml and the Dockerfile, checked without a Docker engine: structure, and that
every command and variable in them exists in the project."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from payments_service.runtime.cli import main as cli
from payments_service.settings import ConfigError, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()


class RecordingEnv(dict[str, str]):
    """An empty environment that remembers every name Settings asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def settings_variables() -> set[str]:
    env = RecordingEnv()
    with pytest.raises(ConfigError):
        Settings.from_env(env)
    return env.asked


def test_redis_is_durable_and_never_evicts() -> None:
    redis = COMPOSE["services"]["redis"]
    command = " ".join(redis["command"])
    for flag in ("--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"):
        assert flag in command
    [volume] = redis["volumes"]
    name, path = volume.split(":")
    assert path == "/data" and name in COMPOSE["volumes"]
    assert redis["healthcheck"]["test"][1:] == ["redis-cli", "ping"]


def test_stripe_mock_stands_in_for_stripe() -> None:
    assert COMPOSE["services"]["stripe-mock"]["image"].startswith("stripe/stripe-mock")


@pytest.mark.parametrize("service", ["api", "worker"])
def test_api_and_worker_run_commands_that_exist_with_healthchecks(service: str) -> None:
    spec = COMPOSE["services"][service]
    assert spec["build"] == "."
    assert spec["depends_on"]["redis"]["condition"] == "service_healthy"
    program, command, *options = spec["command"]
    assert program == "payments-service" and command in cli.commands
    assert "healthcheck" in spec and spec["stop_grace_period"]
    test = spec["healthcheck"]["test"]
    if test[1] == "payments-service":
        health = cli.commands[test[2]]
        assert {opt for p in health.params for opt in p.opts} >= set(test[3:])


@pytest.mark.parametrize("service", ["api", "worker", "api-ha", "worker-ha"])
def test_every_variable_in_compose_is_one_the_service_reads(service: str) -> None:
    names = set(COMPOSE["services"][service]["environment"])
    known = settings_variables()
    assert names <= known, names - known
    required = {
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "INTERNAL_API_TOKENS",
        "BOOKING_EVENTS_URL",
        "EVENT_SIGNING_SECRET",
    }
    assert required <= names


def test_the_compose_defaults_are_a_valid_configuration() -> None:
    env = dict(COMPOSE["services"]["api"]["environment"])
    resolved = {k: _default_of(str(v)) for k, v in env.items()}
    settings = Settings.from_env(resolved)
    assert settings.redis_url == "redis://redis:6379/0"


def _default_of(value: str) -> str:
    """`${NAME:-default}` as compose resolves it with NAME unset."""
    if value.startswith("${") and ":-" in value:
        return value[value.index(":-") + 2 : -1]
    return value


def instructions(dockerfile: str) -> list[str]:
    """Dockerfile instructions, with backslash-continued lines joined."""
    joined = dockerfile.replace("\\\n", " ")
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def test_the_image_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    lines = instructions(DOCKERFILE)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    cmd = next(line for line in lines if line.startswith("CMD "))
    assert "payments-service" in cmd and "serve" in cmd
    for line in lines:
        if line.startswith("COPY") and "--from" not in line:
            *sources, _ = shlex.split(line)[1:]
            for source in sources:
                assert (ROOT / source).exists(), source


SENTINEL_PROFILE = {n: s for n, s in COMPOSE["services"].items() if "sentinel" in s.get("profiles", [])}


def test_every_service_restarts_by_itself() -> None:
    for name, spec in COMPOSE["services"].items():
        assert spec.get("restart") in ("always", "unless-stopped"), name


def test_the_sentinel_profile_runs_a_primary_a_replica_three_sentinels_and_the_service() -> None:
    assert set(SENTINEL_PROFILE) == {
        "redis-primary",
        "redis-replica",
        "sentinel-1",
        "sentinel-2",
        "sentinel-3",
        "api-ha",
        "worker-ha",
    }
    volumes = [
        SENTINEL_PROFILE[n]["volumes"][0].split(":")[0]
        for n in SENTINEL_PROFILE
        if "volumes" in SENTINEL_PROFILE[n]
    ]
    assert len(set(volumes)) == 5 and set(volumes) <= set(COMPOSE["volumes"])  # each node keeps its own state


def written_config(service: str, directory: Path) -> list[str]:
    """The configuration a profile node writes on its first start (its script, run with /data elsewhere)."""
    directory.mkdir(parents=True)
    program, flag, script = COMPOSE["services"][service]["command"]
    assert (program, flag) == ("sh", "-c") and "; exec redis-server /data/" in script
    first_start = script.split("; exec")[0].replace("/data", str(directory))
    subprocess.run(["sh", "-c", first_start], check=True, timeout=10)
    [config] = directory.glob("*.conf")
    return config.read_text().splitlines()


def test_the_primary_refuses_writes_cut_off_from_its_replica_and_both_keep_their_role_across_restarts(
    tmp_path: Path,
) -> None:
    primary = written_config("redis-primary", tmp_path / "primary")
    replica = written_config("redis-replica", tmp_path / "replica")
    for lines in (primary, replica):
        # A promoted replica becomes a primary with the same guard.
        assert {"min-replicas-to-write 1", "min-replicas-max-lag 10", "appendonly yes"} <= set(lines)
        assert {"maxmemory-policy noeviction", "repl-diskless-sync-delay 0"} <= set(lines)
    assert "replicaof redis-primary 6379" in replica and not any(
        line.startswith("replicaof") for line in primary
    )
    assert "replica-announce-ip redis-primary" in primary and "replica-announce-ip redis-replica" in replica


def test_the_api_and_worker_find_the_primary_through_the_three_sentinels(tmp_path: Path) -> None:
    monitors = set()
    for n in (1, 2, 3):
        lines = written_config(f"sentinel-{n}", tmp_path / f"sentinel-{n}")
        [monitor] = [line for line in lines if line.startswith("sentinel monitor ")]
        monitors.add(monitor)
        assert "port 26379" in lines
    [monitor] = monitors
    _, _, service, host, port, quorum = monitor.split()
    assert (host, port, quorum) == ("redis-primary", "6379", "2")
    for name in ("api-ha", "worker-ha"):
        env = {k: _default_of(str(v)) for k, v in COMPOSE["services"][name]["environment"].items()}
        settings = Settings.from_env(env)
        assert settings.redis_sentinels == (
            ("sentinel-1", 26379),
            ("sentinel-2", 26379),
            ("sentinel-3", 26379),
        )
        assert (settings.redis_sentinel_master, settings.redis_replica_acks) == (service, 1)
        assert set(COMPOSE["services"][name]["depends_on"]) >= {"sentinel-1", "sentinel-2", "sentinel-3"}


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed")
def test_docker_compose_accepts_the_file_with_and_without_the_profile() -> None:
    for profile in ([], ["--profile", "sentinel"]):
        checked = subprocess.run(
            ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), *profile, "config", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert checked.returncode == 0, checked.stderr
