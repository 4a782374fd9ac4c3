"""marshmallow schemas for the HTTP edge: requests into dataclasses, payments into the resource.

Everything Stripe would refuse is refused here first, with the rule: a 422 that says why, rather
than a 502 carrying Stripe's message after a round trip.
"""

from __future__ import annotations

import re
from typing import Any, cast

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from ..domain.events import iso
from ..domain.money import MAX_AMOUNT, AmountError, Currency
from ..domain.payments import Payment
from ..usecases.checkout import MAX_REDIRECT_URL_LENGTH, CheckoutInput
from ..usecases.refunds import MAX_IDEMPOTENCY_KEY_LENGTH, RefundInput

BOOKING_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
# The contract's limit; with the keys the service sets itself it stays within Stripe's 50.
MAX_METADATA_PAIRS = 20
# Stripe's metadata limits (https://docs.stripe.com/metadata): keys up to 40 characters without
# square brackets, values up to 500; an empty value would unset the key instead of storing it.
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500
RESERVED_METADATA_KEYS = frozenset({"booking_id"})
MAX_DESCRIPTION_LENGTH = 250
# Stripe keeps at most 512 characters of a customer's email address.
MAX_EMAIL_LENGTH = 512


class FullMatch(validate.Regexp):
    """A Regexp validator that must match the whole value.

    validate.Regexp uses re.match, where `$` also matches before a final newline: "bk_1\n" would
    pass `^...$`. The pattern stays as written, for the OpenAPI document.
    """

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str) or cast("re.Pattern[str]", self.regex).fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be blank")


def _metadata_key(key: str) -> None:
    if "[" in key or "]" in key:
        raise ValidationError("metadata keys cannot contain square brackets ([ ])")


class Timestamp(fields.Field[int]):
    """Unix seconds stored, ISO 8601 UTC on the wire."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else iso(int(value))


class CheckoutRequestSchema(Schema):
    booking_id = fields.String(
        required=True,
        validate=FullMatch(BOOKING_ID_PATTERN, error="must be 1 to 64 of A-Z a-z 0-9 _ - . :"),
        metadata={"example": "bk_42"},
    )
    amount = fields.Integer(
        strict=True,
        validate=[
            validate.Range(min=1, error="must be greater than 0"),
            validate.Range(max=MAX_AMOUNT, error=f"must be at most {MAX_AMOUNT} minor units in any currency"),
        ],
        metadata={"description": "Minor units (cents for usd); exactly one of amount or amount_major"},
    )
    amount_major = fields.String(
        validate=[
            validate.Length(max=32, error="must be at most 32 characters"),
            FullMatch(r"^[0-9]+(\.[0-9]+)?$", error='must be a plain decimal string such as "37.50"'),
        ],
        metadata={"description": 'Decimal string in major units, such as "37.50"', "example": "37.50"},
    )
    currency = fields.String(
        load_default="usd",
        validate=FullMatch(r"^[A-Za-z]{3}$", error="must be a three-letter ISO 4217 code"),
    )
    description = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=MAX_DESCRIPTION_LENGTH), _not_blank],
        metadata={"description": "The line item's name on Stripe's checkout page"},
    )
    customer_email = fields.Email(validate=validate.Length(max=MAX_EMAIL_LENGTH))
    success_url = fields.Url(
        schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=MAX_REDIRECT_URL_LENGTH)
    )
    cancel_url = fields.Url(
        schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=MAX_REDIRECT_URL_LENGTH)
    )
    metadata = fields.Dict(
        keys=fields.String(
            validate=[
                validate.Length(
                    min=1,
                    max=MAX_METADATA_KEY_LENGTH,
                    error=f"metadata keys are 1 to {MAX_METADATA_KEY_LENGTH} characters",
                ),
                _metadata_key,
            ]
        ),
        values=fields.String(
            validate=validate.Length(
                min=1,
                max=MAX_METADATA_VALUE_LENGTH,
                error=f"must be 1 to {MAX_METADATA_VALUE_LENGTH} characters (an empty one unsets the key)",
            )
        ),
        validate=validate.Length(max=MAX_METADATA_PAIRS, error=f"at most {MAX_METADATA_PAIRS} pairs"),
    )

    @validates_schema
    def _one_amount(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("amount" in data) == ("amount_major" in data):
            raise ValidationError("give exactly one of amount (minor units) or amount_major", "amount")
        reserved = RESERVED_METADATA_KEYS & set(data.get("metadata") or {})
        if reserved:
            raise ValidationError(f"{', '.join(sorted(reserved))} is set by the service", "metadata")

    @post_load
    def _to_input(self, data: dict[str, Any], **kwargs: Any) -> CheckoutInput:
        try:
            currency = Currency.of(data["currency"])
        except AmountError as exc:
            raise ValidationError(str(exc), "currency") from None
        field_name = "amount" if "amount" in data else "amount_major"
        try:
            if field_name == "amount":
                amount = currency.check_minor(data["amount"])
            else:
                amount = currency.to_minor(data["amount_major"])
        except AmountError as exc:
            raise ValidationError(str(exc), field_name) from None
        return CheckoutInput(
            booking_id=data["booking_id"],
            amount=amount,
            currency=currency.code,
            description=data["description"],
            customer_email=data.get("customer_email"),
            success_url=data.get("success_url"),
            cancel_url=data.get("cancel_url"),
            metadata=dict(data.get("metadata") or {}),
        )


class RefundRequestSchema(Schema):
    amount = fields.Integer(
        strict=True,
        validate=[
            validate.Range(min=1, error="must be greater than 0"),
            validate.Range(max=MAX_AMOUNT, error=f"must be at most {MAX_AMOUNT} minor units in any currency"),
        ],
        metadata={"description": "Minor units; default: everything not yet refunded"},
    )
    reason = fields.String(validate=validate.OneOf(REFUND_REASONS))

    @post_load
    def _to_input(self, data: dict[str, Any], **kwargs: Any) -> RefundInput:
        return RefundInput(amount=data.get("amount"), reason=data.get("reason"))


class IdempotencyKeySchema(Schema):
    """The refund's optional Idempotency-Key header: printable ASCII, bounded like Stripe's own keys."""

    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        load_default=None,
        validate=[
            validate.Length(min=1, max=MAX_IDEMPOTENCY_KEY_LENGTH),
            FullMatch(r"^[\x21-\x7e]+$", error="must be printable ASCII without spaces"),
        ],
        metadata={"description": "Retrying a request with the same key never refunds twice"},
    )


class PaymentSchema(Schema):
    booking_id = fields.String(required=True)
    status = fields.String(
        required=True,
        metadata={
            "enum": [
                "pending",
                "processing",
                "paid",
                "failed",
                "expired",
                "canceled",
                "refunded",
                "partially_refunded",
            ]
        },
    )
    amount = fields.Integer(required=True, metadata={"description": "Minor units"})
    currency = fields.String(required=True)
    description = fields.String(required=True)
    checkout_url = fields.Method(
        "_checkout_url", allow_none=True, metadata={"type": "string", "nullable": True}
    )
    session_id = fields.String(required=True)
    payment_intent = fields.String(allow_none=True, required=True)
    expires_at = Timestamp(required=True)
    paid_at = Timestamp(allow_none=True, required=True)
    amount_refunded = fields.Integer(required=True)
    version = fields.Integer(required=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)

    def _checkout_url(self, payment: Payment) -> str | None:
        return payment.checkout_url if payment.status == "pending" else None


class PaymentEventSchema(Schema):
    """What the booking service receives (documentation only: bodies are built once, in events.py)."""

    type = fields.String(required=True, metadata={"example": "payment.paid"})
    timestamp = fields.String(required=True, metadata={"format": "date-time"})
    data = fields.Nested(PaymentSchema, required=True)


class ConfigSchema(Schema):
    publishable_key = fields.String(allow_none=True, required=True)


class HealthSchema(Schema):
    status = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    events = fields.Dict(keys=fields.String(), values=fields.Integer())
    primary = fields.String(metadata={"description": "host:port of the Redis primary this process writes to"})


class ProblemSchema(Schema):
    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class WebhookAckSchema(Schema):
    received = fields.Boolean(required=True)
    outcome = fields.String(required=True)
