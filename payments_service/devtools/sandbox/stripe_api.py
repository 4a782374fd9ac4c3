"""The sandbox's API surface: Stripe's routes, their parameters, idempotency keys, pagination, errors.

Every route lists the parameters it takes (a subset of Stripe's, which a test holds against
stripe-python's generated parameter types); anything else is refused as Stripe refuses an unknown
parameter, so a request real Stripe would turn down fails offline too.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

from . import lookups
from .stripe_state import Json, SandboxError, StripeState, integer_param

# Parameter specs: a dict is an object of known keys, [spec] a list of spec, and the leaves say
# what a value is. METADATA is Stripe's free-form key/value map; CREATED an integer or a range.
STRING, INTEGER, BOOLEAN, METADATA, CREATED = "string", "integer", "boolean", "metadata", "created"
RANGE = {"gt": INTEGER, "gte": INTEGER, "lt": INTEGER, "lte": INTEGER}
PAGE = {"limit": INTEGER, "starting_after": STRING, "ending_before": STRING, "expand": [STRING]}
EXPAND = {"expand": [STRING]}
SESSION_CREATE: Json = {
    "mode": STRING,
    "line_items": [
        {
            "quantity": INTEGER,
            "price_data": {
                "currency": STRING,
                "unit_amount": INTEGER,
                "product_data": {"name": STRING, "description": STRING, "metadata": METADATA},
            },
        }
    ],
    "expires_at": INTEGER,
    "client_reference_id": STRING,
    "customer_email": STRING,
    "metadata": METADATA,
    "payment_intent_data": {"metadata": METADATA, "description": STRING},
    "success_url": STRING,
    "cancel_url": STRING,
    "expand": [STRING],
}
SESSION_LIST: Json = {**PAGE, "created": CREATED, "status": STRING, "payment_intent": STRING}
REFUND_CREATE: Json = {
    "payment_intent": STRING,
    "charge": STRING,
    "amount": INTEGER,
    "reason": STRING,
    "metadata": METADATA,
    "expand": [STRING],
}
REFUND_LIST: Json = {**PAGE, "charge": STRING, "payment_intent": STRING, "created": CREATED}
EVENT_LIST: Json = {**PAGE, "type": STRING, "types": [STRING], "created": CREATED}


class StripeApi:
    """Answers (method, path, form params) the way Stripe's API would, over a StripeState."""

    def __init__(self, state: StripeState) -> None:
        self.state = state
        self._lock = threading.RLock()
        self._idempotent: dict[str, tuple[str, int, str]] = {}

    def request(
        self, method: str, path: str, params: Json, idempotency_key: str | None = None
    ) -> tuple[int, Json]:
        """Answer one API request the way Stripe would, as a dict."""
        status, text = self.respond(method, path, params, idempotency_key)
        body: Json = json.loads(text)
        return status, body

    def respond(
        self, method: str, path: str, params: Json, idempotency_key: str | None = None
    ) -> tuple[int, str]:
        """Answer one API request the way Stripe would, as the JSON text it sends (made once)."""
        with self._lock:
            fingerprint = ""
            if method == "POST" and idempotency_key:
                fingerprint = hashlib.sha256(json.dumps([path, params], sort_keys=True).encode()).hexdigest()
                seen = self._idempotent.get(idempotency_key)
                if seen is not None:
                    if seen[0] != fingerprint:
                        error = SandboxError(
                            400,
                            "Keys for idempotent requests can only be used with the same parameters they "
                            "were first used with.",
                            type="idempotency_error",
                        )
                        return 400, json.dumps(error.body())
                    return seen[1], seen[2]
            try:
                status, text = 200, json.dumps(self._route(method, path, params))
            except SandboxError as error:
                status, text = error.status, json.dumps(error.body())
            if fingerprint and idempotency_key:
                self._idempotent[idempotency_key] = (fingerprint, status, text)
            return status, text

    def _route(self, method: str, path: str, params: Json) -> Json:
        parts = path.strip("/").split("/")
        answer = lookups.route(self, method, parts, params)
        if answer is not None:
            return answer
        expand = _expand(params)
        match method, parts:
            case "POST", ["v1", "checkout", "sessions"]:
                check_params(params, SESSION_CREATE)
                return self.state.create_session(params)
            case "GET", ["v1", "checkout", "sessions"]:
                check_params(params, SESSION_LIST)
                return self._list(
                    self.state.sessions, params, "/v1/checkout/sessions", "data.payment_intent" in expand
                )
            case "GET", ["v1", "checkout", "sessions", session_id]:
                check_params(params, EXPAND)
                return self.state.session(session_id, "payment_intent" in expand)
            case "POST", ["v1", "checkout", "sessions", session_id, "expire"]:
                check_params(params, EXPAND)
                return self.state.expire(session_id)
            case "POST", ["v1", "refunds"]:
                check_params(params, REFUND_CREATE)
                return self.state.create_refund(params, "charge" in expand)
            case "GET", ["v1", "refunds"]:
                check_params(params, REFUND_LIST)
                return self._list_refunds(params)
            case "GET", ["v1", "refunds", refund_id]:
                check_params(params, EXPAND)
                return self.state.refund(refund_id)
            case "GET", ["v1", "events"]:
                check_params(params, EVENT_LIST)
                return self._list_events(params)
        raise SandboxError(404, f"Unrecognized request URL ({method}: {path}).")

    def _list(self, table: dict[str, Json], params: Json, url: str, expand_intent: bool = False) -> Json:
        return self._page(list(table.values()), params, url, lambda s: self.state.render(s, expand_intent))

    def _list_refunds(self, params: Json) -> Json:
        rows = [
            r
            for r in self.state.refunds.values()
            if r["charge"] == params.get("charge", r["charge"])
            and r["payment_intent"] == params.get("payment_intent", r["payment_intent"])
        ]
        return self._page(rows, params, "/v1/refunds", copy.deepcopy)

    def _list_events(self, params: Json) -> Json:
        types = params.get("types") or ([params["type"]] if params.get("type") else None)
        rows = [e for e in self.state.events if types is None or e["type"] in types]
        return self._page(rows, params, "/v1/events", copy.deepcopy)

    def _page(self, rows: list[Json], params: Json, url: str, render: Callable[[Json], Json]) -> Json:
        """Filter, order newest first, cut one page, and only then copy what is returned."""
        created = params.get("created")
        if isinstance(created, dict):
            bounds = {op: integer_param(v, f"created[{op}]") for op, v in created.items()}
            rows = [r for r in rows if _within(r["created"], bounds)]
        elif created is not None:
            rows = [r for r in rows if r["created"] == integer_param(created, "created")]
        if params.get("status"):
            rows = [r for r in rows if r.get("status") == params["status"]]
        rows.sort(key=lambda r: (r["created"], self.state.sequence(r["id"])), reverse=True)
        after = params.get("starting_after")
        if after:
            ids = [r["id"] for r in rows]
            if after not in ids:
                raise SandboxError(400, f"No such object: '{after}'", param="starting_after")
            rows = rows[ids.index(after) + 1 :]
        limit = integer_param(params.get("limit", 10), "limit")
        if not 1 <= limit <= 100:
            raise SandboxError(400, "Invalid limit: must be between 1 and 100.", param="limit")
        page = [render(r) for r in rows[:limit]]
        return {"object": "list", "data": page, "has_more": len(rows) > limit, "url": url}


def check_params(params: Json, spec: Json, prefix: str = "") -> None:
    """Refuse a parameter the route does not take, the way Stripe does, naming it in Stripe's form."""
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else key
        if key not in spec:
            raise SandboxError(
                400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name
            )
        _check_value(value, spec[key], name)


def _check_value(value: Any, spec: Any, name: str) -> None:
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise SandboxError(400, f"Invalid object: {name} must be an object.", param=name)
        check_params(value, spec, name)
    elif isinstance(spec, list):
        if not isinstance(value, list):
            raise SandboxError(400, f"Invalid array: {name} must be an array.", param=name)
        for index, item in enumerate(value):
            _check_value(item, spec[0], f"{name}[{index}]")
    elif spec == CREATED:
        _check_value(value, RANGE if isinstance(value, dict) else INTEGER, name)
    elif spec == METADATA:
        if not isinstance(value, dict | str):
            raise SandboxError(400, f"Invalid object: {name} must be an object.", param=name)
    elif isinstance(value, dict | list):
        raise SandboxError(400, f"Invalid {spec}: {name} must be a {spec}.", param=name)


def _expand(params: Json) -> list[str]:
    expand = params.get("expand") or []
    return list(expand) if isinstance(expand, list) else [str(expand)]


def _within(value: int, bounds: dict[str, int]) -> bool:
    checks = {
        "gt": value > bounds.get("gt", value - 1),
        "gte": value >= bounds.get("gte", value),
        "lt": value < bounds.get("lt", value + 1),
        "lte": value <= bounds.get("lte", value),
    }
    return all(checks[op] for op in bounds if op in checks)
