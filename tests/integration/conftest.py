"""Real SQLite databases in the legacy schema, for the sweep and CLI tests."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterable
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from synthetic.generate import generate_database

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


def dump(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


@pytest.fixture
def legacy_db(tmp_path: Path) -> Path:
    return make_legacy_db(tmp_path / "agency.db")


_GENERATED: dict[tuple[int, int], Path] = {}


@pytest.fixture(scope="session")
def generated_db_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int, int], Path]:
    """A generated database of N contacts, made once per session; tests get a copy."""

    def make(n: int, seed: int = 11) -> Path:
        key = (n, seed)
        if key not in _GENERATED:
            target = tmp_path_factory.mktemp("gen") / f"gen-{n}-{seed}.db"
            generate_database(str(target), n, seed=seed, as_of=date(2026, 3, 10))
            _GENERATED[key] = target
        return _GENERATED[key]

    return make


@pytest.fixture
def generated_copy(
    tmp_path: Path, generated_db_factory: Callable[[int, int], Path]
) -> Callable[..., Path]:
    counter = iter(range(1000))

    def copy(n: int = 3000, seed: int = 11) -> Path:
        src = generated_db_factory(n, seed)
        dst = tmp_path / f"copy-{next(counter)}.db"
        shutil.copyfile(src, dst)
        return dst

    return copy
