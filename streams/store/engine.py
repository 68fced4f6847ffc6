"""The database shell: open an agency database and bring its schema up to date.

Agencies run the scheduler on the SQLite database they already have (SPEC
section 10).  ``open_store`` opens it with the connection settings the
scheduler relies on, and ``Store.migrate`` adds the tables, columns and
indexes the scheduler needs without ever touching an existing row of an
agency table.

Choices the SPEC leaves open (issue 11):

- **Reading never writes.** ``open_store(..., read_only=True)`` opens SQLite
  through a ``file:PATH?mode=ro`` URI with ``PRAGMA query_only`` on, sets no
  pragma that writes and never migrates (``Store.migrate`` refuses);
  PostgreSQL sessions get ``default_transaction_read_only = on``.  A
  WAL-mode file needs a ``-shm`` file beside it to be read; in a directory
  we cannot write, with no ``-wal`` and no ``-shm`` beside it (an auditor's
  copy: every committed write is in the file and nobody is writing it), it
  is opened ``immutable=1`` instead, which SQLite reads without any lock.
  A read-only reader of a WAL database in a writable directory may leave
  SQLite's empty ``-wal`` and ``-shm`` files there (the database file itself
  is never written): that is SQLite's way of sharing a WAL file.
- **Recognise before changing.** Connections set only per-connection
  settings (busy timeout, synchronous, foreign keys).  The switch of the
  file to WAL journaling, the one setting stored in the file, is part of
  the migration, made once the file is recognised as an agency database, so
  a refused file (empty, no ``contacts`` table, missing columns) is left
  byte for byte as it was.  The switch is not listed among the migration's
  changes: it is a setting of the file, not of the schema, and two
  processes migrating together could not tell which of them made it.
- **Errors kept.** A write that fails so badly that SQLite rolls the whole
  transaction back (a full disk) takes its savepoint with it, and rolling
  back to that savepoint then fails with "no such savepoint", which hid the
  real error; ``run_with_retry`` raises the real one (``unmasked_error``).
  ``is_disk_full`` recognises a full disk on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Self, TypeVar
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from rules.zip_state import zip_states

T = TypeVar("T")

SQLITE_HEADER = b"SQLite format 3\x00"

# The legacy unique index cannot hold the keys of SPEC section 9 (two
# instances of one campaign type for one contact in one year), so it goes.
LEGACY_UNIQUE_INDEX = "idx_email_schedules_unique_event"

# Columns the scheduler writes; older agency databases lack some of them.
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("email_schedules", "scheduler_run_id", "TEXT"),
    ("email_schedules", "metadata", "TEXT"),
    ("email_schedules", "occurrence_key", "TEXT"),
    ("email_schedules", "ideal_send_date", "TEXT"),
    ("email_schedules", "placed_run_id", "TEXT"),
    ("scheduler_checkpoints", "as_of", "TEXT"),
    ("scheduler_checkpoints", "contacts_scanned", "INTEGER"),
    ("scheduler_checkpoints", "contacts_invalid", "INTEGER"),
    ("scheduler_checkpoints", "pid", "INTEGER"),
    ("scheduler_checkpoints", "host", "TEXT"),
    # The start of the process ``pid`` names (streams.sweep.run.process_start): a pid
    # alone may belong to another process by now.
    ("scheduler_checkpoints", "pid_started", "TEXT"),
    ("scheduler_checkpoints", "heartbeat_at", "TEXT"),
    ("scheduler_checkpoints", "summary", "TEXT"),
)

ZIP_STATES_TABLE = "mw_zip_states"

# The stream agents' own bookkeeping (not agency data): which events were
# applied (at-least-once delivery made idempotent), the event time of each
# contact's current version (last write wins by occurred_at), and events
# parked until their contact arrives.
MW_TABLES: tuple[tuple[str, str], ...] = (
    (
        "mw_applied_events",
        "CREATE TABLE mw_applied_events (event_id TEXT PRIMARY KEY, topic TEXT NOT NULL, "
        "occurred_at TEXT NOT NULL, source_partition INTEGER, source_offset INTEGER)",
    ),
    (
        "mw_contact_versions",
        "CREATE TABLE mw_contact_versions (contact_id INTEGER PRIMARY KEY, "
        "occurred_at TEXT NOT NULL, event_id TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0)",
    ),
    (
        # Events of contacts not known yet, as an older worker kept them; drained into
        # facts at start (streams.worker.ingest.drain_parked_events).
        "mw_parked_events",
        "CREATE TABLE mw_parked_events (event_id TEXT PRIMARY KEY, contact_id INTEGER NOT NULL, "
        "topic TEXT NOT NULL, occurred_at TEXT NOT NULL, payload BLOB NOT NULL)",
    ),
    (
        # The sending side's latest status of each occurrence key (last write wins by
        # occurred_at): a fact, applied to the row of that key whenever the row exists.
        "mw_status_facts",
        "CREATE TABLE mw_status_facts (occurrence_key TEXT PRIMARY KEY, contact_id INTEGER NOT NULL, "
        "status TEXT NOT NULL, actual_send_datetime TEXT, occurred_at TEXT NOT NULL, "
        "event_id TEXT NOT NULL)",
    ),
    (
        # Decision days: the baseline's, then each completed full sweep's (streams.store.epochs).
        "mw_epochs",
        "CREATE TABLE mw_epochs (epoch_id INTEGER PRIMARY KEY, as_of TEXT NOT NULL, "
        "kind TEXT NOT NULL, run_id TEXT, started_at TEXT NOT NULL)",
    ),
    (
        # Each contact's rows as the current decision day found them (streams.store.epochs).
        "mw_epoch_base",
        "CREATE TABLE mw_epoch_base (contact_id INTEGER NOT NULL, epoch_id INTEGER NOT NULL, "
        "row_columns TEXT NOT NULL, row_values TEXT NOT NULL, PRIMARY KEY (contact_id, epoch_id))",
    ),
    (
        # Records for the audit topics (sweep-runs, baselines), written with what they
        # record and published by the worker (streams.store.outbox).
        "mw_outbox",
        "CREATE TABLE mw_outbox (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, record_key TEXT NOT NULL, "
        "record TEXT NOT NULL, published INTEGER NOT NULL DEFAULT 0)",
    ),
    (
        # The audit baselines this database was recorded as (streams.worker.baseline).
        "mw_baselines",
        "CREATE TABLE mw_baselines (baseline_id TEXT PRIMARY KEY, as_of TEXT NOT NULL, "
        "recorded_at TEXT NOT NULL, record TEXT NOT NULL)",
    ),
)

# The contact fields the rules read (SPEC section 2); the rest may vary.
CONTACT_COLUMNS = frozenset(
    {"id", "email", "zip_code", "state", "birth_date", "effective_date", "phone_number"}
)

# A column, optionally qualified by its table or alias (c.birth_date).
_IDENTIFIER_RE = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*")


class StoreError(Exception):
    """A database problem explained in one line that names the database or table."""


# SQL that SQLite and PostgreSQL spell differently: one function per thing, taking
# the dialect's name (``conn.dialect.name``); SQLite's spelling is the default.
SQLITE = "sqlite"
POSTGRESQL = "postgresql"

# The text written for "now": SQLite's CURRENT_TIMESTAMP ('YYYY-MM-DD HH:MM:SS',
# UTC), the form every stored time has (streams.worker.ingest.stored_time).  PostgreSQL's
# CURRENT_TIMESTAMP would be written in the session's time zone, with fractions
# and an offset, and would then compare wrongly as text.
_PG_NOW = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"


def now_sql(dialect: str = SQLITE) -> str:
    """SQL for the current UTC time as stored text."""
    return _PG_NOW if dialect == POSTGRESQL else "CURRENT_TIMESTAMP"


def same_value_op(dialect: str = SQLITE) -> str:
    """The operator for 'equal, NULL matching NULL' (PostgreSQL's IS takes only NULL/TRUE/FALSE)."""
    return "IS NOT DISTINCT FROM" if dialect == POSTGRESQL else "IS"


def flag_set_sql(column: str, dialect: str = SQLITE) -> str:
    """A legacy BOOLEAN column as a condition (an INTEGER 0/1 column on PostgreSQL)."""
    return f"({column} <> 0)" if dialect == POSTGRESQL else column


def trim_blanks_sql(expr: str, dialect: str = SQLITE) -> str:
    """``expr`` with rules.zip_state.BLANKS trimmed from both ends."""
    if dialect == POSTGRESQL:
        return f"btrim({expr}, ' ' || chr(9) || chr(10) || chr(13))"
    return f"trim({expr}, ' ' || char(9) || char(10) || char(13))"


def month_day_sql(column: str, dialect: str = SQLITE) -> str:
    """SQL for the 'MM-DD' of an ISO date text column, blanks trimmed.

    The sweep's pre-filter must use this very expression: SQLite only uses an
    expression index when the query repeats the indexed expression (PostgreSQL
    too).  The trim set is rules.zip_state.BLANKS, so SQL and Python read a
    field alike.
    """
    if not _IDENTIFIER_RE.fullmatch(column):
        raise ValueError(f"not a column name: {column!r}")
    return f"substr({trim_blanks_sql(column, dialect)}, 6, 5)"


def mw_indexes(dialect: str = SQLITE) -> tuple[tuple[str, str], ...]:
    """Indexes the sweep's queries need, in creation order."""

    def md(column: str) -> str:
        sql = month_day_sql(column, dialect)
        # PostgreSQL wants an indexed expression in parentheses of its own.
        return f"({sql})" if dialect == POSTGRESQL else sql

    return (
        (
            "mw_email_schedules_key",
            "CREATE UNIQUE INDEX mw_email_schedules_key ON email_schedules(occurrence_key)",
        ),
        (
            "mw_email_schedules_date",
            "CREATE INDEX mw_email_schedules_date ON email_schedules(scheduled_send_date, status)",
        ),
        (
            "mw_email_schedules_contact",
            (
                "CREATE INDEX mw_email_schedules_contact"
                " ON email_schedules(contact_id, scheduled_send_date)"
            ),
        ),
        (
            "mw_contacts_birth_md",
            # zip_code, state and the date itself ride along so the pre-filter reads the
            # index alone (SQLite 3.40 needs every column in it to call it covering;
            # a table lookup per row costs seconds at 3M contacts).
            (
                f"CREATE INDEX mw_contacts_birth_md"
                f" ON contacts({md('birth_date')}, zip_code, state, birth_date)"
            ),
        ),
        (
            "mw_contacts_effective_md",
            (
                f"CREATE INDEX mw_contacts_effective_md"
                f" ON contacts({md('effective_date')}, zip_code, state, effective_date)"
            ),
        ),
        (
            # Initial emails awaiting follow-ups, found by when they were really sent.
            "mw_email_schedules_actual_send",
            "CREATE INDEX mw_email_schedules_actual_send ON email_schedules(actual_send_datetime)",
        ),
        (
            "mw_tracking_clicks_contact",
            "CREATE INDEX mw_tracking_clicks_contact ON tracking_clicks(contact_id, clicked_at)",
        ),
        (
            "mw_contact_events_contact",
            (
                "CREATE INDEX mw_contact_events_contact"
                " ON contact_events(contact_id, event_type, created_at)"
            ),
        ),
        (
            "mw_contact_campaigns_contact",
            "CREATE INDEX mw_contact_campaigns_contact ON contact_campaigns(contact_id)",
        ),
        (
            "mw_status_facts_contact",
            "CREATE INDEX mw_status_facts_contact ON mw_status_facts(contact_id)",
        ),
        (
            "mw_parked_events_contact",
            "CREATE INDEX mw_parked_events_contact ON mw_parked_events(contact_id, occurred_at)",
        ),
        (
            "mw_checkpoints_status",
            "CREATE INDEX mw_checkpoints_status ON scheduler_checkpoints(status)",
        ),
    )


MW_INDEXES = mw_indexes(SQLITE)


@dataclass(frozen=True)
class LegacyStatement:
    """One statement of the legacy DDL and the table it belongs to."""

    kind: str  # 'table', 'index' or 'trigger'
    name: str
    table: str
    sql: str


_CREATE_TABLE_RE = re.compile(r"CREATE\s+TABLE\s+(\w+)", re.IGNORECASE)
_CREATE_INDEX_RE = re.compile(r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(\w+)\s+ON\s+(\w+)", re.IGNORECASE)
_CREATE_TRIGGER_RE = re.compile(
    r"CREATE\s+TRIGGER\s+(\w+)\b.*?\bON\s+(\w+)", re.IGNORECASE | re.DOTALL
)
_LINE_COMMENT_RE = re.compile(r"--[^\n]*")


@lru_cache(maxsize=1)
def legacy_ddl() -> tuple[LegacyStatement, ...]:
    """The statements of streams/sql/legacy_schema.sql, in file order."""
    import sqlite3  # only its tokenizer: complete_statement knows trigger bodies

    text = resources.files("streams").joinpath("sql/legacy_schema.sql").read_text("utf-8")
    statements: list[LegacyStatement] = []
    pending: list[str] = []
    for line in text.splitlines(keepends=True):
        if not pending and not _LINE_COMMENT_RE.sub("", line).strip():
            continue  # comments between statements belong to none of them
        pending.append(line)
        sql = "".join(pending)
        if not sqlite3.complete_statement(sql):
            continue
        pending = []
        bare = _LINE_COMMENT_RE.sub("", sql)
        if m := _CREATE_TABLE_RE.search(bare):
            statements.append(LegacyStatement("table", m.group(1), m.group(1), sql.strip()))
        elif m := _CREATE_INDEX_RE.search(bare):
            statements.append(LegacyStatement("index", m.group(1), m.group(2), sql.strip()))
        elif m := _CREATE_TRIGGER_RE.search(bare):
            statements.append(LegacyStatement("trigger", m.group(1), m.group(2), sql.strip()))
        else:
            raise StoreError(f"unexpected statement in legacy_schema.sql: {bare.strip()[:60]}")
    if "".join(pending).strip():
        raise StoreError("legacy_schema.sql ends inside an unfinished statement")
    return tuple(statements)


def new_agency_database(path: Path) -> Path:
    """A new SQLite file with the agency schema (the legacy DDL), migrated: no rows of its own."""
    import sqlite3

    if path.exists():
        raise StoreError(f"{path} exists: a new database goes to a new path")
    con = sqlite3.connect(path)
    try:
        for statement in legacy_ddl():
            con.execute(statement.sql)
        con.commit()
    finally:
        con.close()
    store = open_store(str(path))
    try:
        store.migrate()
    finally:
        store.close()
    return path


_LOCK_MESSAGES = ("database is locked", "database table is locked", "busy")
_MAX_RETRY_DELAY = 2.0


def is_lock_error(exc: OperationalError) -> bool:
    message = str(exc.orig if exc.orig is not None else exc).lower()
    return any(text in message for text in _LOCK_MESSAGES)


# PostgreSQL's SQLSTATE for "disk full" (class 53, insufficient resources).
_PG_DISK_FULL = "53100"


def is_disk_full(exc: DBAPIError) -> bool:
    """The database could not grow: SQLITE_FULL (a full disk, or ``max_page_count``), or
    PostgreSQL's disk_full."""
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF == sqlite3.SQLITE_FULL
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return state == _PG_DISK_FULL


def _is_lost_savepoint(exc: BaseException) -> bool:
    return "no such savepoint" in str(getattr(exc, "orig", None) or exc).lower()


def unmasked_error(exc: DBAPIError) -> DBAPIError:
    """The error that made a savepoint vanish, when ``exc`` is the failed rollback to it.

    SQLite rolls a whole transaction back on some errors (SQLITE_FULL outside a
    statement journal); its savepoints go with it, and SQLAlchemy's rollback to
    the savepoint then raises "no such savepoint", with the real error only in
    the exception's context.  Any other error is returned as it is.
    """
    if not _is_lost_savepoint(exc):
        return exc
    seen: set[int] = set()
    cause: BaseException | None = exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, DBAPIError) and not _is_lost_savepoint(cause):
            return cause
        cause = cause.__context__
    return exc


def run_with_retry(
    fn: Callable[[], T],
    *,
    attempts: int = 8,
    first_delay: float = 0.05,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``fn()``, called again after a growing pause while the database is locked.

    ``fn`` must be a whole transaction: a failed attempt has been rolled back,
    so calling it again is safe.  Any other error, or the lock error of the
    last attempt, propagates; an error a lost savepoint masked propagates as
    itself (``unmasked_error``), not as "no such savepoint".
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except OperationalError as exc:
            real = unmasked_error(exc)
            locked = isinstance(real, OperationalError) and is_lock_error(real)
            if attempt == attempts or not locked:
                if real is exc:
                    raise
                raise real from None
        sleep(delay)
        delay = min(delay * 2, _MAX_RETRY_DELAY)
    raise AssertionError("unreachable")  # the loop returns or raises


def error_line(exc: BaseException) -> str:
    """The first line of a database error's own message (without SQLAlchemy's SQL and link)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_sqlite_file(path: Path, create: bool) -> None:
    """Refuse, in words, a path that cannot be an SQLite database."""
    if path.is_dir():
        raise StoreError(f"not a database file but a directory: {path}")
    if not path.exists():
        if not create:
            raise StoreError(f"database not found: {path}")
        if not path.parent.is_dir():
            raise StoreError(f"directory not found for new database: {path}")
        return
    try:
        with path.open("rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StoreError(f"cannot read database {path}: {exc.strerror or exc}") from exc
    # SQLite treats an empty file as an empty database.
    if header and header != SQLITE_HEADER:
        raise StoreError(f"not an SQLite database: {path}")


class Store:
    """An opened agency database."""

    def __init__(self, engine: Engine, target: str, path: Path | None, read_only: bool = False) -> None:
        self.engine = engine
        self.url: URL = engine.url
        self.target = target
        self.path = path
        self.is_sqlite = engine.dialect.name == "sqlite"
        self.read_only = read_only

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    def reopen_target(self) -> str | None:
        """What ``open_store`` takes to open this database again with connections of
        its own (e.g. in another process); None for an in-memory SQLite database,
        which no other engine can see.  It may hold a password: never print it."""
        if self.is_sqlite and self.path is None:
            return None
        return self.url.render_as_string(hide_password=False)

    def migrate(self) -> list[str]:
        """Add what the scheduler needs; one line per change, [] when up to date.

        Idempotent, and never deletes or rewrites a row of an agency table.
        A database that is not recognised as an agency's is refused before
        anything is written to it, the switch to WAL journaling included.
        """
        if self.read_only:
            raise StoreError(f"{self.target} is opened read-only: it cannot be migrated")
        if self.engine.dialect.name not in (SQLITE, POSTGRESQL):
            raise StoreError(f"{self.target}: migrating is implemented for SQLite and PostgreSQL only")
        try:
            planned = run_with_retry(self._plan_readonly)  # raises StoreError when refused
            if self.is_sqlite:
                # Before the tables and indexes: a long index build then blocks no reader.
                run_with_retry(self._use_wal)
            if not planned:
                return []
            return run_with_retry(self._migrate_locked)
        except DBAPIError as exc:  # a lock held past the retries, a read-only file, ...
            if is_disk_full(exc):
                raise StoreError(f"disk full writing {self.target}: {error_line(exc)}") from exc
            raise StoreError(f"cannot migrate {self.target}: {error_line(exc)}") from exc

    def _use_wal(self) -> None:
        """Switch the file to WAL journaling (readers and the writer do not block each other)."""
        # Not through a Connection: SQLAlchemy would begin a transaction, and the
        # journal mode cannot change inside one.
        raw = self.engine.raw_connection()
        statement = "PRAGMA journal_mode"
        try:
            cursor = raw.cursor()
            try:
                mode = str(cursor.execute(statement).fetchone()[0]).lower()
                # An in-memory database has the journal mode 'memory' for good.
                if mode not in ("wal", "memory"):
                    statement = "PRAGMA journal_mode=WAL"
                    cursor.execute(statement)
            finally:
                cursor.close()
        except sqlite3.Error as exc:
            # As SQLAlchemy would raise it, so run_with_retry knows a lock.
            raise DBAPIError.instance(statement, None, exc, sqlite3.Error) from exc
        finally:
            raw.close()

    def _migration(self, conn: Connection) -> _SqliteMigration:
        if self.is_sqlite:
            return _SqliteMigration(conn, self.target)
        return _PostgresMigration(conn, self.target)

    def _plan_readonly(self) -> list[str]:
        with self.engine.connect() as conn:
            return self._migration(conn).plan()

    def _migrate_locked(self) -> list[str]:
        with self.engine.connect() as conn:
            # Take the write lock first so two workers starting together
            # cannot both decide to create the same table.
            conn.execution_options(sqlite_begin="IMMEDIATE")
            migration = self._migration(conn)
            migration.lock()
            done = migration.apply()
            conn.commit()
            return done


class _SqliteMigration:
    """What an SQLite database lacks, found and added over one connection."""

    # An SQLite database is the agency's own: one without contacts is a wrong path.
    creates_agency_tables = False

    def __init__(self, conn: Connection, target: str) -> None:
        self.conn = conn
        self.target = target

    def _names(self, kind: str) -> set[str]:
        rows = self.conn.execute(
            sa.text("SELECT name FROM sqlite_master WHERE type = :kind"), {"kind": kind}
        )
        return {row[0] for row in rows}

    def _columns(self, table: str) -> set[str]:
        # PRAGMA takes no parameters; table names come from our constants.
        return {row[1] for row in self.conn.exec_driver_sql(f"PRAGMA table_info({table})")}

    def _zip_rows_count(self) -> int:
        return int(
            self.conn.execute(sa.text(f"SELECT count(*) FROM {ZIP_STATES_TABLE}")).scalar_one()
        )

    def lock(self) -> None:
        """Nothing to do: BEGIN IMMEDIATE took the write lock."""

    def _table_sql(self, statement: LegacyStatement) -> list[str]:
        return [statement.sql]

    def _column_type(self, sql_type: str) -> str:
        return sql_type

    def _mw_table_sql(self, sql: str) -> str:
        return sql

    def _mw_indexes(self) -> tuple[tuple[str, str], ...]:
        return MW_INDEXES

    def plan(self) -> list[str]:
        """The changes apply() would make, without making them."""
        return self._run(dry=True)

    def apply(self) -> list[str]:
        return self._run(dry=False)

    def _exec(self, dry: bool, sql: str) -> None:
        if not dry:
            self.conn.exec_driver_sql(sql)

    def _run(self, dry: bool) -> list[str]:
        done: list[str] = []
        tables = self._names("table")
        if "contacts" not in tables and not self.creates_agency_tables:
            raise StoreError(f"{self.target} has no 'contacts' table: not an agency database")
        lacking = sorted(CONTACT_COLUMNS - self._columns("contacts")) if "contacts" in tables else []
        if lacking:
            raise StoreError(
                f"{self.target}: table 'contacts' lacks column(s) {', '.join(lacking)}"
                ": not an agency database"
            )

        statements = legacy_ddl()
        missing = {s.table for s in statements if s.kind == "table" and s.table not in tables}
        for s in statements:
            if s.table not in missing or s.name == LEGACY_UNIQUE_INDEX:
                continue
            for sql in self._table_sql(s):
                self._exec(dry, sql)
            done.append(
                f"created {s.kind} {s.name}" + ("" if s.kind == "table" else f" on {s.table}")
            )

        for table, column, sql_type in ADDED_COLUMNS:
            if dry and table in missing:
                # Not created yet in a dry run: read its columns from the DDL.
                legacy = next(s.sql for s in statements if s.kind == "table" and s.name == table)
                have = set(_declared_columns(legacy))
            else:
                have = self._columns(table)
            if column in have:
                continue
            self._exec(dry, f"ALTER TABLE {table} ADD COLUMN {column} {self._column_type(sql_type)}")
            done.append(f"added column {table}.{column} {sql_type}")

        for name, sql in MW_TABLES:
            if name not in tables:
                self._exec(dry, self._mw_table_sql(sql))
                done.append(f"created table {name}")

        indexes = self._names("index")
        if LEGACY_UNIQUE_INDEX in indexes:
            self._exec(dry, f"DROP INDEX {LEGACY_UNIQUE_INDEX}")
            done.append(
                f"dropped legacy unique index {LEGACY_UNIQUE_INDEX}"
                " (contact_id, email_type, event_year): replaced by mw_email_schedules_key"
            )
        for name, sql in self._mw_indexes():
            if name not in indexes:
                self._exec(dry, sql)
                done.append(f"created index {name}")

        expected = len(zip_states())
        if ZIP_STATES_TABLE not in tables:
            self._exec(
                dry,
                self._mw_table_sql(
                    f"CREATE TABLE {ZIP_STATES_TABLE} (zip5 TEXT PRIMARY KEY, state TEXT NOT NULL)"
                ),
            )
            done.append(f"created table {ZIP_STATES_TABLE}")
            have_rows = 0
        else:
            have_rows = self._zip_rows_count()
        if have_rows != expected:
            if not dry:
                self._fill_zip_states()
            done.append(f"filled {ZIP_STATES_TABLE} with {expected} ZIP codes")
        return done

    def _fill_zip_states(self) -> None:
        # Our own reference table, not agency data: replacing it is safe.
        zip_table = sa.table(ZIP_STATES_TABLE, sa.column("zip5"), sa.column("state"))
        self.conn.execute(sa.delete(zip_table))
        rows = [{"zip5": z, "state": s} for z, s in sorted(zip_states().items())]
        self.conn.execute(sa.insert(zip_table), rows)


# The legacy DDL in PostgreSQL's words.  Dates and times stay TEXT, as SQLite
# stores them, so they read back as the same strings and compare as text;
# every TEXT column sorts by code point (COLLATE "C", SQLite's BINARY), so
# ORDER BY and ranges (the checksum, month-day scans) agree with SQLite
# whatever the database's locale.  Booleans stay 0/1 integers, as the code
# writes them.  Foreign keys are left out: SQLite runs with them off, and the
# scheduler relies on that (config-only campaign types have no campaign_types
# row; a contact's deletion must neither cascade onto its history nor fail on
# its campaign targets).
_PG_TYPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Defaults first: datetime('now') is no DATETIME column.
    (re.compile(r"\bDEFAULT\s+(?:CURRENT_TIMESTAMP|\(datetime\('now'\)\))"), f"DEFAULT ({_PG_NOW})"),
    (re.compile(r"\bDEFAULT\s+TRUE\b"), "DEFAULT 1"),
    (re.compile(r"\bDEFAULT\s+FALSE\b"), "DEFAULT 0"),
    (
        re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"),
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    (re.compile(r"\b(?:DATETIME|DATE)\b"), "TEXT"),
    (re.compile(r"\bTEXT\b"), 'TEXT COLLATE "C"'),
    (re.compile(r"\b(?:INTEGER|BOOLEAN)\b"), "BIGINT"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (
        re.compile(
            r",\s*FOREIGN\s+KEY\s*\([^)]*\)\s*REFERENCES\s+\w+\s*\([^)]*\)(?:\s+ON\s+DELETE\s+\w+)?"
        ),
        "",
    ),
    (re.compile(r"\s+REFERENCES\s+\w+\s*\([^)]*\)"), ""),
)


def postgres_column_sql(sqlite_sql: str) -> str:
    """A CREATE TABLE or a column type of ours or the legacy DDL, for PostgreSQL."""
    sql = _LINE_COMMENT_RE.sub("", sqlite_sql)
    for pattern, replacement in _PG_TYPES:
        sql = pattern.sub(replacement, sql)
    return sql.strip().rstrip(";")


def postgres_legacy_sql(statement: LegacyStatement) -> list[str]:
    """One statement of the legacy DDL as PostgreSQL statements."""
    if statement.kind == "table":
        return [postgres_column_sql(statement.sql)]
    if statement.kind == "index":
        return [_LINE_COMMENT_RE.sub("", statement.sql).strip().rstrip(";")]
    # The one legacy trigger stamps updated_at on every update; PostgreSQL
    # does it in a BEFORE trigger (no second UPDATE per row).
    if "SET updated_at = CURRENT_TIMESTAMP" not in statement.sql:
        raise StoreError(f"no PostgreSQL form for legacy trigger {statement.name}")
    function = f"mw_{statement.name}"
    return [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN NEW.updated_at := {_PG_NOW}; RETURN NEW; END $$",
        f"CREATE TRIGGER {statement.name} BEFORE UPDATE ON {statement.table} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()",
    ]


# Any constant: the key of the advisory lock that serializes migrations.
_PG_MIGRATION_LOCK = 0x6D77_6D69


class _PostgresMigration(_SqliteMigration):
    """What a PostgreSQL database (its current schema) lacks, found and added over one connection."""

    # No agency has a PostgreSQL database of its own yet: an empty one gets every table.
    creates_agency_tables = True

    def lock(self) -> None:
        # Held until commit: a second worker waits, then finds nothing to do.
        self.conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})

    def _names(self, kind: str) -> set[str]:
        sql = {
            "table": "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()",
            "index": "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()",
        }[kind]
        return {row[0] for row in self.conn.execute(sa.text(sql))}

    def _columns(self, table: str) -> set[str]:
        rows = self.conn.execute(
            sa.text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = :t"
            ),
            {"t": table},
        )
        return {row[0] for row in rows}

    def _table_sql(self, statement: LegacyStatement) -> list[str]:
        return postgres_legacy_sql(statement)

    def _column_type(self, sql_type: str) -> str:
        return postgres_column_sql(sql_type)

    def _mw_table_sql(self, sql: str) -> str:
        return postgres_column_sql(sql)

    def _mw_indexes(self) -> tuple[tuple[str, str], ...]:
        return mw_indexes(POSTGRESQL)


def _declared_columns(create_table_sql: str) -> list[str]:
    """Column names of a CREATE TABLE statement of the legacy DDL."""
    body = _LINE_COMMENT_RE.sub("", create_table_sql)
    body = body[body.index("(") + 1 : body.rindex(")")]
    names: list[str] = []
    for part in body.split(","):
        word = part.strip().split(None, 1)
        if word and word[0].upper() not in {"FOREIGN", "UNIQUE", "PRIMARY", "CHECK", "CONSTRAINT"}:
            names.append(word[0])
    return names


def _on_sqlite_connect(busy_timeout_ms: int, read_only: bool = False) -> Callable[[Any, Any], None]:
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling issues BEGIN only before the first
        # INSERT/UPDATE/DELETE, so a SAVEPOINT coming first starts the transaction
        # itself and its RELEASE commits: writes meant to be one transaction were
        # committed piecemeal (found by the SIGKILL test of the stream worker).
        # SQLAlchemy drives BEGIN instead (``_on_sqlite_begin``).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # Settings of this connection only: nothing here writes to the file
            # (the switch to WAL belongs to the migration, once the file is known).
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms:d}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Explicitly off: the legacy email_schedules foreign key cascades
            # a contact's deletion onto its sent history.
            cursor.execute("PRAGMA foreign_keys=OFF")
            if read_only:
                # Besides mode=ro: an immutable copy is read without locks, and
                # no statement of ours may write to it either.
                cursor.execute("PRAGMA query_only=ON")
        finally:
            cursor.close()

    return set_pragmas


def _on_sqlite_begin(conn: Connection) -> None:
    """Every transaction starts with an explicit BEGIN; ``sqlite_begin="IMMEDIATE"``
    (an execution option) takes the write lock at once."""
    mode = conn.get_execution_options().get("sqlite_begin", "")
    conn.exec_driver_sql(f"BEGIN {mode}".strip())


def _on_postgres_connect_read_only(dbapi_connection: Any, _record: Any) -> None:
    # A session setting, committed so that no later rollback undoes it.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET SESSION default_transaction_read_only = on")
    finally:
        cursor.close()
    dbapi_connection.commit()


_WAL_FORMAT = 2  # bytes 18 and 19 of an SQLite header: 1 rollback journal, 2 WAL


def _unwritable_wal_copy(path: Path) -> bool:
    """A WAL-mode file that SQLite can only read without locks (``immutable``).

    Reading a WAL-mode file needs its ``-shm`` file, created beside it when
    missing; in a directory we cannot write, without ``-wal`` and ``-shm``
    files, that is impossible, and nothing can be in a ``-wal`` file either:
    the file is a closed copy.
    """
    try:
        with path.open("rb") as f:
            header = f.read(20)
    except OSError:
        return False
    if len(header) < 20 or header[18] != _WAL_FORMAT:
        return False
    siblings = (path.with_name(path.name + suffix) for suffix in ("-wal", "-shm"))
    return not os.access(path.parent, os.W_OK) and not any(p.exists() for p in siblings)


def _sqlite_read_only_url(url: URL, path: Path | None) -> URL:
    """``url`` opened through an SQLite URI with ``mode=ro``."""
    query = {k: v for k, v in url.query.items() if k not in ("mode", "uri")}
    query.update(mode="ro", uri="true")
    if path is None:
        database = url.database or ""
        if not database.startswith("file:"):
            return url  # in memory: nothing to protect but query_only
        return url.set(query=query)
    if _unwritable_wal_copy(path):
        query["immutable"] = "1"
    # SQLite decodes %HH in a URI's path; '?' and '#' would end it.
    return url.set(database="file:" + quote(str(path.absolute()), safe="/"), query=query)


def open_store(
    target: str, *, create: bool = False, busy_timeout_ms: int = 30000, read_only: bool = False
) -> Store:
    """Open the database at a filesystem path or SQLAlchemy URL.

    A missing SQLite file is an error unless ``create``.  Every SQLite
    connection gets a busy timeout, synchronous=NORMAL and foreign keys off
    (WAL journaling comes with ``Store.migrate``).  Transactions begin with
    an explicit BEGIN (pysqlite's own handling is off), so
    ``engine.begin()`` blocks, savepoints included, commit or roll back as a
    whole.

    ``read_only``: nothing is ever written through this store, and it cannot
    be migrated (see the module docstring); for ``checksum``, ``explain`` and
    other commands that only read, so an auditor's read-only copy works too.
    """
    if read_only and create:
        raise StoreError(f"{target}: a database opened read-only cannot be created")
    path: Path | None = None
    if "://" in target:
        try:
            url = make_url(target)
        except ArgumentError as exc:
            raise StoreError(f"not a database URL: {target}") from exc
        label = url.render_as_string(hide_password=True)
        database = url.database or ""
        is_file = database not in ("", ":memory:") and not database.startswith("file:")
        if url.get_backend_name() == "sqlite" and is_file:
            path = Path(database)
            _check_sqlite_file(path, create)
    else:
        path = Path(target)
        label = target
        _check_sqlite_file(path, create)
        url = URL.create("sqlite+pysqlite", database=str(path))
    if read_only and url.get_backend_name() == "sqlite":
        url = _sqlite_read_only_url(url, path)

    try:
        engine = sa.create_engine(url)
    except (ImportError, ArgumentError) as exc:
        raise StoreError(f"cannot open {label}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect(int(busy_timeout_ms), read_only))
        event.listen(engine, "begin", _on_sqlite_begin)
    elif read_only and engine.dialect.name == POSTGRESQL:
        event.listen(engine, "connect", _on_postgres_connect_read_only)
    elif read_only:
        engine.dispose()
        raise StoreError(f"{label}: opening read-only is implemented for SQLite and PostgreSQL only")

    probe = "SELECT count(*) FROM sqlite_master" if engine.dialect.name == "sqlite" else "SELECT 1"

    def connect_once() -> None:
        with engine.connect() as conn:
            conn.exec_driver_sql(probe)

    try:
        # A database being switched to WAL by another process (its migration)
        # can refuse a connection at once, busy timeout or not.
        run_with_retry(connect_once)
    except DBAPIError as exc:
        engine.dispose()
        reason = error_line(exc)
        if "not a database" in reason:
            raise StoreError(f"not an SQLite database: {label}") from exc
        mode = " read-only" if read_only else ""
        raise StoreError(f"cannot open database {label}{mode}: {reason}") from exc
    return Store(engine, label, path, read_only)
