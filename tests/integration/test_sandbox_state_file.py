"""The sandbox's state file (make dev's restarts): what was saved comes back, and every change is saved."""

from __future__ import annotations

from pathlib import Path

from payments_service.devtools.sandbox.persistence import StateFile
from payments_service.devtools.sandbox.stripe_api import StripeApi
from payments_service.devtools.sandbox.stripe_state import StripeState

SESSION = {
    "mode": "payment",
    "line_items": [
        {
            "price_data": {"currency": "usd", "unit_amount": "3750", "product_data": {"name": "2 seats"}},
            "quantity": "1",
        }
    ],
    "success_url": "https://app.test/ok",
    "cancel_url": "https://app.test/no",
    "client_reference_id": "bk_1",
}


def test_a_restarted_sandbox_has_its_sessions_payments_and_events_back(tmp_path: Path) -> None:
    path = tmp_path / "stripe.json"
    before = StripeState("http://127.0.0.1:12111")
    saver = StateFile(path, before)
    paid = before.pay(before.create_session(SESSION)["id"])
    open_one = before.create_session(SESSION)
    saver.stop()  # what SIGTERM does: the last changes are written

    after = StripeState("http://127.0.0.1:12111")
    assert StateFile(path, after).load() == 2

    api = StripeApi(after)
    status, session = api.request("GET", f"/v1/checkout/sessions/{open_one['id']}", {})
    assert (status, session["status"], session["url"]) == (200, "open", open_one["url"])
    status, events = api.request("GET", "/v1/events", {})
    assert [e["type"] for e in events["data"]] == ["checkout.session.completed"]
    refund = after.create_refund({"payment_intent": paid["payment_intent"], "amount": "1000"})
    assert refund["amount"] == 1000
    newer = after.create_session(SESSION)
    ids = [s["id"] for s in api.request("GET", "/v1/checkout/sessions", {})[1]["data"]]
    assert ids[0] == newer["id"], "objects created after a restart still sort after the restored ones"


def test_a_save_writes_only_after_a_change(tmp_path: Path) -> None:
    path = tmp_path / "stripe.json"
    state = StripeState("http://127.0.0.1:12111")
    saver = StateFile(path, state)
    saver.save()
    path.unlink()

    saver.save()
    assert not path.exists(), "nothing changed, so nothing should be written"
    state.create_session(SESSION)
    saver.save()
    assert path.exists()
