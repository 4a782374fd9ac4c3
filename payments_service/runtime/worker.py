"""`payments-service worker`: relays the outbox into RQ, delivers events, reconciles periodically."""

from __future__ import annotations

import logging
import threading
import time

from redis.exceptions import RedisError
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.suspension import is_suspended
from rq.worker import SimpleWorker

from ..delivery import sender as delivery
from ..delivery.outbox import Outbox
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
# The relay waits this long for a new outbox entry per read, so it notices a stop within it.
RELAY_BLOCK_MS = 1000
RELAY_RECLAIM_INTERVAL_SECONDS = 10
# Events ready in RQ's queue beyond which the relay waits (seconds of work for the workers).
RELAY_QUEUE_LIMIT = 1000
RELAY_FULL_QUEUE_WAIT_SECONDS = 0.2


class EventWorker(SimpleWorker):
    """Runs delivery jobs in-process: a SIGKILL takes the job down with it, nothing delivers later."""

    outbox: Outbox

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        # The job dies of RQ's death penalty at job.timeout, so past this it is certainly abandoned.
        return int(job.timeout or 0) + ABANDONED_AFTER_JOB_TIMEOUT_SECONDS

    def run_maintenance_tasks(self) -> None:
        # A dead worker's scheduler lock would hold back every retry until it expires.
        self.outbox.delivery.release_dead_scheduler_lock()
        super().run_maintenance_tasks()  # type: ignore[no-untyped-call]


class Relay:
    """Moves events from the outbox stream into the delivery queue while the worker runs.

    It keeps the queue short (`queue_limit` events ready) and the rest in the outbox: moving a
    backlog of 70,000 events at once took the worker's time from its deliveries for 20 s.
    """

    def __init__(self, outbox: Outbox, consumer: str, queue_limit: int = RELAY_QUEUE_LIMIT) -> None:
        self._outbox = outbox
        self._consumer = consumer
        self._queue_limit = queue_limit

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: take new entries as they arrive, and those a dead relay left behind."""
        next_reclaim = 0.0
        while not stop.is_set():
            try:
                # RQ's suspend switch pauses the relay too: nothing moves while workers are paused.
                if is_suspended(self._outbox.redis):
                    stop.wait(1)
                    continue
                if self._outbox.delivery.queue.count >= self._queue_limit:
                    stop.wait(RELAY_FULL_QUEUE_WAIT_SECONDS)
                    continue
                if time.monotonic() >= next_reclaim:
                    self._outbox.reclaim(self._consumer)
                    next_reclaim = time.monotonic() + RELAY_RECLAIM_INTERVAL_SECONDS
                self._outbox.relay(self._consumer, block_ms=RELAY_BLOCK_MS)
            except RedisError as exc:
                log.warning("outbox relay: Redis unavailable, retrying", extra={"error": type(exc).__name__})
                stop.wait(1)


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
    delivery.install(delivery.EventSender.from_settings(settings), components.store)
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
    worker = EventWorker(
        [components.outbox.delivery.queue_on(connection)],
        connection=connection,
        serializer=JSONSerializer,
        worker_ttl=WORKER_TTL_SECONDS,
        maintenance_interval=MAINTENANCE_INTERVAL_SECONDS,
        log_job_description=False,
    )
    worker.outbox = components.outbox
    components.outbox.delivery.release_dead_scheduler_lock()
    if burst:
        components.outbox.relay_all(worker.name)
    else:
        relay = Relay(components.outbox, worker.name)
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
