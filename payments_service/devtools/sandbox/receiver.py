"""DEVELOPMENT ONLY: a demo booking service that verifies each payment event and prints it.

It is what a booking-service developer would write: check the Standard Webhooks signature,
drop duplicates by webhook-id, keep the highest data.version per booking. It also serves the
plain pages a customer lands on after Stripe's checkout.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from flask import Flask, Response, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def create_receiver_app(signing_secret: str, out: Any = print) -> Flask:
    """The receiver's WSGI app; `out` receives one line per event."""
    app = Flask(__name__)
    verifier = Webhook(signing_secret)
    seen_ids: set[str] = set()
    versions: dict[str, int] = {}
    lock = threading.Lock()

    @app.post("/events")
    def events() -> Response:
        body = request.get_data()
        try:
            event = verifier.verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            out(f"REJECTED (bad signature: {exc})")
            return Response(status=400)
        data = event["data"]
        with lock:
            duplicate = request.headers["webhook-id"] in seen_ids
            stale = data["version"] < versions.get(data["booking_id"], 0)
            seen_ids.add(request.headers["webhook-id"])
            versions[data["booking_id"]] = max(data["version"], versions.get(data["booking_id"], 0))
        note = " (duplicate, ignored)" if duplicate else " (older version, ignored)" if stale else ""
        out(
            f"{event['type']:<28} booking={data['booking_id']} "
            f"status={data['status']} v{data['version']}{note}"
        )
        out("  " + json.dumps(data, separators=(",", ":")))
        return Response(status=204)

    @app.get("/bookings/<booking_id>/paid")
    def paid(booking_id: str) -> str:
        return _page("Payment received", f"Thanks! Booking {booking_id} is being confirmed.")

    @app.get("/bookings/<booking_id>")
    def booking(booking_id: str) -> str:
        return _page("Booking", f"Booking {booking_id}: checkout was left without paying.")

    return app


def _page(title: str, text: str) -> str:
    from markupsafe import escape

    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
        f"<body><main><h1>{escape(title)}</h1><p>{escape(text)}</p></main></body></html>"
    )
