"""What SQLite and PostgreSQL spell differently: one function or type per difference.

Each function takes the dialect's name (``conn.dialect.name``); SQLite's
spelling is the default.  The store was written for SQLite, the agencies'
database, and runs on PostgreSQL with these choices:

- Dates and times stay text, as SQLite stores them, so they read back as the
  same strings and compare as text (``STAMP``, ``DAY``, ``now_sql``).
- Every text column sorts by code point (``COLLATE "C"``, SQLite's BINARY), so
  ORDER BY and ranges (the checksum, month-day scans) agree with SQLite
  whatever the database's locale (``TEXT``).
- Booleans stay 0/1 integers, as the code writes them (``FLAG``,
  ``flag_set_sql``).
- No foreign keys: SQLite runs with them off, and the scheduler relies on
  that (config-only campaign types have no campaign_types row; a contact's
  deletion must neither cascade onto its history nor fail on its campaign
  targets).  ``streams.store.ddl`` leaves them out of PostgreSQL's tables.
- Ids the database numbers are identity columns (``ROW_ID``), and an id an
  event chose moves the counter past it (``follow_chosen_ids``).
- The legacy trigger that stamps ``updated_at`` is a BEFORE UPDATE trigger
  (``stamp_trigger_sql``): no second UPDATE per row.

Two differences SQLAlchemy spells itself: "equal, NULL matching NULL"
(``is_not_distinct_from``: SQLite's IS, PostgreSQL's IS NOT DISTINCT FROM)
and INSERT ... ON CONFLICT (``upsert``, each dialect's own construct).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import DefaultClause
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, ColumnElement, TextClause
from sqlalchemy.types import UserDefinedType

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.engine import Dialect

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

# The text written for "now": SQLite's CURRENT_TIMESTAMP ('YYYY-MM-DD HH:MM:SS',
# UTC), the form every stored time has (streams.worker.ingest.stored_time).  PostgreSQL's
# CURRENT_TIMESTAMP would be written in the session's time zone, with fractions
# and an offset, and would then compare wrongly as text.
_PG_NOW = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"

# A column, optionally qualified by its table or alias (c.birth_date).
_IDENTIFIER_RE = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*")


def now_sql(dialect: str = SQLITE) -> str:
    """SQL for the current UTC time as stored text."""
    return _PG_NOW if dialect == POSTGRESQL else "CURRENT_TIMESTAMP"


def stored_now(dialect: str = SQLITE) -> ColumnElement[str]:
    """``now_sql`` as a value of an INSERT or UPDATE built with SQLAlchemy Core."""
    return sa.literal_column(now_sql(dialect))


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
    too), and the indexes are declared with it (``MonthDayOf``).  The trim set
    is rules.zip_state.BLANKS, so SQL and Python read a field alike.
    """
    if not _IDENTIFIER_RE.fullmatch(column):
        raise ValueError(f"not a column name: {column!r}")
    return f"substr({trim_blanks_sql(column, dialect)}, 6, 5)"


def upsert(table: sa.Table, dialect: str = SQLITE) -> sqlite.Insert | postgresql.Insert:
    """An INSERT that can take ON CONFLICT: both dialects have it, each in a construct of its own."""
    # PostgreSQL's constructs are imported when first asked for: loading that dialect costs
    # an SQLite-only command (explain, checksum) 30-40 ms of its start.
    from sqlalchemy.dialects import postgresql

    return postgresql.insert(table) if dialect == POSTGRESQL else sqlite.insert(table)


@functools.cache
def _named_parameters(dialect: str) -> Dialect:
    if dialect == POSTGRESQL:
        from sqlalchemy.dialects import postgresql

        return postgresql.dialect(paramstyle="named")
    return sqlite.dialect(paramstyle="named")


def as_text(statement: ClauseElement, dialect: str, columns: Sequence[str]) -> TextClause:
    """``statement`` (an INSERT of ``columns``) compiled for the dialect, as text binding each
    column's value by the column's name.

    SQLAlchemy 2.0 keeps the dialects' INSERT ... ON CONFLICT out of its statement
    cache and compiles it again at every execution, which costs the agents more
    than the write; compiled once (callers keep the result per dialect), the text
    is cached like any other.
    """
    compiled = statement.compile(dialect=_named_parameters(dialect), column_keys=list(columns))
    return sa.text(str(compiled))


def follow_chosen_ids(conn: Connection, table: str) -> None:
    """After rows were inserted with ids of the caller's choosing, number new rows after them.

    SQLite's AUTOINCREMENT does so by itself; PostgreSQL's identity counter
    does not see an id it did not hand out, and would hand it out again.
    """
    if conn.dialect.name == POSTGRESQL:
        conn.execute(
            sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        )


def defer_foreign_keys(conn: Connection) -> None:
    """Where foreign keys are enforced (an SQLite connection with them on), check them at commit.

    The scheduler runs SQLite with foreign keys off and PostgreSQL without
    them; a connection opened otherwise must not fail in the middle of a
    delete the scheduler makes.
    """
    if conn.dialect.name == SQLITE and conn.exec_driver_sql("PRAGMA foreign_keys").scalar():
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")


def stamp_trigger_sql(name: str, table: str, column: str, key: str, dialect: str = SQLITE) -> list[str]:
    """The statements that create trigger ``name``: ``column`` stamped with the time of every update.

    SQLite's is the agencies' own (legacy/schema.sql), word for word; it
    updates the row a second time.  PostgreSQL sets the column in a BEFORE
    trigger, through a function of its own.
    """
    if dialect == POSTGRESQL:
        function = f"mw_{name}"
        return [
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN NEW.{column} := {_PG_NOW}; RETURN NEW; END $$",
            f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {function}()",
        ]
    return [
        f"CREATE TRIGGER {name} AFTER UPDATE ON {table} FOR EACH ROW\n"
        f"BEGIN\n    UPDATE {table} SET {column} = CURRENT_TIMESTAMP WHERE {key} = OLD.{key};\nEND"
    ]


# --- column types: the legacy schema's words on SQLite, the choices above on PostgreSQL --------


class _Declared(UserDefinedType[Any]):
    """A column type by the name a CREATE TABLE declares; values pass as the driver gives them.

    SQLAlchemy's own DATETIME, DATE and BOOLEAN would convert values, and the
    legacy columns hold text as the agency wrote it (junk included).
    """

    cache_ok = True

    def __init__(self, name: str) -> None:
        self.name = name

    def get_col_spec(self, **_kw: Any) -> str:
        return self.name


_PG_TEXT = sa.Text(collation="C")

TEXT = sa.Text().with_variant(_PG_TEXT, POSTGRESQL)
WHOLE = sa.Integer().with_variant(sa.BigInteger(), POSTGRESQL)  # INTEGER
FLAG = _Declared("BOOLEAN").with_variant(sa.BigInteger(), POSTGRESQL)
STAMP = _Declared("DATETIME").with_variant(_PG_TEXT, POSTGRESQL)
DAY = _Declared("DATE").with_variant(_PG_TEXT, POSTGRESQL)
BYTES = sa.LargeBinary()  # BLOB, BYTEA
# The id an AUTOINCREMENT column gives; on PostgreSQL an identity column.  Spelled
# as the type because the legacy id is not declared NOT NULL (SQLite's PRAGMA says
# notnull 0), and SQLAlchemy would then write NULL beside IDENTITY, which
# PostgreSQL refuses.
ROW_ID = sa.Integer().with_variant(_Declared("BIGINT GENERATED BY DEFAULT AS IDENTITY"), POSTGRESQL)


def as_stored(type_: Any) -> Any:
    """``type_`` on PostgreSQL; on SQLite a column without affinity (declared BLOB), which
    keeps a value copied from another column exactly as stored there, whatever that
    column was declared as in the agency's own schema."""
    return type_.with_variant(_Declared("BLOB"), SQLITE)


# --- column defaults ---------------------------------------------------------------------


class _SpelledDefault(ClauseElement):
    """A column default each dialect spells its own way."""

    inherit_cache = False  # DDL only: never part of a cached statement

    def __init__(self, sqlite_sql: str, postgresql_sql: str) -> None:
        self.sqlite_sql = sqlite_sql
        self.postgresql_sql = postgresql_sql


@compiles(_SpelledDefault)
def _spell_default(element: _SpelledDefault, compiler: SQLCompiler, **_kw: Any) -> str:
    return element.postgresql_sql if compiler.dialect.name == POSTGRESQL else element.sqlite_sql


def now_default(sqlite_sql: str = "CURRENT_TIMESTAMP") -> DefaultClause:
    """DEFAULT now, as stored text; ``sqlite_sql``: the column's legacy spelling of it."""
    return DefaultClause(_SpelledDefault(sqlite_sql, f"({_PG_NOW})"))


def flag_default(value: bool) -> DefaultClause:
    """A legacy BOOLEAN's DEFAULT TRUE or FALSE (1 or 0 on PostgreSQL)."""
    return DefaultClause(_SpelledDefault("TRUE", "1") if value else _SpelledDefault("FALSE", "0"))


class MonthDayOf(ColumnElement[str]):
    """``month_day_sql`` of a column, as the expression of an index."""

    inherit_cache = False  # DDL only
    type = sa.Text()

    def __init__(self, column: sa.Column[Any]) -> None:
        self.column = column

    def get_children(self, **_kw: Any) -> list[sa.Column[Any]]:
        return [self.column]  # so the index finds its table


@compiles(MonthDayOf)
def _month_day_of(element: MonthDayOf, compiler: SQLCompiler, **_kw: Any) -> str:
    return month_day_sql(element.column.name, compiler.dialect.name)
