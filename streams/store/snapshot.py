"""A copy of a whole agency database as an SQLite file: the audit baseline's snapshot.

An SQLite database is copied with ``VACUUM INTO`` (one consistent read, while
other connections go on writing).  A PostgreSQL database is copied table by
table into a fresh SQLite file with the agency schema, in one repeatable-read
transaction, so the copy is of one moment too.  Either way the copy has every
agency table and the scheduler's own (``mw_*``), history included, and the
same schedule checksum (the checksum is the same on both dialects).
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from sqlalchemy import Connection, inspect, text

from streams.store.engine import Store, StoreError, new_agency_database
from streams.store.tables import mw_changed

_PAGE = 5000


def snapshot_to_sqlite(store: Store, path: Path) -> None:
    """Write the database behind ``store`` to the new SQLite file ``path``."""
    if path.exists():
        raise StoreError(f"{path} exists: a snapshot is written to a new file")
    path.parent.mkdir(parents=True, exist_ok=True)
    if store.is_sqlite:
        raw = store.engine.raw_connection()  # VACUUM runs outside any transaction
        try:
            raw.driver_connection.execute("VACUUM INTO ?", (str(path),))  # type: ignore[union-attr]
        finally:
            raw.close()
        return
    _new_agency_file(path)
    target = sqlite3.connect(path)
    try:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            tables = _tables(conn)
            for table in tables:
                if table != mw_changed.name:
                    _copy_table(conn, target, table)
            # The copy's inserts fired the change-mark triggers: its marks are the source's.
            target.execute(f"DELETE FROM {mw_changed.name}")
            if mw_changed.name in tables:
                _copy_table(conn, target, mw_changed.name)
        target.commit()
    finally:
        target.close()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def _new_agency_file(path: Path) -> None:
    new_agency_database(path)
    con = sqlite3.connect(path)
    try:  # the copy brings its own rows, the ZIP table included
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            if not str(name).startswith("sqlite_"):
                con.execute(f'DELETE FROM "{name}"')
        con.commit()
    finally:
        con.close()


def _tables(conn: Connection) -> list[str]:
    return sorted(inspect(conn).get_table_names())


def _copy_table(conn: Connection, target: sqlite3.Connection, table: str) -> None:
    have = {r[1] for r in target.execute(f'PRAGMA table_info("{table}")')}
    if not have:
        return  # a table of the agency's own that the scheduler never reads
    columns = [c["name"] for c in inspect(conn).get_columns(table) if c["name"] in have]
    names = ", ".join(f'"{c}"' for c in columns)
    result = conn.execution_options(yield_per=_PAGE).execute(text(f'SELECT {names} FROM "{table}"'))
    insert = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" for _ in columns)})'
    for part in result.partitions():
        target.executemany(insert, [tuple(r) for r in part])
