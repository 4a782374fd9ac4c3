"""A payment as Redis keeps it: compact (fields at their usual values left out), read back the same."""

from __future__ import annotations

import dataclasses
import json

from payments_service.domain.payments import PaymentStatus
from payments_service.storage.records import decode, encode
from tests.support.payments import NOW, pending_payment


def test_usual_values_are_left_out_and_read_back() -> None:
    paid = dataclasses.replace(
        pending_payment(),
        status=PaymentStatus.PAID,
        checkout_url=None,
        payment_intent="pi_1",
        paid_at=NOW,
        sessions=("cs_2",),
    )
    stored = json.loads(encode(paid))
    assert set(stored) == {
        "booking_id", "status", "amount", "currency", "description", "session_id",
        "expires_at", "created_at", "updated_at", "version", "attempt", "payment_intent", "paid_at",
    }  # fmt: skip
    assert decode(encode(paid)) == paid


def test_every_field_round_trips_and_the_long_form_still_reads() -> None:
    unusual = dataclasses.replace(
        pending_payment(),
        attempt=1,
        sessions=(),
        duplicates={"cs_1": "re_1"},
        cancel_requested=True,
        reason="duplicate_payment",
        amount_refunded=5,
        version=1,
    )
    assert decode(encode(unusual)) == unusual
    assert json.loads(encode(unusual))["version"] == 1  # the write script reads it: always there
    long_form = {f.name: getattr(unusual, f.name) for f in dataclasses.fields(unusual)}
    long_form["sessions"] = list(unusual.sessions)
    assert decode(json.dumps(long_form)) == unusual
    first, second = decode(encode(pending_payment())), decode(encode(pending_payment()))
    assert first.duplicates == {} and first.duplicates is not second.duplicates
