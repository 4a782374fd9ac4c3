"""A local booking-service stand-in: records each event and answers as the test scripts it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.redis_server import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    arrived: float
    answered: int | None = None  # None: still held, or the sender went away


class Receiver:
    """POSTs to /events are recorded; `script` gives the status for each one in turn (then 204)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.script: list[int] = []
        self.delay = 0.0  # seconds before answering: a slow booking service
        self.hang = threading.Event()  # set: hold requests until released
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                record = Received(dict(self.headers.items()), body, time.time())
                with receiver._lock:
                    receiver.received.append(record)
                if receiver.hang.is_set():
                    receiver.release.wait(60)
                    self.close_connection = True  # a hung receiver never answers
                    return
                time.sleep(receiver.delay)
                with receiver._lock:
                    record.answered = receiver.script.pop(0) if receiver.script else 204
                self.send_response(record.answered)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.answered is not None and 200 <= r.answered < 300]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
