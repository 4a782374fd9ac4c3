"""The dev stack's child processes: started in their own sessions, watched, stopped together.

A child that fails to start, or stops later, is reported with the cause: its exit code and the
last lines of its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

LOG_TAIL_LINES = 15


class StartFailure(Exception):
    """A child did not come up; the message holds the cause, ready to print."""


class Children:
    """Child processes by name, each logging to `logs/NAME.log` (the last run's in NAME.previous.log)."""

    def __init__(self, logs: Path, out: Callable[[str], None]) -> None:
        self.logs = logs
        self.logs.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def start(self, name: str, args: list[str], env: Mapping[str, str], echo: bool = False) -> None:
        """Start a command; with `echo`, its output also goes to this terminal, line by line."""
        path = self.log_path(name)
        if path.exists():
            path.replace(self.logs / f"{name}.previous.log")
        log = path.open("wb")
        process = subprocess.Popen(  # noqa: S603 (our own commands)
            args,
            env=dict(env),
            stdout=subprocess.PIPE if echo else log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches make dev only, which stops children in order
        )
        if process.stdout is not None:
            threading.Thread(target=self._tee, args=(process.stdout, log), daemon=True).start()
        else:
            log.close()
        self.running.append((name, process))

    def _tee(self, source: IO[bytes], log: IO[bytes]) -> None:
        with source, log:
            for line in source:
                log.write(line)
                log.flush()
                self.out(line.decode(errors="replace").rstrip("\n"))

    def wait_until(self, name: str, ready: Callable[[], bool], what: str, timeout: float = 30) -> None:
        """Poll `ready` until true; fail with the cause if any child exits or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            exited = self.exited()
            if exited is not None:
                raise StartFailure(self.describe_exit(*exited))
            if ready():
                return
            if time.monotonic() > deadline:
                raise StartFailure(f"{name} did not {what} within {timeout:.0f}s.\n{self.tail(name)}")
            time.sleep(0.05)

    def exited(self) -> tuple[str, int] | None:
        for name, process in self.running:
            code = process.poll()
            if code is not None:
                return name, code
        return None

    def describe_exit(self, name: str, code: int) -> str:
        return f"{name} exited with code {code}.\n{self.tail(name)}"

    def tail(self, name: str) -> str:
        """The last lines of a child's log, to print with a failure."""
        path = self.log_path(name)
        try:
            lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError:
            lines = []
        shown = "\n".join(f"  | {line}" for line in lines) if lines else "  | (nothing logged)"
        return f"Last lines of {path}:\n{shown}"

    def stop_all(self, last: tuple[str, ...] = ("redis",), timeout: float = 15) -> None:
        """SIGTERM to all but `last`, wait, then `last`: the worker finishes its writes before Redis goes."""
        first = [(n, p) for n, p in self.running if n not in last]
        then = [(n, p) for n, p in self.running if n in last]
        for wave in (first, then):
            for _, process in wave:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for _, process in wave:
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5)
