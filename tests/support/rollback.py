"""A Redis that loses its last writes: copy its append-only files now, restart from the copy later.

The tests' Redis fsyncs every write (appendfsync always) and rewrites nothing while a test runs,
so a copy of its append-only directory is a consistent snapshot, as a backup or a lagging replica
would be.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.redis_server import RedisServer

AOF_DIR = "appendonlydir"


def snapshot(server: RedisServer, name: str = "snapshot") -> Path:
    """Copy what the server has written so far; returns where the copy is."""
    copy = server.directory.parent / f"{server.directory.name}-{name}"
    shutil.copytree(server.directory / AOF_DIR, copy / AOF_DIR)
    return copy


def restart_from(server: RedisServer, copy: Path) -> None:
    """Stop the server and start it again from an earlier copy: every later write is lost."""
    server.stop()
    shutil.rmtree(server.directory / AOF_DIR)
    shutil.copytree(copy / AOF_DIR, server.directory / AOF_DIR)
    server.start()
