"""marshmallow schemas for the HTTP edge: requests into dataclasses, payments into the resource."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from ..domain.events import iso
from ..domain.money import MAX_AMOUNT, AmountError, Currency
from ..domain.payments import Payment
from ..usecases.checkout import CheckoutInput
from ..usecases.refunds import RefundInput

BOOKING_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
MAX_METADATA_PAIRS = 20


class Timestamp(fields.Field[int]):
    """Unix seconds stored, ISO 8601 UTC on the wire."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else iso(int(value))


class CheckoutRequestSchema(Schema):
    booking_id = fields.String(
        required=True,
        validate=validate.Regexp(BOOKING_ID_PATTERN, error="must be 1 to 64 of A-Z a-z 0-9 _ - . :"),
        metadata={"example": "bk_42"},
    )
    amount = fields.Integer(
        strict=True,
        validate=[
            validate.Range(min=1, error="must be greater than 0"),
            validate.Range(max=MAX_AMOUNT, error=f"must be at most {MAX_AMOUNT} minor units"),
        ],
        metadata={"description": "Minor units (cents for usd); exactly one of amount or amount_major"},
    )
    amount_major = fields.String(
        validate=validate.Regexp(
            r"^[0-9]+(\.[0-9]+)?$", error='must be a plain decimal string such as "37.50"'
        ),
        metadata={"description": 'Decimal string in major units, such as "37.50"', "example": "37.50"},
    )
    currency = fields.String(
        load_default="usd",
        validate=validate.Regexp(r"^[A-Za-z]{3}$", error="must be a three-letter ISO 4217 code"),
    )
    description = fields.String(required=True, validate=validate.Length(min=1, max=250))
    customer_email = fields.Email()
    success_url = fields.Url(schemes={"http", "https"}, require_tld=False)
    cancel_url = fields.Url(schemes={"http", "https"}, require_tld=False)
    metadata = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=40)),
        values=fields.String(validate=validate.Length(max=500)),
        validate=validate.Length(max=MAX_METADATA_PAIRS, error=f"at most {MAX_METADATA_PAIRS} pairs"),
    )

    @validates_schema
    def _one_amount(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("amount" in data) == ("amount_major" in data):
            raise ValidationError("give exactly one of amount (minor units) or amount_major", "amount")
        if "booking_id" in (data.get("metadata") or {}):
            raise ValidationError("booking_id is set by the service", "metadata")

    @post_load
    def _to_input(self, data: dict[str, Any], **kwargs: Any) -> CheckoutInput:
        field_name = "amount" if "amount" in data else "amount_major"
        try:
            currency = Currency.of(data["currency"])
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
        validate=validate.Range(min=1, error="must be greater than 0"),
        metadata={"description": "Minor units; default: everything not yet refunded"},
    )
    reason = fields.String(validate=validate.OneOf(REFUND_REASONS))

    @post_load
    def _to_input(self, data: dict[str, Any], **kwargs: Any) -> RefundInput:
        return RefundInput(amount=data.get("amount"), reason=data.get("reason"))


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
