"""A steady light load for failover tests: bookings opened, paid, and their webhooks sent, a few a second.

Each booking is one flow, like production's: a sibling service opens the checkout (retrying a 503
or a refused connection, as a caller would), the customer pays on the sandbox, and Stripe (this
class) posts the signed `checkout.session.completed`, retrying until it gets a 200. Every answer is
recorded with its time, so a test can name what the service acknowledged and when it failed.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.support.stack import Stack

RETRY_SECONDS = 0.2
GIVE_UP_SECONDS = 60.0


@dataclass
class Answer:
    at: float  # time.monotonic()
    kind: str  # "checkout" or "webhook"
    status: int | None  # None: no HTTP answer (refused, reset, timed out)


@dataclass
class Acknowledged:
    """What the service told its callers happened for one booking."""

    session_id: str | None = None  # the session in a 201/200 to POST /v1/payments
    paid_event: str | None = None  # the Stripe event answered 200


@dataclass
class SteadyLoad:
    stack: Stack
    per_second: float = 5.0
    prefix: str = "bk"
    answers: list[Answer] = field(default_factory=list)
    bookings: dict[str, Acknowledged] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _flows: list[Future[None]] = field(default_factory=list)

    def __enter__(self) -> SteadyLoad:
        self._pool = ThreadPoolExecutor(max_workers=64)
        self._thread = threading.Thread(target=self._schedule, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """No new bookings; wait for those under way to end (each retries until acknowledged)."""
        self._stop.set()
        self._thread.join(10)
        for flow in self._flows:
            flow.result(timeout=GIVE_UP_SECONDS + 10)
        self._pool.shutdown()

    def _schedule(self) -> None:
        for n in itertools.count():
            if self._stop.wait(1 / self.per_second):
                return
            booking_id = f"{self.prefix}_{n}"
            with self._lock:
                self.bookings[booking_id] = Acknowledged()
            self._flows.append(self._pool.submit(self._flow, booking_id))

    def _flow(self, booking_id: str) -> None:
        body = {"booking_id": booking_id, "amount": 3750, "description": "Dune, 2 seats"}
        created = self._until_acknowledged(
            "checkout", lambda: self.stack.api("POST", "/v1/payments", json=body)
        )
        session_id = created.json()["session_id"]
        with self._lock:
            self.bookings[booking_id].session_id = session_id
        paid = self.stack.sandbox(f"/_sandbox/sessions/{session_id}/pay", webhook="0")
        paid.raise_for_status()
        event = {
            "id": f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "type": "checkout.session.completed",
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": paid.json()},
        }
        self._until_acknowledged("webhook", lambda: self.stack.send_webhook(event))
        with self._lock:
            self.bookings[booking_id].paid_event = event["id"]

    def _until_acknowledged(self, kind: str, call: Any) -> requests.Response:
        deadline = time.monotonic() + GIVE_UP_SECONDS
        while True:
            try:
                response: requests.Response = call()
                status: int | None = response.status_code
            except requests.RequestException:
                response, status = None, None  # type: ignore[assignment]
            with self._lock:
                self.answers.append(Answer(time.monotonic(), kind, status))
            if status in (200, 201):
                return response
            if status not in (None, 502, 503) or time.monotonic() > deadline:
                body = response.text if response is not None else ""
                raise AssertionError(f"{kind} answered {status}: {body[:300]}")
            time.sleep(RETRY_SECONDS)

    def acknowledged(self) -> dict[str, Acknowledged]:
        with self._lock:
            return {b: a for b, a in self.bookings.items() if a.session_id}

    def counts(self) -> dict[str, int]:
        """Answers by kind and status, such as {"checkout 201": 40, "webhook 503": 3}."""
        counted: dict[str, int] = {}
        with self._lock:
            for answer in self.answers:
                key = f"{answer.kind} {answer.status or 'no answer'}"
                counted[key] = counted.get(key, 0) + 1
        return counted

    def error_window(self, since: float) -> tuple[float, float]:
        """(seconds from `since` to the last failed answer, seconds failures lasted) after `since`."""
        with self._lock:
            failed = [a.at for a in self.answers if a.at >= since and a.status not in (200, 201)]
        if not failed:
            return 0.0, 0.0
        return max(failed) - since, max(failed) - min(failed)

    def recovered_after(self, since: float) -> float:
        """Seconds from `since` to the first success after the last failure (0: nothing failed)."""
        with self._lock:
            answers = [a for a in self.answers if a.at >= since]
        failed = [a.at for a in answers if a.status not in (200, 201)]
        if not failed:
            return 0.0
        last_failure = max(failed)
        later = [a.at for a in answers if a.at > last_failure and a.status in (200, 201)]
        return (min(later) if later else float("inf")) - since


def paid_events_by_booking(received: list[Any]) -> dict[str, set[str]]:
    """The receiver's accepted payment.paid deliveries: booking -> the webhook-ids they came with."""
    by_booking: dict[str, set[str]] = {}
    for delivery in received:
        event = json.loads(delivery.body)
        if event["type"] == "payment.paid":
            by_booking.setdefault(event["data"]["booking_id"], set()).add(delivery.headers["webhook-id"])
    return by_booking
