"""One dev stack per folder: a lock held while it runs, and the settings it filled in (`.dev/env`).

The lock is an flock, so a stack that was killed leaves no stale lock behind. The console
commands (`events list`, `reconcile`, ...) read `.dev/env` only while the lock is held: a file
left by a stopped stack is never used.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO, Any

from dotenv import dotenv_values

DEV_DIR = ".dev"
LOCK_FILE = "lock"
ENV_FILE = "env"


class AlreadyRunning(Exception):
    """Another dev stack holds this folder's lock; the message says which and how to stop it."""


class InstanceLock:
    """Held for the dev stack's lifetime; records its pid and API address for a second instance's message."""

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_FILE
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                owner: dict[str, Any] = json.loads(handle.read() or "{}")
            except ValueError:
                owner = {}
            handle.close()
            pid = owner.get("pid", "?")
            where = f", API {owner['api']}" if owner.get("api") else ""
            raise AlreadyRunning(
                f"make dev is already running in this folder (pid {pid}{where}). "
                f"Use that one, or stop it first (Ctrl-C in its terminal, or kill {pid})."
            ) from None
        self._file = handle
        self.record(api=None)

    def record(self, api: str | None) -> None:
        if self._file is None:
            return
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps({"pid": os.getpid(), "api": api}))
        self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the flock
            self._file = None


def is_running(root: Path) -> bool:
    """True while a dev stack holds the folder's lock."""
    path = root / LOCK_FILE
    if not path.exists():
        return False
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def write_env(root: Path, values: dict[str, str]) -> Path:
    """The settings the stack filled in, for the console commands (owner-only: it holds dev secrets)."""
    path = root / ENV_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# Written by make dev while it runs: the settings it filled in. Not for production.\n")
        for key, value in sorted(values.items()):
            handle.write(f"{key}={json.dumps(value)}\n")
    return path


def running_env(cwd: Path) -> dict[str, str] | None:
    """The settings of the dev stack running in `cwd`, or None if none runs there."""
    root = cwd / DEV_DIR
    env_file = root / ENV_FILE
    if not env_file.exists() or not is_running(root):
        return None
    return {k: v for k, v in dotenv_values(env_file).items() if v is not None}
