"""The decision ledger (``mw_decided``) and the change marks (``mw_changed``).

The ledger says, per contact a sweep decided, the first day its decision could
differ with the same inputs (``rules.decision_due``) and a digest of those inputs;
the marks say which contacts' inputs a write changed since (appended by triggers,
``streams.store.tables.CHANGE_MARKS``).  ``streams.sweep.incremental`` reads both to
decide only what can have changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from sqlalchemy import Connection

from streams.store.bulk import insert_rows
from streams.store.schedules import placeholder
from streams.store.tables import mw_changed, mw_decided

# (contact id, due day ISO, inputs digest)
LedgerEntry = tuple[int, str, str]


def last_mark(conn: Connection) -> int:
    """The newest mark's sequence number (0: none): what a run that starts now has seen."""
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(mw_changed.c.seq), 0))).scalar_one())


def marked_contacts(conn: Connection, upto: int) -> set[int]:
    """Contacts marked up to ``upto`` (a value that is no contact id is nobody's input)."""
    query = sa.select(mw_changed.c.contact_id).where(mw_changed.c.seq <= upto).distinct()
    return {int(v) for (v,) in conn.execute(query) if isinstance(v, int)}


def clear_marks(conn: Connection, upto: int) -> None:
    """The marks a completed run saw when it started (later ones stay for the next)."""
    conn.execute(sa.delete(mw_changed).where(mw_changed.c.seq <= upto))


def due_contacts(conn: Connection, day: date) -> set[int]:
    """Contacts whose decision could differ on or before ``day`` (over ``mw_decided_due``)."""
    query = sa.select(mw_decided.c.contact_id).where(mw_decided.c.due <= day.isoformat())
    return {int(v) for (v,) in conn.execute(query)}


def forget_decisions(conn: Connection) -> None:
    """Void every entry: the rules, config, horizon or campaigns they were made under changed."""
    conn.execute(sa.delete(mw_decided))


_LEDGER_COLUMNS = ("contact_id", "due", "inputs", "decided_on", "run_id")


def _record_sql() -> tuple[str, str]:
    updates = ", ".join(f"{c} = excluded.{c}" for c in _LEDGER_COLUMNS[1:])
    return (
        f"INSERT INTO {mw_decided.name} ({', '.join(_LEDGER_COLUMNS)})",
        f" ON CONFLICT (contact_id) DO UPDATE SET {updates}",
    )


def record_decisions(conn: Connection, entries: Sequence[LedgerEntry], decided_on: date, run_id: str) -> None:
    """Each decided contact's entry, in one statement bound at the DBAPI level (a sweep of
    the AEP season writes one per contact of the agency)."""
    if entries:
        day = decided_on.isoformat()
        head, tail = _record_sql()
        # A chunk decides each contact once: its entries may share a statement.
        insert_rows(conn, head, entries, placeholder(conn), tail, extra=(day, run_id))


def decision_entry(conn: Connection, contact_id: int) -> dict[str, object] | None:
    """The contact's ledger entry (for ``explain`` and the console), or None."""
    row = conn.execute(sa.select(mw_decided).where(mw_decided.c.contact_id == contact_id)).mappings().first()
    return None if row is None else dict(row)
