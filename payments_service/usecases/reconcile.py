"""Reconciliation: ask Stripe what really happened, through the same path as a webhook."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..domain.errors import BookingBusy, RefundNotYetApplicable, StripeFailure
from ..domain.facts import SessionFact, SessionOutcome
from ..domain.outcomes import ApplyOutcome, ApplyResult
from ..domain.payments import Payment, PaymentStatus

if TYPE_CHECKING:
    from ..storage.store import PaymentStore
    from ..stripe_api.gateway import StripeGateway
    from ..stripe_api.parsing import StripeEvent
    from .stripe_facts import StripeFactsService


log = logging.getLogger(__name__)

# Events can appear in Stripe's list a little after their `created` time; look back this far.
EVENT_OVERLAP_SECONDS = 300
FIRST_PASS_LOOKBACK_SECONDS = 86400
# Pages of events (100 each) one pass reads at most; a longer look-back goes on next pass.
MAX_EVENT_PAGES = 200
# Pages one window of time may take; a window with more is narrowed and read again, aiming at
# WINDOW_EVENTS (room for the density to vary).
WINDOW_PAGES = 25
WINDOW_EVENTS = WINDOW_PAGES * 100 * 0.7
BATCH_SIZE = 100
# Listing sessions pays off from this many stale payments; below it, retrieve each one.
LIST_FROM_PAYMENTS = 20
LIST_PAGES_PER_100_PAYMENTS = 3
# A session is created before Stripe answers us: at most one call (with retries) before updated_at.
SESSION_CREATED_BEFORE_SAVE_SECONDS = 120
PASS_LOCK_SECONDS = 600.0


@dataclass
class ReconcileReport:
    """What a pass did, for the CLI and the logs."""

    changes: list[str] = field(default_factory=list)
    checked: int = 0
    events_read: int = 0
    # Payments or events passed over because Stripe refused them (a session it does not know).
    skipped: int = 0
    stripe_calls: int = 0
    seconds: float = 0.0


class Pacer:
    """At most `rate` Stripe calls per second over a whole pass."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = time.monotonic()

    def __call__(self) -> None:
        now = time.monotonic()
        if now < self._next:
            time.sleep(self._next - now)
        self._next = max(now, self._next) + self._interval


class Reconciler:
    """Applies Stripe's events since a checkpoint, then checks stale pending and processing payments."""

    def __init__(
        self,
        store: PaymentStore,
        stripe: StripeGateway,
        facts: StripeFactsService,
        *,
        max_rps: float,
        pending_after: float,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._stripe = stripe
        self._facts = facts
        self._max_rps = max_rps
        self._pending_after = pending_after  # seconds a payment stays pending before we ask Stripe
        self._progress = progress or (lambda line: log.info(line))

    def run_once(self, wait_for_lock: float = 0.0) -> ReconcileReport | None:
        """One pass; None if another pass holds the lock for longer than `wait_for_lock` seconds."""
        started = time.monotonic()
        try:
            with self._store.reconcile_lock(PASS_LOCK_SECONDS, wait_for_lock) as renew:
                report = ReconcileReport()
                pace = Pacer(self._max_rps)
                self._sweep_events(report, pace)
                self._sweep_pending(report, pace, renew)
                self._sweep_processing(report, pace)
        except BookingBusy:
            return None
        report.seconds = time.monotonic() - started
        if report.changes:
            self._store.count_stat("reconcile:changes", len(report.changes))
        if report.skipped:
            self._store.count_stat("reconcile:skipped", report.skipped)
            self._progress(f"skipped: {report.skipped} that Stripe refused (logged)")
        return report

    def _sweep_events(self, report: ReconcileReport, pace: Pacer) -> None:
        """Every handled event since the checkpoint, oldest first, even for payments we think settled.

        The checkpoint lives in the same Redis as the payments it covers: a Redis restored from
        an older snapshot, or a replica promoted without the last writes, holds an older
        checkpoint too, so the next pass reads more events again, never fewer. Stripe lists
        newest first, so a long look-back is read in windows of time, oldest first, each small
        enough for WINDOW_PAGES pages (a window that is not is narrowed by the density seen in
        it, and read again): events are applied in order and a backlog shrinks pass after pass.
        """
        checkpoint = self._store.events_checkpoint()
        now = int(time.time())
        since = checkpoint - EVENT_OVERLAP_SECONDS if checkpoint else now - FIRST_PASS_LOOKBACK_SECONDS
        start, span, read, first_call = since, now - since, 0, report.stripe_calls
        # Where a window came back too full, and the span its density allows: past that point,
        # windows stay that short.
        dense_from, dense_span = now, now - since
        while start < now and (left := MAX_EVENT_PAGES - (report.stripe_calls - first_call)) > 0:
            until = min(now, start + span, max(start + dense_span, dense_from))
            events, cursor = self._read_events(start, until, min(left, WINDOW_PAGES), report, pace)
            if cursor is not None:
                if until - start <= 1:
                    break  # more events in one second than a window holds: nothing can be done
                # Stripe lists newest first: what is unread lies at or before the oldest one read.
                dense_from = min(e.created for e in events)
                per_second = len(events) / max(1, until - dense_from)
                dense_span = max(1, int(WINDOW_EVENTS / per_second))
                span = min(span, until - start - 1)
                continue
            read += len(events)
            self._apply_events(events, report)
            self._store.set_events_checkpoint(until)
            # The next window as long as this one's density says fits, at most twice as long.
            start, span = until, max(1, int((until - start) * min(2.0, WINDOW_EVENTS / max(1, len(events)))))
        if start < now:
            log.warning("more Stripe events than one pass reads; the rest wait for the next pass")
        self._progress(f"events: {read} read since {since}, {len(report.changes)} changed")

    def _read_events(
        self, start: int, until: int, pages: int, report: ReconcileReport, pace: Pacer
    ) -> tuple[list[StripeEvent], str | None]:
        """Events created in (start, until], and a cursor if they did not fit in `pages` pages."""
        events: list[StripeEvent] = []
        cursor: str | None = None
        for _ in range(pages):
            pace()
            page, cursor = self._stripe.list_events(start, cursor, until)
            report.stripe_calls += 1
            events.extend(page)
            if cursor is None:
                break
        return events, cursor

    def _apply_events(self, events: list[StripeEvent], report: ReconcileReport) -> None:
        # Stripe lists newest first; reversed and then sorted (stably), same-second events keep their order.
        for event in sorted(reversed(events), key=lambda e: e.created):
            report.events_read += 1
            try:
                outcome = self._facts.handle_event(event)
            except RefundNotYetApplicable:
                continue
            except StripeFailure as failure:
                # One session Stripe does not know (or will not let us touch) never stops a pass.
                self._skip(report, failure, stripe_event_id=event.id, booking_id=event.booking_hint)
                continue
            if outcome is ApplyOutcome.APPLIED:
                report.changes.append(f"{event.type} {event.id} applied")

    def _skip(self, report: ReconcileReport, failure: StripeFailure, **context: str | None) -> None:
        """A refusal about one object is logged, counted and passed over; an outage stops the pass."""
        if not failure.refused:
            raise failure
        report.skipped += 1
        log.warning(
            "reconciliation skipped what Stripe refused",
            extra={**context, "stripe_code": failure.code, "http_status": failure.http_status},
        )

    def _sweep_pending(self, report: ReconcileReport, pace: Pacer, renew: Callable[[], None]) -> None:
        cutoff = time.time() - self._pending_after
        ids = self._store.open_booking_ids(PaymentStatus.PENDING, cutoff)
        if not ids:
            return
        listed: dict[str, SessionFact] = {}
        if len(ids) >= LIST_FROM_PAYMENTS:
            listed = self._list_sessions(ids, report, pace)
            renew()
        for start in range(0, len(ids), BATCH_SIZE):
            for payment in self._store.get_many(ids[start : start + BATCH_SIZE]):
                if payment is not None and payment.status is PaymentStatus.PENDING:
                    self._check(payment, listed.get(payment.session_id), report, pace)
            renew()
            self._progress(
                f"pending: {min(start + BATCH_SIZE, len(ids))}/{len(ids)} checked, "
                f"{len(report.changes)} changed, {report.stripe_calls} Stripe calls"
            )

    def _sweep_processing(self, report: ReconcileReport, pace: Pacer) -> None:
        ids = self._store.open_booking_ids(PaymentStatus.PROCESSING, time.time())
        for payment in self._store.get_many(ids):
            if payment is not None and payment.status is PaymentStatus.PROCESSING:
                self._check(payment, None, report, pace)
        if ids:
            self._progress(f"processing: {len(ids)} checked, {len(report.changes)} changed")

    def _list_sessions(self, ids: list[str], report: ReconcileReport, pace: Pacer) -> dict[str, SessionFact]:
        """Batching: list the sessions created over the stale payments' time span, 100 per call.

        Pays off when stale payments are dense (a flash sale); capped at a few times what one
        retrieve per payment would cost, after which the rest are retrieved one by one.
        """
        first, last = self._store.get_many([ids[0], ids[-1]])
        if first is None or last is None:
            return {}
        earliest = first.updated_at - SESSION_CREATED_BEFORE_SAVE_SECONDS
        wanted = len(ids)
        found: dict[str, SessionFact] = {}
        cursor: str | None = None
        for _ in range(math.ceil(wanted / 100) * LIST_PAGES_PER_100_PAYMENTS):
            pace()
            facts, cursor = self._stripe.list_sessions(earliest, last.updated_at, cursor)
            report.stripe_calls += 1
            found.update((f.session_id, f) for f in facts)
            if cursor is None:
                break
        self._progress(f"pending: listed {len(found)} sessions in {report.stripe_calls} Stripe calls")
        return found

    def _check(
        self, payment: Payment, fact: SessionFact | None, report: ReconcileReport, pace: Pacer
    ) -> None:
        try:
            if fact is None:
                pace()
                report.stripe_calls += 1
                fact = self._stripe.retrieve_session(payment.session_id)
            report.checked += 1
            if fact.outcome is SessionOutcome.OPEN:
                return  # still payable: nothing Stripe says can change the payment
            result = self._facts.apply_session_fact(payment.booking_id, fact)
        except StripeFailure as failure:
            self._skip(report, failure, booking_id=payment.booking_id, session_id=payment.session_id)
            return
        _note(report, result, payment)


def _note(report: ReconcileReport, result: ApplyResult, before: Payment) -> None:
    if result.outcome is ApplyOutcome.APPLIED and result.payment is not None:
        report.changes.append(f"{before.booking_id}: {before.status.value} -> {result.payment.status.value}")
