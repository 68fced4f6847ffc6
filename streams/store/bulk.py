"""Many rows in few statements: the sweep's batch inserts and the ledger's upserts.

Measured on SQLite 3.40 with ``email_schedules``' seven indexes and its change-mark
trigger (a 1M-contact agency, 180,000 inserts): one statement per row cost 70 us a
row, of which about 40 us went to the statement journal each execution opens
because the table has a trigger.  Fifty rows per statement open it once for fifty,
and a journal kept in memory (``journals_in_memory``) costs no temporary file: 22 us a
row, the indexes' own cost.  PostgreSQL gains the round trips.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import chain, count, repeat
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import ClauseElement, Connection, Insert
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.sql.compiler import SQLCompiler

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

    On SQLite, a text or NULL value that every row of a large call has (``extra``'s, the
    send time, the placing run, the NULLs of a newly placed email) is written into the
    statement instead of bound to each row: binding cost about a quarter of a microsecond a
    value, a third of an ``email_schedules`` insert (``_shared_values``).
    """
    if not rows:
        return
    width = len(rows[0])
    shared = _shared_values(rows, extra) if conn.dialect.name == "sqlite" and len(rows) >= ROWS_PER_STATEMENT else {}
    group = "(" + ", ".join(shared.get(j, ph) for j in range(width + len(extra))) + ")"
    bound_extra = tuple(v for j, v in enumerate(extra, width) if j not in shared)
    bound = [j for j in range(width) if j not in shared]
    pick = itemgetter(*bound) if len(bound) < width else None  # a row's bound values (two or more)

    def values(lo: int, n: int) -> tuple[object, ...]:
        """The bound values of rows ``lo`` to ``lo + n``, in the statement's order."""
        part: Iterable[Sequence[object]] = rows[lo : lo + n]
        if pick is not None:
            part = map(pick, part)
        if bound_extra:
            return tuple(chain.from_iterable(chain.from_iterable(zip(part, repeat(bound_extra)))))
        return tuple(chain.from_iterable(part))

    per = ROWS_PER_STATEMENT
    whole = len(rows) - len(rows) % per
    if whole:
        sql = f"{head} VALUES {', '.join([group] * per)}{tail}"
        conn.exec_driver_sql(sql, [values(i, per) for i in range(0, whole, per)])
    if whole < len(rows):
        n = len(rows) - whole
        conn.exec_driver_sql(f"{head} VALUES {', '.join([group] * n)}{tail}", values(whole, n))


def _shared_values(rows: Sequence[Sequence[object]], extra: Sequence[object]) -> dict[int, str]:
    """Positions (the rows' columns, then ``extra``'s) whose value every row has, as SQL
    literals: text and NULL only, whose literal stores exactly what binding stores.  Two
    columns of the rows stay bound (the first two when need be): every statement has
    parameters, and a row's bound values are a tuple."""
    first, last = rows[0], rows[-1]
    found: dict[int, str] = {}
    for j, v in enumerate(first):
        literal = _literal(v)
        # ``count`` compares by ``==``: only text equals text, only None equals None.
        if literal is not None and last[j] == v and list(map(itemgetter(j), rows)).count(v) == len(rows):
            found[j] = literal
    for j in range(min(2, len(first))):
        if len(first) - len(found) >= 2:
            break
        found.pop(j, None)
    for j, v in enumerate(extra, len(first)):
        literal = _literal(v)
        if literal is not None:
            found[j] = literal
    return found


def _literal(value: object) -> str | None:
    if value is None:
        return "NULL"
    if isinstance(value, str) and "\x00" not in value:
        return "'" + value.replace("'", "''") + "'"
    return None


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
    return driver_read(conn, sql, params)[1]


def driver_read(conn: Connection, sql: str, params: Sequence[object]) -> tuple[list[str], list[Any]]:
    """``driver_rows`` with the result's column names (a ``SELECT *``).

    A driver error is raised as SQLAlchemy's (``OperationalError``, ``IntegrityError``, ...)
    like any statement's, so callers see one kind: the worker's database process tells a
    locked database (try again later) from a failed one by it.
    """
    with _driver_cursor(conn, sql, params) as cursor:
        cursor.execute(sql, tuple(params))
        return [d[0] for d in cursor.description or ()], cursor.fetchall()


def driver_write_many(conn: Connection, statement: ClauseElement, rows: Sequence[Mapping[str, object]]) -> None:
    """``conn.execute(statement, rows)`` for rows of plain values (text, numbers, None), at
    the driver: SQLAlchemy's handling of each row's parameters cost the worker's database
    process as much as SQLite's own work on these inserts (mw_applied_events, contacts,
    clicks: 5% of its time).  The statement is compiled once per dialect and set of
    columns; a driver error is raised as SQLAlchemy's, as ``conn.execute`` would.
    """
    if not rows:
        return
    sql, order, fixed = _driver_statement(statement, conn.dialect.name, tuple(rows[0]), conn)
    params: list[Any]
    if order is None:
        params = [{**fixed, **r} for r in rows]
    else:
        params = [tuple(r[k] if k in r else fixed[k] for k in order) for r in rows]
    with _driver_cursor(conn, sql, params) as cursor:
        cursor.executemany(sql, params)


@contextmanager
def _driver_cursor(conn: Connection, sql: str, params: Sequence[Any]) -> Iterator[Any]:
    """A driver cursor in ``conn``'s transaction, closed after; a driver error raised as
    SQLAlchemy's, as ``conn.execute`` would raise it."""
    cursor = _in_transaction(conn).cursor()
    try:
        yield cursor
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(sql, params, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect) from exc
    finally:
        cursor.close()


_DRIVER_STATEMENTS: dict[tuple[ClauseElement, str, tuple[str, ...]], tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}


def _driver_statement(
    statement: ClauseElement, dialect: str, columns: tuple[str, ...], conn: Connection
) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
    """The driver's SQL, its parameters' order (None: by name) and the values the statement
    fixes itself (``.values(...)``).  Kept per statement object (held here, so never
    confused with a later one): callers pass statements made once, at module level or cached."""
    key = (statement, dialect, columns)
    found = _DRIVER_STATEMENTS.get(key)
    if found is None:
        keys = list(columns) if isinstance(statement, Insert) else None
        compiled = cast(SQLCompiler, statement.compile(dialect=conn.dialect, column_keys=keys))
        sql = str(compiled)
        order = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup is not None else None
        used = set(order) if order is not None else {n for n in compiled.binds if f"%({n})s" in sql}
        fixed = {n: b.value for n, b in compiled.binds.items() if n in used and n not in columns}
        found = _DRIVER_STATEMENTS[key] = (sql, order, fixed)
    return found


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
