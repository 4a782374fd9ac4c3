"""The only module that imports stripe: Checkout Sessions, refunds, events; returns our types."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import requests
import stripe

from ..domain.errors import StripeFailure, StripeRateLimited
from ..domain.facts import (
    CheckoutRequest,
    CheckoutSession,
    Refund,
    SessionFact,
    SessionOutcome,
    SessionRecord,
)
from ..observability import logs, metrics
from ..settings import Settings
from .budget import Priority, StripeBudget
from .parsing import (
    HANDLED_EVENT_TYPES,
    OWNER_KEY,
    InvalidWebhook,
    StripeEvent,
    parse_event,
    session_fact,
    session_record,
)
from .requests_transport import POOL_SIZE, requests_http_client

log = logging.getLogger(__name__)

WEBHOOK_TOLERANCE_SECONDS = 300
# A 429 that happens anyway (another integration on the account) is retried after a backoff
# like this, with jitter, as long as the caller's wait bound allows.
RATE_LIMITED_BACKOFF_SECONDS = 0.25
RATE_LIMITED_BACKOFF_MAX_SECONDS = 2.0
# What a session is retrieved with when its payment must be rebuilt from it.
RECORD = ["line_items", "payment_intent.latest_charge"]
# A booking has a handful of payment intents; more pages than this is not a booking's.
MAX_SEARCH_PAGES = 5


def check_signature_time(signature_header: str | None, now: float) -> str:
    """The Stripe-Signature header, unless it is missing or dated outside the tolerance, either way.

    Cheap, and needs no body: the webhook endpoint calls it before reading one. stripe-python
    bounds only the past; a timestamp in the future would keep a captured webhook valid for as
    long as its signer liked.
    """
    if not signature_header:
        raise InvalidWebhook("missing Stripe-Signature header", "missing_signature")
    stamps = [item[2:] for item in signature_header.split(",") if item.startswith("t=")]
    if not stamps or not stamps[0].isascii() or not stamps[0].isdigit() or len(stamps[0]) > 12:
        raise InvalidWebhook(
            "signature check failed: no valid timestamp in Stripe-Signature", "bad_signature"
        )
    signed_at = int(stamps[0])
    if signed_at > now + WEBHOOK_TOLERANCE_SECONDS:
        raise InvalidWebhook(
            "signature check failed: timestamp is in the future, "
            f"outside the {WEBHOOK_TOLERANCE_SECONDS} s tolerance",
            "future_timestamp",
        )
    if signed_at < now - WEBHOOK_TOLERANCE_SECONDS:
        raise InvalidWebhook(
            f"signature check failed: timestamp outside the {WEBHOOK_TOLERANCE_SECONDS} s tolerance zone",
            "stale_timestamp",
        )
    return signature_header


class StripeGateway:
    """Checkout Sessions, refunds and events through one configured StripeClient."""

    def __init__(
        self,
        client: stripe.StripeClient,
        webhook_secrets: Sequence[str],
        transport: str = "requests",
        budget: StripeBudget | None = None,
    ) -> None:
        self._client = client
        self._webhook_secrets = tuple(webhook_secrets)
        self.transport = transport  # the HTTP library under the SDK (stripe.HTTPClient.name)
        self._budget = budget  # None: no rate limits to keep (a stand-in without them)

    @classmethod
    def from_settings(
        cls, settings: Settings, gevent: bool = False, budget: StripeBudget | None = None
    ) -> StripeGateway:
        """A gateway for this process: `gevent` (serve's workers) picks the gevent-native transport."""
        # requests re-reads proxy variables and ~/.netrc on every call when trust_env is on
        # (CPU on every checkout); honour HTTPS_PROXY/NO_PROXY once, at start.
        proxies = requests.utils.get_environ_proxies(settings.stripe_api_base)
        http_client: stripe.HTTPClient
        if gevent and not proxies:
            # serve: geventhttpclient, a fraction of urllib3's CPU per call (see gevent_transport).
            from .gevent_transport import GeventStripeHTTPClient

            http_client = GeventStripeHTTPClient(settings.stripe_timeout, concurrency=POOL_SIZE)
        else:
            http_client = requests_http_client(settings.stripe_timeout, proxies)
        client = stripe.StripeClient(
            settings.stripe_secret_key,
            base_addresses={"api": settings.stripe_api_base},
            # StripeClient does not retry unless told; retries reuse the idempotency key.
            max_network_retries=settings.stripe_max_network_retries,
            http_client=http_client,
        )
        return cls(client, settings.stripe_webhook_secrets, transport=http_client.name, budget=budget)

    def create_checkout_session(self, req: CheckoutRequest, idempotency_key: str) -> CheckoutSession:
        """Open a hosted payment page for one booking, marked as this deployment's."""
        ours = {"booking_id": req.booking_id, OWNER_KEY: req.deployment}
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": req.currency,
                        "unit_amount": req.amount,
                        "product_data": {"name": req.description},
                    },
                }
            ],
            "expires_at": req.expires_at,
            "client_reference_id": req.booking_id,
            "metadata": {**req.metadata, **ours},
            "payment_intent_data": {"metadata": ours},
            "success_url": req.success_url,
            "cancel_url": req.cancel_url,
        }
        if req.customer_email:
            params["customer_email"] = req.customer_email
        session = self._request(
            "checkout.sessions.create",
            "post",
            "/v1/checkout/sessions",
            params,
            idempotency_key,
            priority=Priority.CHECKOUT,
        )
        return CheckoutSession(
            id=session["id"], url=session.get("url") or "", expires_at=session["expires_at"]
        )

    def retrieve_session(self, session_id: str, priority: Priority = Priority.BACKGROUND) -> SessionFact:
        """Stripe's current word on a session, including whether a delayed payment settled.

        Background by default: reconciliation and ?refresh=true ask this.
        """
        path = f"/v1/checkout/sessions/{quote(session_id, safe='')}"
        params = {"expand": ["payment_intent"]}
        return session_fact(
            self._request("checkout.sessions.retrieve", "get", path, params, priority=priority)
        )

    def session_record(self, session_id: str) -> SessionRecord:
        """A session with what rebuilding its payment needs: line items, its intent's charge."""
        path = f"/v1/checkout/sessions/{quote(session_id, safe='')}"
        return session_record(self._request("checkout.sessions.retrieve", "get", path, {"expand": RECORD}))

    def find_booking_intents(self, booking_id: str, deployment: str) -> list[str]:
        """The PaymentIntents a deployment's sessions made for a booking (paid, or tried to be).

        Stripe's search is eventually consistent: an intent can take up to a minute to appear.
        """
        query = " AND ".join(
            f"metadata['{key}']:'{_quoted(value)}'"
            for key, value in (("booking_id", booking_id), (OWNER_KEY, deployment))
        )
        intents: list[str] = []
        page: str | None = None
        for _ in range(MAX_SEARCH_PAGES):
            params: dict[str, Any] = {"query": query, "limit": 100}
            if page:
                params["page"] = page
            found = self._request("payment_intents.search", "get", "/v1/payment_intents/search", params)
            intents += [intent["id"] for intent in found["data"]]
            page = found.get("next_page") if found.get("has_more") else None
            if not page:
                break
        return intents

    def sessions_of_intent(self, payment_intent: str) -> list[SessionRecord]:
        """The Checkout Session (one, in practice) that made a PaymentIntent, with what a rebuild needs."""
        params = {"payment_intent": payment_intent, "limit": 100, "expand": [f"data.{e}" for e in RECORD]}
        listed = self._request("checkout.sessions.list", "get", "/v1/checkout/sessions", params)
        return [session_record(session) for session in listed["data"]]

    def expire_session(self, session_id: str) -> SessionFact:
        """Expire an open session; if it is no longer open, say what it is instead."""
        path = f"/v1/checkout/sessions/{quote(session_id, safe='')}/expire"
        try:
            return session_fact(
                self._request("checkout.sessions.expire", "post", path, {}, priority=Priority.URGENT)
            )
        except StripeFailure as failure:
            # Stripe refuses to expire a session that completed or expired meanwhile: ask what it is.
            if failure.refused:
                fact = self.retrieve_session(session_id, Priority.URGENT)
                if fact.outcome is not SessionOutcome.OPEN:
                    return fact
            raise

    def expire_session_quietly(self, session_id: str) -> None:
        """Best effort: if the session is paid anyway, that payment arrives as a duplicate and is refunded."""
        try:
            self.expire_session(session_id)
        except (StripeFailure, StripeRateLimited):
            log.warning("could not expire a session nobody should pay", extra={"session_id": session_id})

    def create_refund(
        self,
        payment_intent: str,
        amount: int | None,
        reason: str | None,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> Refund:
        """Refund part or all of a payment intent's charge."""
        params: dict[str, Any] = {
            "payment_intent": payment_intent,
            "metadata": dict(metadata),
            "expand": ["charge"],
        }
        if amount is not None:
            params["amount"] = amount
        if reason:
            params["reason"] = reason
        refund = self._request(
            "refunds.create", "post", "/v1/refunds", params, idempotency_key, priority=Priority.URGENT
        )
        charge = refund.get("charge")
        total = charge.get("amount_refunded") if isinstance(charge, dict) else None
        return Refund(id=refund["id"], amount=refund["amount"], charge_amount_refunded=total)

    def refund_reason(self, charge_id: str, created_before: int) -> str | None:
        """Why a charge was refunded: the reason on its newest refund made by `created_before`.

        charge.refunded events no longer carry the charge's refunds (not expanded in webhooks since
        API version 2022-11-15); the reason lives on the Refund objects. One page of 100 is plenty
        for one booking's refunds.
        """
        params: dict[str, Any] = {"charge": charge_id, "limit": 100}
        page = self._request("refunds.list", "get", "/v1/refunds", params)
        refunds = [r for r in page["data"] if r.get("status") not in ("failed", "canceled")]
        made = [r for r in refunds if int(r.get("created") or 0) <= created_before] or refunds
        reason = made[0].get("reason") if made else None
        return str(reason) if reason else None

    def list_sessions(
        self, created_from: int, created_to: int, starting_after: str | None = None
    ) -> tuple[list[SessionFact], str | None]:
        """One page (100) of sessions created in a window, newest first; the cursor if more remain."""
        params: dict[str, Any] = {
            "created": {"gte": created_from, "lte": created_to},
            "limit": 100,
            "expand": ["data.payment_intent"],
        }
        if starting_after:
            params["starting_after"] = starting_after
        page = self._request(
            "checkout.sessions.list", "get", "/v1/checkout/sessions", params, priority=Priority.BACKGROUND
        )
        sessions = page["data"]
        facts = [session_fact(s) for s in sessions]
        return facts, (sessions[-1]["id"] if page.get("has_more") and sessions else None)

    def list_events(
        self, created_after: int, starting_after: str | None = None, created_until: int | None = None
    ) -> tuple[list[StripeEvent], str | None]:
        """One page (100) of handled events created after a time (and up to another), newest first;
        the cursor if more remain."""
        created: dict[str, int] = {"gt": created_after}
        if created_until is not None:
            created["lte"] = created_until
        params: dict[str, Any] = {"types": list(HANDLED_EVENT_TYPES), "created": created, "limit": 100}
        if starting_after:
            params["starting_after"] = starting_after
        page = self._request("events.list", "get", "/v1/events", params, priority=Priority.BACKGROUND)
        raw = page["data"]
        events = []
        for data in raw:
            try:
                events.append(parse_event(data))
            except InvalidWebhook:
                log.warning(
                    "skipped an unreadable event from Stripe's list",
                    extra={"stripe_event_id": data.get("id")},
                )
        return events, (raw[-1]["id"] if page.get("has_more") and raw else None)

    def verify_webhook(self, payload: bytes, signature_header: str | None) -> StripeEvent:
        """Check the signature against every configured secret, then read the event."""
        signature_header = check_signature_time(signature_header, time.time())
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidWebhook("body is not UTF-8") from None
        failures = []
        for secret in self._webhook_secrets:
            try:
                stripe.WebhookSignature.verify_header(
                    text, signature_header, secret, WEBHOOK_TOLERANCE_SECONDS
                )
                break
            except stripe.SignatureVerificationError as exc:
                failures.append(str(exc).split(" (")[0])
        else:
            # A signature that matched one secret but is too old says more than the others' mismatch.
            stale = [f for f in failures if "tolerance" in f]
            raise InvalidWebhook(
                f"signature check failed: {(stale or failures)[0]}",
                "stale_timestamp" if stale else "bad_signature",
            )
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # not JSON, numbers of thousands of digits, deep nesting
            raise InvalidWebhook("body is not JSON that Stripe would send") from None
        return parse_event(data)

    def _request(
        self,
        operation: str,
        method: str,
        path: str,
        params: dict[str, Any],
        idempotency_key: str | None = None,
        *,
        priority: Priority = Priority.BACKGROUND,
    ) -> dict[str, Any]:
        """One API call within Stripe's rate limits: a place in the shared budget, then the call.

        Lookups are background by default: only what checkouts and urgent calls leave.

        A 429 is retried (same idempotency key: Stripe keeps nothing of a refused request) with
        a new place, after a backoff with jitter, while the caller's wait bound allows; then
        StripeRateLimited (a 503 with Retry-After), never a StripeFailure (a 502).
        """
        if idempotency_key:
            params = {**params, "idempotency_key": idempotency_key}
        deadline = time.monotonic() + (self._budget.wait if self._budget else 0.0)
        backoff = RATE_LIMITED_BACKOFF_SECONDS
        while True:
            if self._budget is not None:
                self._budget.acquire(operation, priority, deadline)
            try:
                return self._call(operation, method, path, params)
            except StripeFailure as failure:
                if failure.http_status != 429:
                    raise
                pause = random.uniform(backoff / 2, backoff)  # noqa: S311 (jitter, not a secret)
                if time.monotonic() + pause >= deadline:
                    metrics.stripe_budget_turned_away(priority.value)
                    raise StripeRateLimited(max(backoff, 1.0)) from failure
                time.sleep(pause)
                backoff = min(backoff * 2, RATE_LIMITED_BACKOFF_MAX_SECONDS)

    def _call(self, operation: str, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """One API call through the StripeClient (auth, retries, idempotency, errors), as plain JSON.

        raw_request skips building StripeObjects we would only turn back into dicts.
        """
        started = time.perf_counter()
        outcome = "ok"
        try:
            response = self._client.raw_request(method, path, **params)
            logs.bind(stripe_request_id=response.request_id)
            data: dict[str, Any] = response.data
            return data
        except stripe.StripeError as exc:
            outcome = type(exc).__name__
            error = exc.error
            log.warning(
                "stripe call failed",
                extra={
                    "operation": operation,
                    "stripe_request_id": exc.request_id,
                    "http_status": exc.http_status,
                    "stripe_code": exc.code,
                },
            )
            message = (error.message if error is not None else None) or exc.user_message or type(exc).__name__
            raise StripeFailure(str(message), exc.request_id, exc.code, exc.http_status) from exc
        finally:
            metrics.observe_stripe_call(operation, outcome, time.perf_counter() - started)


def _quoted(value: str) -> str:
    """A value inside single quotes in Stripe's search query language."""
    return value.replace("\\", "\\\\").replace("'", "\\'")
