"""A webhook that never arrives: `payments-service reconcile` still ends the booking paid, once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.processes import prove_nothing_happens_for, wait_for
from tests.support.stack import open_and_pay, running_stack, status

pytestmark = pytest.mark.e2e


def test_a_payment_completed_without_a_webhook_is_paid_after_reconcile(
    tmp_path: Path, redis_url: str
) -> None:
    with running_stack(tmp_path, redis_url, RECONCILE_AFTER="0", RECONCILE_INTERVAL="0") as stack:
        stack.start_worker()
        open_and_pay(stack, "bk_silent", webhook=False)
        assert status(stack, "bk_silent") == "pending"
        result = stack.cli("reconcile")
        assert result.returncode == 0, result.stderr
        assert "bk_silent" in result.stdout or "checkout.session.completed" in result.stdout
        assert "reconciled: 1 changed" in result.stdout
        assert status(stack, "bk_silent") == "paid"
        wait_for(lambda: len(stack.receiver.accepted()) == 1, 30, "payment.paid")
        body = json.loads(stack.receiver.accepted()[0].body)
        assert (body["type"], body["data"]["booking_id"]) == ("payment.paid", "bk_silent")
        again = stack.cli("reconcile")
        assert "reconciled: 0 changed" in again.stdout
        prove_nothing_happens_for(0.5)  # a second payment.paid would have been delivered by now
        assert len(stack.receiver.received) == 1


def test_the_worker_reconciles_on_its_own_every_interval(tmp_path: Path, redis_url: str) -> None:
    with running_stack(tmp_path, redis_url, RECONCILE_AFTER="0", RECONCILE_INTERVAL="1") as stack:
        stack.start_worker()
        open_and_pay(stack, "bk_periodic", webhook=False)
        wait_for(lambda: len(stack.receiver.accepted()) == 1, 30, "payment.paid from the worker's own pass")
        assert status(stack, "bk_periodic") == "paid"
        assert json.loads(stack.receiver.accepted()[0].body)["data"]["booking_id"] == "bk_periodic"
