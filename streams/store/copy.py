"""A whole agency database copied into another, of either dialect (issue 16, `mailwindow copy`).

An agency that starts on its SQLite file moves to PostgreSQL with one command,
and back (an audit copy).  Every table the scheduler declares
(``streams.store.tables``: the agency's and the scheduler's own ``mw_*``) is
copied, history included.  The audit snapshot of a PostgreSQL database
(``streams.store.snapshot``) is the same copy into a new SQLite file, in one
transaction and without the bookkeeping below (``copy_whole``).

Choices (the issue leaves them open):

- **One moment of the source, never written.**  The source is opened
  read-only and read in one transaction: on SQLite one read transaction (in
  WAL mode writers go on meanwhile; a file in rollback-journal mode makes them
  wait), on PostgreSQL REPEATABLE READ.  The rows copied, the row counts and
  the checksum compared at the end all come from that moment.
- **Schema first.**  The target is migrated (``Store.migrate``; a missing
  SQLite file is created as ``new_agency_database`` makes it) before any row:
  it has the scheduler's tables, indexes and triggers (a resumed copy's target is
  not migrated again: its first run did, and the migration's refill of the ZIP table
  would undo the copy's).  Then table by table
  in declaration order (``COPY_ORDER``): the agency's tables, the scheduler's,
  ``mw_zip_states`` (the target's replaced by the source's), ``mw_changed``
  last.  Rows go in with PostgreSQL's ``COPY`` (text format) or SQLite's
  multi-row INSERT (``bulk.insert_rows``): on a 100,000-contact agency COPY
  wrote contacts in 5.4 s against 6.5 s for ``insert_rows`` and 9.6 s for
  ``executemany``, the schedule rows in 1.1 s against 2.2 and 3.4.
- **Pages in key order, each committed with its progress.**  A page is
  ``page_rows`` rows (5,000) in the order of the source's key (the rowid on
  SQLite, the primary key on PostgreSQL), committed in one target
  transaction together with the table's row of ``mw_copy_progress``: how
  many rows, the key of the last one, and a digest (sha256) of the source
  rows copied so far.  A table without a key (``deleted_contacts`` on
  PostgreSQL) is copied in one transaction.  The first page of a table first
  empties the target's table (``mw_zip_states``'s rows, and the change marks
  the copy's own inserts made: see below).  The progress table also has a row
  ``'*'``: the source's identity (an SQLite file's absolute path, a
  PostgreSQL URL without its password), when the copy started and when it
  finished.  It is created by the copy, kept when the copy finishes (it says
  where the database came from), and never copied.
- **Resumed, not restarted.**  The same command after an interruption (a
  kill, a crash, a lost connection) continues after the last committed page.
  It refuses to: resume from another source (it names the one the copy
  started from); when a table of the target no longer has the rows the
  progress counted (someone wrote to it); and when the source changed: the
  rows already copied are read again in the new moment and their digest
  compared with the recorded one (the whole table for a finished one, so a
  row added after it is seen too).  When they are equal, the copied part is
  the source as it is now and the rest is read now: the result is the
  source of the resumed run's moment, never a mix.  Each page's progress is
  written only if it is still what this run last wrote, so a second copy into
  the same target at the same time stops instead of writing rows twice.  A
  source that is itself an unfinished copy is refused (part of a database).
- **Refused onto a non-empty target.**  A target where a table the scheduler
  declares has rows (``mw_zip_states`` aside), or that holds a finished copy,
  is refused before anything is written to it (not migrated either), naming
  the tables; ``--force`` empties every declared table (not the ZIP table)
  and the progress in one transaction, then copies.
- **Change marks.**  The target's triggers fire on the copy's inserts and
  mark every contact; ``mw_changed`` is copied last and its first page
  empties the target's marks first, so the target's marks are the source's.
- **Counters continue.**  Every id column the database numbers (PostgreSQL
  identity, SQLite AUTOINCREMENT's ``sqlite_sequence``) is set to the larger
  of the source's counter and the largest id copied: a later insert on the
  target neither collides nor reuses the id of a row the source deleted.
- **Checked.**  At the end the row count of every table copied and the
  schedule checksum (``streams.store.checksum``) are compared between the
  source's moment and the target.
- **The kept checksum is the target's own.**  ``mw_schedule_sum`` and
  ``mw_schedule_deltas`` are not copied (``KEPT_BY_TARGET``): the target's
  triggers append its own changes as the rows go in, and the finished copy drops
  both, so its first kept checksum is computed from its rows.
- **Refused values.**  From SQLite to PostgreSQL, a value PostgreSQL's column
  cannot hold (text or a fraction in a whole-number column, a blob in a text
  column, no key) is refused before anything is written, naming the row.
  A whole number or a fraction in a text column (a DATETIME column holds
  them in SQLite) is written as its text.
- **Tables the scheduler does not know** in the source, or columns, are
  refused (a copy would leave them behind); a declared table the source
  lacks is left as the migration made it.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from rules.bounds import excerpt
from streams.store.bulk import driver_pages, insert_rows, journals_in_memory
from streams.store.checksum import EMPTY_CHECKSUM, schedule_checksum
from streams.store.ddl import column_type_sql, create_table_sql
from streams.store.dialects import POSTGRESQL, ROW_ID, SQLITE, stored_now
from streams.store.engine import (
    Store,
    StoreError,
    error_line,
    is_disk_full,
    new_agency_database,
    open_store,
)
from streams.store.schedules import placeholder
from streams.store.tables import (
    AGENCY_TABLES,
    OWN_TABLES,
    mw_changed,
    mw_copy_progress,
    mw_schedule_deltas,
    mw_schedule_sum,
    mw_zip_states,
)

PAGE_ROWS = 5_000
WHOLE_COPY = "*"  # mw_copy_progress's row for the copy as a whole
# Every declared table in the order it is copied: the change marks last (see the docstring).
# The kept checksum's sum and pending changes are not copied: the target's triggers append
# its own as the rows go in, and it starts its sum from its rows (``_finish`` drops both).
KEPT_BY_TARGET: tuple[sa.Table, ...] = (mw_schedule_deltas, mw_schedule_sum)
COPY_ORDER: tuple[sa.Table, ...] = (
    *AGENCY_TABLES,
    *(t for t in OWN_TABLES if t is not mw_changed and t not in KEPT_BY_TARGET),
    mw_zip_states,
    mw_changed,
)
_DECLARED = {t.name: t for t in COPY_ORDER}
# Reference data the migration fills: replaced by the source's, never a reason to refuse.
_REFERENCE = frozenset({mw_zip_states.name})

PageDone = Callable[[str, int], None]  # (table, rows of it copied so far), after each commit
TableDone = Callable[[str, int, int, float], None]  # (table, its rows, copied by this run, seconds)


@dataclass(frozen=True)
class TablePlan:
    """How one table is copied: its columns (the source's), the key its pages follow, and
    the column whose values the database numbers (None: none)."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]  # SQL: ('rowid',) on SQLite, the primary key's columns on PostgreSQL; () none
    counter: str | None


@dataclass(frozen=True)
class TableCopied:
    table: str
    source_rows: int
    target_rows: int
    copied: int  # rows this run wrote (fewer than source_rows when it resumed the table)
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return {
            "table": self.table,
            "rows": self.source_rows,
            "target_rows": self.target_rows,
            "copied": self.copied,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class CopyReport:
    source: str  # as shown: a path, or a URL with its password hidden
    target: str
    resumed: bool
    tables: tuple[TableCopied, ...]
    source_checksum: str
    target_checksum: str
    seconds: float

    @property
    def differences(self) -> list[str]:
        found = [
            f"{t.table}: {t.source_rows:,} rows in the source, {t.target_rows:,} in the target"
            for t in self.tables
            if t.source_rows != t.target_rows
        ]
        if self.source_checksum != self.target_checksum:
            found.append(
                f"schedule checksum {self.source_checksum} in the source, {self.target_checksum} in the target"
            )
        return found

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "target": self.target,
            "resumed": self.resumed,
            "tables": [t.to_dict() for t in self.tables],
            "rows": sum(t.source_rows for t in self.tables),
            "source_checksum": self.source_checksum,
            "target_checksum": self.target_checksum,
            "same": not self.differences,
            "differences": self.differences,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Progress:
    """A table's row of mw_copy_progress, and the digest of the rows it counts."""

    rows: int = 0
    last_key: list[Any] | None = None
    finished: bool = False
    digest: Any = None  # hashlib's sha256 object, continued page by page

    def started(self) -> bool:
        return self.finished or self.last_key is not None


# --- the copy -------------------------------------------------------------------------------


def copy_agency(
    source: str,
    target: str,
    *,
    force: bool = False,
    page_rows: int = PAGE_ROWS,
    on_page: PageDone | None = None,
    on_table: TableDone | None = None,
) -> CopyReport:
    """Copy the agency database ``source`` (a path or URL) into ``target`` (see the module
    docstring), or resume an interrupted copy of the same source; ``on_table`` hears of
    each table once it is copied.  Every refusal is a ``StoreError`` of one line."""
    if page_rows < 1:
        raise StoreError("a page holds at least one row")
    started = time.perf_counter()
    with open_store(source, read_only=True) as src, _source_moment(src) as read:
        if src.engine.dialect.name not in (SQLITE, POSTGRESQL):
            raise StoreError(f"{src.target}: copying is implemented for SQLite and PostgreSQL only")
        plans = table_plans(read, src.target, strict=True)
        _refuse_an_unfinished_copy(read, src.target)
        if not _is_sqlite_target(target):
            _refuse_values_postgresql_cannot_hold(read, plans, src.target)
        created = _is_sqlite_target(target) and not _target_exists(target)
        if created:
            _new_target_file(Path(_sqlite_path(target)))
        with open_store(target) as dst, _said_in_one_line(src.target, dst.target):
            source_id = identity(src)
            if identity(dst) == source_id:
                raise StoreError(f"{src.target} is both the source and the target of the copy")
            state = _target_state(dst, source_id, src.target, force=force and not created)
            resumed = bool(state)
            if not resumed:  # (a resumed copy's target was migrated by its first run)
                dst.migrate()
            _refuse_columns_the_target_lacks(dst, plans)
            if resumed:
                _check_resume(read, dst, plans, state, src.target)
            else:
                _start(dst, source_id, plans, empty=force)
                state = {p.name: _Progress(digest=_new_digest(p)) for p in plans}
            copied: dict[str, tuple[int, float]] = {}
            for plan in plans:
                progress = state[plan.name]
                began, before = time.perf_counter(), progress.rows
                if not progress.finished:
                    _copy_table(read, dst, plan, progress, page_rows, on_page)
                copied[plan.name] = (progress.rows - before, time.perf_counter() - began)
                if on_table is not None:
                    on_table(plan.name, progress.rows, *copied[plan.name])
            with dst.engine.begin() as conn:
                _finish(read, conn, plans, finish_progress=True)
            with dst.engine.connect() as conn:
                target_rows = {p.name: _count(conn, p.name) for p in plans}
                target_sum = _checksum(conn)
            tables = tuple(
                TableCopied(p.name, _count(read, p.name), target_rows[p.name], *copied[p.name]) for p in plans
            )
            return CopyReport(
                src.target,
                dst.target,
                resumed,
                tables,
                _checksum(read),
                target_sum,
                time.perf_counter() - started,
            )


def copy_whole(source: Store, target: Store) -> None:
    """Every declared table of ``source`` into the new, migrated ``target`` in one read and
    one transaction (the audit snapshot): a table or column the target lacks is left out."""
    with _source_moment(source) as read, target.engine.begin() as conn:
        plans = table_plans(read, source.target, strict=False)
        have = {t: set(cols) for t, cols in _columns(conn).items()}
        plans = [
            TablePlan(p.name, tuple(c for c in p.columns if c in have[p.name]), p.key, p.counter)
            for p in plans
            if p.name in have
        ]
        for plan in plans:
            conn.exec_driver_sql(f'DELETE FROM "{plan.name}"')
            k = len(plan.key)
            for rows in _pages(read, plan, None, upto=False, page_rows=PAGE_ROWS):
                _write(conn, plan, [r[k:] for r in rows])
        _finish(read, conn, plans, finish_progress=False)


def identity(store: Store) -> str:
    """What names a database in the progress table, as ``--from`` takes it: an SQLite
    file's absolute path, or a URL without its password and options."""
    if store.is_sqlite:
        return str(store.path.resolve()) if store.path is not None else store.target
    return store.url.set(password=None, query={}).render_as_string(hide_password=False)


# --- the plan ---------------------------------------------------------------------------------


def table_plans(conn: Connection, label: str, *, strict: bool) -> list[TablePlan]:
    """The source's tables to copy, in ``COPY_ORDER``.  ``strict``: a table or column the
    scheduler does not declare is refused (else left out)."""
    found = _columns(conn)
    if "contacts" not in found:
        raise StoreError(f"{label} has no 'contacts' table: not an agency database")
    unknown = sorted(set(found) - set(_DECLARED) - {mw_copy_progress.name, *(t.name for t in KEPT_BY_TARGET)})
    if strict and unknown:
        raise StoreError(
            f"{label} has table(s) the scheduler does not know: {', '.join(unknown[:5])}"
            " (a copy would leave them behind)"
        )
    sqlite = conn.dialect.name != POSTGRESQL
    inspector = sa.inspect(conn)
    plans = []
    for table in COPY_ORDER:
        if table.name not in found:
            continue
        declared = {c.name for c in table.columns}
        columns = found[table.name]
        extra = [c for c in columns if c not in declared]
        if strict and extra:
            raise StoreError(
                f"{label}: column(s) {', '.join(f'{table.name}.{c}' for c in extra[:5])} are not the"
                " scheduler's (a copy would leave them behind)"
            )
        if sqlite:
            key: tuple[str, ...] = ("rowid",)
        else:
            key = tuple(f'"{c}"' for c in inspector.get_pk_constraint(table.name)["constrained_columns"])
        counter = next((c.name for c in table.columns if c.type is ROW_ID and c.name in columns), None)
        plans.append(TablePlan(table.name, tuple(c for c in columns if c in declared), key, counter))
    return plans


def _refuse_an_unfinished_copy(conn: Connection, label: str) -> None:
    """A source that is itself the target of a copy not finished yet holds part of a database."""
    if not sa.inspect(conn).has_table(mw_copy_progress.name):
        return
    whole = conn.execute(sa.select(mw_copy_progress).where(mw_copy_progress.c.table_name == WHOLE_COPY)).first()
    if whole is not None and whole.finished_at is None:
        raise StoreError(
            f"{label} is an unfinished copy of {whole.source}: finish it first"
            f" (mailwindow copy --from {whole.source} --to {label})"
        )


def _columns(conn: Connection) -> dict[str, list[str]]:
    inspector = sa.inspect(conn)
    return {t: [c["name"] for c in inspector.get_columns(t)] for t in inspector.get_table_names()}


def _refuse_columns_the_target_lacks(target: Store, plans: Sequence[TablePlan]) -> None:
    with target.engine.connect() as conn:
        have = _columns(conn)
    for plan in plans:
        lacking = [c for c in plan.columns if c not in have.get(plan.name, ())]
        if lacking:
            raise StoreError(f"{target.target}: table {plan.name} lacks column(s) {', '.join(lacking[:5])}")


# What a PostgreSQL column holds, by SQLite's typeof() (NULL aside): see the docstring.
_POSTGRESQL_HOLDS = {
    "whole numbers": ("integer",),
    "text": ("text", "integer", "real"),
    "bytes": ("blob",),
}
_TYPEOF = {int: "integer", float: "real", str: "text", bytes: "blob", type(None): "null"}


def _postgresql_kind(column: sa.Column[Any]) -> str:
    spelled = column_type_sql(column, POSTGRESQL).upper()
    return "whole numbers" if spelled.startswith("BIGINT") else "bytes" if spelled == "BYTEA" else "text"


def _refuse_values_postgresql_cannot_hold(conn: Connection, plans: Sequence[TablePlan], label: str) -> None:
    """From SQLite: the first row with a value the PostgreSQL column cannot hold, named."""
    if conn.dialect.name == POSTGRESQL:
        return  # the same types on both sides
    for plan in plans:
        table = _DECLARED[plan.name]
        allowed = {}
        for name in plan.columns:
            column = table.c[name]
            kinds = _POSTGRESQL_HOLDS[_postgresql_kind(column)]
            allowed[name] = kinds if column.primary_key or not column.nullable else (*kinds, "null")
        where = " OR ".join(
            f'typeof("{name}") NOT IN ({", ".join(repr(k) for k in kinds)})' for name, kinds in allowed.items()
        )
        names = ", ".join(f'"{c}"' for c in plan.columns)
        row = conn.exec_driver_sql(f'SELECT rowid, {names} FROM "{plan.name}" WHERE {where} LIMIT 1').first()
        if row is None:
            continue
        for name, value in zip(plan.columns, row[1:], strict=True):
            if _TYPEOF.get(type(value)) not in allowed[name]:
                holds = _postgresql_kind(table.c[name]) + ("" if "null" in allowed[name] else ", never NULL")
                raise StoreError(
                    f"{label}: {plan.name} row {row[0]}: {name} is {excerpt(value)}, and PostgreSQL's"
                    f" column holds {holds}: correct it in the source first"
                )


# --- the source --------------------------------------------------------------------------------


@contextmanager
def _source_moment(store: Store) -> Iterator[Connection]:
    """One connection reading ``store`` in one transaction: one moment of it."""
    with store.engine.connect() as conn:
        if not store.is_sqlite:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        # SQLite: SQLAlchemy's BEGIN (streams.store.engine); the first read fixes the moment.
        # Closing the connection rolls the transaction back: it only read.
        conn.exec_driver_sql("SELECT 1")
        yield conn


def _pages(
    conn: Connection, plan: TablePlan, key: Sequence[Any] | None, *, upto: bool, page_rows: int
) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``plan``'s table (its key first, then its columns) in key order, a page at
    a time: after ``key`` (``upto``: up to and with it); ``key`` None: from the first."""
    ph = placeholder(conn)
    select = ", ".join([*plan.key, *(f'"{c}"' for c in plan.columns)])
    sql = f'SELECT {select} FROM "{plan.name}"'
    params: tuple[Any, ...] = ()
    if key is not None and plan.key:
        left = plan.key[0] if len(plan.key) == 1 else f"({', '.join(plan.key)})"
        right = ph if len(plan.key) == 1 else f"({', '.join(ph for _ in plan.key)})"
        sql += f" WHERE {left} {'<=' if upto else '>'} {right}"
        params = tuple(key)
    # Without a key, by every column: the same rows read in the same order, for the digest.
    order = plan.key or tuple(str(n) for n in range(1, len(plan.columns) + 1))
    sql += f" ORDER BY {', '.join(order)}"
    yield from driver_pages(conn, sql, params, page_rows)


def _new_digest(plan: TablePlan) -> Any:
    return hashlib.sha256(orjson.dumps([plan.name, list(plan.key), list(plan.columns)]))


def _bytes_as_json(value: object) -> object:
    if isinstance(value, bytes | memoryview):
        return {"bytes": bytes(value).hex()}
    raise TypeError(f"no digest for a {type(value).__name__}")


def _digest_rows(digest: Any, rows: Sequence[tuple[Any, ...]]) -> None:
    update, dumps = digest.update, orjson.dumps
    for row in rows:
        update(dumps(row, default=_bytes_as_json))


def _count(conn: Connection, table: str) -> int:
    return int(conn.exec_driver_sql(f'SELECT count(*) FROM "{table}"').scalar_one())


def _checksum(conn: Connection) -> str:
    if not sa.inspect(conn).has_table("email_schedules"):
        return EMPTY_CHECKSUM  # an agency without schedule rows
    return schedule_checksum(conn)


def _source_counters(conn: Connection, plans: Sequence[TablePlan]) -> dict[str, int]:
    """The source's next-id counters (the last id handed out), by table."""
    counted = [p for p in plans if p.counter is not None]
    if conn.dialect.name == POSTGRESQL:
        found = {}
        for plan in counted:
            value = conn.execute(
                sa.text("SELECT pg_sequence_last_value(pg_get_serial_sequence(:t, :c))"),
                {"t": f'"{plan.name}"', "c": plan.counter},
            ).scalar()
            if value is not None:
                found[plan.name] = int(value)
        return found
    if not conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").first():
        return {}
    rows = conn.exec_driver_sql("SELECT name, seq FROM sqlite_sequence").all()
    return {str(name): int(seq) for name, seq in rows if isinstance(seq, int)}


# --- the target --------------------------------------------------------------------------------


def _is_sqlite_target(target: str) -> bool:
    return "://" not in target or target.startswith("sqlite")


def _sqlite_path(target: str) -> str:
    if "://" not in target:
        return target
    return sa.engine.make_url(target).database or ""


def _target_exists(target: str) -> bool:
    path = _sqlite_path(target)
    return path in ("", ":memory:") or Path(path).exists()


def _new_target_file(path: Path) -> None:
    if not path.parent.is_dir():
        raise StoreError(f"directory not found for new database: {path}")
    try:
        new_agency_database(path)
    except sqlite3.Error as exc:  # a directory we may not write, a full disk
        raise StoreError(f"cannot create {path}: {exc}") from exc


def _target_state(target: Store, source_id: str, source_label: str, *, force: bool) -> dict[str, _Progress]:
    """The progress of an interrupted copy of ``source_id`` to resume ({}: start afresh); a
    target with rows, or with another copy's progress, refused (unless ``force``)."""
    with target.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        rows: Sequence[sa.Row[Any]] = ()
        if mw_copy_progress.name in tables:
            rows = conn.execute(sa.select(mw_copy_progress)).all()
        whole = next((r for r in rows if r.table_name == WHOLE_COPY), None)
        if force:
            return {}
        if whole is not None:
            if whole.source != source_id and whole.finished_at:
                raise StoreError(
                    f"{target.target} holds a copy of {whole.source} (finished {whole.finished_at}),"
                    f" not of {source_label}: --force empties it and copies anew"
                )
            if whole.source != source_id:
                raise StoreError(
                    f"{target.target} holds an unfinished copy of {whole.source}, not of {source_label}:"
                    f" resume it with --from {whole.source}, or --force empties it and copies anew"
                )
            if whole.finished_at:
                raise StoreError(
                    f"{target.target} holds a finished copy of {source_label} (finished {whole.finished_at}):"
                    " --force empties it and copies again"
                )
            return {
                r.table_name: _Progress(
                    rows=int(r.rows_copied),
                    last_key=None if r.last_key is None else list(orjson.loads(r.last_key)),
                    finished=r.finished_at is not None,
                )
                for r in rows
                if r.table_name != WHOLE_COPY
            }
        with_rows = [
            t.name
            for t in COPY_ORDER
            if t.name in tables
            and t.name not in _REFERENCE
            and conn.exec_driver_sql(f'SELECT 1 FROM "{t.name}" LIMIT 1').first() is not None
        ]
    if with_rows:
        more = f" (and {len(with_rows) - 3} more)" if len(with_rows) > 3 else ""
        raise StoreError(
            f"{target.target} is not empty: table(s) {', '.join(with_rows[:3])}{more} have rows;"
            " --force empties them before copying"
        )
    return {}


@contextmanager
def _said_in_one_line(source_label: str, target_label: str) -> Iterator[None]:
    """A database error of the copy said in one line that names both databases."""
    try:
        yield
    except DBAPIError as exc:
        if is_disk_full(exc):
            raise StoreError(f"disk full writing {target_label}: {error_line(exc)}") from exc
        raise StoreError(f"copy of {source_label} into {target_label}: {error_line(exc)}") from exc


def _start(target: Store, source_id: str, plans: Sequence[TablePlan], *, empty: bool) -> None:
    """One transaction: (``empty``: every declared table emptied, the ZIP table aside), the
    progress table made afresh, with a row per table."""
    with target.engine.begin() as conn:
        dialect = conn.dialect.name
        tables = set(sa.inspect(conn).get_table_names())
        if empty:
            emptied = [
                t.name for t in (*KEPT_BY_TARGET, *COPY_ORDER) if t.name in tables and t.name not in _REFERENCE
            ]
            if dialect == POSTGRESQL:
                conn.exec_driver_sql(f"TRUNCATE {', '.join(emptied)} RESTART IDENTITY")
            else:
                for name in emptied:  # mw_changed last: the delete triggers mark
                    conn.exec_driver_sql(f'DELETE FROM "{name}"')
        if mw_copy_progress.name not in tables:
            conn.exec_driver_sql(create_table_sql(mw_copy_progress, dialect))
        conn.execute(sa.delete(mw_copy_progress))
        conn.execute(
            sa.insert(mw_copy_progress).values(
                table_name=WHOLE_COPY, source=source_id, rows_copied=0, started_at=stored_now(dialect)
            )
        )
        conn.execute(sa.insert(mw_copy_progress), [{"table_name": p.name, "rows_copied": 0} for p in plans])


def _check_resume(
    read: Connection, target: Store, plans: Sequence[TablePlan], state: dict[str, _Progress], source_label: str
) -> None:
    """Refuse to resume when the target or the source changed since the interrupted run; the
    digests of the tables begun continued from the source as it is now."""
    names = {p.name for p in plans}
    differ = sorted({t for t, p in state.items() if p.started() and t not in names} | (names - set(state)))
    if differ:
        raise StoreError(
            f"{source_label} changed since the interrupted copy began (its tables differ: "
            f"{', '.join(differ)}): --force starts the copy over"
        )
    with target.engine.connect() as conn:
        stored = {
            str(r.table_name): r.digest for r in conn.execute(sa.select(mw_copy_progress))
        }
        for plan in plans:
            progress = state[plan.name]
            if progress.started() and (found := _count(conn, plan.name)) != progress.rows:
                raise StoreError(
                    f"{target.target} changed since the interrupted copy: table {plan.name} has"
                    f" {found:,} rows, the copy wrote {progress.rows:,}; --force starts the copy over"
                )
    for plan in plans:
        progress = state[plan.name]
        progress.digest = _new_digest(plan)
        if not progress.started():
            continue
        seen = 0
        key = None if progress.finished else progress.last_key
        for rows in _pages(read, plan, key, upto=True, page_rows=PAGE_ROWS):
            _digest_rows(progress.digest, rows)
            seen += len(rows)
        if seen != progress.rows or progress.digest.hexdigest() != stored.get(plan.name):
            raise StoreError(
                f"{source_label} changed since the interrupted copy began (table {plan.name}):"
                " --force starts the copy over"
            )


def _copy_table(
    read: Connection,
    target: Store,
    plan: TablePlan,
    progress: _Progress,
    page_rows: int,
    on_page: PageDone | None,
) -> None:
    """The table's rows after the progress's last key, a committed page at a time (a table
    without a key: all in one transaction), then the table marked finished."""
    k = len(plan.key)
    fresh = not progress.started()
    if not plan.key:
        with target.engine.begin() as conn:
            conn.exec_driver_sql(f'DELETE FROM "{plan.name}"')
            n = 0
            for rows in _pages(read, plan, None, upto=False, page_rows=page_rows):
                _write(conn, plan, [r[k:] for r in rows])
                _digest_rows(progress.digest, rows)
                n += len(rows)
            _record(conn, target.target, plan.name, progress, n, None, finished=True)
        return
    for rows in _pages(read, plan, progress.last_key, upto=False, page_rows=page_rows):
        with target.engine.begin() as conn:
            if fresh:  # the target's own rows of it go first (see the module docstring)
                conn.exec_driver_sql(f'DELETE FROM "{plan.name}"')
                fresh = False
            _write(conn, plan, [r[k:] for r in rows])
            _digest_rows(progress.digest, rows)
            last = list(rows[-1][:k])
            _record(conn, target.target, plan.name, progress, progress.rows + len(rows), last, finished=False)
        if on_page is not None:
            on_page(plan.name, progress.rows)
    with target.engine.begin() as conn:
        if fresh:  # not a row: the target's emptied all the same
            conn.exec_driver_sql(f'DELETE FROM "{plan.name}"')
        _record(conn, target.target, plan.name, progress, progress.rows, progress.last_key, finished=True)


def _record(
    conn: Connection,
    target_label: str,
    table: str,
    progress: _Progress,
    rows: int,
    last_key: list[Any] | None,
    *,
    finished: bool,
) -> None:
    """The table's progress, in the transaction of the rows it counts; refused when another
    copy moved it meanwhile (two copies into one target)."""
    values: dict[str, Any] = {
        "rows_copied": rows,
        "last_key": None if last_key is None else orjson.dumps(last_key).decode(),
        "digest": progress.digest.hexdigest(),
    }
    if finished:
        values["finished_at"] = stored_now(conn.dialect.name)
    moved = conn.execute(
        sa.update(mw_copy_progress)
        .where(mw_copy_progress.c.table_name == table, mw_copy_progress.c.rows_copied == progress.rows)
        .values(**values)
    ).rowcount
    if moved != 1:
        raise StoreError(f"{target_label}: another copy is writing into it (the progress of {table} moved)")
    progress.rows, progress.last_key, progress.finished = rows, last_key, finished


def _write(conn: Connection, plan: TablePlan, rows: Sequence[Sequence[object]]) -> None:
    names = ", ".join(f'"{c}"' for c in plan.columns)
    if not rows:
        return
    if conn.dialect.name == POSTGRESQL:
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor, cursor.copy(f'COPY "{plan.name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
        return
    with journals_in_memory(conn):
        insert_rows(conn, f'INSERT INTO "{plan.name}" ({names})', rows, "?")


def _finish(read: Connection, conn: Connection, plans: Sequence[TablePlan], *, finish_progress: bool) -> None:
    """The target's id counters after the source's, its change marks the source's (none when
    the source has no mw_changed), its kept checksum to start from its rows, and
    (``finish_progress``) the copy marked finished."""
    if mw_changed.name not in {p.name for p in plans}:
        conn.execute(sa.delete(mw_changed))
    for table in KEPT_BY_TARGET:
        conn.execute(sa.delete(table))
    counters = _source_counters(read, plans)
    for plan in plans:
        if plan.counter is None:
            continue
        largest = conn.exec_driver_sql(f'SELECT max("{plan.counter}") FROM "{plan.name}"').scalar()
        value = max(counters.get(plan.name, 0), int(largest or 0))
        _set_counter(conn, plan.name, plan.counter, value)
    if finish_progress:
        total = sum(int(n) for n in conn.execute(
            sa.select(mw_copy_progress.c.rows_copied).where(mw_copy_progress.c.table_name != WHOLE_COPY)
        ).scalars())
        conn.execute(
            sa.update(mw_copy_progress)
            .where(mw_copy_progress.c.table_name == WHOLE_COPY)
            .values(rows_copied=total, finished_at=stored_now(conn.dialect.name))
        )


def _set_counter(conn: Connection, table: str, column: str, value: int) -> None:
    """The next id of ``table`` is ``value + 1``."""
    if conn.dialect.name == POSTGRESQL:
        conn.execute(
            sa.text("SELECT setval(pg_get_serial_sequence(:t, :c), :v, :called)"),
            {"t": f'"{table}"', "c": column, "v": max(value, 1), "called": value >= 1},
        )
        return
    if not _DECLARED[table].dialect_options["sqlite"]["autoincrement"]:
        return  # the next rowid is the largest one's successor anyway
    conn.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
    if value > 0:
        conn.exec_driver_sql("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, value))


__all__ = [
    "COPY_ORDER",
    "PAGE_ROWS",
    "CopyReport",
    "TableCopied",
    "TablePlan",
    "copy_agency",
    "copy_whole",
    "identity",
    "table_plans",
]

