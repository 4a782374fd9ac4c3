"""A function with a visible effect, for proving a worker did not run a job it was handed."""

from __future__ import annotations

from pathlib import Path


def touch(path: str) -> None:
    Path(path).touch()
