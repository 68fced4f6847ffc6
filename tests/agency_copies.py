"""Helpers of the ``mailwindow copy`` tests (``tests/streams/store/test_copy.py``, SQLite only,
and ``tests/postgres/test_copy.py``): an agency with a history worth copying, and every
table of a database read back in an order that does not depend on the dialect."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from streams.store.copy import COPY_ORDER
from streams.store.engine import open_store
from synthetic.generate import generate_database
from tests.sweeps import sweep

AS_OF = date(2026, 3, 10)
NEXT_DAY = date(2026, 3, 12)  # the day after the agency's last sweep


def swept_agency(path: Path, contacts: int = 2500, seed: int = 7) -> Path:
    """A generated agency with campaigns, sent emails awaiting follow-ups, clicks and health
    answers, swept on two days (ledger, checkpoints, epochs, outbox), then written to as the
    agency's software would (change marks waiting for the next sweep), with its newest
    contact deleted (the ids' counter is past the largest id)."""
    generate_database(
        str(path), contacts, seed=seed, as_of=AS_OF, campaign_instances=3, followup_initials=80
    )
    sweep(path, AS_OF)
    sweep(path, date(2026, 3, 11))
    con = sqlite3.connect(path)
    try:
        con.execute("UPDATE contacts SET birth_date = '1950-03-30' WHERE id % 10 = 3")
        con.execute(
            "INSERT INTO tracking_clicks (tracking_id, contact_id, clicked_at) "
            "SELECT 'click-' || id, contact_id, '2026-03-11 10:00:00' FROM email_schedules "
            "WHERE actual_send_datetime IS NOT NULL LIMIT 20"
        )
        newest = con.execute("SELECT max(id) FROM contacts").fetchone()[0]
        con.execute("DELETE FROM contacts WHERE id = ?", (newest,))
        con.commit()
    finally:
        con.close()
    return path


def contents(target: str) -> dict[str, list[tuple[object, ...]]]:
    """Every declared table's rows (its columns in declaration order), sorted."""
    found: dict[str, list[tuple[object, ...]]] = {}
    with open_store(target, read_only=True) as store, store.engine.connect() as conn:
        have = set(sa.inspect(conn).get_table_names())
        for table in COPY_ORDER:
            if table.name not in have:
                continue
            columns = ", ".join(f'"{c.name}"' for c in table.columns)
            rows = conn.exec_driver_sql(f'SELECT {columns} FROM "{table.name}"').all()
            found[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return found


def counts(target: str) -> dict[str, int]:
    return {table: len(rows) for table, rows in contents(target).items()}


def add_contact(target: str, email: str = "new@example.com") -> int:
    """A contact inserted the way the agency's software does (the database numbers it): its id."""
    with open_store(target) as store, store.engine.begin() as conn:
        return int(
            conn.execute(
                sa.text(
                    "INSERT INTO contacts (first_name, last_name, email, state, zip_code, birth_date)"
                    " VALUES ('New', 'Contact', :email, 'TX', '75201', '1951-07-04') RETURNING id"
                ),
                {"email": email},
            ).scalar_one()
        )


class Interrupted(Exception):
    pass


def stop_after(table: str, rows: int) -> Callable[[str, int], None]:
    """A page callback that stops the copy once ``rows`` rows of ``table`` are committed."""

    def on_page(copying: str, copied: int) -> None:
        if copying == table and copied >= rows:
            raise Interrupted(f"{table} at {copied}")

    return on_page
