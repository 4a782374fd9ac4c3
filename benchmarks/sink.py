"""A booking service that accepts every event at once (204): the benchmark's delivery target."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

from gevent.pywsgi import WSGIServer


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    environ["wsgi.input"].read()
    start_response("204 No Content", [])
    return [b""]


if __name__ == "__main__":
    WSGIServer(("127.0.0.1", int(sys.argv[1])), app, log=None).serve_forever()
