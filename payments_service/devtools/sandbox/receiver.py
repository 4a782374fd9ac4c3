"""DEVELOPMENT ONLY: a demo booking service that verifies each payment event and prints it.

It is what a booking-service developer would write: check the Standard Webhooks signature,
drop duplicates by webhook-id, keep the highest data.version per booking. It also serves the
pages a customer lands on after Stripe's checkout; like a real booking service, the return page
asks the payments API for the payment's status (`?refresh=true`, so it need not wait for the
webhook) instead of trusting that arriving there means the money arrived.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from flask import Flask, Response, render_template, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Page:
    """What the return page says for one payment status."""

    heading: str
    text: str
    tone: str = ""


RETURN_PAGES = {
    "paid": Page("Payment received", "Booking {booking} is paid. Thank you!", "good"),
    "refunded": Page("Payment refunded", "Booking {booking} was paid, then refunded.", "good"),
    "partially_refunded": Page("Payment received", "Booking {booking} is paid (partly refunded).", "good"),
    "processing": Page(
        "Payment processing",
        "Your bank is confirming the payment for booking {booking}. The booking is confirmed "
        "when the payment settles; until then nothing is final.",
    ),
    "failed": Page(
        "Payment failed", "The bank refused the payment for booking {booking}; nothing was charged.", "bad"
    ),
    "canceled": Page(
        "Checkout closed", "The checkout for booking {booking} was closed without payment.", "bad"
    ),
    "expired": Page("Checkout closed", "The checkout for booking {booking} expired without payment.", "bad"),
}
CONFIRMING = Page("Confirming your payment", "Waiting for Stripe's confirmation for booking {booking}...")


@dataclass(frozen=True)
class ReceiverConfig:
    """Where the receiver can ask about a payment (the payments API) and the sandbox's bank buttons."""

    signing_secret: str
    payments_api: str | None = None
    api_token: str | None = None
    sandbox_url: str | None = None


def create_receiver_app(config: ReceiverConfig, out: Callable[[str], None] = print) -> Flask:
    """The receiver's WSGI app; `out` receives the lines printed for each event."""
    app = Flask(__name__)
    verifier = Webhook(config.signing_secret)
    seen_ids: set[str] = set()
    versions: dict[str, int] = {}
    statuses: dict[str, str] = {}
    recent: deque[dict[str, Any]] = deque(maxlen=50)
    lock = threading.Lock()
    http = requests.Session()

    @app.post("/events")
    def events() -> Response:
        body = request.get_data()
        try:
            event = verifier.verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            out(f"REJECTED (bad signature: {exc})")
            return Response(status=400)
        data = event["data"]
        booking = data["booking_id"]
        with lock:
            duplicate = request.headers["webhook-id"] in seen_ids
            stale = data["version"] < versions.get(booking, 0)
            seen_ids.add(request.headers["webhook-id"])
            if not duplicate and not stale:
                versions[booking] = data["version"]
                statuses[booking] = data["status"]
            note = " (duplicate, ignored)" if duplicate else " (older version, ignored)" if stale else ""
            recent.appendleft({"event": event, "note": note.strip(" ()"), "at": time.strftime("%H:%M:%S")})
        out(f"{event['type']:<28} booking={booking} status={data['status']} v{data['version']}{note}")
        out("  " + json.dumps(data, separators=(",", ":")))
        return Response(status=204)

    def current_status(booking: str) -> str | None:
        """The payments API's answer, as a booking service would ask; else the last event heard."""
        if config.payments_api and config.api_token:
            try:
                answer = http.get(
                    f"{config.payments_api}/v1/payments/{quote(booking, safe='')}",
                    params={"refresh": "true"},
                    headers={"Authorization": f"Bearer {config.api_token}"},
                    timeout=10,
                )
                if answer.status_code == 200:
                    return str(answer.json()["status"])
            except (requests.RequestException, ValueError, KeyError):
                pass
        with lock:
            return statuses.get(booking)

    @app.get("/")
    def index() -> str:
        with lock:
            rows = list(recent)
        return render_template("receiver_events.html", rows=rows)

    @app.get("/bookings/<booking_id>/paid")
    def returned(booking_id: str) -> str:
        """Stripe's success_url: the customer is back, which does not mean the money is."""
        status = current_status(booking_id)
        page = RETURN_PAGES.get(status or "", CONFIRMING)
        session = request.args.get("session", "")
        settle_url = None
        if status == "processing" and config.sandbox_url and session:
            settle_url = f"{config.sandbox_url}/c/pay/{quote(session, safe='')}/settle"
        return render_template(
            "receiver_booking.html",
            heading=page.heading,
            text=page.text.format(booking=booking_id),
            tone=page.tone,
            settle_url=settle_url,
            reload=page is CONFIRMING,
        )

    @app.get("/bookings/<booking_id>")
    def left(booking_id: str) -> str:
        """Stripe's cancel_url."""
        return render_template(
            "receiver_booking.html",
            heading="Checkout left",
            text=f"Booking {booking_id}: checkout was left without paying.",
            tone="",
            settle_url=None,
            reload=False,
        )

    return app


def serve(host: str, port: int, config: ReceiverConfig, out: Callable[[str], None]) -> None:
    """Serve until stopped, one thread per request."""
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = create_receiver_app(config, out)
    out(f"demo booking service on http://{host}:{port}/ (events to /events): verified events appear below")
    make_server(host, port, app, threaded=True).serve_forever()
