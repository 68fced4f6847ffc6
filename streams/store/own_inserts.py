"""A sweep's own inserts summed by the sweep, instead of appended as changes (SQLite).

A first sweep or an AEP season inserts millions of rows in phase 3.  Appending each one
to mw_schedule_deltas costs more than reading the rows back, so such a run dropped the
kept sum (``streams.store.checksum``) and its checksum after read every row once its
writes were done: at 3M contacts in the AEP season 6-7 s on both cores, after everything
else, while during phase 3 the second core was mostly idle (the main process inserts,
the process making the rows waits for it).

So before phase 3 such a run keeps the sum again (``hush``: read from the rows phase 1
left, 0.74 million owned rows at 3M in the AEP season, or taken from the changes when
it is kept), and puts a row named ``QUIET_PREFIX`` and its run id into mw_schedule_sum.
While that row is there, the insert trigger leaves out the rows inserted with the run's
id; the process making phase 3's rows hashes them itself (``inserts_sum``, on the idle
core), and after its writes the run adds their sum to the kept one and takes its row
away (``unhush``), in the transaction of its checksum after.  Everything else is still
appended: updates and deletes by anyone (the run's own included), other writers'
inserts.

When the run cannot tell what it inserted, the rows decide:

- a batch went through the upsert (another writer had created one of its keys): which
  of its rows were inserted and which updated another one is unknown; ``unhush`` is
  given None and drops the sum, and the checksum after reads the rows, as before;
- the run failed or was killed with its row in place: the next kept checksum finds the
  row and reads the rows (``kept_checksum``);
- someone computed the sum again from the rows meanwhile (that deletes every row of
  mw_schedule_sum, the quiet one too): the inserts before are in it, those after were
  appended; ``unhush`` finds its row gone and adds nothing.

While its row is there, the two insert triggers of email_schedules do nothing for the
run's phase 3 rows (all owned, none sent): the delta trigger is quiet for them, and the
change mark fires only for the sending side's rows.  Yet SQLite runs both for every row,
a seventh of an insert.  So each of phase 3's transactions sets them aside
(``insert_triggers_set_aside``): dropped at its start, created again as they were at its
end, in the transaction, so no other writer ever finds them missing and a transaction
that fails takes its drop back with it.

PostgreSQL keeps the first way (its trigger function is unchanged): no run there has
been measured to need this.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import get_type_hints

from sqlalchemy import Connection

from rules.statuses import OWNED_STATUSES
from streams.store.checksum import add_to_kept_sum, drop_kept_sum, kept_checksum, row_hash
from streams.store.ddl import stored_trigger_sql
from streams.store.row_sums import Meanwhile
from streams.store.schedules import CHECKSUM_COLUMNS, DECISION_COLUMNS, ScheduleRow, placeholder
from streams.store.tables import (
    CHANGE_MARKS,
    QUIET_PREFIX,
    SCHEDULE_DELTAS,
    email_schedules,
    mw_schedule_sum,
)

# Below this many phase 3 emails a run lets the trigger append its inserts: fewer changes
# than the kept checksum reads the rows for (``checksum.REBUILD_FROM``).
HUSH_FROM = 20_000

# A decision row's checksum columns are its first ones (``ScheduleRow``'s order).
assert DECISION_COLUMNS[: len(CHECKSUM_COLUMNS)] == CHECKSUM_COLUMNS
_DIGESTED = len(CHECKSUM_COLUMNS)
_STATUS = DECISION_COLUMNS.index("status")

# The sum of some inserted rows' hashes and how many of them are owned.
Summed = tuple[int, int]


def inserts_sum(rows: Iterable[Sequence[object]]) -> Summed:
    """What ``rows`` (decision rows, in ``DECISION_COLUMNS`` order) add to the checksum's
    sum once inserted: the owned ones' hashes, as the insert trigger would append them."""
    total = owned = 0
    for row in rows:
        if row[_STATUS] in OWNED_STATUSES:
            total += row_hash(row[:_DIGESTED])
            owned += 1
    return total, owned


def hush(conn: Connection, run_id: str, helper_target: str | None, meanwhile: Meanwhile | None = None) -> bool:
    """In ``conn``'s write transaction: the sum kept and current, and the run's inserts
    left out of the changes from its commit on.  False (and nothing done) when the table
    would store a value other than the run hashes (``stored_as_made``).  ``meanwhile``:
    as ``kept_checksum``'s, when it returns True."""
    if not stored_as_made(conn):
        return False
    kept_checksum(conn, 0, helper_target, meanwhile)
    ph = placeholder(conn)
    conn.exec_driver_sql(
        f"INSERT INTO {mw_schedule_sum.name} (name, total, rows) VALUES ({ph}, '0', 0)", (_quiet(run_id),)
    )
    return True


def stored_as_made(conn: Connection) -> bool:
    """Whether SQLite stores each digested value of a decision row as it is made: a text in a
    column of TEXT (or no) affinity, a whole number in one of INTEGER, NUMERIC (or no)
    affinity.  Agencies declare their own types: an ``event_year TEXT`` would store 2026
    as '2026', which the checksum reads, and hashes, differently."""
    declared = {str(r[1]): str(r[2]) for r in conn.exec_driver_sql("PRAGMA table_info(email_schedules)")}
    for name in CHECKSUM_COLUMNS:
        if name not in declared:
            return False
        wanted = _TEXT_AFFINITIES if name in _TEXT_COLUMNS else _WHOLE_AFFINITIES
        if _affinity(declared[name]) not in wanted:
            return False
    return True


def _affinity(declared: str) -> str:
    """SQLite's rules for a column's affinity from its declared type, in their order."""
    t = declared.upper()
    if "INT" in t:
        return "INTEGER"
    if any(word in t for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in t or not t:
        return "BLOB"
    if any(word in t for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


_TEXT_COLUMNS = frozenset(
    name for name, kind in get_type_hints(ScheduleRow).items() if name in CHECKSUM_COLUMNS and "str" in str(kind)
)
_TEXT_AFFINITIES = frozenset({"TEXT", "BLOB"})
_WHOLE_AFFINITIES = frozenset({"INTEGER", "NUMERIC", "BLOB"})


def unhush(conn: Connection, run_id: str, inserted: Summed | None) -> None:
    """In ``conn``'s write transaction: the run's inserts (None: not known) added to the
    kept sum, and its row taken away."""
    ph = placeholder(conn)
    found = conn.exec_driver_sql(f"DELETE FROM {mw_schedule_sum.name} WHERE name = {ph}", (_quiet(run_id),))
    if found.rowcount == 0:
        return  # the sum was computed from the rows meanwhile: nothing of ours is missing
    if inserted is None:
        drop_kept_sum(conn)
    else:
        add_to_kept_sum(conn, *inserted)


# The insert triggers that do nothing for a hushed run's own rows (module docstring).
QUIET_INSERT_TRIGGERS = (
    *(m.name for m in CHANGE_MARKS if m.table is email_schedules and m.event == "INSERT"),
    *(name for name, event in SCHEDULE_DELTAS if event == "INSERT"),
)


@contextmanager
def insert_triggers_set_aside(conn: Connection, run_id: str) -> Iterator[None]:
    """In ``conn``'s write transaction, for a block whose inserts are only the run's own rows
    (owned statuses, not sent, ``scheduler_run_id`` the run's): ``QUIET_INSERT_TRIGGERS``
    dropped, and created again as they were (their stored SQL) when it ends.  Nothing is set
    aside unless the run's quiet row is still there: once someone computed the sum from the
    rows meanwhile, the delta trigger must append the run's inserts again.

    When the block raises, they are not created again: the transaction is rolled back,
    which takes the drop back with it."""
    ph = placeholder(conn)
    quiet = conn.exec_driver_sql(
        f"SELECT 1 FROM {mw_schedule_sum.name} WHERE name = {ph}", (_quiet(run_id),)
    ).first()
    kept: list[str] = []
    if quiet is not None:
        for name in QUIET_INSERT_TRIGGERS:
            sql = stored_trigger_sql(conn, name)
            if sql is not None:
                conn.exec_driver_sql(f"DROP TRIGGER {name}")
                kept.append(sql)
    yield
    for sql in kept:
        conn.exec_driver_sql(sql)


def _quiet(run_id: str) -> str:
    return QUIET_PREFIX + run_id
