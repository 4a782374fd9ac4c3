"""Stripe is the ledger: find a booking's payment there when Redis does not hold it (any more)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..domain.errors import VersionConflict
from ..domain.facts import RefundFact, SessionFact, SessionRecord
from ..domain.payments import Payment
from ..domain.rebuild import rebuild

if TYPE_CHECKING:
    from ..storage.store import PaymentStore
    from ..stripe_api.gateway import StripeGateway

log = logging.getLogger(__name__)


class Ledger:
    """Reads a booking's sessions at Stripe and rebuilds its payment from them.

    Only this deployment's sessions count (their metadata names it), so a session opened by
    another service or another deployment sharing the Stripe account never becomes ours.
    """

    def __init__(self, store: PaymentStore, stripe: StripeGateway, deployment: str) -> None:
        self._store = store
        self._stripe = stripe
        self.deployment = deployment

    def owns(self, fact: SessionFact) -> bool:
        return fact.deployment == self.deployment

    def records(
        self, booking_id: str, session_id: str | None = None, intent: str | None = None
    ) -> list[SessionRecord]:
        """This deployment's sessions for the booking, oldest first.

        Those that reached a PaymentIntent are found by searching the intents' metadata, which
        Stripe indexes within about a minute; `session_id` and `intent` are read directly.
        """
        intents = dict.fromkeys(self._stripe.find_booking_intents(booking_id, self.deployment))
        if intent:
            intents[intent] = None
        found: dict[str, SessionRecord] = {}
        for intent_id in intents:
            for record in self._stripe.sessions_of_intent(intent_id):
                found[record.fact.session_id] = record
        if session_id and session_id not in found:
            found[session_id] = self._stripe.session_record(session_id)
        ours = [r for r in found.values() if r.fact.booking_id == booking_id and self.owns(r.fact)]
        return sorted(ours, key=lambda r: (r.created, r.fact.session_id))

    def lookup(self, booking_id: str) -> Payment | None:
        """The payment as Stripe shows it now, for a booking Redis does not hold; nothing is stored."""
        return rebuild(booking_id, self.records(booking_id), time.time())

    def restore(
        self, booking_id: str, before: SessionFact | RefundFact | None = None
    ) -> tuple[Payment, list[SessionRecord]] | None:
        """Rebuild the payment and store it, announcing nothing; None if Stripe has none of ours.

        With a fact about to be applied (`before`), the payment is made as it stood before it,
        so that applying the fact afterwards changes it and announces the change.
        """
        session = before if isinstance(before, SessionFact) else None
        intent = before.payment_intent if isinstance(before, RefundFact) else None
        records = self.records(booking_id, session.session_id if session else None, intent)
        payment = rebuild(
            booking_id, records, time.time(), before=session, refunds=not isinstance(before, RefundFact)
        )
        if payment is None:
            return None
        try:
            self._store.save(payment, None)
        except VersionConflict:
            stored = self._store.get(booking_id)  # rebuilt by a concurrent request, or written by a checkout
            if stored is None:
                raise
            return stored, records
        log.warning(
            "rebuilt a payment from Stripe",
            extra={"booking_id": booking_id, "status": payment.status.value, "sessions": len(records)},
        )
        self._store.count_stat("rebuilt")
        return payment, records
