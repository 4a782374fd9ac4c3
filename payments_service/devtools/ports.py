"""The dev stack's fixed ports: checked before anything starts, and who holds one that is taken."""

from __future__ import annotations

import socket
from pathlib import Path

PROC = Path("/proc")


def is_free(port: int) -> bool:
    """True if a server could listen on the port now.

    SO_REUSEADDR, as every server the stack starts sets it: a port whose last connections are
    in TIME_WAIT (a restart within a minute) is free, one with a listener is not.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))  # noqa: S104 (a probe: it never listens)
        except OSError:
            return False
        return True


def holder(port: int) -> str | None:
    """'pid 123 (redis-server 127.0.0.1:6390)' for the process listening on the port, if Linux can tell."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    for fd_dir in PROC.glob("[0-9]*/fd"):
        try:
            links = {link.readlink().name for link in fd_dir.iterdir()}
        except OSError:  # gone, or another user's process
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            pid = fd_dir.parent.name
            try:
                command = (fd_dir.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:
                command = "?"
            return f"pid {pid} ({command if len(command) <= 80 else command[:77] + '...'})"
    return "a process this user cannot see"


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(inode)
    return inodes
