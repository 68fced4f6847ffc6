"""What a database's schema is made of, as the database itself reports it.

Not the text of the CREATE statements (SQLite keeps each as written, and
streams.store.tables writes them in SQLAlchemy's layout): columns with their
declared type, NOT NULL, default and key, the indexes with their columns,
foreign keys, AUTOINCREMENT and triggers.  PostgreSQL's from its catalogue.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Connection


def _bare(sql: str) -> str:
    """A statement without whitespace: the layout of its text is not the schema."""
    return re.sub(r"\s+", "", sql)


def sqlite_schema(path: Path) -> dict[str, Any]:
    con = sqlite3.connect(path)
    try:
        master = con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
        facts: dict[str, Any] = {}
        for kind, name, table, sql in master:
            if kind == "table" and not name.startswith("sqlite_"):
                facts[f"table {name}"] = {
                    # (name, declared type, not null, default, primary key), in column order
                    "columns": [tuple(r[1:]) for r in con.execute(f'PRAGMA table_info("{name}")')],
                    "foreign keys": sorted(
                        tuple(r[2:]) for r in con.execute(f'PRAGMA foreign_key_list("{name}")')
                    ),
                    "autoincrement": "AUTOINCREMENT" in sql.upper(),
                }
            elif kind == "index":
                facts[f"index {name}"] = {
                    "table": table,
                    # (unique, origin, partial) and (column or expression, desc, collation, key)
                    "kind": next(
                        tuple(r[2:]) for r in con.execute(f'PRAGMA index_list("{table}")') if r[1] == name
                    ),
                    "columns": [tuple(r[2:]) for r in con.execute(f'PRAGMA index_xinfo("{name}")')],
                    # the only place an expression index shows its expression
                    "sql": None if sql is None else _bare(sql),
                }
            elif kind == "trigger":
                facts[f"trigger {name}"] = {"table": table, "sql": _bare(sql)}
        return facts
    finally:
        con.close()


_POSTGRES_QUERIES = {
    "columns": (
        "SELECT table_name, column_name, ordinal_position, data_type, collation_name, is_nullable,"
        " column_default, is_identity, identity_generation FROM information_schema.columns"
        " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    ),
    "indexes": (
        "SELECT tablename, indexname, indexdef FROM pg_indexes"
        " WHERE schemaname = current_schema() ORDER BY indexname"
    ),
    "constraints": (
        "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2"
    ),
    "triggers": (
        "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger"
        " WHERE NOT tgisinternal ORDER BY 2"
    ),
    "functions": (
        "SELECT proname, pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n"
        " ON n.oid = p.pronamespace WHERE n.nspname = current_schema() ORDER BY 1"
    ),
    "sequences": (
        "SELECT sequencename, data_type, start_value, increment_by FROM pg_sequences"
        " WHERE schemaname = current_schema() ORDER BY 1"
    ),
}


def postgres_schema(conn: Connection) -> dict[str, list[list[str]]]:
    """The current schema's columns, indexes, constraints, triggers, functions and sequences."""
    return {
        what: [[str(v) for v in row] for row in conn.exec_driver_sql(sql)]
        for what, sql in _POSTGRES_QUERIES.items()
    }
