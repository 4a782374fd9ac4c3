"""Blueprint for /v1/*: the API sibling services call. Parse, call a use case, dump."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Request
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields
from webargs import core
from webargs.flaskparser import FlaskParser

from ..domain.errors import NotFound
from ..domain.payments import Payment
from ..observability import logs
from ..usecases.checkout import CheckoutInput
from ..usecases.refunds import RefundInput
from .middleware import components, require_bearer_token
from .schemas import (
    BOOKING_ID_PATTERN,
    CheckoutRequestSchema,
    ConfigSchema,
    IdempotencyKeySchema,
    PaymentSchema,
    RefundRequestSchema,
)


class JsonParser(FlaskParser):
    """webargs' parser, with every body json.loads cannot turn into data a 400, never a 500."""

    def _raw_load_json(self, req: Request) -> Any:
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise  # webargs answers these itself ("Invalid JSON body.")
        except RecursionError:
            abort(400, messages={"json": ["JSON nested too deeply"]})
        except ValueError:  # a number of thousands of digits (Python's int conversion limit)
            abort(400, messages={"json": ["JSON number too long"]})
        return core.missing


blp = Blueprint("payments", __name__, url_prefix="/v1", description="Payments for bookings (bearer token)")
blp.ARGUMENTS_PARSER = JsonParser()
_BOOKING_ID = re.compile(BOOKING_ID_PATTERN)
_ERRORS = {
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    409: "CONFLICT",
    413: "REQUEST_ENTITY_TOO_LARGE",
    422: "UNPROCESSABLE_ENTITY",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
}


class RefreshQuerySchema(Schema):
    refresh = fields.Boolean(load_default=False, metadata={"description": "Ask Stripe first"})


def errors(*codes: int) -> Any:
    """Document the problem+json answers an operation can give."""

    def decorate(view: Any) -> Any:
        for code in codes:
            view = blp.alt_response(code, response=_ERRORS[code])(view)
        return view

    return decorate


@blp.before_request
def _authenticate() -> None:
    require_bearer_token(components().settings.internal_api_tokens)


@blp.route("/payments", methods=["POST"])
@blp.arguments(CheckoutRequestSchema())
@blp.response(201, PaymentSchema, description="A new Checkout Session was opened")
@blp.alt_response(
    200, schema=PaymentSchema, description="The booking's open session was reused", success=True
)
@errors(401, 409, 413, 422, 502, 503)
def create_payment(req: CheckoutInput) -> tuple[Payment, int]:
    """Open (or reuse) the Stripe Checkout for a booking."""
    logs.bind(booking_id=req.booking_id)
    payment, created = components().checkout.open(req)
    return payment, 201 if created else 200


@blp.route("/payments/<booking_id>", methods=["GET"])
@blp.arguments(RefreshQuerySchema(), location="query", as_kwargs=True)
@blp.response(200, PaymentSchema)
@errors(401, 404, 502, 503)
def get_payment(booking_id: str, refresh: bool) -> Payment:
    """A booking's payment; ?refresh=true asks Stripe first and applies its answer."""
    _check_booking_id(booking_id)
    if refresh:
        return components().facts.refresh(booking_id)
    # Not in Redis (its retention ended, or Redis lost it): as Stripe shows it, without storing it.
    payment = components().store.get(booking_id) or components().facts.ledger.lookup(booking_id)
    if payment is None:
        raise NotFound(f"no payment for booking {booking_id}, here or at Stripe")
    return payment


@blp.route("/payments/<booking_id>/cancel", methods=["POST"])
@blp.response(200, PaymentSchema)
@errors(401, 404, 409, 502, 503)
def cancel_payment(booking_id: str) -> Payment:
    """Expire the booking's open Checkout Session."""
    _check_booking_id(booking_id)
    return components().checkout.cancel(booking_id)


@blp.route("/payments/<booking_id>/refunds", methods=["POST"])
@blp.arguments(RefundRequestSchema())
@blp.arguments(IdempotencyKeySchema(), location="headers", as_kwargs=True)
@blp.response(200, PaymentSchema)
@errors(401, 404, 409, 413, 422, 502, 503)
def refund_payment(req: RefundInput, booking_id: str, idempotency_key: str | None) -> Payment:
    """Refund a paid booking, in full (default) or in part."""
    _check_booking_id(booking_id)
    return components().refunds.refund(booking_id, req, idempotency_key)


@blp.route("/config", methods=["GET"])
@blp.response(200, ConfigSchema)
@errors(401)
def get_config() -> dict[str, str | None]:
    """What front ends need to talk to Stripe themselves."""
    return {"publishable_key": components().settings.stripe_publishable_key}


def _check_booking_id(booking_id: str) -> None:
    if not _BOOKING_ID.fullmatch(booking_id):
        raise NotFound(f"no payment for booking {booking_id!r}: booking ids are 1-64 of A-Z a-z 0-9 _ - . :")
    logs.bind(booking_id=booking_id)
