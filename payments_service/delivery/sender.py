"""Signing and sending events to the booking service (Standard Webhooks); the RQ job function."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import requests
from rq import get_current_job
from standardwebhooks.webhooks import Webhook

from ..observability import logs
from ..settings import Settings

if TYPE_CHECKING:
    from ..storage.store import PaymentStore

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """The booking service did not accept the event; RQ retries it on the configured schedule."""


class EventSender:
    """POSTs one event with Standard Webhooks headers; any 2xx is delivered."""

    def __init__(
        self, url: str, signing_secret: str, timeout: float, session: requests.Session | None = None
    ):
        self._url = url
        self._signer = Webhook(signing_secret)
        self._timeout = timeout
        self._session = session or requests.Session()
        self._session.proxies = requests.utils.get_environ_proxies(url)
        self._session.trust_env = False  # see StripeGateway.from_settings

    @classmethod
    def from_settings(cls, settings: Settings) -> EventSender:
        return cls(
            settings.booking_events_url, settings.event_signing_secret, settings.event_delivery_timeout
        )

    def headers(self, event_id: str, body: str, at: datetime) -> dict[str, str]:
        """The signed headers for one attempt; `at` must be timezone-aware (a naive one signs wrongly)."""
        return {
            "webhook-id": event_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": self._signer.sign(event_id, at, body),
            "content-type": "application/json",
        }

    def send(self, event_id: str, body: str) -> int:
        """One attempt; returns the status code or raises DeliveryFailed."""
        headers = self.headers(event_id, body, datetime.now(UTC))
        try:
            response = self._session.post(
                self._url, data=body.encode(), headers=headers, timeout=self._timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise DeliveryFailed(f"{type(exc).__name__} contacting the booking service") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"booking service answered HTTP {response.status_code}")
        return response.status_code


class _Context:
    """What the job function needs in this worker process: configuration, not state."""

    sender: EventSender | None = None
    store: PaymentStore | None = None


def install(sender: EventSender, store: PaymentStore) -> None:
    """Called once by `payments-service worker` before it starts taking jobs."""
    _Context.sender = sender
    _Context.store = store


def deliver_event(event_id: str, body: str) -> int:
    """The RQ job: one delivery attempt, its outcome recorded on the job for `events list`."""
    sender, store = _Context.sender, _Context.store
    if sender is None or store is None:
        raise RuntimeError("payments_service.delivery.install() was not called in this worker")
    job = get_current_job()
    logs.clear()
    logs.bind(event_id=event_id, booking_id=job.meta.get("booking_id") if job else None)
    attempts = int(job.meta.get("attempts", 0)) + 1 if job else 1
    try:
        status = sender.send(event_id, body)
    except DeliveryFailed as failure:
        dead = job is None or not job.retries_left
        _record(job, attempts, str(failure))
        store.count_stat("deliveries:dead" if dead else "deliveries:failed")
        log.warning("event delivery failed", extra={"attempt": attempts, "error": str(failure), "dead": dead})
        raise
    _record(job, attempts, None)
    store.count_stat("deliveries:delivered")
    log.info("event delivered", extra={"attempt": attempts, "status": status})
    return status


def _record(job: object, attempts: int, error: str | None) -> None:
    if job is None:
        return
    meta = job.meta  # type: ignore[attr-defined]
    meta["attempts"] = attempts
    meta["last_error"] = error
    job.save_meta()  # type: ignore[attr-defined]
