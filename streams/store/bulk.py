"""Many rows in few statements: the sweep's batch inserts and the ledger's upserts.

Measured on SQLite 3.40 with ``email_schedules``' seven indexes and its change-mark
trigger (a 1M-contact agency, 180,000 inserts): one statement per row cost 70 us a
row, of which about 40 us went to the statement journal each execution opens
because the table has a trigger.  Fifty rows per statement open it once for fifty,
and a journal kept in memory (``journals_in_memory``) costs no temporary file: 22 us a
row, the indexes' own cost.  PostgreSQL gains the round trips.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import chain, count, repeat
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

ROWS_PER_STATEMENT = 50


def insert_rows(
    conn: Connection,
    head: str,
    rows: Sequence[Sequence[object]],
    ph: str,
    tail: str = "",
    extra: Sequence[object] = (),
) -> None:
    """``{head} VALUES (...), (...) {tail}`` for every row, ``ROWS_PER_STATEMENT`` a statement.

    ``ph`` is the driver's marker; every row has the same number of values, and each is
    followed by the values of ``extra`` (a run's id: one tuple fewer per row, which cost
    2 s of the 3M AEP season's writes).  The rows of one call must not share a conflict
    key when ``tail`` is an upsert (PostgreSQL refuses to update one row twice in a
    statement).
    """
    if not rows:
        return
    group = "(" + ", ".join([ph] * (len(rows[0]) + len(extra))) + ")"

    def values(part: Sequence[Sequence[object]]) -> tuple[object, ...]:
        if extra:
            return tuple(chain.from_iterable(chain.from_iterable(zip(part, repeat(extra)))))
        return tuple(chain.from_iterable(part))

    per = ROWS_PER_STATEMENT
    whole = len(rows) - len(rows) % per
    if whole:
        sql = f"{head} VALUES {', '.join([group] * per)}{tail}"
        conn.exec_driver_sql(sql, [values(rows[i : i + per]) for i in range(0, whole, per)])
    if whole < len(rows):
        rest = rows[whole:]
        conn.exec_driver_sql(f"{head} VALUES {', '.join([group] * len(rest))}{tail}", values(rest))


@contextmanager
def journals_in_memory(conn: Connection) -> Iterator[None]:
    """SQLite's statement journals in memory for the block, then the default again.

    Only around writes: the setting also holds temporary B-trees in memory, and a
    large sort (an index built by the migration, the pre-filter's unions) must be free
    to spill to disk.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    try:
        conn.exec_driver_sql("PRAGMA temp_store=MEMORY")
    except OperationalError:
        # SQLite refuses the change while a temporary database of this transaction is
        # open; the journals then stay where they are, which is only slower.
        yield
        return
    try:
        yield
    finally:
        try:
            conn.exec_driver_sql("PRAGMA temp_store=DEFAULT")
        except OperationalError:
            # Refused for the same reason: the connection keeps them in memory until
            # its next write batch sets the default again (only slower or larger).
            pass


_cursor_names = count()


def driver_rows(conn: Connection, sql: str, params: Sequence[object]) -> list[Any]:
    """Every row of a small read (a chunk's contacts, their rows) as the driver gives them,
    in ``conn``'s transaction: per row, SQLAlchemy's result objects cost about as much as
    the driver's read itself (a sweep reads a chunk of a thousand contacts in four of these)."""
    cursor = _in_transaction(conn).cursor()
    try:
        cursor.execute(sql, tuple(params))
        return cursor.fetchall()
    finally:
        cursor.close()


def driver_pages(conn: Connection, sql: str, params: Sequence[object], page_rows: int) -> Iterator[list[Any]]:
    """The driver's rows of ``sql`` as they come, ``page_rows`` at a time, in ``conn``'s
    transaction: SQLAlchemy's rows cost more than what the checksum and the copy do with
    them.  PostgreSQL's are read from a server-side cursor (named, so a transaction may
    hold several), so a table is never all in memory."""
    raw = _in_transaction(conn)
    if conn.dialect.name == "postgresql":
        cursor = raw.cursor(name=f"mw_pages_{next(_cursor_names)}")
    else:
        cursor = raw.cursor()
    try:
        cursor.execute(sql, tuple(params))
        while rows := cursor.fetchmany(page_rows):
            yield rows
    finally:
        cursor.close()


def _in_transaction(conn: Connection) -> Any:
    """``conn``'s driver connection, its transaction begun (SQLite's BEGIN is SQLAlchemy's,
    so the driver's reads share the snapshot of ``conn``'s other reads)."""
    if not conn.in_transaction():
        conn.exec_driver_sql("SELECT 1")
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw
