"""The database shell: open an agency database, retry what a lock refused, name errors.

Agencies run the scheduler on the SQLite database they already have (SPEC
section 10).  ``open_store`` opens it with the connection settings the
scheduler relies on, and ``Store.migrate`` (``streams.store.migrations``)
adds the tables, columns and indexes the scheduler needs without ever
touching an existing row of an agency table.  The tables are declared in
``streams.store.tables``; what SQLite and PostgreSQL spell differently is in
``streams.store.dialects``.

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

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self, TypeVar
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from streams.store.dialects import POSTGRESQL, SQLITE

logger = logging.getLogger(__name__)

T = TypeVar("T")

SQLITE_HEADER = b"SQLite format 3\x00"


class StoreError(Exception):
    """A database problem explained in one line that names the database or table."""


def new_agency_database(path: Path) -> Path:
    """A new SQLite file with the agency schema as agencies have it (tables.py), migrated: no rows of its own."""
    if path.exists():
        raise StoreError(f"{path} exists: a new database goes to a new path")
    con = sqlite3.connect(path)
    try:
        from streams.store.ddl import legacy_schema_sql  # only a new database needs it

        for statement in legacy_schema_sql(SQLITE):
            con.execute(statement)
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


# PostgreSQL's SQLSTATEs of a transaction that lost to another and may simply run again
# (issue 16: several workers and a sweep on one database): a deadlock, which PostgreSQL
# breaks by failing one side, and a serialization failure.
PG_TRY_AGAIN = {"40P01": "deadlock", "40001": "serialization failure"}


def pg_try_again(exc: OperationalError) -> str | None:
    """What PostgreSQL failed this transaction for, when running it again is the answer."""
    return PG_TRY_AGAIN.get(str(getattr(exc.orig, "sqlstate", None) or ""))


def is_lock_error(exc: OperationalError) -> bool:
    if pg_try_again(exc) is not None:
        return True
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
            lost = pg_try_again(exc)
            if lost is not None:  # rare, and worth knowing about: the database said so
                logger.warning("%s: transaction run again (attempt %d of %d)", lost, attempt + 1, attempts)
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
        if self.is_sqlite and (self.path is None or str(self.path) == ":memory:"):
            return None  # (":memory:" given as a path is no file either)
        return self.url.render_as_string(hide_password=False)

    def migrate(self) -> list[str]:
        """Add what the scheduler needs; one line per change, [] when up to date
        (``streams.store.migrations``)."""
        # Imported here: the migrations build on this module (StoreError, run_with_retry).
        from streams.store.migrations import migrate

        return migrate(self)


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
