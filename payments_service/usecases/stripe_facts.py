"""Apply Stripe's facts: the one path for webhooks, ?refresh=true and reconciliation."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..domain.errors import NotFound, RefundNotYetApplicable
from ..domain.events import build_event
from ..domain.facts import RefundFact, SessionFact
from ..domain.outcomes import ApplyOutcome, ApplyResult
from ..domain.payments import (
    OPEN,
    SETTLED,
    Decision,
    Payment,
    apply_refund,
    apply_session,
    record_duplicate_refund,
)
from ..domain.rebuild import Rebuilt, adopt

if TYPE_CHECKING:
    from ..storage.store import PaymentStore
    from ..stripe_api.gateway import StripeGateway
    from ..stripe_api.parsing import StripeEvent
    from .ledger import Ledger

log = logging.getLogger(__name__)


class StripeFactsService:
    """Turns Stripe facts into at most one state change and one event each, whoever brings them."""

    def __init__(
        self,
        store: PaymentStore,
        stripe: StripeGateway,
        ledger: Ledger,
        published: Callable[[str], None] = lambda event_type: None,
    ) -> None:
        self._store = store
        self._stripe = stripe
        self.ledger = ledger
        self._published = published  # told the type of every event written to the outbox

    def handle_event(self, event: StripeEvent) -> ApplyOutcome | None:
        """A verified webhook or listed event; None when it is not about one of our payments."""
        fact = event.fact
        if isinstance(fact, SessionFact) and fact.booking_id:
            return self.apply_session_fact(fact.booking_id, fact, event.id).outcome
        if isinstance(fact, RefundFact):
            booking_id = self._store.booking_for_intent(fact.payment_intent)
            if booking_id is None and event.booking_hint:
                known = self._store.get(event.booking_hint)
                if known is None and event.deployment_hint == self.ledger.deployment:
                    return self._refund_of_unknown_booking(event.booking_hint, fact, event.id)
                if known is not None and known.status not in SETTLED:
                    raise RefundNotYetApplicable(
                        f"refund for {event.booking_hint} arrived before its payment; send it again later"
                    )
            if booking_id is not None:
                fact = self._with_refund_reason(booking_id, fact, event.created)
                return self.apply_refund_fact(booking_id, fact, event.id).outcome
        return None

    def _with_refund_reason(self, booking_id: str, fact: RefundFact, created: int) -> RefundFact:
        """The fact with the refund's reason from Stripe, when the event left it out and it is news.

        A refund this service made (or one already applied) needs no lookup: only a refund made
        elsewhere, in Stripe's dashboard for instance, costs one call to Stripe.
        """
        if fact.reason is not None or fact.charge is None:
            return fact
        payment = self._store.get(booking_id)
        if payment is None or payment.amount_refunded >= fact.amount_refunded:
            return fact
        return dataclasses.replace(fact, reason=self._stripe.refund_reason(fact.charge, created))

    def apply_session_fact(
        self, booking_id: str, fact: SessionFact, stripe_event_id: str | None = None
    ) -> ApplyResult:
        """Apply a session's outcome; refund a second payment for an already-paid booking, once.

        A booking Redis does not hold is rebuilt from Stripe first when the session is ours.
        """
        return self._apply_session(booking_id, fact, stripe_event_id, rebuild=True)

    def _apply_session(
        self, booking_id: str, fact: SessionFact, stripe_event_id: str | None, rebuild: bool
    ) -> ApplyResult:
        result = self._store.apply(booking_id, self._deciding(fact), build_event, stripe_event_id)
        if (
            rebuild
            and result.outcome is ApplyOutcome.UNKNOWN_BOOKING
            and self.ledger.owns(fact)
            and fact.booking_id == booking_id
        ):
            rebuilt = self.ledger.restore(booking_id, before=fact)
            if rebuilt is not None:
                return self._replay(booking_id, rebuilt, fact, stripe_event_id)
        if result.outcome is ApplyOutcome.DUPLICATE_PAYMENT and result.duplicate is not None:
            duplicate = result.duplicate
            # The key is per duplicate session: however many triggers race here, Stripe refunds once.
            refund = self._stripe.create_refund(
                duplicate.payment_intent,
                None,
                "duplicate",
                {"booking_id": booking_id, "duplicate_session_id": duplicate.session_id},
                idempotency_key=f"duplicate-refund:{booking_id}:{duplicate.session_id}",
            )
            log.warning(
                "refunded a second payment for a paid booking",
                extra={"booking_id": booking_id, "session_id": duplicate.session_id, "refund_id": refund.id},
            )
            result = self._store.apply(
                booking_id,
                lambda p: record_duplicate_refund(p, duplicate.session_id, refund.id, int(time.time())),
                build_event,
                stripe_event_id,
            )
        if result.change is not None and result.change.superseded_session:
            self._stripe.expire_session_quietly(result.change.superseded_session)
        self._count(result)
        return result

    def apply_refund_fact(
        self, booking_id: str, fact: RefundFact, stripe_event_id: str | None = None
    ) -> ApplyResult:
        """Apply the charge's refunded total; it only ever grows."""
        result = self._store.apply(
            booking_id, lambda p: apply_refund(p, fact, int(time.time())), build_event, stripe_event_id
        )
        self._count(result)
        return result

    def restore(self, booking_id: str) -> Payment | None:
        """A booking Redis does not hold, rebuilt from Stripe and stored (for a refund), or None."""
        rebuilt = self.ledger.restore(booking_id)
        if rebuilt is None:
            return None
        self._refund_duplicates(booking_id, rebuilt)
        return self._store.get(booking_id)

    def refresh(self, booking_id: str) -> Payment:
        """Ask Stripe about an open payment's session and apply the answer as a webhook would.

        A booking Redis does not hold is answered from Stripe as it stands, and not stored.
        """
        payment = self._store.get(booking_id)
        if payment is None:
            found = self.ledger.lookup(booking_id)
            if found is None:
                raise NotFound(f"no payment for booking {booking_id}, here or at Stripe")
            return found
        if payment.status not in OPEN:
            return payment
        fact = self._stripe.retrieve_session(payment.session_id)
        result = self.apply_session_fact(booking_id, fact)
        return result.payment or payment

    def _deciding(self, fact: SessionFact) -> Callable[[Payment], Decision]:
        def decide(payment: Payment) -> Decision:
            clock = time.time()
            if (
                fact.session_id not in payment.sessions
                and self.ledger.owns(fact)
                and fact.booking_id == payment.booking_id
            ):
                # Ours, for this booking, yet not listed: Redis lost the write that listed it.
                payment = adopt(payment, fact.session_id, clock)
            return apply_session(payment, fact, int(clock))

        return decide

    def _replay(
        self, booking_id: str, rebuilt: Rebuilt, trigger: SessionFact, stripe_event_id: str | None
    ) -> ApplyResult:
        """Stripe's facts about a rebuilt payment, announced in order; then the fact that brought it."""
        # Never rebuilding again from here: a payment gone at once (a tiny retention) stays gone.
        replayed = [
            self._apply_session(booking_id, f, None, rebuild=False)
            if isinstance(f, SessionFact)
            else self.apply_refund_fact(booking_id, f)
            for f in rebuilt.facts
        ]
        result = self._apply_session(booking_id, trigger, stripe_event_id, rebuild=False)
        self._refund_duplicates(booking_id, rebuilt, done=trigger.session_id)
        applied = [r for r in replayed if r.outcome is ApplyOutcome.APPLIED]
        if result.outcome is ApplyOutcome.UNCHANGED and applied:
            return applied[-1]  # the trigger's change was among Stripe's facts
        return result

    def _refund_of_unknown_booking(
        self, booking_id: str, fact: RefundFact, event_id: str
    ) -> ApplyOutcome | None:
        rebuilt = self.ledger.restore(booking_id, before=fact)
        if rebuilt is None:
            return None
        result = self.apply_refund_fact(booking_id, fact, event_id)
        self._refund_duplicates(booking_id, rebuilt)
        return result.outcome

    def _refund_duplicates(self, booking_id: str, rebuilt: Rebuilt, done: str | None = None) -> None:
        """Other paid sessions a rebuild found that nobody refunded yet: each is a second payment."""
        for fact in rebuilt.duplicates:
            if fact.session_id != done:
                self._apply_session(booking_id, fact, None, rebuild=False)

    def _count(self, result: ApplyResult) -> None:
        if result.event is not None:
            self._published(result.event.type)
