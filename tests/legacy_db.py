"""Real SQLite databases in the legacy schema, for the sweep and CLI tests: made, filled
and read back. The fixtures built on them (``legacy_db``, ``generated_copy``) are in
``tests/conftest.py``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

LEGACY_DDL = resources.files("streams").joinpath("sql/legacy_schema.sql").read_text()

CONTACT_FIELDS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "zip_code",
    "state",
    "birth_date",
    "effective_date",
    "phone_number",
)


def make_legacy_db(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.executescript(LEGACY_DDL)
    con.commit()
    con.close()
    return path


def add_contacts(path: Path, contacts: Iterable[dict[str, Any]]) -> None:
    con = sqlite3.connect(path)
    for c in contacts:
        row = {"first_name": "Pat", "last_name": "Doe", "phone_number": None, **c}
        row.setdefault("email", f"c{row['id']}@example.com")
        cols = [f for f in CONTACT_FIELDS if f in row]
        con.execute(
            f"INSERT INTO contacts ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
            [row[f] for f in cols],
        )
    con.commit()
    con.close()


def add_schedule_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    con = sqlite3.connect(path)
    for r in rows:
        cols = list(r)
        con.execute(
            f"INSERT INTO email_schedules ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
            [r[c] for c in cols],
        )
    con.commit()
    con.close()


def copy_database(src: Path, dst: Path) -> None:
    """A consistent copy of an SQLite file, what its WAL holds included (SQLite's backup API)."""
    dst.unlink(missing_ok=True)
    source, target = sqlite3.connect(src), sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


def dump(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()
