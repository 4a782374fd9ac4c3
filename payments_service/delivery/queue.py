"""The delivery queue, on RQ: jobs enqueued inside the caller's transaction; count, list, replay."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rq.defaults
from redis import Redis
from redis.client import Pipeline
from rq import Queue, Retry, Worker
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, SCHEDULER_LOCKING_KEY_TEMPLATE
from rq.serializers import JSONSerializer
from rq.suspension import resume, suspend
from rq.utils import as_text, utcparse

from ..domain.events import OutgoingEvent
from ..storage import keys as redis_keys
from ..storage.locks import release_lock
from . import delivered
from .job import DELIVER_FUNCTION

QUEUE_NAME = "payment-events"
# A delivered event's job and result leave Redis at once (delivered.py lists the last ones);
# dead ones stay until replayed.
DELIVERED_RETENTION_SECONDS = 0
KEEP_FOREVER = -1
# RQ's scheduler heartbeats every second; one silent this long is dead (or hung: on waking it
# finds its lock taken and stops scheduling, so releasing the lock is safe either way).
SCHEDULER_SILENT_SECONDS = 15
# A delivery attempt gets this long beyond its HTTP timeout before RQ's death penalty.
JOB_TIMEOUT_MARGIN_SECONDS = 5


# RQ frees its registry-cleaning lock when a cleaning ends, and lets it expire after 15 minutes: a
# cleaning cut off by a Redis failure or a failover would leave abandoned deliveries unretried that
# long. Cleanings take well under this.
CLEANING_LOCK_SECONDS = 30


class _Queue(Queue):
    """RQ's queue, whose cleaning lock a failed cleaning holds for seconds, not 15 minutes."""

    def acquire_maintenance_lock(self) -> bool:
        return bool(self.connection.set(self.registry_cleaning_key, 1, nx=True, ex=CLEANING_LOCK_SECONDS))


def check_key_prefix() -> None:
    """Fail at start if rq was imported before payments_service (its keys would leave our slot)."""
    if rq.defaults.RQ_KEY_PREFIX != redis_keys.RQ_KEY_PREFIX:
        raise RuntimeError(
            f"rq was imported with RQ_KEY_PREFIX={rq.defaults.RQ_KEY_PREFIX!r}; payments_service needs "
            f"{redis_keys.RQ_KEY_PREFIX!r}: import payments_service before rq and leave RQ_KEY_PREFIX unset"
        )


@dataclass(frozen=True)
class EventInfo:
    """An outgoing event and where it is in its delivery."""

    id: str
    type: str
    booking_id: str
    state: str
    attempts: int
    last_error: str | None
    created_at: datetime | None
    next_attempt_at: datetime | None


_STATES = {
    JobStatus.QUEUED: "queued",
    JobStatus.SCHEDULED: "retrying",
    JobStatus.STARTED: "delivering",
    JobStatus.FINISHED: "delivered",
    JobStatus.FAILED: "dead",
}


class DeliveryQueue:
    """Events handed to RQ: queued, being delivered, waiting to retry, delivered or dead."""

    def __init__(self, redis: Redis, retry_schedule: tuple[int, ...], delivery_timeout: float) -> None:
        check_key_prefix()
        self._redis = redis
        self._retry_schedule = retry_schedule
        self._job_timeout = math.ceil(delivery_timeout) + JOB_TIMEOUT_MARGIN_SECONDS
        self.queue = _Queue(QUEUE_NAME, connection=redis, serializer=JSONSerializer)
        self._scheduled = ScheduledJobRegistry(queue=self.queue)  # type: ignore[no-untyped-call]
        self._started = StartedJobRegistry(queue=self.queue)
        self._finished = FinishedJobRegistry(queue=self.queue)
        self._failed = FailedJobRegistry(queue=self.queue)

    def enqueue(self, pipe: Pipeline, event: OutgoingEvent) -> None:
        """Buffer the delivery job on a pipeline already in MULTI; it exists only if EXEC succeeds."""
        self.queue.enqueue_call(
            DELIVER_FUNCTION,
            args=(event.id, event.body),
            job_id=event.id,
            timeout=self._job_timeout,
            result_ttl=DELIVERED_RETENTION_SECONDS,
            failure_ttl=KEEP_FOREVER,
            retry=Retry(max=len(self._retry_schedule), interval=list(self._retry_schedule)),
            meta={"type": event.type, "booking_id": event.booking_id, "attempts": 0},
            description=f"{event.type} for {event.booking_id}",
            pipeline=pipe,
        )

    def counts(self) -> dict[str, int]:
        """Events not yet delivered (queued, waiting to retry, in flight) and dead ones."""
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.llen(self.queue.key)
            pipe.zcard(self._scheduled.key)
            pipe.zcard(self._started.key)
            pipe.zcard(self._failed.key)
            queued, scheduled, started, dead = pipe.execute()
        return {"pending": int(queued) + int(scheduled) + int(started), "dead": int(dead)}

    def ready(self) -> int:
        """Events queued for a worker now (not those waiting to retry)."""
        return int(self.queue.count)

    def queue_on(self, connection: Redis) -> Queue:
        """This queue over another connection (the worker's, whose reads may block)."""
        return _Queue(QUEUE_NAME, connection=connection, serializer=JSONSerializer)

    def release_dead_scheduler_lock(self) -> bool:
        """Free the scheduler lock of a scheduler that stopped heartbeating (its worker was killed).

        Left alone, the lock outlives its owner by up to a minute, and retries wait for it.
        """
        lock_key = SCHEDULER_LOCKING_KEY_TEMPLATE % QUEUE_NAME
        owner = self._redis.get(lock_key)
        if owner is None:
            return False
        owner_name = as_text(owner)
        beat = self._redis.hget(SCHEDULER_KEY_TEMPLATE % owner_name, "last_heartbeat")
        if beat is not None:
            silent = (datetime.now(UTC) - utcparse(as_text(beat)).replace(tzinfo=UTC)).total_seconds()
            if silent < SCHEDULER_SILENT_SECONDS:
                return False
        return release_lock(self._redis, lock_key, owner_name)

    def pause_workers(self) -> None:
        """RQ's suspend switch: every worker stops taking jobs until resume_workers()."""
        suspend(self._redis)

    def resume_workers(self) -> None:
        resume(self._redis)

    def live_workers(self, hostname: str | None = None) -> int:
        """Workers with a current heartbeat on this queue (optionally only on one host)."""
        workers = Worker.all(queue=self.queue)
        return sum(1 for w in workers if hostname is None or w.hostname == hostname)

    def oldest_pending_age(self, now: datetime) -> float:
        """Seconds since the oldest event queued or waiting to retry was created (0 when none)."""
        ids = self.queue.get_job_ids(0, 1) + self._scheduled.get_job_ids(0, 0, cleanup=False)
        ages = [(now - job.created_at).total_seconds() for job in self._fetch(ids) if job.created_at]
        return max(ages, default=0.0)

    def events(self, dead_only: bool = False, limit: int = 200) -> list[EventInfo]:
        """Events with their delivery state, newest first within each state."""
        registries: list[Any] = [self._failed]
        if not dead_only:
            registries = [self._started, self._scheduled, self._failed, self._finished]
        ids: list[str] = []
        if not dead_only:
            ids.extend(self.queue.get_job_ids(0, limit))
        for registry in registries:
            ids.extend(registry.get_job_ids(0, limit - 1, desc=True, cleanup=False))
        listed = [self._info(job) for job in self._fetch(ids)]
        if not dead_only:
            seen = {info.id for info in listed}
            listed += [
                EventInfo(
                    row["id"],
                    row["type"],
                    row["booking_id"],
                    "delivered",
                    row["attempts"],
                    None,
                    row["created_at"],
                    None,
                )
                for row in delivered.recent(self._redis, limit)
                if row["id"] not in seen
            ]
        return listed

    def replay(self, event_ids: Iterable[str] | None) -> list[str]:
        """Queue dead events again with a fresh retry schedule; None means every dead event."""
        ids = list(event_ids) if event_ids is not None else self._failed.get_job_ids(cleanup=False)
        replayed = []
        for job in self._fetch(ids):
            if job.id not in self._failed:
                continue
            job.retries_left = len(self._retry_schedule)
            job.retry_intervals = list(self._retry_schedule)
            job.meta["replays"] = int(job.meta.get("replays", 0)) + 1
            self._failed.requeue(job)
            replayed.append(job.id)
        return replayed

    def unknown(self, event_ids: Iterable[str]) -> list[str]:
        """Which of these ids are not events we hold (or delivered lately)."""
        ids = list(event_ids)
        found = {job.id for job in self._fetch(ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            noted = {row["id"] for row in delivered.recent(self._redis, delivered.DELIVERED_LOG_LENGTH * 2)}
            missing = [i for i in missing if i not in noted]
        return missing

    def _fetch(self, ids: list[str]) -> list[Job]:
        unique = list(dict.fromkeys(ids))
        jobs = Job.fetch_many(unique, connection=self._redis, serializer=JSONSerializer)
        return [job for job in jobs if job is not None]

    def _info(self, job: Job) -> EventInfo:
        status = job.get_status(refresh=False)
        next_attempt = None
        if status == JobStatus.SCHEDULED:
            next_attempt = self._scheduled.get_scheduled_time(job)
        meta = job.meta or {}
        return EventInfo(
            id=job.id,
            type=str(meta.get("type", "")),
            booking_id=str(meta.get("booking_id", "")),
            state=_STATES.get(status, str(status)) if status else "unknown",
            attempts=int(meta.get("attempts", 0)),
            last_error=meta.get("last_error"),
            created_at=job.created_at.replace(tzinfo=UTC) if job.created_at else None,
            next_attempt_at=next_attempt,
        )

    def requeue_if_stranded(self, job_id: str) -> bool:
        """Queue again, at the front, a delivery its worker took but never started (Redis failed between).

        RQ moves a job it takes into an intermediate list until it starts it; one left there is
        found by RQ's own check only after a minute or more. One that started is left to RQ's
        abandoned-job check, which knows its time limit.
        """
        intermediate = self.queue.intermediate_queue
        if job_id in self._started or job_id not in intermediate.get_job_ids():
            return False
        job = self.queue.fetch_job(job_id)
        if job is None:
            intermediate.remove(job_id)
            return False
        with self._redis.pipeline() as pipe:
            self.queue.enqueue_job(job, pipeline=pipe, at_front=True)  # RQ opens the MULTI
            pipe.lrem(intermediate.key, 1, job_id)
            pipe.execute()
        return True
