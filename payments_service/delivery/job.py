"""The delivery job: what a worker runs for each event RQ hands it, and nothing else.

RQ stores a job's function by its import path. Ours name DELIVER_FUNCTION, and `payments-service
worker` runs them with the EventDelivery it built (its sender, its stats): the job class resolves
that name to the worker's own delivery instead of importing it, and refuses every other name, so
a job someone else wrote into our queue can never run arbitrary code in the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from rq import get_current_job
from rq.job import Job

from ..observability import logs
from . import delivered
from .sender import DeliveryFailed, EventSender

log = logging.getLogger(__name__)

# The path stored in every delivery job, including jobs queued by earlier releases.
DELIVER_FUNCTION = "payments_service.delivery.deliver_event"


class UnknownJob(Exception):
    """A job that names a function other than DELIVER_FUNCTION; it fails without running."""


class EventDelivery:
    """One delivery attempt of an event, its outcome recorded on the job for `events list`."""

    def __init__(self, sender: EventSender, count: Callable[[str], None]) -> None:
        self._sender = sender
        self._count = count  # counts outcomes ("deliveries:delivered", ...) where every process sees them

    def __call__(self, event_id: str, body: str) -> int:
        job = get_current_job()
        logs.clear()
        logs.bind(event_id=event_id, booking_id=job.meta.get("booking_id") if job else None)
        attempts = int(job.meta.get("attempts", 0)) + 1 if job else 1
        try:
            status = self._sender.send(event_id, body)
        except DeliveryFailed as failure:
            dead = job is None or not job.retries_left
            _record(job, attempts, str(failure))
            self._count("deliveries:dead" if dead else "deliveries:failed")
            log.warning(
                "event delivery failed", extra={"attempt": attempts, "error": str(failure), "dead": dead}
            )
            raise
        _record(job, attempts, None)
        if job is not None:
            delivered.record(
                job.connection,
                event_id,
                job.meta.get("type", ""),
                job.meta.get("booking_id", ""),
                attempts,
                job.created_at,
            )
        self._count("deliveries:delivered")
        log.info("event delivered", extra={"attempt": attempts, "status": status})
        return status


class DeliveryJob(Job):
    """An RQ job whose function is the running worker's EventDelivery, never an import."""

    delivery: EventDelivery | None = None  # given by the worker that runs the job

    @property
    def func(self) -> Callable[..., Any]:
        if self.func_name != DELIVER_FUNCTION:
            raise UnknownJob(f"this worker only runs {DELIVER_FUNCTION}, not {self.func_name!r}")
        if self.delivery is None:
            raise RuntimeError(
                "a delivery job runs only in `payments-service worker`, which gives it its sender"
            )
        return self.delivery


def deliver_event(event_id: str, body: str) -> int:
    """What DELIVER_FUNCTION names; only `payments-service worker` runs it (with its own sender)."""
    raise RuntimeError(
        "delivery jobs run in `payments-service worker` (DeliveryJob), not in a plain RQ worker"
    )


def _record(job: Any, attempts: int, error: str | None) -> None:
    if job is None:
        return
    job.meta["attempts"] = attempts
    job.meta["last_error"] = error
    job.save_meta()
