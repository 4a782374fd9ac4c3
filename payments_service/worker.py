"""`payments-service worker`: delivers events (RQ) and runs reconciliation every RECONCILE_INTERVAL."""

from __future__ import annotations

import logging
import threading

from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker

from . import delivery
from .outbox import Outbox
from .reconcile import Reconciler
from .services import Services, redis_client

log = logging.getLogger(__name__)

# RQ's defaults find a job abandoned by a killed worker only after 60 s + the job timeout, at
# a maintenance pass that runs every 10 minutes, and an idle worker blocks in dequeue for
# 405 s between passes; a killed scheduler's lock blocks retries for a minute. These keep
# recovery within a minute of a worker running again.
WORKER_TTL_SECONDS = 20  # an idle worker wakes every 5 s (ttl - 15) and runs due maintenance
MAINTENANCE_INTERVAL_SECONDS = 10
ABANDONED_AFTER_JOB_TIMEOUT_SECONDS = 10


class EventWorker(SimpleWorker):
    """Runs delivery jobs in-process: a SIGKILL takes the job down with it, nothing delivers later."""

    outbox: Outbox

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        # The job dies of RQ's death penalty at job.timeout, so past this it is certainly abandoned.
        return int(job.timeout or 0) + ABANDONED_AFTER_JOB_TIMEOUT_SECONDS

    def run_maintenance_tasks(self) -> None:
        # A dead worker's scheduler lock would hold back every retry until it expires.
        self.outbox.release_dead_scheduler_lock()
        super().run_maintenance_tasks()  # type: ignore[no-untyped-call]


def run(services: Services, burst: bool = False) -> None:
    """Deliver events until SIGTERM (which lets the current delivery finish); reconcile meanwhile."""
    settings = services.settings
    delivery.install(delivery.EventSender.from_settings(settings), services.store)
    stop = threading.Event()
    reconciler_thread = None
    if settings.reconcile_interval > 0 and not burst:
        reconciler = Reconciler(services)
        reconciler_thread = threading.Thread(
            target=reconciler.run_periodically,
            args=(settings.reconcile_interval, stop),
            name="reconcile",
            daemon=True,
        )
        reconciler_thread.start()
    # Its own connection: a blocking dequeue outlasts the 5 s socket timeout requests use.
    connection = redis_client(settings, socket_timeout=WORKER_TTL_SECONDS + 10)
    worker = EventWorker(
        [services.outbox.queue_on(connection)],
        connection=connection,
        serializer=JSONSerializer,
        worker_ttl=WORKER_TTL_SECONDS,
        maintenance_interval=MAINTENANCE_INTERVAL_SECONDS,
        log_job_description=False,
    )
    worker.outbox = services.outbox
    services.outbox.release_dead_scheduler_lock()
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level)
    finally:
        connection.connection_pool.disconnect()
        stop.set()
        if reconciler_thread is not None:
            reconciler_thread.join(timeout=5)
