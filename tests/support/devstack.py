"""`payments-service dev` (what `make dev` runs) as a developer runs it: in a folder, from a bare environment.

Each run gets its own free ports (through the variables make dev documents), so tests and a
developer's own `make dev` never meet.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import requests

from tests.support.processes import PAYMENTS_SERVICE, wait_for
from tests.support.redis_server import free_port

PORT_VARIABLES = ("PORT", "DEV_SANDBOX_PORT", "DEV_RECEIVER_PORT", "DEV_REDIS_PORT")


def bare_env(**extra: str) -> dict[str, str]:
    """A shell with nothing configured: what a fresh clone sees."""
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **extra}


def free_ports() -> dict[str, str]:
    return {variable: str(free_port()) for variable in PORT_VARIABLES}


class DevRun:
    """A running `payments-service dev` in `folder`, its terminal output collected line by line."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.lines: list[str] = []
        self.api = ""
        self.token = ""
        self.process = subprocess.Popen(
            [PAYMENTS_SERVICE, "dev"],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def printed(self, pattern: str) -> bool:
        return any(re.search(pattern, line) for line in self.lines)

    def wait_ready(self, timeout: float = 45) -> DevRun:
        """Until make dev prints its summary; fails with its output if it exits first."""

        def ready() -> bool:
            if self.process.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"make dev exited with {self.process.returncode}:\n{self.output}")
            return self.printed(r"^Try it:")

        wait_for(ready, timeout, "make dev to report it is running")
        match = next(
            m for line in self.lines if (m := re.search(r"API\s+(\S+)\s+\(bearer token: (\S+)\)", line))
        )
        self.api, self.token = match.group(1), match.group(2)
        return self

    def wait_exit(self, timeout: float = 20) -> int:
        """For a run expected to stop by itself: its exit code, once its output is all read."""
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self) -> int:
        """Ctrl-C, as a developer stops it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.wait_exit(30)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()

    @property
    def receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.env['DEV_RECEIVER_PORT']}"

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

    def status(self, booking_id: str) -> str:
        return str(self.call("GET", f"/v1/payments/{booking_id}").json()["status"])

    def cli(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        """A console command in make dev's folder, from a shell with nothing configured."""
        return run_cli(self.folder, *args, env=bare_env(**extra))


def run_cli(folder: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PAYMENTS_SERVICE, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
