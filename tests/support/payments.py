"""A pending payment to start from, for tests of the rules and of the stored form."""

from __future__ import annotations

import dataclasses
from typing import Any

from payments_service.domain.payments import Payment, PaymentStatus

NOW = 1_900_000_000


def pending_payment(**changes: Any) -> Payment:
    """Booking bk_1's second checkout (cs_2; cs_1 came before it), open for another half hour."""
    payment = Payment(
        booking_id="bk_1",
        status=PaymentStatus.PENDING,
        amount=3750,
        currency="usd",
        description="Dune",
        session_id="cs_2",
        checkout_url="https://checkout/cs_2",
        expires_at=NOW + 1800,
        created_at=NOW - 60,
        updated_at=NOW - 60,
        version=2,
        attempt=2,
        sessions=("cs_1", "cs_2"),
    )
    return dataclasses.replace(payment, **changes)
