"""The store's atomic writes against a real Redis: version checks, one hash slot, a lost EXEC answer."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import socket
import threading
import time
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from payments_service.domain.errors import VersionConflict
from payments_service.domain.payments import PaymentStatus
from payments_service.storage import compare_and_write as cw
from payments_service.storage import keys
from payments_service.wiring import Components
from tests.support.flows import BODY, open_payment, post_event, queued_events
from tests.support.redis_server import RedisServer
from tests.support.stripe_wire import StripeWire


def test_a_claim_whose_payment_changed_meanwhile_cannot_save(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    open_payment(client, auth, "bk_c")
    with components.store.claim("bk_c", 5, 1) as claim:
        stored = claim.payment
        assert stored is not None
        # A webhook changes the payment while the claim talks to Stripe.
        components.store.save(stored.evolve(int(time.time()), status=PaymentStatus.PROCESSING), stored)
        with pytest.raises(VersionConflict):
            claim.save(dataclasses.replace(stored, description="changed"))
        assert components.redis.exists(keys.booking_lock("bk_c")) == 1  # held until the claim ends
    assert components.redis.exists(keys.booking_lock("bk_c")) == 0
    current = components.store.get("bk_c")
    assert current is not None and current.status is PaymentStatus.PROCESSING


def test_a_write_based_on_a_read_from_before_the_cancel_mark_conflicts(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    # The cancel mark keeps the version, so the write check looks at the mark as well.
    open_payment(client, auth, "bk_m")
    stale = components.store.get("bk_m")
    assert stale is not None
    with components.store.claim("bk_m", 5, 1) as claim:
        assert claim.payment is not None
        marked = claim.request_cancel(claim.payment)
    assert marked.version == stale.version and marked.cancel_requested
    with pytest.raises(VersionConflict):
        components.store.save(stale.evolve(int(time.time()), status=PaymentStatus.EXPIRED), stale)
    current = components.store.get("bk_m")
    assert current is not None and current.cancel_requested and current.status is PaymentStatus.PENDING


def test_a_checkout_saves_the_payment_and_its_index_entry_and_frees_the_lock_in_one_round_trip(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    components.redis.script_flush()  # as after a Redis restart: the first call finds no script
    components.redis.config_resetstat()
    created = open_payment(client, auth, "bk_s")
    commands = {  # calls that ran (a NOSCRIPT answer counts as a failed call)
        name.removeprefix("cmdstat_"): stat["calls"] - stat["failed_calls"]
        for name, stat in components.redis.info("commandstats").items()
    }
    stored = components.store.get("bk_s")
    assert stored is not None and stored.session_id == created["session_id"]
    assert components.redis.zscore(keys.status_index("pending"), "bk_s") == stored.updated_at
    assert components.redis.exists(keys.booking_lock("bk_s")) == 0
    assert (
        commands["evalsha"] == 3
    )  # the lock, the Stripe call's place in the budget, the save: a script each
    assert "watch" not in commands and "multi" not in commands


def test_a_webhook_and_the_relay_write_every_key_in_one_hash_slot(
    client: Any, auth: dict[str, str], stripe: StripeWire, components: Components
) -> None:
    # MULTI/EXEC (and Redis Cluster) need every key of a step in one slot, RQ's included.
    session_id = open_payment(client, auth, "bk_c")["session_id"]
    stripe.state.pay(session_id, notify=False)
    assert post_event(client, stripe.state.events[-1]).get_json()["outcome"] == "processed"
    assert len(queued_events(components)) == 1
    written = components.redis.keys("*")
    assert keys.OUTBOX.encode() in written
    assert components.outbox.relay_all("test-relay") == 1
    written = components.redis.keys("*")
    assert any(k.startswith(f"{keys.KEY_TAG}:rq:".encode()) for k in written)
    assert len({key_slot(k) for k in written}) == 1


class AnswerLost:
    """A TCP proxy in front of Redis that, once armed, delivers one command and drops its answer.

    Redis runs it; the client sees its connection die, as after a network failure.
    """

    def __init__(self, upstream_port: int, command: bytes) -> None:
        self.armed = False
        self._marker = b"$%d\r\n%s\r\n" % (len(command), command)
        self.fired = threading.Event()
        self._upstream_port = upstream_port
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._upstream_port))
            self._sockets += [client, upstream]
            cut = threading.Event()  # this connection's answers are no longer delivered
            threading.Thread(target=self._answers, args=(upstream, client, cut), daemon=True).start()
            threading.Thread(target=self._requests, args=(client, upstream, cut), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, cut: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if self.armed and self._marker in data:
                    self.armed = False
                    cut.set()
                    upstream.sendall(data)
                    self.fired.set()
                    time.sleep(0.2)  # Redis runs it; the answer goes nowhere
                    client.close()
                    return
                upstream.sendall(data)

    def _answers(self, upstream: socket.socket, client: socket.socket, cut: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while (data := upstream.recv(65536)) and not cut.is_set():
                client.sendall(data)

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            sock.close()


def test_a_checkout_whose_save_landed_but_whose_answer_was_lost_keeps_its_session(
    own_redis: RedisServer, app_factory: Any, auth: dict[str, str], stripe: StripeWire
) -> None:
    # The save is one script call (EVALSHA of the compare-and-write script; the lock's and the
    # Stripe budget's scripts run before it); a first checkout has Redis load the script.
    save_script = hashlib.sha1(cw.script().encode(), usedforsecurity=False).hexdigest().encode()
    proxy = AnswerLost(int(own_redis.url.rsplit(":", 1)[1].split("/")[0]), save_script)
    client = app_factory(proxy.url).test_client()
    assert (
        client.post("/v1/payments", json={**BODY, "booking_id": "bk_first"}, headers=auth).status_code == 201
    )
    proxy.armed = True
    response = client.post("/v1/payments", json={**BODY, "booking_id": "bk_lost"}, headers=auth)
    proxy.close()
    assert proxy.fired.is_set()
    assert response.status_code == 201, response.get_json()
    session_id = response.get_json()["session_id"]
    assert stripe.state.sessions[session_id]["status"] == "open"  # not expired behind the customer
    assert [c.url for c in stripe.all_calls() if c.url.endswith("/expire")] == []
    with redis.Redis.from_url(own_redis.url) as direct:
        stored = direct.get(keys.payment("bk_lost"))
    assert stored is not None and session_id in stored.decode()
