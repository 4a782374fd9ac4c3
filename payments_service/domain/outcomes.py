"""What applying a decision to a stored payment came to, whoever brought the fact."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .events import OutgoingEvent
from .payments import Change, DuplicatePayment, Payment


class ApplyOutcome(StrEnum):
    APPLIED = "applied"  # the payment changed and its event is in the outbox
    UNCHANGED = "unchanged"  # nothing to change (a late or repeated fact)
    DUPLICATE_EVENT = "duplicate_event"  # this Stripe event was applied before
    UNKNOWN_BOOKING = "unknown_booking"  # no payment is stored for the booking
    DUPLICATE_PAYMENT = "duplicate_payment"  # a second payment for a paid booking: refund it


@dataclass(frozen=True)
class ApplyResult:
    outcome: ApplyOutcome
    payment: Payment | None = None
    change: Change | None = None
    event: OutgoingEvent | None = None
    duplicate: DuplicatePayment | None = None
