"""Refund a paid booking, fully or in part, without ever refunding the same request twice."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..domain.errors import Conflict, InvalidRequest, NotFound
from ..domain.facts import RefundFact
from ..domain.payments import Payment, PaymentStatus

if TYPE_CHECKING:
    from ..storage.store import PaymentStore
    from ..stripe_api.gateway import StripeGateway
    from .stripe_facts import StripeFactsService


REFUNDABLE = (PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED)
# Stripe's own idempotency keys are at most 255 characters; ours are kept for weeks, so bounded too.
MAX_IDEMPOTENCY_KEY_LENGTH = 255


@dataclass(frozen=True)
class RefundInput:
    """A validated refund request; amount None means everything that remains."""

    amount: int | None = None
    reason: str | None = None

    def fingerprint(self) -> str:
        """What an Idempotency-Key is tied to: the same key with other parameters is refused."""
        return hashlib.sha256(json.dumps([self.amount, self.reason]).encode()).hexdigest()[:32]


class RefundService:
    """Creates Stripe refunds and applies their result through the same path as charge.refunded."""

    def __init__(self, store: PaymentStore, stripe: StripeGateway, facts: StripeFactsService) -> None:
        self._store = store
        self._stripe = stripe
        self._facts = facts

    def refund(self, booking_id: str, req: RefundInput, request_key: str | None = None) -> Payment:
        """Refund `req.amount` (default: all that remains); `request_key` makes a retried request safe."""
        payment = self._store.get(booking_id) or self._facts.restore(booking_id)
        if payment is None:
            raise NotFound(f"no payment for booking {booking_id}, here or at Stripe")
        if request_key:
            done = self._store.refund_request(booking_id, request_key)
            if done is not None:
                _refund_id, fingerprint = done
                # Like Stripe's keys: valid only with the parameters they were first used with.
                if fingerprint is not None and fingerprint != req.fingerprint():
                    raise InvalidRequest(
                        {
                            "Idempotency-Key": [
                                "was already used for a refund with other parameters; use a new key"
                            ]
                        }
                    )
                return payment  # this request was already carried out
        if payment.status not in REFUNDABLE or payment.payment_intent is None:
            raise Conflict(f"the payment is {payment.status.value}; only paid payments can be refunded")
        remaining = payment.amount - payment.amount_refunded
        amount = req.amount if req.amount is not None else remaining
        if amount > remaining:
            raise InvalidRequest({"amount": [f"exceeds the {remaining} minor units not yet refunded"]})
        refund = self._stripe.create_refund(
            payment.payment_intent,
            amount,
            req.reason,
            {"booking_id": booking_id},
            idempotency_key=refund_key(booking_id, payment.amount_refunded, amount, request_key),
        )
        total = refund.charge_amount_refunded
        if total is None:
            total = payment.amount_refunded + refund.amount
        result = self._facts.apply_refund_fact(
            booking_id, RefundFact(payment.payment_intent, total, req.reason)
        )
        if request_key:
            self._store.remember_refund_request(booking_id, request_key, refund.id, req.fingerprint())
        return result.payment or payment


def refund_key(booking_id: str, refunded_before: int, amount: int, request_key: str | None) -> str:
    """Two identical requests against the same refunded total make one Stripe refund."""
    if request_key:
        digest = hashlib.sha256(request_key.encode()).hexdigest()[:24]
        return f"refund:{booking_id}:request:{digest}"
    return f"refund:{booking_id}:{refunded_before}+{amount}"
