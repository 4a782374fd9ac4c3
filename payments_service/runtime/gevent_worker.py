"""The gunicorn worker `serve` runs: gevent's pywsgi server, held to gunicorn's keep-alive rules.

gunicorn's own gevent worker parses HTTP in Python and writes each response's headers and body
in two sends; gevent's pywsgi writes them in one and costs less CPU per webhook (README,
"Performance"). Out of the box, though, pywsgi waits for a client forever: for its next request,
for the rest of its headers, and for every byte of its body, so slow clients could hold every
connection slot; and it keeps connections open through a shutdown. With this worker a client
has gunicorn's `keepalive` seconds to send a request and its headers, and as long again for its
body (else 408 and the connection closes); a client that hangs up mid-body is a 400 and one log
line; and requests that arrive once a shutdown began are answered with `Connection: close`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler, PyWSGIServer
from werkzeug.exceptions import ClientDisconnected, RequestTimeout

# Without keep-alive (gunicorn's keepalive 0), a body still gets this long.
DEFAULT_BODY_SECONDS = 5.0
# After the answer, an unread body is read and dropped (to keep the connection) only when it is
# this small; a bigger one, or one that does not arrive in time, closes the connection instead.
DISCARD_LIMIT = 64 * 1024


class KeepAliveServer(PyWSGIServer):  # type: ignore[misc]
    """pywsgi's server, knowing how long a connection may idle (gunicorn's `keepalive`; 0: never)."""

    def __init__(self, *args: Any, keepalive: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keepalive = keepalive


class BodyWithDeadline:
    """A request's wsgi.input that must arrive by a deadline.

    Reads past the deadline raise werkzeug's RequestTimeout (the app answers 408); a client that
    closes the connection mid-body raises ClientDisconnected (400). Either way the connection is
    closed after the answer, since the rest of the body is not where the next request would be.
    """

    def __init__(self, stream: Any, seconds: float, close: Callable[[], None]) -> None:
        self._stream = stream
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds
        self._close = close

    def read(self, length: int | None = None) -> bytes:
        data: bytes = self._call(self._stream.read, length)
        return data

    def readline(self, size: int | None = None) -> bytes:
        data: bytes = self._call(self._stream.readline, size)
        return data

    def readlines(self, hint: int | None = None) -> list[bytes]:
        return list(self)

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def _call(self, read: Callable[[int | None], bytes], size: int | None) -> bytes:
        remaining = self._deadline - time.monotonic()
        timer = gevent.Timeout(max(remaining, 0.001))
        timer.start()
        try:
            return read(size)
        except gevent.Timeout as expired:
            if expired is not timer:
                raise
            self._close()
            raise RequestTimeout(f"the request body did not arrive within {self._seconds:g} s") from None
        except OSError:  # pywsgi's "unexpected end of file", a reset, a malformed chunk
            self._close()
            raise ClientDisconnected("the request body ended before it was complete") from None
        finally:
            timer.close()

    def _discard(self) -> None:
        """pywsgi's hook after the answer: drop an unread body, or give up on the connection."""
        stream = self._stream
        left = (stream.content_length or 0) - stream.position
        if stream.chunked_input or left > DISCARD_LIMIT:
            self._close()
            return
        try:
            while left > 0 and self.read(min(left, 16384)):
                left = (stream.content_length or 0) - stream.position
        except (RequestTimeout, ClientDisconnected):
            pass  # already marked for closing


class KeepAliveHandler(PyWSGIHandler):  # type: ignore[misc]
    """One client connection: requests until the client closes, idles too long, or we shut down."""

    server: KeepAliveServer
    wsgi_input: Any

    def read_requestline(self) -> str:
        with gevent.Timeout(self.server.keepalive or None, False):
            line: str = super().read_requestline()
            return line
        return ""  # no request within the keep-alive timeout: pywsgi closes the connection

    def read_request(self, raw_requestline: str) -> Any:
        with gevent.Timeout(self.server.keepalive or None, False):
            return super().read_request(raw_requestline)
        return False  # headers trickling in slower than that: 400, and the connection closes

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        if environ.get("wsgi.input") is self.wsgi_input:  # not for an upgraded connection
            self.wsgi_input = BodyWithDeadline(
                self.wsgi_input, self.server.keepalive or DEFAULT_BODY_SECONDS, self._close_after
            )
            environ["wsgi.input"] = self.wsgi_input
        return environ

    def _close_after(self) -> None:
        self.close_connection = True

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        # Shutting down (the listener is closed), keep-alive is off, or the body was not read
        # whole: this is the connection's last answer.
        if self.server.closed or not self.server.keepalive or self.close_connection:
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
