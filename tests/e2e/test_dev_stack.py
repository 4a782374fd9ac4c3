"""`make dev` in a fresh folder, as a newcomer meets it: restarts, a second run, start failures, the CLI."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.devstack import DevRun, bare_env, free_ports, run_cli
from tests.support.processes import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A fresh clone's state: no .dev/, no .env."""
    path = tmp_path / "clone"
    path.mkdir()
    return path


@pytest.fixture
def runs() -> Iterator[list[DevRun]]:
    """Every make dev a test starts is stopped after it, whatever happened."""
    started: list[DevRun] = []
    yield started
    for run in started:
        run.stop()


def start(runs: list[DevRun], folder: Path, env: dict[str, str]) -> DevRun:
    run = DevRun(folder, env)
    runs.append(run)
    return run


def in_time_wait(port: int) -> bool:
    """True if a closed connection on this local port is in TIME_WAIT (state 06 in /proc/net/tcp)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(int(row.split()[1].rsplit(":", 1)[1], 16) == port and row.split()[3] == "06" for row in rows)


def pay_on_sandbox_page(checkout_url: str) -> requests.Response:
    return requests.post(checkout_url + "/pay", allow_redirects=False, timeout=10)


def test_a_restart_within_a_minute_keeps_ports_payments_and_their_checkout_pages(
    folder: Path, runs: list[DevRun]
) -> None:
    env = bare_env(**free_ports())
    first = start(runs, folder, env).wait_ready()
    payment = first.open_payment("bk_restart")
    keep_alive = requests.Session()
    assert keep_alive.get(first.api + "/health", timeout=10).ok
    assert first.stop() == 0
    keep_alive.close()  # after the API closed its end: TIME_WAIT on the API's port, as a browser leaves
    wait_for(lambda: in_time_wait(int(env["PORT"])), 5, "a connection in TIME_WAIT on the API's port")

    second = start(runs, folder, env).wait_ready()

    assert second.api == first.api
    page = requests.get(payment["checkout_url"], timeout=10)
    assert page.status_code == 200, "the sandbox forgot the session of a payment Redis kept"
    assert "Pay $37.50" in page.text
    assert pay_on_sandbox_page(payment["checkout_url"]).status_code == 303
    wait_for(lambda: second.status("bk_restart") == "paid", 20, "the payment to be paid after the restart")
    # A reconciliation pass now finds every session it asks about.
    reconciled = second.cli("reconcile", RECONCILE_AFTER="0")
    assert reconciled.returncode == 0, reconciled.stderr
    assert "reconciled:" in reconciled.stdout
    assert "No such" not in reconciled.stdout + reconciled.stderr


def test_redis_data_without_the_sandbox_state_starts_empty_saying_why(
    folder: Path, runs: list[DevRun]
) -> None:
    env = bare_env(**free_ports())
    first = start(runs, folder, env).wait_ready()
    first.open_payment("bk_orphan")
    first.stop()
    (folder / ".dev" / "sandbox" / "stripe.json").unlink()

    second = start(runs, folder, env).wait_ready()

    assert second.printed(r"^Starting with an empty Redis: .*sandbox's state .* is gone")
    assert second.call("GET", "/v1/payments/bk_orphan").status_code == 404
    assert (folder / ".dev" / "redis.previous").is_dir()


def test_a_second_make_dev_in_the_same_folder_refuses_and_names_the_first(
    folder: Path, runs: list[DevRun]
) -> None:
    env = bare_env(**free_ports())
    first = start(runs, folder, env).wait_ready()
    redis_log = folder / ".dev" / "logs" / "redis.log"
    logged = redis_log.read_text()

    second = start(runs, folder, bare_env(**free_ports()))

    assert second.wait_exit() == 1
    assert f"make dev is already running in this folder (pid {first.process.pid}" in second.output
    assert first.call("GET", "/health").status_code == 200
    assert redis_log.read_text().startswith(logged), "the second run must not touch the first one's logs"


def test_real_stripe_keys_without_a_webhook_secret_stop_at_once_naming_it(
    folder: Path, runs: list[DevRun]
) -> None:
    run = start(runs, folder, bare_env(STRIPE_SECRET_KEY="sk_test_real_account", **free_ports()))

    assert run.wait_exit(timeout=10) == 2
    assert "STRIPE_WEBHOOK_SECRET is not" in run.output
    assert "stripe listen --forward-to" in run.output
    assert not (folder / ".dev" / "logs" / "api.log").exists(), "nothing should have been started"


def test_a_taken_port_is_named_with_the_process_holding_it(folder: Path, runs: list[DevRun]) -> None:
    ports = free_ports()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", int(ports["DEV_SANDBOX_PORT"])))
        squatter.listen()
        run = start(runs, folder, bare_env(**ports))
        assert run.wait_exit(timeout=10) == 2
    assert f"port {ports['DEV_SANDBOX_PORT']} (sandbox) is taken by pid {os.getpid()}" in run.output
    assert "set DEV_SANDBOX_PORT=" in run.output


def test_a_part_that_cannot_start_is_reported_with_the_end_of_its_log(
    folder: Path, runs: list[DevRun]
) -> None:
    env = bare_env(**free_ports())
    start(runs, folder, env).wait_ready().stop()
    aof = folder / ".dev" / "redis" / "appendonlydir"
    next(aof.glob("*.incr.aof")).write_text("not an append-only file\n")

    run = start(runs, folder, env)

    assert run.wait_exit(timeout=30) == 1
    assert "make dev could not start: redis exited with code 1" in run.output
    assert "Bad file format reading the append only file" in run.output


def test_the_cli_in_the_folder_uses_the_running_stack_and_only_while_it_runs(
    folder: Path, runs: list[DevRun]
) -> None:
    run = start(runs, folder, bare_env(**free_ports())).wait_ready()
    payment = run.open_payment("bk_cli")
    pay_on_sandbox_page(payment["checkout_url"])
    wait_for(lambda: run.status("bk_cli") == "paid", 20, "the payment to be paid")

    listed = run.cli("events", "list", "--limit", "5")

    assert listed.returncode == 0, listed.stderr
    assert "payment.paid" in listed.stdout
    assert "bk_cli" in listed.stdout
    assert "using the settings of the dev stack running here" in listed.stderr
    healthy = run.cli("health")
    assert healthy.returncode == 0, healthy.stderr

    env_file = folder / ".dev" / "env"
    settings = env_file.read_text()
    run.stop()
    env_file.write_text(settings)  # as a stack killed with -9 would leave it
    stopped = run.cli("events", "list")
    assert stopped.returncode == 2, "settings of a stack that is not running must not be used"
    assert "STRIPE_SECRET_KEY" in stopped.stderr


def test_the_cli_without_redis_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    env = bare_env(
        STRIPE_SECRET_KEY="sk_test_cli",
        STRIPE_WEBHOOK_SECRET="whsec_cli",
        INTERNAL_API_TOKENS="cli-token-0123456789",
        BOOKING_EVENTS_URL="http://127.0.0.1:9/events",
        EVENT_SIGNING_SECRET="whsec_cGF5bWVudHMtc2VydmljZS1jbGktc2lnbmluZy1rZXk=",
        REDIS_URL=f"redis://127.0.0.1:{dead}/0",
    )
    for command in (["events", "list"], ["events", "replay", "--all-dead"], ["reconcile"], ["health"]):
        result = run_cli(tmp_path, *command, env=env)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, command
        problem = [line for line in result.stderr.splitlines() if f"127.0.0.1:{dead}" in line]
        assert len(problem) == 1 and "unavailable" in problem[0], (command, result.stderr)
