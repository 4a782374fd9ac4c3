"""The sandbox's Stripe: Checkout Sessions, payment intents, charges, refunds and events, in memory."""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

API_VERSION = "2025-10-29.clover"
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")

Json = dict[str, Any]


@dataclass
class SandboxError(Exception):
    """Answered in Stripe's error shape: {"error": {"type", "message", "code", "param"}}."""

    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None

    def body(self) -> Json:
        error: Json = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


def _id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}" if prefix == "cs" else f"{prefix}_{secrets.token_hex(12)}"


class StripeState:
    """Stripe's objects and their life cycle; thread-safe; every change is recorded as an event."""

    def __init__(self, checkout_base_url: str) -> None:
        self._lock = threading.RLock()
        self._checkout_base_url = checkout_base_url.rstrip("/")
        self._seq = 0
        self.sessions: dict[str, Json] = {}
        self.intents: dict[str, Json] = {}
        self.charges: dict[str, Json] = {}
        self.refunds: dict[str, Json] = {}
        self.events: list[Json] = []
        self._order: dict[str, int] = {}
        self.listeners: list[Callable[[Json], None]] = []

    # --- life cycle -------------------------------------------------------------------------

    def create_session(self, params: Json) -> Json:
        now = int(time.time())
        if params.get("mode") != "payment":
            raise SandboxError(400, "The sandbox supports mode=payment only.", param="mode")
        items = params.get("line_items")
        if not isinstance(items, list) or len(items) != 1:
            raise SandboxError(400, "Provide exactly one line item.", param="line_items")
        price = items[0].get("price_data") or {}
        currency = str(price.get("currency", "")).lower()
        amount = integer_param(price.get("unit_amount"), "line_items[0][price_data][unit_amount]")
        quantity = integer_param(items[0].get("quantity", "1"), "line_items[0][quantity]")
        if len(currency) != 3 or not currency.isalpha():
            raise SandboxError(
                400, f"Invalid currency: {currency}.", param="line_items[0][price_data][currency]"
            )
        if amount < 1 or amount > 99_999_999:
            raise SandboxError(400, "Invalid unit_amount.", code="amount_too_large", param="unit_amount")
        expires_at = integer_param(params.get("expires_at", now + 86400), "expires_at")
        if not now + 1800 <= expires_at <= now + 86400:
            raise SandboxError(
                400,
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from now.",
                param="expires_at",
            )
        for url_param in ("success_url", "cancel_url"):
            if not str(params.get(url_param, "")).startswith(("http://", "https://")):
                raise SandboxError(400, f"Not a valid URL: {url_param}.", param=url_param)
        session_id = _id("cs")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": amount * quantity,
            "amount_total": amount * quantity,
            "cancel_url": params["cancel_url"],
            "client_reference_id": params.get("client_reference_id"),
            "created": now,
            "currency": currency,
            "customer_email": params.get("customer_email"),
            "expires_at": expires_at,
            "livemode": False,
            "metadata": dict(params.get("metadata") or {}),
            "mode": "payment",
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params["success_url"],
            "url": f"{self._checkout_base_url}/c/pay/{session_id}",
            # Not Stripe fields: what the sandbox needs to build the intent and the page.
            "_product_name": (price.get("product_data") or {}).get("name", ""),
            "_intent_metadata": dict((params.get("payment_intent_data") or {}).get("metadata") or {}),
        }
        self._store(self.sessions, session)
        return self.render(session, False)

    def expire(self, session_id: str) -> Json:
        with self._lock:
            session = self._session(session_id)
            if session["status"] != "open":
                raise SandboxError(
                    400,
                    "Only Checkout Sessions with a status of `open` can be expired, "
                    f"not `{session['status']}`.",
                )
            session.update(status="expired", url=None)
            self._emit("checkout.session.expired", self.render(session, False))
            return self.render(session, False)

    def pay(self, session_id: str, delayed: bool = False, notify: bool = True) -> Json:
        """The customer pays on the hosted page: by card, or by a delayed method that settles later."""
        with self._lock:
            session = self._session(session_id)
            if session["status"] != "open":
                raise SandboxError(400, f"This Checkout Session is {session['status']} and cannot be paid.")
            intent = {
                "id": _id("pi"),
                "object": "payment_intent",
                "amount": session["amount_total"],
                "currency": session["currency"],
                "created": int(time.time()),
                "latest_charge": None,
                "livemode": False,
                "metadata": dict(session["_intent_metadata"]),
                "status": "processing" if delayed else "succeeded",
            }
            self._store(self.intents, intent)
            session.update(status="complete", url=None, payment_intent=intent["id"])
            if not delayed:
                self._charge(intent)
                session["payment_status"] = "paid"
            self._emit("checkout.session.completed", self.render(session, False), notify)
            return self.render(session, False)

    def settle(self, session_id: str, succeed: bool, notify: bool = True) -> Json:
        """A delayed payment method succeeds or fails."""
        with self._lock:
            session = self._session(session_id)
            intent = self.intents.get(session.get("payment_intent") or "")
            if intent is None or intent["status"] != "processing":
                raise SandboxError(400, "This Checkout Session has no payment waiting to settle.")
            if succeed:
                intent["status"] = "succeeded"
                self._charge(intent)
                session["payment_status"] = "paid"
                event_type = "checkout.session.async_payment_succeeded"
            else:
                intent["status"] = "requires_payment_method"
                event_type = "checkout.session.async_payment_failed"
            self._emit(event_type, self.render(session, False), notify)
            return self.render(session, False)

    def create_refund(self, params: Json, expand_charge: bool = False, notify: bool = True) -> Json:
        with self._lock:
            charge = self._refundable_charge(params)
            remaining = charge["amount"] - charge["amount_refunded"]
            amount = integer_param(params.get("amount", remaining), "amount")
            if amount < 1 or amount > remaining:
                raise SandboxError(
                    400,
                    f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining}).",
                    code="amount_too_large" if amount > remaining else "parameter_invalid_integer",
                    param="amount",
                )
            reason = params.get("reason")
            if reason is not None and reason not in REFUND_REASONS:
                raise SandboxError(400, f"Invalid reason: {reason}.", param="reason")
            refund = {
                "id": _id("re"),
                "object": "refund",
                "amount": amount,
                "charge": charge["id"],
                "created": int(time.time()),
                "currency": charge["currency"],
                "metadata": dict(params.get("metadata") or {}),
                "payment_intent": charge["payment_intent"],
                "reason": reason,
                "status": "succeeded",
            }
            self._store(self.refunds, refund)
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            self._emit("charge.refunded", copy.deepcopy(charge), notify)
            rendered = copy.deepcopy(refund)
            if expand_charge:
                rendered["charge"] = copy.deepcopy(charge)
            return rendered

    # --- persistence (make dev keeps the sandbox's Stripe across restarts, as Redis keeps payments) --

    @property
    def changes(self) -> int:
        """Grows with every change (every change stores an object or records an event)."""
        return self._seq

    def snapshot(self) -> Json:
        """Every object and event, JSON-ready, copied under the lock."""
        with self._lock:
            return copy.deepcopy(
                {
                    "version": 1,
                    "seq": self._seq,
                    "order": self._order,
                    "sessions": self.sessions,
                    "intents": self.intents,
                    "charges": self.charges,
                    "refunds": self.refunds,
                    "events": self.events,
                }
            )

    def restore(self, snapshot: Json) -> None:
        """Take back what `snapshot` returned (before serving: listeners are not told)."""
        with self._lock:
            self._seq = int(snapshot["seq"])
            self._order = dict(snapshot["order"])
            self.sessions = dict(snapshot["sessions"])
            self.intents = dict(snapshot["intents"])
            self.charges = dict(snapshot["charges"])
            self.refunds = dict(snapshot["refunds"])
            self.events = list(snapshot["events"])

    # --- helpers ------------------------------------------------------------------------------

    def intent_status(self, session_id: str) -> str | None:
        """The status of the session's payment intent, if it has one (for the hosted page)."""
        with self._lock:
            intent = self.intents.get(self._session(session_id).get("payment_intent") or "")
            return str(intent["status"]) if intent else None

    def product_name(self, session_id: str) -> str:
        with self._lock:
            return str(self._session(session_id)["_product_name"])

    def session(self, session_id: str, expand_intent: bool = False) -> Json:
        """A public copy of a session, as the API shows it (and the hosted page and tests read it)."""
        with self._lock:
            return self.render(self._session(session_id), expand_intent)

    def _session(self, session_id: str) -> Json:
        session = self.sessions.get(session_id)
        if session is None:
            raise SandboxError(
                404, f"No such checkout.session: '{session_id}'", code="resource_missing", param="session"
            )
        return session

    def _refundable_charge(self, params: Json) -> Json:
        intent = self.intents.get(str(params.get("payment_intent", "")))
        charge = self.charges.get(str(params.get("charge") or (intent or {}).get("latest_charge") or ""))
        if charge is None:
            raise SandboxError(
                400, "This PaymentIntent does not have a successful charge to refund.", param="payment_intent"
            )
        return charge

    def _charge(self, intent: Json) -> None:
        charge = {
            "id": _id("ch"),
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"],
            "amount_refunded": 0,
            "created": int(time.time()),
            "currency": intent["currency"],
            "livemode": False,
            "metadata": dict(intent["metadata"]),
            "paid": True,
            "payment_intent": intent["id"],
            "refunded": False,
            "status": "succeeded",
        }
        self._store(self.charges, charge)
        intent["latest_charge"] = charge["id"]

    def render(self, session: Json, expand_intent: bool = False) -> Json:
        """A copy without the sandbox's own fields (nested dicts copied too: callers may change them)."""
        rendered: Json = {
            k: (dict(v) if isinstance(v, dict) else v) for k, v in session.items() if not k.startswith("_")
        }
        intent_id = session["payment_intent"]
        if expand_intent and intent_id:
            rendered["payment_intent"] = copy.deepcopy(self.intents[intent_id])
        return rendered

    def sequence(self, object_id: str) -> int:
        """Creation order, to sort objects created in the same second as Stripe does."""
        return self._order[object_id]

    def _store(self, table: dict[str, Json], obj: Json) -> None:
        self._seq += 1
        self._order[obj["id"]] = self._seq
        table[obj["id"]] = obj

    def _emit(self, event_type: str, obj: Json, notify: bool = True) -> None:
        event: Json = {
            "id": _id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1 if notify else 0,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        self._seq += 1
        self._order[event["id"]] = self._seq
        self.events.append(event)
        if notify:
            for listener in self.listeners:
                listener(copy.deepcopy(event))


def integer_param(value: Any, param: str) -> int:
    """A form value as Stripe reads an integer parameter, or Stripe's error."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SandboxError(
            400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param
        ) from None
