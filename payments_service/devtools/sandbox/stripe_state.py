"""The sandbox's Stripe: Checkout Sessions, payment intents, charges, refunds and events, in memory.

It refuses what Stripe refuses (missing or empty required parameters, unsupported currencies,
amounts outside Stripe's bounds, metadata and URL limits), so an offline test catches a request
real Stripe would turn down. Objects carry Stripe's fields (stripe_objects.py).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...domain.money import SUPPORTED, AmountError, Currency
from . import stripe_objects as objects

API_VERSION = "2025-10-29.clover"
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
# Stripe's limits on what this sandbox is sent (docs.stripe.com/metadata, the API reference).
METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500
MAX_URL_LENGTH = 5000
MAX_CLIENT_REFERENCE_ID_LENGTH = 200

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
        mode = required(params, "mode")
        if mode != "payment":
            raise SandboxError(400, "The sandbox supports mode=payment only.", param="mode")
        items = required(params, "line_items")
        if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
            raise SandboxError(400, "The sandbox supports exactly one line item.", param="line_items")
        price = required(items[0], "price_data", "line_items[0][price_data]")
        product = required(price, "product_data", "line_items[0][price_data][product_data]")
        name = required(product, "name", "line_items[0][price_data][product_data][name]")
        currency = _currency(required(price, "currency", "line_items[0][price_data][currency]"))
        param = "line_items[0][price_data][unit_amount]"
        amount = integer_param(required(price, "unit_amount", param), param)
        quantity = integer_param(items[0].get("quantity", "1"), "line_items[0][quantity]")
        if quantity < 1:
            raise SandboxError(400, "Quantity must be at least 1.", param="line_items[0][quantity]")
        _check_amount(currency, amount, amount * quantity, param)
        expires_at = integer_param(params.get("expires_at", now + 86400), "expires_at")
        if not now + 1800 <= expires_at <= now + 86400:
            raise SandboxError(
                400,
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from now.",
                param="expires_at",
            )
        for url_param in ("success_url", "cancel_url"):
            _check_url(str(required(params, url_param)), url_param)
        reference = params.get("client_reference_id")
        if reference is not None and len(str(reference)) > MAX_CLIENT_REFERENCE_ID_LENGTH:
            raise SandboxError(
                400,
                f"Invalid client_reference_id: must be at most {MAX_CLIENT_REFERENCE_ID_LENGTH} characters.",
                code="string_too_long",
                param="client_reference_id",
            )
        email = params.get("customer_email")
        if email is not None and "@" not in str(email):
            raise SandboxError(
                400, f"Invalid email address: {email}", code="email_invalid", param="customer_email"
            )
        intent_data = params.get("payment_intent_data") or {}
        session_id = objects.new_id("cs")
        session = objects.checkout_session(
            id=session_id,
            amount_subtotal=amount * quantity,
            amount_total=amount * quantity,
            cancel_url=params["cancel_url"],
            client_reference_id=reference,
            created=now,
            currency=currency.code,
            customer_email=email,
            expires_at=expires_at,
            metadata=metadata(params.get("metadata"), "metadata"),
            success_url=params["success_url"],
            url=f"{self._checkout_base_url}/c/pay/{session_id}",
            # Not Stripe fields: what the sandbox needs to build the intent and the page.
            _product_name=str(name),
            _intent_metadata=metadata(intent_data.get("metadata"), "payment_intent_data[metadata]"),
        )
        # Checked as Stripe would; not kept, since the sandbox has no product objects.
        metadata(product.get("metadata"), "line_items[0][price_data][product_data][metadata]")
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
            intent = objects.payment_intent(
                amount=session["amount_total"],
                created=int(time.time()),
                currency=session["currency"],
                metadata=dict(session["_intent_metadata"]),
                status="processing" if delayed else "succeeded",
            )
            self._store(self.intents, intent)
            session.update(
                status="complete",
                url=None,
                payment_intent=intent["id"],
                customer_details=objects.customer_details(session["customer_email"]),
            )
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
            refund = objects.refund(
                amount=amount,
                charge=charge["id"],
                created=int(time.time()),
                currency=charge["currency"],
                metadata=metadata(params.get("metadata"), "metadata"),
                payment_intent=charge["payment_intent"],
                payment_method=charge["payment_method"],
                reason=reason,
            )
            self._store(self.refunds, refund)
            before = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            self._emit("charge.refunded", copy.deepcopy(charge), notify, previous=before)
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

    def refund(self, refund_id: str) -> Json:
        with self._lock:
            found = self.refunds.get(refund_id)
            if found is None:
                raise SandboxError(404, f"No such refund: '{refund_id}'", code="resource_missing", param="id")
            return copy.deepcopy(found)

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
        charge = objects.charge(
            amount=intent["amount"],
            amount_captured=intent["amount"],
            created=int(time.time()),
            currency=intent["currency"],
            metadata=dict(intent["metadata"]),
            payment_intent=intent["id"],
            payment_method=intent["payment_method"],
        )
        self._store(self.charges, charge)
        intent.update(latest_charge=charge["id"], amount_received=intent["amount"])

    def render(self, session: Json, expand_intent: bool = False) -> Json:
        """A copy without the sandbox's own fields.

        Its objects and lists are copied too (callers may change them); what they hold is shared,
        since the sandbox replaces nested values rather than changing them, and a deep copy of
        Stripe's seventy fields would cost a benchmark's Stripe stand-in several times the CPU.
        """
        rendered: Json = {
            k: dict(v) if type(v) is dict else list(v) if type(v) is list else v
            for k, v in session.items()
            if k[0] != "_"
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

    def _emit(self, event_type: str, obj: Json, notify: bool = True, previous: Json | None = None) -> None:
        data: Json = {"object": obj}
        if previous is not None:
            data["previous_attributes"] = previous
        event = objects.event(
            api_version=API_VERSION,
            created=int(time.time()),
            data=data,
            pending_webhooks=1 if notify else 0,
            type=event_type,
        )
        self._seq += 1
        self._order[event["id"]] = self._seq
        self.events.append(event)
        if notify:
            for listener in self.listeners:
                listener(copy.deepcopy(event))


def integer_param(value: Any, param: str) -> int:
    """A form value as Stripe reads an integer parameter, or Stripe's error."""
    text = str(value)
    if isinstance(value, dict | list) or not text.lstrip("-").isdigit() or len(text) > 20:
        raise SandboxError(
            400, f"Invalid integer: {text[:40]}", code="parameter_invalid_integer", param=param
        )
    return int(text)


def required(params: Json, name: str, param: str | None = None) -> Any:
    """A required parameter, or Stripe's error for a missing or empty one."""
    param = param or name
    if name not in params:
        raise SandboxError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)
    if params[name] == "":
        raise SandboxError(
            400,
            f"You passed an empty string for '{param}'. We assume empty values are an attempt to unset "
            f"a parameter; however '{param}' cannot be unset. You should remove '{param}' from your "
            "request or supply a non-empty value.",
            code="parameter_invalid_empty",
            param=param,
        )
    return params[name]


def metadata(given: Any, param: str) -> dict[str, str]:
    """Stripe's metadata rules; an empty value unsets its key, so it is simply not kept."""
    if given in (None, ""):
        return {}
    if not isinstance(given, dict):
        raise SandboxError(400, "Invalid metadata: must be an object of keys and values.", param=param)
    if len(given) > METADATA_MAX_KEYS:
        raise SandboxError(
            400, f"Invalid metadata: metadata cannot have more than {METADATA_MAX_KEYS} keys.", param=param
        )
    kept = {}
    for key, value in given.items():
        if not isinstance(value, str):
            raise SandboxError(400, "Invalid metadata: values must be strings.", param=f"{param}[{key}]")
        if not key or len(key) > METADATA_MAX_KEY_LENGTH or "[" in key or "]" in key:
            raise SandboxError(
                400,
                f"Invalid metadata key {key[:60]!r}: keys are 1 to {METADATA_MAX_KEY_LENGTH} characters "
                "and cannot contain square brackets.",
                param=f"{param}[{key[:60]}]",
            )
        if len(value) > METADATA_MAX_VALUE_LENGTH:
            raise SandboxError(
                400,
                f"Invalid metadata value for {key!r}: "
                f"values are at most {METADATA_MAX_VALUE_LENGTH} characters.",
                param=f"{param}[{key}]",
            )
        if value:
            kept[key] = value
    return kept


def _currency(code: Any) -> Currency:
    try:
        return Currency.of(str(code))
    except AmountError:
        raise SandboxError(
            400,
            f"Invalid currency: {str(code).lower()[:12]}. Stripe currently supports these currencies: "
            + ", ".join(sorted(SUPPORTED)),
            param="line_items[0][price_data][currency]",
        ) from None


def _check_amount(currency: Currency, unit_amount: int, total: int, param: str) -> None:
    if unit_amount < 0 or unit_amount % currency.step:
        raise SandboxError(
            400,
            f"Invalid {currency.code} amount {unit_amount}: amounts must be multiples of {currency.step}.",
            code="parameter_invalid_integer",
            param=param,
        )
    if total < currency.minimum:
        raise SandboxError(
            400,
            "The Checkout Session's total amount due must add up to at least "
            f"{currency.display(currency.minimum)} {currency.code}",
            code="amount_too_small",
            param=param,
        )
    if total > currency.maximum:
        raise SandboxError(
            400,
            "The Checkout Session's total amount due must be no more than "
            f"{currency.display(currency.maximum)} {currency.code}",
            code="amount_too_large",
            param=param,
        )


def _check_url(url: str, param: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise SandboxError(400, "Not a valid URL", code="url_invalid", param=param)
    if len(url) > MAX_URL_LENGTH:
        raise SandboxError(
            400,
            f"Invalid URL: URL must be {MAX_URL_LENGTH} characters or less.",
            code="url_invalid",
            param=param,
        )
