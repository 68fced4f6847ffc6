"""The sending side's statuses of schedule rows, kept as facts (``mw_status_facts``) and
applied to the rows of ``email_schedules`` they name.

A status is a fact about an occurrence key: the last one wins by the event's
time (ties: the larger event id).  Whether the row exists yet does not
matter: the status is applied to the row of that key whenever it exists
(``apply_status_facts``), so a status that overtook its contact or its row
waits for them and takes nothing down.  Times are stored text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache

import sqlalchemy as sa
from sqlalchemy import Connection, TextClause

from streams.store.dialects import as_text, upsert
from streams.store.schedules import in_lists
from streams.store.tables import email_schedules, mw_status_facts

StatusFact = tuple[str, str | None]  # status, actual send time as stored


@cache
def _record_sql(dialect: str) -> TextClause:
    statement = upsert(mw_status_facts, dialect)
    kept = mw_status_facts.c
    statement = statement.on_conflict_do_update(
        index_elements=[kept.occurrence_key],
        set_={
            name: statement.excluded[name]
            for name in ("contact_id", "status", "actual_send_datetime", "occurred_at", "event_id")
        },
        # Last write wins by the event's time, then by its id.
        where=sa.tuple_(statement.excluded.occurred_at, statement.excluded.event_id)
        > sa.tuple_(kept.occurred_at, kept.event_id),
    )
    return as_text(statement, dialect, kept.keys())


def record_status_fact(conn: Connection, fact: Mapping[str, object]) -> None:
    """Keep a status fact (``occurrence_key``, ``contact_id``, ``status``,
    ``actual_send_datetime``, ``occurred_at``, ``event_id``) unless a later one is kept."""
    conn.execute(_record_sql(conn.dialect.name), dict(fact))


def status_facts_of(conn: Connection, contact_ids: Sequence[int]) -> dict[int, dict[str, StatusFact]]:
    """The contacts' status facts: contact -> occurrence key -> (status, actual send time)."""
    out: dict[int, dict[str, StatusFact]] = {}
    for part, marks in in_lists(conn, contact_ids):
        # Bound at the DBAPI level: this read runs for every contact the agents decide.
        for cid, key, status, actual in conn.exec_driver_sql(
            "SELECT contact_id, occurrence_key, status, actual_send_datetime FROM mw_status_facts "
            f"WHERE contact_id IN ({marks})",
            part,
        ):
            out.setdefault(int(cid), {})[str(key)] = (str(status), None if actual is None else str(actual))
    return out


def with_status(row: dict[str, object], fact: StatusFact) -> dict[str, object]:
    """A row as the sending side's status fact leaves it."""
    status, actual = fact
    return {
        **row,
        "status": status,
        "actual_send_datetime": actual if actual is not None else row.get("actual_send_datetime"),
    }


_SET_STATUS = (
    sa.update(email_schedules)
    .where(email_schedules.c.id == sa.bindparam("row_id"))
    .values(status=sa.bindparam("new_status"), actual_send_datetime=sa.bindparam("new_actual"))
)


def apply_status_facts(
    conn: Connection, rows: Mapping[int, Sequence[Mapping[str, object]]], facts: Mapping[int, Mapping[str, StatusFact]]
) -> set[int]:
    """Apply each fact to the row of its key where the row exists and does not show it yet.

    ``rows``: the contacts' current rows (every column).  The sending side's
    write, applied on its behalf (SPEC section 1), so no status guard.
    Returns the contacts whose rows changed.
    """
    updates: list[dict[str, object]] = []
    changed: set[int] = set()
    for cid, contact_rows in rows.items():
        mine = facts.get(cid)
        if not mine:
            continue
        for row in contact_rows:
            fact = mine.get(str(row.get("occurrence_key")))
            if fact is None:
                continue
            after = with_status(dict(row), fact)
            if (after["status"], after["actual_send_datetime"]) != (row["status"], row.get("actual_send_datetime")):
                updates.append(
                    {"new_status": after["status"], "new_actual": after["actual_send_datetime"], "row_id": row["id"]}
                )
                changed.add(cid)
    if updates:
        conn.execute(_SET_STATUS, updates)
    return changed
