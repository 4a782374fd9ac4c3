"""`payments-service serve`: gunicorn with production defaults nobody should have to know."""

from __future__ import annotations

import dataclasses
import gc
import os
import tempfile
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from ..observability import logs
from ..settings import Settings

# A request spends most of its life waiting for Stripe (hundreds of ms). gevent workers keep
# serving while they wait: sync workers manage ~6 checkouts/s, gevent ~750 on two cores. This
# one is gevent's pywsgi server held to gunicorn's keep-alive rules (see gevent_worker).
WORKER_CLASS = "payments_service.runtime.gevent_worker.PaymentsWorker"
WORKER_CONNECTIONS = 1000
GRACEFUL_TIMEOUT = 30
KEEPALIVE = 5


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """The gunicorn settings `serve` uses; also what `gunicorn wsgi:app` users may copy."""
    return {
        "bind": f"0.0.0.0:{settings.port}",
        "workers": settings.workers,
        "worker_class": WORKER_CLASS,
        "worker_connections": WORKER_CONNECTIONS,
        # SIGTERM: stop accepting, let in-flight requests (and their Stripe calls) finish.
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "timeout": 60,
        "keepalive": KEEPALIVE,
        "logconfig_dict": logs.gunicorn_logconfig(settings.log_level),
        "logger_class": QuietAccessLogger,
        "accesslog": None,
        # gunicorn 27 opens a control socket in $HOME by default; two servers would collide on it.
        "control_socket_disable": True,
        "child_exit": _child_exit,
    }


class QuietAccessLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger without its access log: RequestMiddleware writes one JSON line per request.

    With logconfig_dict set, gunicorn would assemble every request's access-log fields only for
    the disabled gunicorn.access logger to drop them, on every request.
    """

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None


def _child_exit(server: Any, worker: Any) -> None:
    # A dead worker's live gauges must not be summed into /metrics any more.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


class PaymentsServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in gunicorn_options(self._settings).items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Runs in each worker after gevent has patched the process.
        from .. import create_app
        from ..wiring import Runtime

        app = create_app(self._settings, runtime=Runtime.GEVENT)
        # Everything loaded so far lives as long as the worker. Left to the collector, each full
        # collection walks all of it while the event loop (every request in flight) waits; frozen
        # out of it, those pauses shrink (README, "Performance").
        gc.freeze()
        return app


def serve(settings: Settings) -> None:
    """Run the API until SIGTERM; counters from every worker are merged for /metrics."""
    settings = dataclasses.replace(settings, prometheus_multiproc_dir=_metrics_dir(settings))
    # prometheus_client reads this when first imported, in each worker after the fork.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = settings.prometheus_multiproc_dir or ""
    PaymentsServer(settings).run()


def _metrics_dir(settings: Settings) -> str:
    """A clean directory for this server's metric files (stale ones would be summed in)."""
    if settings.prometheus_multiproc_dir:
        path = Path(settings.prometheus_multiproc_dir)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return str(path)
    return tempfile.mkdtemp(prefix="payments-metrics-")
