"""Signing and sending events to the booking service (Standard Webhooks)."""

from __future__ import annotations

from datetime import UTC, datetime

import requests
from standardwebhooks.webhooks import Webhook

from ..settings import Settings


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
