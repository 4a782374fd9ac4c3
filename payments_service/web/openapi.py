"""flask-smorest, told that our errors are problem+json and that /v1 needs a bearer token."""

from __future__ import annotations

import http
from typing import Any

from flask import Flask
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from werkzeug.routing import Map, Rule

from . import webhooks
from .problems import PROBLEM_JSON
from .schemas import PaymentEventSchema, ProblemSchema, Timestamp, WebhookAckSchema


class PaymentsApi(Api):  # type: ignore[misc]
    """Generates /openapi.json from the marshmallow schemas and the blueprints' decorators."""

    ERROR_SCHEMA = ProblemSchema

    def __init__(self, app: Flask) -> None:
        super().__init__(
            app,
            spec_kwargs={
                "security": [{"bearerAuth": []}],
                "info": {"description": "Stripe Checkout for bookings; see README.md for the contract."},
            },
        )
        self.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
        self.spec.components.schema("PaymentEvent", schema=PaymentEventSchema)
        self.register_field(Timestamp, "string", "date-time")

    def finish(self) -> None:
        """What the decorators cannot say; call after every blueprint is registered."""
        self._document_webhook()
        # marshmallow checks "exactly one of amount or amount_major" in code; say it in the schema.
        self.spec.components.schemas["CheckoutRequest"]["oneOf"] = [
            {"required": ["amount"]},
            {"required": ["amount_major"]},
        ]

    def _document_webhook(self) -> None:
        """The webhook endpoint runs in front of Flask (webhooks.py), so it is described here."""
        self.spec.components.schema("WebhookAck", schema=WebhookAckSchema)

        rule = Rule(webhooks.PATH, endpoint="stripe_webhook")
        Map([rule])  # compiles the rule, which the Flask plugin of apispec reads
        self.spec.path(
            rule=rule,
            operations={
                "post": {
                    "tags": ["webhooks"],
                    "summary": "Verify a Stripe event and apply it once",
                    "security": [],
                    "parameters": [
                        {
                            "in": "header",
                            "name": "Stripe-Signature",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "responses": {
                        "200": {
                            "description": "Received: processed, a duplicate, or ignored",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/WebhookAck"}}
                            },
                        },
                        "400": "BAD_REQUEST",
                        "405": "METHOD_NOT_ALLOWED",
                        "409": "CONFLICT",
                        "413": "REQUEST_ENTITY_TOO_LARGE",
                        "502": "BAD_GATEWAY",
                        "503": "SERVICE_UNAVAILABLE",
                    },
                }
            },
        )

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        default: dict[str, Any] = {"description": "Error", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)
