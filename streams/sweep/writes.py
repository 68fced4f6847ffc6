"""The run's row writes: each batch with a heartbeat, the balanced emails (phase 3), and
what follows from what was written (campaign target statuses, sending-side statuses).

Every batch is one transaction.  A run that stops half way leaves whole
batches; its placements are not "kept" by the next run (its checkpoint is not
``completed``), so the rerun decides as an uninterrupted run would have.

Phase 1's chunks (a thousand contacts each) are gathered into batches of about
``batch_rows`` rows and ledger entries before they are written (``decided``):
each commit writes every page the transaction dirtied, and an index's pages were
written again at each of a first sweep's small commits.  Measured on the 1M
campaign agency's first sweep: commits took 3.7 s of the main process's 25 s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from datetime import date

from sqlalchemy import Connection, text

from streams.store import own_inserts
from streams.store.campaigns import write_target_statuses
from streams.store.dialects import flag_set_sql
from streams.store.engine import Store
from streams.store.epochs import fetch_full_rows
from streams.store.ledger import LedgerEntry, forget_decisions, record_decisions
from streams.store.own_inserts import Summed
from streams.store.schedules import WriteBatch, write_batch
from streams.store.status_facts import apply_status_facts, status_facts_of
from streams.sweep.checkpoint import RunCheckpoint
from streams.sweep.movables import Movables
from streams.sweep.row_maker import RowMaker
from streams.sweep.summary import SweepSummary
from streams.sweep.transactions import write_transaction

_log = logging.getLogger(__name__)


class OwnInserts:
    """What phase 3's committed batches inserted, summed; None once a batch's is unknown."""

    def __init__(self) -> None:
        self.summed: Summed | None = (0, 0)

    def add(self, batch: Summed | None) -> None:
        if self.summed is not None and batch is not None:
            self.summed = (self.summed[0] + batch[0], self.summed[1] + batch[1])
        else:
            self.summed = None


class RunWrites:
    """Writes of one run, each batch a transaction that also records the run's heartbeat."""

    def __init__(self, store: Store, checkpoint: RunCheckpoint, batch_rows: int) -> None:
        self.store = store
        self.checkpoint = checkpoint
        self.run_id = checkpoint.run_id
        self.batch_rows = batch_rows
        self._pending = WriteBatch.empty()
        self._pending_ledger: list[LedgerEntry] = []
        self._decided_on: date | None = None
        self.own_inserts: OwnInserts | None = None  # set by ``hush``

    def decided(self, batch: WriteBatch, ledger: Sequence[LedgerEntry], decided_on: date) -> None:
        """A chunk's writes and ledger entries, written with the next ones once there are
        ``batch_rows`` of them (``flush_decided`` writes the rest)."""
        self._pending.extend(batch)
        self._pending_ledger.extend(ledger)
        self._decided_on = decided_on
        if len(self._pending) + len(self._pending_ledger) >= self.batch_rows:
            self.flush_decided()

    def flush_decided(self) -> None:
        pending, ledger = self._pending, self._pending_ledger
        self._pending, self._pending_ledger = WriteBatch.empty(), []
        self.batch(pending, ledger, self._decided_on)

    def batch(
        self,
        batch: WriteBatch,
        ledger: Sequence[LedgerEntry] = (),
        decided_on: date | None = None,
        own_rows_only: bool = False,
    ) -> bool:
        """A batch of rows and (phase 1) the ledger entries of the contacts it decided.
        Returns whether every row of ``batch.inserts`` was inserted (``write_batch``).
        ``own_rows_only``: the batch writes only the run's own rows while it sums its
        inserts (phase 3 of a hushed run): the insert triggers are set aside meanwhile."""

        def work(conn: Connection) -> bool:
            aside = own_inserts.insert_triggers_set_aside(conn, self.run_id) if own_rows_only else nullcontext()
            with aside:
                inserted = write_batch(conn, batch, self.run_id)
            if ledger and decided_on is not None:
                record_decisions(conn, ledger, decided_on, self.run_id)
            self.checkpoint.heartbeat(conn)
            return inserted

        if len(batch) or ledger:
            return write_transaction(self.store, work)
        return True

    def forget_ledger(self) -> None:
        write_transaction(self.store, forget_decisions)

    def movables(
        self, movables: Movables, skipped: set[int], send_time: str, summary: SweepSummary, apart_from: int
    ) -> None:
        """The balanced emails, in batches of ``batch_rows``; those in ``skipped`` as skipped.
        From ``apart_from`` emails on, a forked process makes the rows (``row_maker``).
        A run with many of them on SQLite sums its inserts itself (``hush``)."""
        own = self.own_inserts
        maker = RowMaker(movables, skipped, send_time, self.run_id, self.batch_rows, sum_inserts=own is not None)
        for made in maker.batches(self.store, apart_from):
            for outcome, n in made.outcomes.items():
                summary.count_row(outcome, n)
            for (email_type, status), n in made.per_type.items():
                summary.count(email_type, status, n)
            inserted = self.batch(made.batch, own_rows_only=own is not None)
            if own is not None:
                own.add(made.inserted_sum if inserted else None)

    def hush(self, emails: int, helper_target: str | None, beside: Callable[[], None]) -> None:
        """Before phase 3's ``emails``: the run's own inserts summed by it from here on,
        when they are many and the database is SQLite (``streams.store.own_inserts``).
        ``beside``, work that reads and writes nothing in the database (balancing), runs
        once: while helpers read the rows for the sum, or on its own."""
        done = False

        def once(_conn: Connection | None = None) -> None:
            nonlocal done
            if not done:  # not again when the transaction is tried again
                beside()
                done = True

        if emails >= own_inserts.HUSH_FROM and self.store.is_sqlite:
            if write_transaction(self.store, lambda conn: own_inserts.hush(conn, self.run_id, helper_target, once)):
                self.own_inserts = OwnInserts()
        once()

    def unhush(self, conn: Connection) -> None:
        """In the transaction of the run's checksum after: what it inserted added to the sum."""
        if self.own_inserts is not None:
            own_inserts.unhush(conn, self.run_id, self.own_inserts.summed)

    def unhush_after_failure(self) -> None:
        """``unhush`` on a failed run's way out: what its committed batches inserted is
        known, so the sum is kept; if even that fails, the next checksum reads the rows."""
        if self.own_inserts is None:
            return
        try:
            write_transaction(self.store, self.unhush)
        except Exception:  # noqa: BLE001 - the run's own error is the one raised
            _log.warning("could not add the failed run's inserts to the kept checksum; the next one reads the rows")

    def campaign_statuses(self, targets: Sequence[tuple[int, str]], applied_before: str, full: bool) -> int:
        """Targets follow what was written (SPEC section 8); a full run has done the logged
        date changes up to ``applied_before``.  Returns the targets updated."""

        def work(conn: Connection) -> int:
            updated = write_target_statuses(conn, targets)
            if full:
                conn.execute(
                    text(
                        "UPDATE campaign_change_log SET requires_rescheduling = 0 WHERE "
                        f"{flag_set_sql('requires_rescheduling', conn.dialect.name)} "
                        "AND changed_at <= :t"
                    ),
                    {"t": applied_before},
                )
            return updated

        return write_transaction(self.store, work)

    def status_facts(self) -> None:
        """The sending side's statuses of rows this run created (they came before their row)."""
        write_transaction(self.store, _apply_waiting_status_facts)


def _apply_waiting_status_facts(conn: Connection) -> None:
    waiting = [
        int(r[0])
        for r in conn.execute(
            text(
                "SELECT DISTINCT f.contact_id FROM mw_status_facts f JOIN email_schedules e "
                "ON e.occurrence_key = f.occurrence_key WHERE e.status != f.status"
            )
        )
    ]
    for start in range(0, len(waiting), 500):
        part = waiting[start : start + 500]
        apply_status_facts(conn, fetch_full_rows(conn, part), status_facts_of(conn, part))
