"""The sandbox's Stripe kept in a JSON file, so that a restarted `make dev` still knows its sessions.

Redis keeps the payments across restarts; without this, every pending payment would point at a
checkout session the sandbox no longer has. Saved a moment after each change (not on every
request: the benchmarks drive the sandbox hard and never give it a file) and once more at exit.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from .stripe_state import StripeState

log = logging.getLogger(__name__)

SAVE_EVERY_SECONDS = 0.2


class StateFile:
    """Loads the state at start and writes it back (atomically: a new file renamed over the old)."""

    def __init__(self, path: Path, state: StripeState) -> None:
        self.path = path
        self.state = state
        self._saved = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load(self) -> int:
        """Restore the state from the file if there is one; the number of sessions restored."""
        if not self.path.exists():
            return 0
        self.state.restore(json.loads(self.path.read_text()))
        self._saved = self.state.changes
        return len(self.state.sessions)

    def save(self) -> None:
        if self.state.changes == self._saved:
            return
        snapshot = self.state.snapshot()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(snapshot))
        os.replace(partial, self.path)
        self._saved = int(snapshot["seq"])

    def start(self) -> None:
        """Save in the background shortly after each change."""

        def loop() -> None:
            while not self._stop.wait(SAVE_EVERY_SECONDS):
                try:
                    self.save()
                except OSError as exc:
                    log.error("could not save the sandbox state to %s: %s", self.path, exc)

        self._thread = threading.Thread(target=loop, name="sandbox-state", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background saves and write the last changes."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.save()
