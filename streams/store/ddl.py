"""The CREATE and ALTER statements of ``streams.store.tables``' objects, in each dialect's words.

SQLAlchemy compiles the objects for SQLite or PostgreSQL; the spelling of
types and defaults comes with them (``streams.store.dialects``).  PostgreSQL's
tables get no foreign keys (see ``streams.store.dialects``).  Nothing here
reads legacy/schema.sql: the objects are the schema.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from sqlalchemy import Column, Connection, Index, Table
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateColumn, CreateIndex, CreateTable

from streams.store.dialects import POSTGRESQL, SQLITE, stamp_trigger_sql
from streams.store.schedules import CHECKSUM_COLUMNS, OWNED_SQL
from streams.store.tables import (
    AGENCY_TABLES,
    LEGACY_INDEXES,
    LEGACY_TRIGGERS,
    QUIET_PREFIX,
    ChangeMark,
    StampTrigger,
    email_schedules,
    is_legacy,
    mw_schedule_deltas,
    mw_schedule_sum,
)


@lru_cache(maxsize=2)
def _dialect(name: str) -> Dialect:
    if name == SQLITE:
        return sqlite.dialect()
    if name == POSTGRESQL:
        from sqlalchemy.dialects import postgresql  # imported when needed: see dialects.upsert

        return postgresql.dialect()
    raise ValueError(f"no DDL for dialect {name!r}")


def create_table_sql(table: Table, dialect: str = SQLITE, *, legacy: bool = False) -> str:
    """CREATE TABLE for ``table``; ``legacy``: as agencies have it, without the scheduler's columns."""
    statement = CreateTable(table, include_foreign_key_constraints=None if dialect == SQLITE else [])
    if legacy:
        statement.columns = [c for c in statement.columns if is_legacy(c.element)]
    return str(statement.compile(dialect=_dialect(dialect))).strip()


def create_index_sql(index: Index, dialect: str = SQLITE) -> str:
    return str(CreateIndex(index).compile(dialect=_dialect(dialect))).strip()


def column_type_sql(column: Column[Any], dialect: str = SQLITE) -> str:
    """The column's declared type, e.g. ``TEXT`` (``TEXT COLLATE "C"`` on PostgreSQL)."""
    return str(column.type.compile(dialect=_dialect(dialect)))


def add_column_sql(column: Column[Any], dialect: str = SQLITE) -> str:
    """ALTER TABLE ... ADD COLUMN for a column of a table that lacks it."""
    definition = str(CreateColumn(column).compile(dialect=_dialect(dialect))).strip()
    return f"ALTER TABLE {column.table.name} ADD COLUMN {definition}"


def trigger_sql(trigger: StampTrigger, dialect: str = SQLITE) -> list[str]:
    return stamp_trigger_sql(trigger.name, trigger.table.name, trigger.column, trigger.key, dialect)


def change_mark_sql(mark: ChangeMark, dialect: str = SQLITE, present: set[str] | None = None) -> list[str]:
    """The statements that create a change-mark trigger (``tables.CHANGE_MARKS``);
    ``present``: the table's columns, when it may lack some of ``mark.changed``."""
    ids = {"INSERT": ("NEW",), "DELETE": ("OLD",), "UPDATE": ("NEW", "OLD")}[mark.event]
    column = mark.contact_column
    values = ", ".join(f"({side}.{column})" for side in ids)
    of = f" OF {', '.join(mark.columns)}" if mark.columns else ""
    when = mark.when
    changed = [c for c in mark.changed if present is None or c in present]
    if changed:
        unless = dict(mark.unless)
        when = " OR ".join(
            f"(NEW.{c} IS NOT OLD.{c} AND NOT ({unless[c]}))" if c in unless else f"NEW.{c} IS NOT OLD.{c}"
            for c in changed
        )
    if dialect == POSTGRESQL:
        if when is not None:  # SQLite's null-safe 'IS NOT x' is PostgreSQL's 'IS DISTINCT FROM x'
            when = re.sub(r"IS NOT (OLD\.\w+)", r"IS DISTINCT FROM \1", when)
        function = f"{mark.name}_fn"
        return [
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN INSERT INTO mw_changed (contact_id) VALUES {values}; RETURN NULL; END $$",
            f"CREATE TRIGGER {mark.name} AFTER {mark.event}{of} ON {mark.table.name} FOR EACH ROW"
            + (f" WHEN ({when})" if when else "")
            + f" EXECUTE FUNCTION {function}()",
        ]
    return [
        f"CREATE TRIGGER {mark.name} AFTER {mark.event}{of} ON {mark.table.name} FOR EACH ROW"
        + (f" WHEN {when}" if when else "")
        + f"\nBEGIN\n    INSERT INTO mw_changed (contact_id) VALUES {values};\nEND"
    ]


def schedule_delta_sql(name: str, event: str, dialect: str = SQLITE) -> list[str]:
    """The statements that create one of ``tables.SCHEDULE_DELTAS``: an owned row's change
    (``event``: INSERT, UPDATE or DELETE) appended to mw_schedule_deltas, the row as it was
    with sign -1 and as it is with sign +1.  An update that changes no checksum column (the
    ``updated_at`` stamp, a row's metadata) appends nothing: its two rows would cancel."""
    columns = ", ".join(CHECKSUM_COLUMNS)
    insert = f"INSERT INTO {mw_schedule_deltas.name} (sign, {columns})"

    def row(side: str) -> str:
        return ", ".join(f"{side}.{c}" for c in CHECKSUM_COLUMNS)

    if dialect == POSTGRESQL:
        changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in CHECKSUM_COLUMNS)
    else:
        # As the checksum sees them: 5 and 5.0 are equal to IS NOT, and so are texts that
        # differ in case only under a column's NOCASE collation (agencies declare their own).
        changed = " OR ".join(
            f"NEW.{c} IS NOT OLD.{c} COLLATE BINARY OR typeof(NEW.{c}) <> typeof(OLD.{c})" for c in CHECKSUM_COLUMNS
        )
    when = {
        "INSERT": f"NEW.status IN {OWNED_SQL}",
        "DELETE": f"OLD.status IN {OWNED_SQL}",
        "UPDATE": f"(OLD.status IN {OWNED_SQL} OR NEW.status IN {OWNED_SQL}) AND ({changed})",
    }[event]
    # Without a kept sum the next kept checksum reads the rows: nothing to append (a first
    # sweep drops the sum while it writes most of the schedule, checksum.kept_checksum).
    kept = f"EXISTS (SELECT 1 FROM {mw_schedule_sum.name})"
    table = email_schedules.name
    if event == "INSERT" and dialect != POSTGRESQL:
        # Nor the rows a sweep inserts while its 'quiet:' row says it sums them itself
        # (streams.store.own_inserts).
        kept += (
            f" AND NOT EXISTS (SELECT 1 FROM {mw_schedule_sum.name} "
            f"WHERE name = '{QUIET_PREFIX}' || NEW.scheduler_run_id)"
        )
    if dialect == POSTGRESQL:
        function = "mw_delta_email_schedules_fn"
        return [
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NOT {kept} THEN RETURN NULL; END IF; "
            f"IF TG_OP <> 'INSERT' AND OLD.status IN {OWNED_SQL} THEN {insert} VALUES (-1, {row('OLD')}); END IF; "
            f"IF TG_OP <> 'DELETE' AND NEW.status IN {OWNED_SQL} THEN {insert} VALUES (1, {row('NEW')}); END IF; "
            "RETURN NULL; END $$",
            f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION {function}()",
        ]
    body = {
        "INSERT": f"    {insert} VALUES (1, {row('NEW')});",
        "DELETE": f"    {insert} VALUES (-1, {row('OLD')});",
        "UPDATE": f"    {insert} SELECT -1, {row('OLD')} WHERE OLD.status IN {OWNED_SQL};\n"
        f"    {insert} SELECT 1, {row('NEW')} WHERE NEW.status IN {OWNED_SQL};",
    }[event]
    return [f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW WHEN ({when}) AND {kept}\nBEGIN\n{body}\nEND"]


def stored_trigger_sql(conn: Connection, name: str) -> str | None:
    """The statement that created trigger ``name``, as SQLite keeps it (None: no such trigger)."""
    found = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (name,)
    ).first()
    return None if found is None else str(found[0])


def drop_mark_sql(name: str, table: str, dialect: str = SQLITE) -> list[str]:
    """The statements that drop a change-mark trigger (and its function on PostgreSQL)."""
    if dialect == POSTGRESQL:
        return [f"DROP TRIGGER IF EXISTS {name} ON {table}", f"DROP FUNCTION IF EXISTS {name}_fn()"]
    return [f"DROP TRIGGER IF EXISTS {name}"]


def triggers_of(table: Table) -> tuple[StampTrigger, ...]:
    return tuple(t for t in LEGACY_TRIGGERS if t.table is table)


def legacy_indexes_of(table: Table) -> tuple[Index, ...]:
    return tuple(i for i in LEGACY_INDEXES if i.table is table)


def legacy_schema_sql(dialect: str = SQLITE) -> list[str]:
    """The agency schema as legacy/schema.sql has it: each table, its trigger, its indexes."""
    statements: list[str] = []
    for table in AGENCY_TABLES:
        statements.append(create_table_sql(table, dialect, legacy=True))
        for trigger in triggers_of(table):
            statements += trigger_sql(trigger, dialect)
        statements += [create_index_sql(index, dialect) for index in legacy_indexes_of(table)]
    return statements
