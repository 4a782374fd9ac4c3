"""Payments, Stripe event marks, status indexes and the outbox in Redis, changed atomically."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from redis import Redis
from redis.exceptions import ConnectionError, LockError, NoScriptError, TimeoutError

from ..domain.errors import BookingBusy, VersionConflict
from ..domain.events import OutgoingEvent
from ..domain.outcomes import ApplyOutcome, ApplyResult
from ..domain.payments import Change, Decision, DuplicatePayment, Payment, PaymentStatus
from . import compare_and_write as cw
from . import keys
from .connections import WriteRefused
from .locks import load_take_script, release_lock, take_command
from .pipelining import Command, Pipelined
from .records import decode, encode, index_ops, outbox_entry
from .replicas import ReplicaAcks

# Stripe retries a webhook for up to three days; reconciliation re-reads its Events API from a
# checkpoint (a day back without one). Remembering ids longer would only keep memory: a repeat
# of an event whose payment is still here changes nothing anyway (the rules only move forward).
STRIPE_EVENT_MARK_SECONDS = 3 * 86400 + 3600
MAX_TRANSACTION_ATTEMPTS = 50
LOCK_POLL_SECONDS = 0.02
# A holder may wait seconds for a place in Stripe's budget during a sale: waiters poll less
# often the longer they wait, so that many of them cost Redis (and the event loop) little.
LOCK_POLL_MAX_SECONDS = 0.25


class Claim:
    """One request's hold on a booking: the payment as read under the lock, and a save that releases."""

    def __init__(
        self, store: PaymentStore, booking_id: str, lock: tuple[str, str] | None, payment: Payment | None
    ):
        self._store = store
        self._booking_id = booking_id
        self._lock = lock
        self.payment = payment
        self.released = False

    def reread(self) -> Payment | None:
        """Read the payment again (a webhook may have changed it while we talked to Stripe)."""
        self.payment = self._store.get(self._booking_id)
        return self.payment

    def request_cancel(self, payment: Payment) -> Payment:
        """Mark the payment as being canceled, keeping the lock (see Payment.cancel_requested).

        The resource and its version stay as they are; a concurrent change still conflicts.
        """
        marked = dataclasses.replace(payment, cancel_requested=True)
        self._store.save(marked, payment)
        self.payment = marked
        return marked

    def save(self, payment: Payment) -> None:
        """Write over the payment as this claim last read it, and release the lock."""
        if self._lock is None:
            raise RuntimeError("this claim does not hold the booking's lock")
        self._store.save(payment, self.payment, release=self._lock)
        self.released = True
        self.payment = payment


class PaymentStore:
    """The only place that reads and writes payment state."""

    def __init__(
        self,
        redis: Redis,
        trips: Pipelined | None = None,
        retention: int | None = None,
        acks: ReplicaAcks | None = None,
    ) -> None:
        self._redis = redis
        # The hot paths (checkout, webhook, GET) go through `trips`: shared across requests under gevent.
        self.trips = trips or Pipelined(redis.connection_pool)
        self._retention = retention  # seconds a final payment stays (PAYMENT_RETENTION_SECONDS)
        # Writes answered to a caller or to Stripe wait for replicas (REDIS_REPLICA_ACKS).
        self._acks = acks

    def ping(self) -> bool:
        return bool(self._redis.ping())

    def get(self, booking_id: str) -> Payment | None:
        [raw] = self.trips.run([("GET", keys.payment(booking_id))])
        return decode(raw) if raw is not None else None

    def get_many(self, booking_ids: list[str]) -> list[Payment | None]:
        if not booking_ids:
            return []
        raws = self._redis.mget([keys.payment(b) for b in booking_ids])
        return [decode(raw) if raw is not None else None for raw in raws]

    @contextmanager
    def claim(
        self,
        booking_id: str,
        hold: float,
        wait: float,
        needed: Callable[[Payment | None], bool] = lambda payment: True,
    ) -> Iterator[Claim]:
        """Hold a booking while one request talks to Stripe about it (open, cancel).

        Taking the lock and reading the payment share one round trip; Claim.save writes and
        releases in another. Webhooks do not take the lock: saves still check the version.
        While another request holds the lock, `needed(payment)` False means the payment as read
        already answers the caller: the claim comes back at once, not held (it cannot save).
        """
        lock_key, token = keys.booking_lock(booking_id), uuid.uuid4().hex
        deadline = time.monotonic() + wait
        poll = LOCK_POLL_SECONDS
        take = [take_command(lock_key, token, int(hold * 1000)), ("GET", keys.payment(booking_id))]
        while True:
            try:
                acquired, raw = self.trips.run(take)
            except NoScriptError:  # a Redis that restarted, failed over, or never ran it
                load_take_script(self._redis)
                acquired, raw = self.trips.run(take)
            payment = decode(raw) if raw is not None else None
            if acquired:
                token = _text(acquired)  # the lock's value: what releasing it compares
                break
            if not needed(payment):
                yield Claim(self, booking_id, None, payment)
                return
            if time.monotonic() > deadline:
                raise BookingBusy(booking_id)
            time.sleep(poll)
            poll = min(poll * 1.5, LOCK_POLL_MAX_SECONDS)
        held = Claim(self, booking_id, (lock_key, token), payment)
        try:
            yield held
        finally:
            if not held.released:
                release_lock(self._redis, lock_key, token)

    def reconcile_lock(self, hold: float, wait: float) -> AbstractContextManager[Callable[[], None]]:
        """One reconciliation pass at a time, across every worker and `reconcile` command."""
        return self._lock(keys.RECONCILE_LOCK, hold, wait)

    @contextmanager
    def _lock(self, key: str, hold: float, wait: float) -> Iterator[Callable[[], None]]:
        """Yields a function that renews the lock for another `hold` seconds."""
        lock = self._redis.lock(key, timeout=hold, blocking_timeout=wait, sleep=0.02)
        if not lock.acquire():
            raise BookingBusy(key)
        try:
            yield lambda: lock.reacquire()
        finally:
            try:
                lock.release()
            except LockError:
                pass  # held past `hold` seconds and expired; the next holder already moved on

    def save(
        self, payment: Payment, previous: Payment | None, release: tuple[str, str] | None = None
    ) -> None:
        """Write a payment over `previous` (None: there must be none) if it is still as read.

        One round trip: a script checks the version and writes the payment, its index entries and
        (`release`: lock key, token) frees a claim. VersionConflict if the payment moved on, or
        if the connection died before the answer came (whether it was written is then unknown).
        """
        ops = index_ops(payment, previous, self._retention)
        if release is not None:
            ops.append(cw.release(*release))
        try:
            written = self._compare_and_write(payment.booking_id, previous, encode(payment), ops)
        except WriteRefused:
            raise  # nothing was written: the caller's retry starts afresh
        except (ConnectionError, TimeoutError):
            # The script may have run and only its answer been lost: the caller rereads to see.
            raise VersionConflict(payment.booking_id) from None
        if written != cw.WRITTEN:
            raise VersionConflict(payment.booking_id)

    def apply(
        self,
        booking_id: str,
        decide: Callable[[Payment], Decision],
        build_event: Callable[[Change], OutgoingEvent],
        stripe_event_id: str | None = None,
    ) -> ApplyResult:
        """Read, decide, then write state + event mark + outgoing event in one compare-and-write.

        Two round trips: the payment and the event mark are read, then one script writes all of
        it unless the payment changed meanwhile (then we read and decide again) or the event was
        marked by a concurrent delivery of it.
        """
        mark = keys.stripe_event(stripe_event_id) if stripe_event_id else None
        for _ in range(MAX_TRANSACTION_ATTEMPTS):
            reads: list[Command] = [("GET", keys.payment(booking_id))]
            if mark:
                reads.append(("EXISTS", mark))
            raw, *marked = self.trips.run(reads)
            if marked and marked[0]:
                self.confirm_replicated()  # the first delivery may have been answered 503
                return ApplyResult(ApplyOutcome.DUPLICATE_EVENT)
            if raw is None:
                # Stripe is told 200 and never asks again: an old primary that has not seen the
                # booking (failing over, its replicas gone) must not be the one to say so.
                self.confirm_replicated()
                return ApplyResult(ApplyOutcome.UNKNOWN_BOOKING)
            payment = decode(raw)
            decision = decide(payment)
            if isinstance(decision, DuplicatePayment):
                return ApplyResult(ApplyOutcome.DUPLICATE_PAYMENT, payment, duplicate=decision)
            if decision is None and not mark:
                return ApplyResult(ApplyOutcome.UNCHANGED, payment)
            ops: list[cw.Op] = []
            if mark:
                ops.append(cw.mark(mark, STRIPE_EVENT_MARK_SECONDS))
            event = None
            if decision is not None:
                event = build_event(decision)
                ops += index_ops(decision.payment, payment, self._retention)
                ops.append(cw.xadd(keys.OUTBOX, outbox_entry(event)))
            new = encode(decision.payment) if decision is not None else ""
            try:
                outcome = self._compare_and_write(booking_id, payment, new, ops)
            except WriteRefused:
                raise  # not written; this primary refuses writes now, so the sender retries later
            except (ConnectionError, TimeoutError):
                continue  # written or not, the next read tells (and fails if Redis is gone)
            if outcome == cw.MARKED:
                self.confirm_replicated()
                return ApplyResult(ApplyOutcome.DUPLICATE_EVENT)
            if outcome == cw.WRITTEN:
                if decision is None:
                    return ApplyResult(ApplyOutcome.UNCHANGED, payment)
                return ApplyResult(ApplyOutcome.APPLIED, decision.payment, decision, event)
        raise VersionConflict(booking_id)

    def _compare_and_write(
        self, booking_id: str, previous: Payment | None, new: str, ops: list[cw.Op]
    ) -> int:
        return cw.run(self.trips, self._redis, keys.payment(booking_id), previous, new, ops, self._acks)

    def confirm_replicated(self) -> None:
        """Before answering from state written earlier: make sure the replicas have it (NotAcknowledged)."""
        if self._acks is not None:
            self._acks.confirm(self.trips)

    def booking_for_intent(self, payment_intent: str) -> str | None:
        raw = self._redis.get(keys.intent(payment_intent))
        if raw is None:
            self.confirm_replicated()  # "not ours" is final for Stripe, as in apply()
            return None
        return _text(raw)

    def refund_request(self, booking_id: str, idempotency_key: str) -> tuple[str, str | None] | None:
        """The refund an earlier request with this Idempotency-Key made, and that request's fingerprint.

        The fingerprint is None for records written before requests were fingerprinted.
        """
        raw = self._redis.get(keys.refund_request(booking_id, idempotency_key))
        if raw is None:
            return None
        refund_id, _, fingerprint = _text(raw).partition(" ")
        return refund_id, fingerprint or None

    def remember_refund_request(
        self, booking_id: str, idempotency_key: str, refund_id: str, fingerprint: str
    ) -> None:
        self._redis.set(
            keys.refund_request(booking_id, idempotency_key),
            f"{refund_id} {fingerprint}",
            ex=STRIPE_EVENT_MARK_SECONDS,
        )

    def open_booking_ids(self, status: PaymentStatus, updated_before: float) -> list[str]:
        """Bookings in a pending/processing status whose last change is older than a time, oldest first."""
        ids = self._redis.zrangebyscore(keys.status_index(status), "-inf", updated_before)
        return [_text(i) for i in ids]

    def events_checkpoint(self) -> int | None:
        """Creation time of the newest Stripe event reconciliation has applied."""
        raw = self._redis.get(keys.RECONCILE_EVENTS_CHECKPOINT)
        return int(raw) if raw is not None else None

    def set_events_checkpoint(self, created: int) -> None:
        self._redis.set(keys.RECONCILE_EVENTS_CHECKPOINT, created)

    def count_in_status(self, status: PaymentStatus) -> int:
        return int(self._redis.zcard(keys.status_index(status)))

    def count_stat(self, name: str, amount: int = 1) -> None:
        """Counters the worker keeps in Redis so /metrics can report them from any API process."""
        self._redis.hincrby(keys.STATS, name, amount)

    def stats(self) -> dict[str, int]:
        return {_text(k): int(v) for k, v in self._redis.hgetall(keys.STATS).items()}


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)
