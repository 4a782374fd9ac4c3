"""The store's atomic writes against a real Redis: version checks under a claim, one hash slot."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
from redis.crc import key_slot

from payments_service import redis_keys as keys
from payments_service.payments import PaymentStatus
from payments_service.services import Services
from payments_service.store import VersionConflict
from tests.support.flows import open_payment, post_event, queued_events
from tests.support.stripe_wire import StripeWire


def test_a_claim_whose_payment_changed_meanwhile_cannot_save(
    client: Any, auth: dict[str, str], stripe: StripeWire, services: Services
) -> None:
    open_payment(client, auth, "bk_c")
    with services.store.claim("bk_c", 5, 1) as claim:
        stored = claim.payment
        assert stored is not None
        # A webhook changes the payment while the claim talks to Stripe.
        services.store.save(stored.evolve(int(time.time()), status=PaymentStatus.PROCESSING), stored.version)
        with pytest.raises(VersionConflict):
            claim.save(dataclasses.replace(stored, description="changed"), stored.version)
        assert services.redis.exists(keys.booking_lock("bk_c")) == 1  # held until the claim ends
    assert services.redis.exists(keys.booking_lock("bk_c")) == 0
    current = services.store.get("bk_c")
    assert current is not None and current.status is PaymentStatus.PROCESSING


def test_a_webhook_writes_every_key_in_one_hash_slot(
    client: Any, auth: dict[str, str], stripe: StripeWire, services: Services
) -> None:
    # MULTI/EXEC (and Redis Cluster) need every key of the step in one slot, RQ's included.
    session_id = open_payment(client, auth, "bk_c")["session_id"]
    stripe.state.pay(session_id, notify=False)
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "processed"
    assert len(queued_events(services)) == 1
    written = services.redis.keys("*")
    assert any(k.startswith(f"{keys.KEY_TAG}:rq:".encode()) for k in written)
    assert len({key_slot(k) for k in written}) == 1
