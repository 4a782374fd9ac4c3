"""flask-smorest, told that our errors are problem+json and that /v1 needs a bearer token."""

from __future__ import annotations

import http
from typing import Any

from flask import Flask
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from .errors import PROBLEM_JSON
from .schemas import PaymentEventSchema, ProblemSchema, Timestamp


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
