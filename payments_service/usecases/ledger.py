"""Stripe is the ledger: find a booking's payment there when Redis does not hold it (any more)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..domain.errors import VersionConflict
from ..domain.facts import RefundFact, SessionFact, SessionRecord
from ..domain.payments import Payment
from ..domain.rebuild import Rebuilt, current, rebuild

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
        clock = time.time()
        rebuilt = rebuild(booking_id, self.records(booking_id), clock)
        return current(rebuilt, clock) if rebuilt is not None else None

    def restore(self, booking_id: str, before: SessionFact | RefundFact | None = None) -> Rebuilt | None:
        """Rebuild the payment and store it, announcing nothing; None if Stripe has none of ours.

        Before a session fact, the payment is stored as its checkout opened it: the caller applies
        Stripe's facts (`Rebuilt.facts`) and its own through the usual path, which announces what
        Redis lost. Otherwise it is stored as it stands (before a refund fact, without refunds:
        that fact brings the total).
        """
        session = before if isinstance(before, SessionFact) else None
        intent = before.payment_intent if isinstance(before, RefundFact) else None
        clock = time.time()
        rebuilt = rebuild(
            booking_id, self.records(booking_id, session.session_id if session else None, intent), clock
        )
        if rebuilt is None:
            return None
        payment = rebuilt.payment
        if session is None:
            payment = current(rebuilt, clock, refunds=not isinstance(before, RefundFact))
        try:
            self._store.save(payment, None)
        except VersionConflict:
            # Rebuilt meanwhile by a concurrent request, or opened again by a checkout: the facts
            # still apply to it, and change nothing they already changed.
            return rebuilt
        log.warning(
            "rebuilt a payment from Stripe",
            extra={
                "booking_id": booking_id,
                "status": payment.status.value,
                "session_id": payment.session_id,
            },
        )
        self._store.count_stat("rebuilt")
        return rebuilt
