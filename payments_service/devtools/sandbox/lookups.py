"""The sandbox's lookups: PaymentIntent search, sessions by payment intent, and the expansions
(line items, the intent's charge) the service reads when it rebuilds a payment from Stripe.

Kept apart from stripe_api.py, which hands these requests here first (`route`).
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING

from .stripe_state import Json, SandboxError, integer_param

if TYPE_CHECKING:
    from .stripe_api import StripeApi

# Stripe's search language, the part the service speaks: metadata['key']:'value' joined by AND.
_TERM = re.compile(r"metadata\['([^'\]]+)'\]:'((?:[^'\\]|\\.)*)'")
_EXPANSIONS = ("line_items", "payment_intent", "payment_intent.latest_charge")


def route(api: StripeApi, method: str, parts: list[str], params: Json) -> Json | None:
    """The answer to a lookup this module serves; None for every other request."""
    if method != "GET":
        return None
    expand = _expand(params)
    match parts:
        case ["v1", "payment_intents", "search"]:
            return _search_intents(api, params)
        case ["v1", "checkout", "sessions"] if params.get("payment_intent") or _needs_us(expand, "data."):
            rows = list(api.state.sessions.values())
            if params.get("payment_intent"):
                rows = [s for s in rows if s.get("payment_intent") == params["payment_intent"]]
            wanted = [e.removeprefix("data.") for e in expand]
            return api._page(rows, params, "/v1/checkout/sessions", lambda s: render(api, s, wanted))
        case ["v1", "checkout", "sessions", session_id] if _needs_us(expand, ""):
            session = api.state.sessions.get(session_id)
            if session is None:
                return api.state.session(session_id)  # raises Stripe's 404
            return render(api, session, expand)
    return None


def render(api: StripeApi, session: Json, expand: list[str]) -> Json:
    """A session as the API shows it, with the expansions asked for."""
    state = api.state
    unknown = [e for e in expand if e not in _EXPANSIONS]
    if unknown:
        raise SandboxError(400, f"This property cannot be expanded ({unknown[0]}).", param="expand")
    rendered = state.render(session, any(e.startswith("payment_intent") for e in expand))
    if "line_items" in expand:
        rendered["line_items"] = {
            "object": "list",
            "data": [
                {
                    "object": "item",
                    "amount_total": session["amount_total"],
                    "currency": session["currency"],
                    "description": session["_product_name"],
                    "quantity": 1,
                }
            ],
            "has_more": False,
            "url": f"/v1/checkout/sessions/{session['id']}/line_items",
        }
    intent = rendered.get("payment_intent")
    if "payment_intent.latest_charge" in expand and isinstance(intent, dict) and intent.get("latest_charge"):
        intent["latest_charge"] = copy.deepcopy(state.charges[intent["latest_charge"]])
    return rendered


def _search_intents(api: StripeApi, params: Json) -> Json:
    query = str(params.get("query", ""))
    terms = [t.strip() for t in query.split(" AND ")]
    wanted: dict[str, str] = {}
    for term in terms:
        matched = _TERM.fullmatch(term)
        if not matched:
            raise SandboxError(400, f"The sandbox cannot search for {term!r}.", param="query")
        wanted[matched.group(1)] = re.sub(r"\\(.)", r"\1", matched.group(2))
    limit = integer_param(params.get("limit", 10), "limit")
    start = integer_param(params.get("page", 0), "page")
    found = [
        copy.deepcopy(intent)
        for intent in list(api.state.intents.values())
        if all(intent["metadata"].get(k) == v for k, v in wanted.items())
    ]
    found.sort(key=lambda i: (i["created"], api.state.sequence(i["id"])), reverse=True)
    page, more = found[start : start + limit], len(found) > start + limit
    return {
        "object": "search_result",
        "data": page,
        "has_more": more,
        "next_page": str(start + limit) if more else None,
        "url": "/v1/payment_intents/search",
    }


def _expand(params: Json) -> list[str]:
    expand = params.get("expand") or []
    return list(expand) if isinstance(expand, list) else [str(expand)]


def _needs_us(expand: list[str], prefix: str) -> bool:
    """Expansions beyond the one stripe_api.py serves itself (the payment intent)."""
    return any(e.startswith(prefix) and e.removeprefix(prefix) != "payment_intent" for e in expand)
