"""What Stripe would refuse is refused at our edge, with the rule, before any call to Stripe.

The sandbox behind requests-mock refuses the same requests as Stripe, so a request that got past
our edge and that Stripe would turn down fails these tests as a 502 instead of a 422.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.flows import BODY
from tests.support.stripe_wire import StripeWire, form

SESSIONS = "/v1/checkout/sessions"


def create(client: Any, auth: dict[str, str], **fields: Any) -> Any:
    body = {**BODY, **fields}
    return client.post("/v1/payments", json={k: v for k, v in body.items() if v is not None}, headers=auth)


def refused(response: Any, field: str, *words: str) -> None:
    assert response.status_code == 422, response.get_json()
    messages = " ".join(response.get_json()["errors"][field])
    for word in words:
        assert word in messages


def test_ugx_is_sent_to_stripe_in_hundredths_of_a_shilling(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    response = create(client, auth, amount=None, amount_major="50000", currency="ugx")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["amount"] == 5_000_000
    [sent] = stripe.calls("POST", SESSIONS)
    assert form(sent)["line_items[0][price_data][unit_amount]"] == "5000000"
    refused(
        create(client, auth, booking_id="bk_2", amount=5_000_050, currency="ugx"),
        "amount",
        "multiples of 100",
    )


def test_an_amount_below_stripes_minimum_is_refused_naming_the_minimum(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    refused(create(client, auth, amount=49), "amount", "at least 0.50", "Stripe's minimum")
    refused(create(client, auth, amount=None, amount_major="0.29", currency="gbp"), "amount_major", "0.30")
    refused(create(client, auth, amount=None, amount_major="174", currency="huf"), "amount_major", "175.00")
    assert stripe.all_calls() == []
    assert create(client, auth, amount=50).status_code == 201


def test_a_currency_stripe_does_not_support_is_refused_pointing_to_the_list(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    refused(
        create(client, auth, currency="xyz"), "currency", "Stripe does not support XYZ", "docs.stripe.com"
    )
    assert stripe.all_calls() == []


def test_the_maximum_is_stripes_for_each_currency(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    refused(create(client, auth, amount=100_000_000), "amount", "at most 999999.99")
    # IDR allows twelve digits, INR nine: more than the eight most currencies allow.
    assert create(client, auth, amount=999_999_999_999, currency="idr").status_code == 201
    assert create(client, auth, booking_id="bk_2", amount=999_999_999, currency="inr").status_code == 201
    refused(create(client, auth, booking_id="bk_3", amount=10**12, currency="idr"), "amount")
    assert len(stripe.calls("POST", SESSIONS)) == 2


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        ({"seat[1]": "A1"}, ["square brackets"]),
        ({"show": ""}, ["1 to 500", "unsets"]),
        ({"k" * 41: "v"}, ["1 to 40 characters"]),
        ({"note": "v" * 501}, ["1 to 500"]),
        ({f"k{i}": "v" for i in range(21)}, ["at most 20 pairs"]),
        ({"booking_id": "bk_other"}, ["set by the service"]),
    ],
)
def test_metadata_stripe_would_refuse_or_drop_is_refused(
    client: Any, auth: dict[str, str], stripe: StripeWire, metadata: dict[str, str], words: list[str]
) -> None:
    response = create(client, auth, metadata=metadata)
    assert response.status_code == 422, response.get_json()
    assert any(all(w in " ".join(ms) for w in words) for ms in response.get_json()["errors"].values())
    assert stripe.all_calls() == []


def test_the_most_metadata_we_accept_fits_within_stripes_limits(
    client: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    metadata = {f"{i:02d}" + "k" * 38: "v" * 500 for i in range(20)}
    response = create(client, auth, metadata=metadata)
    assert response.status_code == 201, response.get_json()
    session = stripe.state.sessions[response.get_json()["session_id"]]
    # ours too: booking_id and the ownership marker (Stripe allows 50)
    assert len(session["metadata"]) == 22 and session["metadata"]["booking_id"] == "bk_1"


def test_redirect_urls_longer_than_stripe_takes_are_refused(
    client: Any, auth: dict[str, str], stripe: StripeWire, redis_url: str, app_factory: Any
) -> None:
    long_url = "https://app.test/" + "p" * 4984  # 5001 characters
    refused(create(client, auth, success_url=long_url), "success_url", "5000")
    refused(create(client, auth, cancel_url=long_url), "cancel_url", "5000")
    # A configured default that only grows past the limit once the booking id is filled in.
    template = "https://app.test/" + "p" * 4970 + "{booking_id}"
    other = app_factory(redis_url, checkout_success_url=template).test_client()
    refused(create(other, auth, booking_id="bk_" + "x" * 61), "success_url", "at most 5000 characters")
    assert stripe.all_calls() == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("description", "   "), ("description", "x" * 251), ("customer_email", "a" * 510 + "@x.test")],
)
def test_other_limits_are_refused_at_the_edge(
    client: Any, auth: dict[str, str], stripe: StripeWire, field: str, value: str
) -> None:
    refused(create(client, auth, **{field: value}), field)
    assert stripe.all_calls() == []
