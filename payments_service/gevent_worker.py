"""Deprecated alias, kept for one release: use `payments_service.runtime.gevent_worker.PaymentsWorker`.

`gunicorn -k payments_service.gevent_worker.PaymentsWorker` was the documented worker class.
"""

from .runtime.gevent_worker import PaymentsWorker

__all__ = ["PaymentsWorker"]
