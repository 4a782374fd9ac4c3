"""The gunicorn worker `serve` runs: gevent's pywsgi server, held to gunicorn's keep-alive rules.

gunicorn's own gevent worker parses HTTP in Python and writes each response's headers and body
in two sends; gevent's pywsgi writes them in one and costs less CPU per webhook (README,
"Performance"). Out of the box, though, pywsgi waits for a keep-alive client's next
request forever, so idle clients could hold every connection slot, and it keeps connections
open through a shutdown. With this worker a connection that sends no request, or no complete
headers, within gunicorn's `keepalive` seconds is closed, and requests that arrive once a
shutdown began are answered with `Connection: close`.
"""

from __future__ import annotations

import functools
from typing import Any

import gevent
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler, PyWSGIServer


class KeepAliveServer(PyWSGIServer):  # type: ignore[misc]
    """pywsgi's server, knowing how long a connection may idle (gunicorn's `keepalive`; 0: never)."""

    def __init__(self, *args: Any, keepalive: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keepalive = keepalive


class KeepAliveHandler(PyWSGIHandler):  # type: ignore[misc]
    """One client connection: requests until the client closes, idles too long, or we shut down."""

    server: KeepAliveServer

    def read_requestline(self) -> str:
        with gevent.Timeout(self.server.keepalive or None, False):
            line: str = super().read_requestline()
            return line
        return ""  # no request within the keep-alive timeout: pywsgi closes the connection

    def read_request(self, raw_requestline: str) -> Any:
        with gevent.Timeout(self.server.keepalive or None, False):
            return super().read_request(raw_requestline)
        return False  # headers trickling in slower than that: 400, and the connection closes

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        # Shutting down (the listener is closed), or keep-alive is off: this is the last answer.
        if self.server.closed or not self.server.keepalive:
            headers = [(k, v) for k, v in headers if k.lower() != "connection"] + [("Connection", "close")]
        return super().start_response(status, headers, exc_info)

    def log_request(self) -> None:
        """RequestMiddleware writes one JSON line per request; gunicorn's access log stays off."""


class PaymentsWorker(GeventPyWSGIWorker):  # type: ignore[misc]
    """gunicorn's gevent pywsgi worker, with KeepAliveHandler and the configured `keepalive`."""

    wsgi_handler = KeepAliveHandler

    def init_process(self) -> None:
        self.server_class = functools.partial(KeepAliveServer, keepalive=self.cfg.keepalive)
        super().init_process()
