"""The periodic sweep (SPEC section 9): pre-filter, per-contact rules, load balancing,
batch writes, checkpoint.

Phases, each bounded in memory:
1. for the pre-filtered contacts (``prepare``), a chunk at a time: read contacts
   and their rows, decide each contact (``chunks``; in worker processes when
   there are several chunks, ``pool``), write at once what cannot move (kept
   placements, skips, deletes), and keep the newly placed emails in compact
   arrays (``movables``, gathered in ``decided``);
2. balance the newly placed emails across contacts and apply the frequency
   limit to the few contacts where it can bind (``balance``);
3. write the newly placed emails in batches (``writes``).  A run with many of them
   (a first sweep, an AEP season) sums its own inserts for the checksum after, instead
   of having them appended as changes (``streams.store.own_inserts``); the rows for the
   sum they add to are read by helpers while it balances, and the indexes it dropped
   are built in the transaction of that checksum.

Beside them, from a snapshot taken before the first write, a side process reads the
schedule's checksum before the run and (unless the run builds on the last one) the
invalid contacts, which the balancing needs (``side_reads``, ``valid_contacts``).

Around them: the run's checkpoint says it started, that it is alive and how it
ended (``checkpoint``, ``liveness``); every write transaction takes the write
lock first (``transactions``); what a run is asked and what it reports, and the
one line it ends with when it cannot finish, are ``summary``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from rules.config import Config, config_digest
from rules.load_balancing import daily_cap
from streams.events.kinds import SWEEP_RUNS
from streams.events.times import format_datetime
from streams.store import outbox
from streams.store.checksum import kept_checksum
from streams.store.engine import Store
from streams.store.epoch_lock import sweep_turn
from streams.store.epochs import start_epoch
from streams.store.ledger import clear_marks
from streams.sweep.balance import balance, frequency_skipped
from streams.sweep.checkpoint import RunCheckpoint
from streams.sweep.chunks import DecideContext
from streams.sweep.decided import Decided
from streams.sweep.deferred_indexes import DeferredIndexes
from streams.sweep.liveness import checkpoint_time
from streams.sweep.pool import decided_chunks
from streams.sweep.prepare import Prepared, prepare
from streams.sweep.side_reads import SideReads
from streams.sweep.summary import (
    SweepOptions,
    SweepSummary,
    database_error,
    failure_reason,
    one_line_error,
)
from streams.sweep.transactions import write_transaction
from streams.sweep.valid_contacts import InvalidContacts, keep_invalid
from streams.sweep.writes import RunWrites


def run_sweep(
    store: Store,
    config: Config,
    options: SweepOptions,
    *,
    run_id: str | None = None,
    progress: bool = False,
) -> SweepSummary:
    """Run one sweep as of ``options.as_of`` and return its summary."""
    store.migrate()
    sweep = _Sweep(store, config, options, run_id or new_run_id(options.as_of), progress)
    with sweep_turn(store):  # no worker's batch runs beside it (streams.store.epoch_lock)
        return sweep.run()


def new_run_id(as_of: date) -> str:
    return f"sweep-{as_of.isoformat()}-{uuid.uuid4().hex[:12]}"


def sweep_run_record(
    summary: SweepSummary, config: Config, offsets: dict[str, dict[str, int]], now: datetime
) -> dict[str, object]:
    """The ``sweep-runs`` record of a completed sweep: what replay needs to run it again."""
    return {
        "event_id": summary.run_id,
        "occurred_at": format_datetime(now),
        "run_id": summary.run_id,
        "as_of": summary.as_of,
        "config": config.to_dict(),
        "offsets": offsets,
        "summary": {
            "contacts_processed": summary.contacts_processed,
            "emails_scheduled": summary.emails_scheduled,
            "emails_skipped": summary.emails_skipped,
            "schedules_after_checksum": summary.schedules_after_checksum,
        },
    }


class _Sweep:
    """One run: its checkpoint around the three phases, and what becomes of it when one fails."""

    def __init__(self, store: Store, config: Config, options: SweepOptions, run_id: str, progress: bool) -> None:
        self.store = store
        self.config = config
        self.options = options
        self.run_id = run_id
        self.progress = progress
        self.summary = SweepSummary(
            run_id=run_id,
            as_of=options.as_of.isoformat(),
            config_digest=config_digest(config),
            full_scan=options.full_scan,
            partial=options.contact_ids is not None,
        )
        self.checkpoint = RunCheckpoint(store, run_id)
        self.writes = RunWrites(store, self.checkpoint, options.batch_rows)
        # Logged campaign date changes up to here are this run's to apply.
        self.started_at = checkpoint_time()
        # The input offsets applied before this sweep (streams.worker.ingest.applied_offsets).
        self.offsets: dict[str, dict[str, int]] = {}
        self.marks_upto = 0  # the change marks it saw when it started
        self.invalid_found: InvalidContacts | None = None  # kept when it completes

    def run(self) -> SweepSummary:
        laps = _Laps(self.summary.phase_s, self.checkpoint.heartbeat_if_due)
        try:
            self.offsets = self.checkpoint.start(self.summary, self.options)
        except OperationalError as exc:
            raise database_error(self.store.target, exc, "no run was started") from exc
        try:
            self._phases(laps)
            self.summary.elapsed_s = laps.elapsed()
            self.checkpoint.finish(self.summary, "completed", None, self._completed)
        except BaseException as exc:
            self.summary.elapsed_s = laps.elapsed()
            error = one_line_error(exc, self.store.target, self._record_failure(exc))
            if error is None:
                raise
            raise error from exc
        return self.summary

    def _phases(self, laps: _Laps) -> None:
        s, config = self.summary, self.config
        prepared = prepare(self.store, config, self.options, self.run_id, s)
        # Started once prepare's reads are done (no connection crosses its fork) and after
        # it read the marks (streams.sweep.valid_contacts), before the run's first write.
        side = SideReads.start(self.store, prepared.invalid is None, s.contacts_scanned)
        try:
            self._decide_and_write(prepared, side, laps)
        finally:
            side.close()

    def _decide_and_write(self, prepared: Prepared, side_reads: SideReads, laps: _Laps) -> None:
        s = self.summary
        self.marks_upto = prepared.marks_upto
        if prepared.forget_ledger:
            self.writes.forget_ledger()
        # Before the run's first write: what the schedule was before it.
        # A helper process reads half of the rows when the sum is computed from many of them.
        helper = self.store.reopen_target()
        s.schedules_before_checksum = write_transaction(
            self.store, lambda conn: kept_checksum(conn, len(prepared.ids), helper)
        )
        deferred = DeferredIndexes.drop_before_writes(
            self.store, len(prepared.ids), self.options.defer_indexes_from
        )
        s.indexes_built_after_writes = list(deferred.dropped)
        laps.lap("prepare")
        try:
            self._decide_and_write_rows(prepared, side_reads, laps, helper)
            s.schedules_after_checksum = write_transaction(
                self.store, lambda conn: self._checksum_after(conn, deferred, helper)
            )
            deferred.built()
        except BaseException:
            self.writes.unhush_after_failure()
            deferred.rebuild_after_failure()
            raise
        laps.lap("indexes and checksum" if s.indexes_built_after_writes else "checksum")

    def _checksum_after(self, conn: Connection, deferred: DeferredIndexes, helper: str | None) -> str:
        """The run's own inserts added to the kept sum (``RunWrites.hush``), and the checksum
        after; the dropped indexes are built while helper processes read the rows for it,
        if it needs them.  One transaction, which holds the write lock."""
        self.writes.unhush(conn)
        return kept_checksum(conn, 0, helper, deferred.build if deferred.dropped else None)

    def _decide_and_write_rows(
        self, prepared: Prepared, side_reads: SideReads, laps: _Laps, helper: str | None
    ) -> None:
        s, config = self.summary, self.config
        decided = self._decide(prepared)
        laps.lap("decide")
        side = side_reads.figures()
        if prepared.invalid is not None:
            invalid, self.invalid_found = prepared.invalid
        else:
            assert side.invalid_contacts is not None
            invalid, self.invalid_found = len(side.invalid_contacts), InvalidContacts(None, side.invalid_contacts)
        s.valid_contacts = prepared.usable_contacts - invalid
        s.daily_cap = daily_cap(s.valid_contacts, config.load_balancing)
        laps.lap("side reads")  # the wait for them, when deciding took less time
        skipped: set[int] = set()

        def balanced() -> None:
            nonlocal skipped
            balance(decided.movables, decided.volume, decided.ed_volume, config, self.options.as_of, s)
            skipped = frequency_skipped(decided.movables, decided.frequency_watch.values(), config, s)

        # Balancing reads nothing: helpers read the rows for the sum meanwhile, when the run
        # sums its own inserts (RunWrites.hush).
        self.writes.hush(len(decided.movables), helper, balanced)
        laps.lap("balance")
        self.writes.movables(
            decided.movables, skipped, config.timing.send_time, s, self.options.make_rows_apart_from
        )
        s.campaign_targets_updated = self.writes.campaign_statuses(
            decided.campaign_targets, self.started_at, full=self.options.contact_ids is None
        )
        self.writes.status_facts()
        laps.lap("write")
        s.contacts_checksum = decided.contacts_checksum()

    def _decide(self, prepared: Prepared) -> Decided:
        """Phase 1: every chunk decided and taken in chunk order, its writes done at once."""
        decided = Decided(prepared.volume, prepared.ed_volume)
        context = DecideContext(
            self.config, self.options.horizon, prepared.failed_runs, self.run_id, prepared.campaigns
        )
        progress = _Progress(len(prepared.ids), self.progress)
        try:
            with decided_chunks(self.store, context, prepared.ids, self.options) as results:
                for n, result in results:
                    self.writes.decided(decided.take(result, self.summary), result.ledger, self.options.as_of)
                    self.checkpoint.heartbeat_if_due()  # most chunks write nothing yet
                    progress.update(n)
            self.writes.flush_decided()
        finally:
            progress.close()
        return decided

    def _completed(self, conn: Connection) -> None:
        """A full sweep starts the next decision day, and says so to the audit in the same
        transaction as its checkpoint (``streams.store.epochs``, ``streams.store.outbox``)."""
        if self.options.contact_ids is not None:
            return
        # Every contact marked before this run started was decided by it (or is one the
        # pre-filter found nothing in play for): those marks are done with.
        clear_marks(conn, self.marks_upto)
        if self.invalid_found is not None:
            keep_invalid(conn, self.invalid_found)
        start_epoch(conn, self.options.as_of, "sweep", self.run_id)
        record = sweep_run_record(self.summary, self.config, self.offsets, datetime.now(UTC))
        outbox.put(conn, SWEEP_RUNS, self.run_id, record)

    def _record_failure(self, exc: BaseException) -> str:
        """The run marked failed while the database takes the write; what became of the run."""
        try:
            self.checkpoint.finish(self.summary, "failed", failure_reason(exc))
        except Exception:  # noqa: BLE001 - the original error matters more
            return f"run {self.run_id} left started (the next sweep marks it interrupted)"
        return f"run {self.run_id} marked failed"


class _Laps:
    """Seconds per phase into ``phase_s``; after each phase, a heartbeat when one is due."""

    def __init__(self, phase_s: dict[str, float], heartbeat_if_due: Callable[[], None]) -> None:
        self.phase_s = phase_s
        self.heartbeat_if_due = heartbeat_if_due
        self.started = self.mark = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.phase_s[phase] = round(now - self.mark, 3)
        self.mark = now
        self.heartbeat_if_due()

    def elapsed(self) -> float:
        return round(time.perf_counter() - self.started, 3)


class _Progress:
    """The decide phase's progress bar, when asked for (``mailwindow sweep`` on a terminal)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="contacts", desc="sweep", leave=False)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
