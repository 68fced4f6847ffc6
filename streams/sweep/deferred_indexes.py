"""A sweep that writes most of the schedule afresh builds two of its indexes after the
writes instead of during them.

A first sweep (and the first sweep of an AEP season) inserts a row for most of the
contacts it decides, into a table with five indexes.  Two of them serve no read of the
sweep itself: ``mw_email_schedules_day_mix`` (the console's dashboard, and the day
volumes a run reads before its first write) and ``mw_email_schedules_actual_send`` (the
pre-filter of initial emails, read before it too).  The day index is the costly one: its
entries go to random places, by date, for rows written in contact order.  Measured on the
3M agency's first sweep (696,657 rows into a table of 386,416): the inserts took 14.2-14.8 s
with every index and 9.1 s without these two, which were then built in 1.4 s (SQLite's
sorter with helper threads).

So a run drops them before its first write when it decides at least
``SweepOptions.defer_indexes_from`` contacts and the table holds fewer owned rows than a
tenth of that: a first sweep, whose writes are nearly all inserts.  (A ``--full-scan`` of
a swept agency decides every contact but rewrites little: at 3M it finds about 700,000
owned rows, and keeps the indexes.)  It builds them again after its writes, before
its checksum, also when it fails.  While it runs, the dashboard reads the schedule
without its index (slower, the same answer).  A run killed in between leaves them out
until the next command opens the database: every command migrates first, and the
migration creates every missing index of ours (``streams.store.migrations``).
"""

from __future__ import annotations

import logging
import os

from sqlalchemy import Connection, Index, inspect

from streams.store.checksum import owned_row_count
from streams.store.engine import Store
from streams.store.tables import OWN_INDEXES
from streams.sweep.transactions import write_transaction

_log = logging.getLogger(__name__)

# Own indexes of email_schedules that no read of a sweep needs between its first write
# and its checksum.
DEFERRABLE = ("mw_email_schedules_day_mix", "mw_email_schedules_actual_send")

_INDEXES: dict[str, Index] = {i.name: i for i in OWN_INDEXES if i.name in DEFERRABLE}


def writes_most_rows_afresh(conn: Connection, contacts_to_decide: int, defer_from: int) -> bool:
    """Whether a run deciding ``contacts_to_decide`` will nearly only insert: enough of them,
    and fewer owned rows in the table (which its decisions might keep) than a tenth of them."""
    if contacts_to_decide < defer_from:
        return False
    return 10 * owned_row_count(conn) < contacts_to_decide


class DeferredIndexes:
    """The indexes a run dropped before its writes, built again by ``rebuild``."""

    def __init__(self, store: Store, dropped: tuple[str, ...]) -> None:
        self.store = store
        self.dropped = dropped

    @classmethod
    def drop_before_writes(cls, store: Store, contacts_to_decide: int, defer_from: int) -> DeferredIndexes:
        def work(conn: Connection) -> tuple[str, ...]:
            if not writes_most_rows_afresh(conn, contacts_to_decide, defer_from):
                return ()
            present = _present(conn)
            dropped = tuple(name for name in DEFERRABLE if name in present)
            for name in dropped:
                _INDEXES[name].drop(conn)
            return dropped

        return cls(store, write_transaction(store, work))

    def rebuild(self) -> None:
        """Each dropped index built again in a transaction of its own (once: a second call
        does nothing)."""
        if self.dropped:
            write_transaction(self.store, self.build)
            self.built()

    def build(self, conn: Connection) -> None:
        """The dropped indexes built in ``conn``'s transaction; ``built`` once it commits."""
        present = _present(conn)
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # Helper threads for CREATE INDEX's sort; a setting of this connection.
            conn.exec_driver_sql(f"PRAGMA threads={min(os.cpu_count() or 1, 4):d}")
        try:
            for name in self.dropped:
                if name not in present:
                    _INDEXES[name].create(conn)
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA threads=0")

    def built(self) -> None:
        self.dropped = ()

    def rebuild_after_failure(self) -> None:
        """``rebuild`` on a run's way out after an error: the error matters more than this
        one (the next command's migration builds what is still missing)."""
        try:
            self.rebuild()
        except Exception:  # noqa: BLE001 - the run's own error is the one raised
            _log.warning(
                "could not build the indexes %s again after the failed run; the next command "
                "that opens the database builds them",
                ", ".join(self.dropped),
                exc_info=True,
            )


def _present(conn: Connection) -> set[str]:
    return {i["name"] for i in inspect(conn).get_indexes("email_schedules") if i["name"]}
