"""`payments-service worker`: relays the outbox into RQ, delivers events, reconciles periodically."""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError
from rq.job import Job
from rq.job_lifecycle import call_exception_handlers
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker

from ..delivery.job import DeliveryJob, EventDelivery, UnknownJob
from ..delivery.queue import DeliveryQueue
from ..delivery.relay import Backoff, Relay
from ..delivery.sender import DeliveryFailed, EventSender
from ..domain.errors import StripeFailure
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
# A work loop that ran this long before Redis failed starts again after the shortest wait.
STEADY_SECONDS = 30.0


class EventWorker(SimpleWorker):
    """Runs delivery jobs in-process: a SIGKILL takes the job down with it, nothing delivers later."""

    # RQ waits up to a minute between attempts to reach Redis while dequeuing; a failover takes seconds.
    max_connection_wait_time = 5.0

    def __init__(
        self,
        queues: list[Any],
        deliveries: DeliveryQueue,
        delivery: EventDelivery,
        stop: threading.Event | None = None,
        **options: Any,
    ) -> None:
        super().__init__(queues, job_class=DeliveryJob, **options)
        self._deliveries = deliveries
        self._delivery = delivery
        self._stop = stop or threading.Event()
        self._retired = False
        self.taken: str | None = None  # the job taken from the queue and not yet done with

    def dequeue_job_and_maintain_ttl(self, timeout: Any, max_idle_time: Any = None) -> Any:
        result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        self.taken = result[0].id if result is not None else None
        return result

    def execute_job(self, job: Job, queue: Any) -> None:
        super().execute_job(job, queue)
        self.taken = None

    def request_stop(self, signum: Any, frame: Any) -> None:
        self._stop.set()  # SIGTERM/SIGINT: the work loop is not started again
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def retire(self) -> None:
        """After Redis ended its work loop: stop the command listener its teardown may have left running."""
        self._retired = True
        thread = getattr(self, "pubsub_thread", None)
        if thread is not None:
            thread.stop()  # it ends at its next wake-up, or at its next error (below)

    def _pubsub_exception_handler(self, exc: Exception, pubsub: Any, pubsub_thread: Any) -> None:
        # RQ's handler retries forever; a retired worker's listener, or one at shutdown, just ends.
        if self._retired or self._stop.is_set():
            pubsub_thread.stop()
            return
        super()._pubsub_exception_handler(exc, pubsub, pubsub_thread)

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
    """A pass, then `interval` seconds, until stopped; a failed pass is tried again next time.

    A pass that Redis failed (an outage, a failover) is tried again sooner, with a bounded backoff.
    """
    backoff = Backoff(first=1.0, ceiling=30.0)
    while not stop.is_set():
        wait = float(interval)
        try:
            report = reconciler.run_once()
            if report is not None and report.changes:
                log.info("reconciliation changed payments", extra={"changes": len(report.changes)})
            backoff.reset()
        except RedisError as exc:
            wait = min(wait, backoff.next())
            log.warning(
                "reconciliation pass failed: Redis unavailable",
                extra={"error": type(exc).__name__, "retry_in": wait},
            )
        except StripeFailure:
            log.exception("reconciliation pass failed; trying again next interval")
        if stop.wait(wait):
            return


def work_until_stopped(
    make_worker: Callable[[], EventWorker],
    stop: threading.Event,
    burst: bool,
    log_level: str,
    requeue: Callable[[str], bool] = lambda job_id: False,
) -> None:
    """RQ's work loop, started again whenever Redis made it quit, until SIGTERM (or a burst is done).

    RQ ends its loop on a Redis error met outside its dequeue (READONLY or MOVED after a failover,
    a connection lost in the middle of a job). Here the worker logs, waits (bounded backoff), takes
    a new RQ worker on the same connection pool (which reconnects to the current primary), and
    resumes. A job cut off that way is queued again at once if it had not started (`requeue`), or
    found abandoned by RQ and retried if it had.
    """
    backoff = Backoff(first=0.5, ceiling=5.0)
    stranded: str | None = None
    while True:
        started = time.monotonic()
        worker = None
        try:
            worker = make_worker()  # RQ asks Redis a few things already here
            if stranded is not None:
                requeue(stranded)
                stranded = None
            worker.work(burst=burst, with_scheduler=True, logging_level=log_level)
        except RedisError as exc:  # RQ's start (registration) and end (deregistration) are outside its loop
            if burst:
                raise
            log.warning("worker: Redis failed around the work loop", extra={"error": type(exc).__name__})
        if burst or stop.is_set():
            return
        if worker is not None:
            worker.retire()
            stranded = worker.taken or stranded
        if time.monotonic() - started > STEADY_SECONDS:
            backoff.reset()
        wait = backoff.next()
        log.warning("worker: RQ's work loop ended (Redis failed); resuming", extra={"retry_in": wait})
        # RQ's signal handlers belong to the worker that quit; until the next one, a signal just stops.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        if stop.wait(wait):
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
    connection = components.new_redis(socket_timeout=WORKER_TTL_SECONDS + 10)
    deliveries = components.deliveries
    delivery = EventDelivery(EventSender.from_settings(settings), components.store.count_stat)

    def make_worker() -> EventWorker:
        try:
            deliveries.release_dead_scheduler_lock()
        except RedisError:
            pass  # the worker's own start meets the same failure and is tried again
        return EventWorker(
            [deliveries.queue_on(connection)],
            deliveries,
            delivery,
            stop,
            connection=connection,
            serializer=JSONSerializer,
            worker_ttl=WORKER_TTL_SECONDS,
            maintenance_interval=MAINTENANCE_INTERVAL_SECONDS,
            log_job_description=False,
        )

    # The relay's name in the outbox's consumer group: one per process, whatever RQ workers it runs.
    consumer = uuid.uuid4().hex
    if burst:
        components.outbox.relay_all(consumer)
    else:
        relay = Relay(components.outbox, deliveries, consumer)
        threads.append(threading.Thread(target=relay.run, args=(stop,), name="relay", daemon=True))
    for thread in threads:
        thread.start()
    try:
        work_until_stopped(make_worker, stop, burst, settings.log_level, deliveries.requeue_if_stranded)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        connection.connection_pool.disconnect()
