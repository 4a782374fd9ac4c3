"""`payments-service worker`: relays the outbox into RQ, delivers events, reconciles periodically."""

from __future__ import annotations

import logging
import threading
from typing import Any

from redis.exceptions import RedisError
from rq.job import Job
from rq.job_lifecycle import call_exception_handlers
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker

from ..delivery.job import DeliveryJob, EventDelivery, UnknownJob
from ..delivery.queue import DeliveryQueue
from ..delivery.relay import Relay
from ..delivery.sender import DeliveryFailed, EventSender
from ..domain.errors import StripeFailure
from ..storage.client import redis_client
from ..usecases.reconcile import Reconciler
from ..wiring import Components

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

    def __init__(
        self, queues: list[Any], deliveries: DeliveryQueue, delivery: EventDelivery, **options: Any
    ) -> None:
        super().__init__(queues, job_class=DeliveryJob, **options)
        self._deliveries = deliveries
        self._delivery = delivery

    def perform_job(self, job: Job, queue: Any, execution: Any) -> bool:
        if isinstance(job, DeliveryJob):  # always: the worker fetches every job as one
            job.delivery = self._delivery
        return bool(super().perform_job(job, queue, execution))

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        """One line per failed attempt, naming the job and the error, never the job's arguments.

        RQ's own handler logs a job's arguments, and ours are the event's id and its whole body
        (the payment, the customer's booking): event bodies never reach a log.
        """
        error = exc_info[1] if len(exc_info) > 1 else None
        expected = isinstance(error, DeliveryFailed | UnknownJob)  # already described, or ours to refuse
        log.error(
            "delivery job failed",
            extra={"job_id": job.id, "error": type(error).__name__, "detail": str(error)[:300]},
            exc_info=None if expected else exc_info,  # a traceback shows code, not arguments
        )
        call_exception_handlers(self._exc_handlers, job, *exc_info)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        # The job dies of RQ's death penalty at job.timeout, so past this it is certainly abandoned.
        return int(job.timeout or 0) + ABANDONED_AFTER_JOB_TIMEOUT_SECONDS

    def run_maintenance_tasks(self) -> None:
        # A dead worker's scheduler lock would hold back every retry until it expires.
        self._deliveries.release_dead_scheduler_lock()
        super().run_maintenance_tasks()  # type: ignore[no-untyped-call]


def reconcile_periodically(reconciler: Reconciler, interval: float, stop: threading.Event) -> None:
    """A pass, then `interval` seconds, until stopped; a failed pass is tried again next time."""
    while not stop.is_set():
        try:
            report = reconciler.run_once()
            if report is not None and report.changes:
                log.info("reconciliation changed payments", extra={"changes": len(report.changes)})
        except (RedisError, StripeFailure):
            log.exception("reconciliation pass failed; trying again next interval")
        if stop.wait(interval):
            return


def run(components: Components, burst: bool = False) -> None:
    """Deliver events until SIGTERM (which lets the current delivery finish); reconcile meanwhile."""
    settings = components.settings
    stop = threading.Event()
    threads = []
    if settings.reconcile_interval > 0 and not burst:
        threads.append(
            threading.Thread(
                target=reconcile_periodically,
                args=(components.reconciler(), settings.reconcile_interval, stop),
                name="reconcile",
                daemon=True,
            )
        )
    # Its own connection: a blocking dequeue outlasts the 5 s socket timeout requests use.
    connection = redis_client(settings.redis_url, socket_timeout=WORKER_TTL_SECONDS + 10)
    deliveries = components.deliveries
    worker = EventWorker(
        [deliveries.queue_on(connection)],
        deliveries,
        EventDelivery(EventSender.from_settings(settings), components.store.count_stat),
        connection=connection,
        serializer=JSONSerializer,
        worker_ttl=WORKER_TTL_SECONDS,
        maintenance_interval=MAINTENANCE_INTERVAL_SECONDS,
        log_job_description=False,
    )
    deliveries.release_dead_scheduler_lock()
    if burst:
        components.outbox.relay_all(worker.name)
    else:
        relay = Relay(components.outbox, deliveries, worker.name)
        threads.append(threading.Thread(target=relay.run, args=(stop,), name="relay", daemon=True))
    for thread in threads:
        thread.start()
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        connection.connection_pool.disconnect()
