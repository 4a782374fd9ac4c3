"""Open (or reuse) a booking's Checkout Session, and cancel it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from ..domain.errors import Conflict, InvalidRequest, NotFound, VersionConflict
from ..domain.events import build_event
from ..domain.facts import CheckoutRequest, SessionOutcome
from ..domain.payments import LOCKED_IN, Change, Payment, PaymentStatus, cancel, first_version

if TYPE_CHECKING:
    from ..settings import Settings
    from ..storage.store import Claim, PaymentStore
    from ..stripe_api.gateway import StripeGateway
    from .stripe_facts import StripeFactsService


# Stripe allows expires_at 30 minutes to 24 hours after it creates the session; keep a minute
# inside both ends so the time our request spends on the network cannot push it out.
STRIPE_MIN_EXPIRY = 30 * 60
STRIPE_MAX_EXPIRY = 24 * 3600
EXPIRY_MARGIN = 60
# A lock holder may spend this long on Stripe (timeouts x retries); waiters give up sooner.
# Both grow by CHECKOUT_WAIT_SECONDS: the holder may wait that long for a place in Stripe's
# budget first, and a second request for the booking should still get the first one's session.
LOCK_HOLD_SECONDS = 150.0
LOCK_WAIT_SECONDS = 30.0
SAVE_ATTEMPTS = 3
# Stripe refuses longer success and cancel URLs ("URL must be 5000 characters or less").
MAX_REDIRECT_URL_LENGTH = 5000


@dataclass(frozen=True)
class CheckoutInput:
    """A validated request to open (or reuse) the checkout for a booking."""

    booking_id: str
    amount: int
    currency: str
    description: str
    customer_email: str | None = None
    success_url: str | None = None
    cancel_url: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


class CheckoutService:
    """One open Checkout Session per booking, however many requests arrive at once."""

    def __init__(
        self, store: PaymentStore, stripe: StripeGateway, facts: StripeFactsService, settings: Settings
    ) -> None:
        self._store = store
        self._stripe = stripe
        self._facts = facts
        self._settings = settings

    def open(self, req: CheckoutInput) -> tuple[Payment, bool]:
        """The booking's open payment (False) or a new one with a fresh session (True)."""
        success_url, cancel_url = self._redirect_urls(req)
        # One round trip takes the lock and reads the payment. While another request holds the
        # lock, an open session we can hand out needs no wait.
        with self._store.claim(
            req.booking_id,
            *self._lock_times(),
            needed=lambda payment: self._reusable(payment, req) is None,
        ) as claim:
            for _ in range(SAVE_ATTEMPTS):
                existing = claim.payment
                reusable = self._reusable(existing, req)
                if reusable is not None:
                    # Its first answer may have been a 503 (replicas never confirmed it): confirm now.
                    self._store.confirm_replicated()
                    return reusable, False
                if (
                    existing is not None
                    and existing.status is PaymentStatus.PENDING
                    and self._retire(existing)
                ):
                    claim.reread()  # the old session completed meanwhile: decide again on the synced state
                    continue
                payment = self._new_session(req, existing, success_url, cancel_url)
                try:
                    claim.save(payment)
                    return payment, True
                except VersionConflict:
                    landed = claim.reread()
                    if landed is not None and landed.session_id == payment.session_id:
                        # The save went through and only Redis's answer was lost (the store reports
                        # that as a conflict): this session is the booking's.
                        return landed, True
                    # A webhook changed the payment while we talked to Stripe; nobody has this URL yet.
                    self._stripe.expire_session_quietly(payment.session_id)
        raise VersionConflict(req.booking_id)

    def cancel(self, booking_id: str) -> Payment:
        """Expire the open session at Stripe; 409 if Stripe says it already completed."""
        payment = self._cancellable(booking_id, self._store.get(booking_id))
        if payment.status is not PaymentStatus.PENDING:
            return payment
        with self._store.claim(booking_id, *self._lock_times()) as claim:
            payment = self._marked_for_cancel(booking_id, claim)
            if payment.status is not PaymentStatus.PENDING:
                return payment
            session_id = payment.session_id
            fact = self._stripe.expire_session(session_id)
            if fact.outcome is not SessionOutcome.EXPIRED:
                synced = self._facts.apply_session_fact(booking_id, fact).payment or payment
                raise Conflict(f"the checkout already completed; the payment is {synced.status.value}")

            def decide(p: Payment) -> Change | None:
                if p.status is PaymentStatus.PENDING and p.session_id == session_id:
                    return cancel(p, int(time.time()))
                return None

            return self._store.apply(booking_id, decide, build_event).payment or payment

    def _lock_times(self) -> tuple[float, float]:
        """How long a request may hold a booking's lock, and how long another waits for it."""
        budget_wait = self._settings.checkout_wait_seconds
        return LOCK_HOLD_SECONDS + budget_wait, LOCK_WAIT_SECONDS + budget_wait

    def _marked_for_cancel(self, booking_id: str, claim: Claim) -> Payment:
        """The payment, marked as being canceled if it is still pending (decided again on a conflict)."""
        for _ in range(SAVE_ATTEMPTS):
            payment = self._cancellable(booking_id, claim.payment)
            if payment.status is not PaymentStatus.PENDING or payment.cancel_requested:
                return payment
            try:
                return claim.request_cancel(payment)
            except VersionConflict:
                claim.reread()  # a webhook changed it meanwhile (it may be paid now)
        raise VersionConflict(booking_id)

    def _cancellable(self, booking_id: str, payment: Payment | None) -> Payment:
        if payment is None:
            raise NotFound(f"no payment for booking {booking_id}")
        if payment.status in LOCKED_IN:
            raise Conflict(f"the booking is {payment.status.value}; refund it instead")
        return payment

    def _reusable(self, existing: Payment | None, req: CheckoutInput) -> Payment | None:
        if existing is None:
            return None
        if existing.status in LOCKED_IN:
            raise Conflict(f"the booking is already {existing.status.value}")
        if existing.reopens_for(req.amount, req.currency, int(time.time())):
            return None
        return existing

    def _retire(self, existing: Payment) -> bool:
        """Expire the booking's open session before opening another; True if it had completed instead."""
        fact = self._stripe.expire_session(existing.session_id)
        if fact.outcome in (SessionOutcome.EXPIRED, SessionOutcome.OPEN):
            return False
        self._facts.apply_session_fact(existing.booking_id, fact)
        return True

    def _new_session(
        self, req: CheckoutInput, existing: Payment | None, success_url: str, cancel_url: str
    ) -> Payment:
        attempt = existing.attempt + 1 if existing else 1
        now = int(time.time())
        checkout = CheckoutRequest(
            booking_id=req.booking_id,
            amount=req.amount,
            currency=req.currency,
            description=req.description,
            expires_at=now + self._expiry_seconds(),
            success_url=success_url,
            cancel_url=cancel_url,
            customer_email=req.customer_email,
            metadata=req.metadata,
            deployment=self._settings.payments_deployment,
        )
        session = self._stripe.create_checkout_session(checkout, idempotency_key(checkout, attempt))
        now = int(time.time())
        fresh = Payment(
            booking_id=req.booking_id,
            status=PaymentStatus.PENDING,
            amount=req.amount,
            currency=req.currency,
            description=req.description,
            session_id=session.id,
            checkout_url=session.url,
            expires_at=session.expires_at,
            created_at=now,
            updated_at=now,
            version=first_version(time.time()),
            attempt=attempt,
            sessions=(session.id,),
        )
        if existing is None:
            return fresh
        # Reopening keeps the booking's history: creation time, every session, refunded duplicates.
        return dataclasses.replace(
            fresh,
            created_at=existing.created_at,
            version=existing.version + 1,
            sessions=(*existing.sessions, session.id),
            duplicates=existing.duplicates,
        )

    def _expiry_seconds(self) -> int:
        wanted = self._settings.checkout_expires_minutes * 60
        return min(max(wanted, STRIPE_MIN_EXPIRY + EXPIRY_MARGIN), STRIPE_MAX_EXPIRY - EXPIRY_MARGIN)

    def _redirect_urls(self, req: CheckoutInput) -> tuple[str, str]:
        errors: dict[str, list[str]] = {}
        urls = []
        for name, given, default in (
            ("success_url", req.success_url, self._settings.checkout_success_url),
            ("cancel_url", req.cancel_url, self._settings.checkout_cancel_url),
        ):
            url = given or default
            if url is None:
                errors[name] = ["required: no default is configured (CHECKOUT_" + name.upper() + ")"]
                continue
            host = (urlsplit(url).hostname or "").lower()
            allowed = self._settings.checkout_redirect_hosts
            if allowed is not None and host not in allowed:
                errors[name] = [f"host {host!r} is not in CHECKOUT_REDIRECT_HOSTS"]
                continue
            url = url.replace("{booking_id}", quote(req.booking_id, safe=""))
            if len(url) > MAX_REDIRECT_URL_LENGTH:
                errors[name] = [f"must be at most {MAX_REDIRECT_URL_LENGTH} characters (Stripe's limit)"]
                continue
            urls.append(url)
        if errors:
            raise InvalidRequest(errors)
        return urls[0], urls[1]


def idempotency_key(checkout: CheckoutRequest, attempt: int) -> str:
    """Per booking and attempt; the digest keeps Stripe from replaying a different request's answer."""
    fields = [getattr(checkout, f.name) for f in dataclasses.fields(checkout)]
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
    return f"checkout:{checkout.booking_id}:{attempt}:{digest}"
