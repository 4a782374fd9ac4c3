"""The sandbox refuses what Stripe refuses, and its objects carry the fields Stripe's do.

References are stripe-python's generated types: its parameter TypedDicts say which parameters
Stripe takes, its resource classes which fields Stripe's objects have.
"""

from __future__ import annotations

import sys
import time
import types
import typing
from typing import Any

import pytest
import stripe as sdk
from stripe.params import EventListParams, RefundCreateParams, RefundListParams
from stripe.params.checkout import (
    SessionCreateParams,
    SessionExpireParams,
    SessionListParams,
    SessionRetrieveParams,
)

from payments_service.devtools.sandbox import stripe_api
from tests.support.stripe_wire import STRIPE_BASE, StripeWire


def stripe_client() -> Any:
    return sdk.StripeClient("sk_test_wire", base_addresses={"api": STRIPE_BASE}, max_network_retries=0)


def session(**changes: Any) -> dict[str, Any]:
    price = {"currency": "usd", "unit_amount": 3750, "product_data": {"name": "Dune"}}
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [{"quantity": 1, "price_data": {**price, **changes.pop("price", {})}}],
        "expires_at": int(time.time()) + 3600,
        "client_reference_id": "bk_1",
        "metadata": {"booking_id": "bk_1"},
        "success_url": "https://app.test/ok",
        "cancel_url": "https://app.test/back",
    }
    params.update(changes)
    return {k: v for k, v in params.items() if v is not None}


def refused(params: dict[str, Any]) -> Any:
    with pytest.raises(sdk.InvalidRequestError) as caught:
        stripe_client().v1.checkout.sessions.create(params)
    return caught.value


@pytest.mark.parametrize(
    ("params", "param"),
    [
        (session(locale_typo="fr"), "locale_typo"),
        (session(price={"unit_amount_typo": 5}), "line_items[0][price_data][unit_amount_typo]"),
        (session(payment_intent_data={"metadata": {}, "capture": "now"}), "payment_intent_data[capture]"),
    ],
)
def test_unknown_parameters_are_refused_as_stripe_refuses_them(
    stripe: StripeWire, params: dict[str, Any], param: str
) -> None:
    error = refused(params)
    assert (error.code, error.param) == ("parameter_unknown", param)
    assert error.user_message == f"Received unknown parameter: {param}"
    assert stripe.state.sessions == {}


def test_a_missing_or_empty_product_name_is_refused(stripe: StripeWire) -> None:
    missing = refused(session(price={"product_data": {"description": "no name"}}))
    assert (missing.code, missing.param) == (
        "parameter_missing",
        "line_items[0][price_data][product_data][name]",
    )
    empty = refused(session(price={"product_data": {"name": ""}}))
    assert empty.code == "parameter_invalid_empty"


@pytest.mark.parametrize(
    ("params", "code_or_param", "words"),
    [
        (session(price={"currency": "xyz"}), "line_items[0][price_data][currency]", "Invalid currency: xyz"),
        (session(price={"unit_amount": 49}), "amount_too_small", "at least $0.50 usd"),
        (session(price={"unit_amount": 100_000_000}), "amount_too_large", "no more than $999,999.99"),
        (session(price={"currency": "ugx", "unit_amount": 5_000_050}), "parameter_invalid_integer", "100"),
        (session(success_url="https://app.test/" + "p" * 4984), "url_invalid", "5000 characters or less"),
        (session(client_reference_id="r" * 201), "client_reference_id", "200"),
        (session(metadata={f"k{i}": "v" for i in range(51)}), "metadata", "50 keys"),
        (session(metadata={"k" * 41: "v"}), "metadata[" + "k" * 41 + "]", "40"),
        (session(metadata={"note": "v" * 501}), "metadata[note]", "500"),
        (session(metadata={"seat[1]": "A1"}), "metadata", "square brackets"),
    ],
)
def test_stripes_limits_are_refused(
    stripe: StripeWire, params: dict[str, Any], code_or_param: str, words: str
) -> None:
    error = refused(params)
    assert code_or_param in (error.code, error.param) or (error.param or "").startswith(code_or_param)
    assert words in (error.user_message or "")
    assert stripe.state.sessions == {}


def test_an_empty_metadata_value_unsets_its_key_as_at_stripe(stripe: StripeWire) -> None:
    created = stripe_client().v1.checkout.sessions.create(
        session(metadata={"booking_id": "bk_1", "show": ""})
    )
    assert created.metadata is not None and created.metadata.to_dict() == {"booking_id": "bk_1"}


def test_a_charges_refunds_are_listed_newest_first(stripe: StripeWire) -> None:
    created = stripe_client().v1.checkout.sessions.create(session())
    paid = stripe.state.pay(created.id, notify=False)
    first = stripe.state.create_refund(
        {"payment_intent": paid["payment_intent"], "amount": "100"}, notify=False
    )
    second = stripe.state.create_refund(
        {"payment_intent": paid["payment_intent"], "amount": "200", "reason": "duplicate"}, notify=False
    )
    page = stripe_client().v1.refunds.list({"charge": first["charge"], "limit": 100})
    assert [r.id for r in page.data] == [second["id"], first["id"]]
    assert isinstance(page.data[0], sdk.Refund) and page.data[0].reason == "duplicate"
    assert stripe_client().v1.refunds.list({"charge": "ch_other"}).data == []
    assert stripe_client().v1.refunds.retrieve(first["id"]).amount == 100


# --- against stripe-python's types -------------------------------------------------------------

ROUTES = [
    (stripe_api.SESSION_CREATE, SessionCreateParams),
    (stripe_api.SESSION_LIST, SessionListParams),
    (stripe_api.EXPAND, SessionRetrieveParams),
    (stripe_api.EXPAND, SessionExpireParams),
    (stripe_api.REFUND_CREATE, RefundCreateParams),
    (stripe_api.REFUND_LIST, RefundListParams),
    (stripe_api.EVENT_LIST, EventListParams),
]


def hint(cls: type, key: str) -> Any:
    """The resolved type of one key of a stripe-python TypedDict (None if Stripe has no such key)."""
    for klass in cls.__mro__:
        annotations = klass.__dict__.get("__annotations__", {})
        if key in annotations:
            probe = type(
                "Probe", (), {"__annotations__": {"x": annotations[key]}, "__module__": klass.__module__}
            )
            return typing.get_type_hints(probe, vars(sys.modules[klass.__module__]))["x"]
    return None


def members(hinted: Any) -> list[Any]:
    if typing.get_origin(hinted) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(hinted) for m in members(arg)]
    return [hinted]


def stripe_takes(spec: Any, hinted: Any, path: str) -> list[str]:
    """Where the sandbox's parameter spec takes something stripe-python's types do not."""
    options = members(hinted)
    if isinstance(spec, dict):
        typed = [m for m in options if isinstance(m, type) and hasattr(m, "__total__")]  # TypedDicts
        if not typed:
            return [path]
        return [
            p for key, sub in spec.items() for p in stripe_takes(sub, hint(typed[0], key), f"{path}[{key}]")
        ]
    if isinstance(spec, list):
        lists = [typing.get_args(m)[0] for m in options if typing.get_origin(m) in (list, typing.List)]  # noqa: UP006
        return stripe_takes(spec[0], lists[0], f"{path}[]") if lists else [path]
    wanted = {
        stripe_api.STRING: lambda m: m is str or typing.get_origin(m) is typing.Literal,
        stripe_api.INTEGER: lambda m: m is int,
        stripe_api.BOOLEAN: lambda m: m is bool,
        stripe_api.METADATA: lambda m: typing.get_origin(m) in (dict, typing.Dict),  # noqa: UP006
        stripe_api.CREATED: lambda m: m is int,
    }[spec]
    return [] if any(wanted(m) for m in options) else [path]


@pytest.mark.parametrize(("spec", "params"), ROUTES, ids=[p.__name__ for _, p in ROUTES])
def test_every_parameter_the_sandbox_takes_is_one_stripe_takes(spec: dict[str, Any], params: type) -> None:
    wrong = [p for key, sub in spec.items() for p in stripe_takes(sub, hint(params, key), key)]
    assert wrong == []


# Fields Stripe leaves out unless asked (see stripe_objects.py).
LEFT_OUT = {
    "checkout.session": {"line_items"},
    "charge": {"refunds"},
    "event": {"account", "context"},
    "payment_intent": set(),
    "refund": set(),
}


def fields_of(resource: type) -> set[str]:
    names: set[str] = set()
    for klass in resource.__mro__:
        for name, annotation in klass.__dict__.get("__annotations__", {}).items():
            if not name.startswith("_") and "ClassVar" not in str(annotation):
                names.add(name)
    return names - {"OBJECT_NAME"}


def test_the_sandboxs_objects_carry_every_field_stripes_have(stripe: StripeWire) -> None:
    created = stripe_client().v1.checkout.sessions.create(session())
    stripe.state.pay(created.id, notify=False)
    paid = stripe.state.session(created.id)
    intent = stripe.state.intents[paid["payment_intent"]]
    charge = stripe.state.charges[intent["latest_charge"]]
    refund = stripe.state.create_refund({"payment_intent": intent["id"], "amount": "100"}, notify=False)
    event = stripe.state.events[-1]
    for obj, resource in (
        (paid, sdk.checkout.Session),
        (intent, sdk.PaymentIntent),
        (charge, sdk.Charge),
        (refund, sdk.Refund),
        (event, sdk.Event),
    ):
        missing = fields_of(resource) - set(obj) - LEFT_OUT[obj["object"]]
        assert missing == set(), (obj["object"], sorted(missing))
        assert not LEFT_OUT[obj["object"]] & set(obj)
