"""Real processes for end-to-end tests: started like an operator would, logs kept for failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

BIN = Path(sys.executable).parent
PAYMENTS_SERVICE = str(BIN / "payments-service")


class ServiceProcess:
    """One command in its own process group, so a SIGKILL takes its children (RQ's scheduler) too."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            args, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_until(self, check: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            if check():
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready in {timeout}s:\n{self.log()}")

    def wait_http(self, url: str, timeout: float = 20.0) -> None:
        def answers() -> bool:
            try:
                return requests.get(url, timeout=1).status_code < 500
            except requests.RequestException:
                return False

        self.wait_until(answers, timeout)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, as an orchestrator would; SIGKILL if it will not go."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def wait_for(check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll with a deadline instead of sleeping."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not met within {timeout}s")


# A test that proves something does NOT happen must wait; these waits stay short and say so.
LONGEST_PROOF_OF_NOTHING_SECONDS = 2.0


def prove_nothing_happens_for(seconds: float) -> None:
    """Give a thing that must not happen the time it would need; the caller then asserts it did not."""
    if not 0 < seconds <= LONGEST_PROOF_OF_NOTHING_SECONDS:
        raise ValueError(f"a proof of nothing waits at most {LONGEST_PROOF_OF_NOTHING_SECONDS}s")
    time.sleep(seconds)
