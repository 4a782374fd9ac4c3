"""The sandbox signs and sends events like Stripe: Stripe-Signature, retried with backoff."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from typing import Any

import requests

log = logging.getLogger(__name__)

# Stripe retries for days; the sandbox gives up sooner but long enough to ride out a restart.
RETRY_DELAYS = (1, 2, 4, 8, 15, 30, 60, 120)


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    """Stripe's scheme: t=<unix>,v1=<hex HMAC-SHA256 over "t.payload", keyed with the whole secret>."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookSender:
    """Delivers each event in the background, so the page that caused it answers at once."""

    def __init__(self, url: str, secret: str) -> None:
        self._url = url
        self._secret = secret
        self._session = requests.Session()

    def __call__(self, event: dict[str, Any]) -> None:
        threading.Thread(target=self._deliver, args=(event,), daemon=True).start()

    def _deliver(self, event: dict[str, Any]) -> None:
        payload = json.dumps(event).encode()
        for delay in (0, *RETRY_DELAYS):
            time.sleep(delay)
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": signature_header(payload, self._secret, int(time.time())),
            }
            try:
                response = self._session.post(self._url, data=payload, headers=headers, timeout=10)
                if 200 <= response.status_code < 300:
                    return
                log.warning("webhook %s answered %s; retrying", event["id"], response.status_code)
            except requests.RequestException as exc:
                log.warning("webhook %s not delivered (%s); retrying", event["id"], type(exc).__name__)
        log.error("webhook %s abandoned after %d attempts", event["id"], len(RETRY_DELAYS) + 1)
