"""Which input events this database has applied (``mw_applied_events``), and where they were read.

Kafka delivers at least once; an event id recorded here is never applied
again, so the agents' writes happen exactly once.  The partition and offset
of each event say what a sweep or a baseline "saw" (``applied_offsets``).
Times are stored text (``streams.worker.ingest.stored_time``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache

import sqlalchemy as sa
from sqlalchemy import Connection, TextClause

from streams.store.dialects import as_text, upsert
from streams.store.schedules import in_lists
from streams.store.tables import mw_applied_events

_RECORD_ALL = sa.insert(mw_applied_events)


@cache
def _record_applied_sql(dialect: str) -> TextClause:
    statement = upsert(mw_applied_events, dialect).on_conflict_do_nothing(
        index_elements=[mw_applied_events.c.event_id]
    )
    return as_text(statement, dialect, mw_applied_events.c.keys())


def record_applied(conn: Connection, event: Mapping[str, object]) -> bool:
    """Record one event (``event_id``, ``topic``, ``occurred_at``, ``source_partition``,
    ``source_offset``) as applied; False when it already was."""
    return conn.execute(_record_applied_sql(conn.dialect.name), dict(event)).rowcount == 1


def record_all_applied(conn: Connection, events: Sequence[Mapping[str, object]]) -> None:
    """``record_applied`` for events known to be new, in one statement."""
    if events:
        conn.execute(_RECORD_ALL, [dict(e) for e in events])


def applied_already(conn: Connection, event_ids: Sequence[str]) -> set[str]:
    """Which of these event ids are applied already (one read for a whole batch)."""
    found: set[str] = set()
    for part, marks in in_lists(conn, event_ids):
        # Bound at the DBAPI level: this read runs once per batch of the agents.
        found.update(
            str(r[0])
            for r in conn.exec_driver_sql(
                f"SELECT event_id FROM mw_applied_events WHERE event_id IN ({marks})", part
            )
        )
    return found


def applied_offsets(conn: Connection) -> dict[str, dict[str, int]]:
    """Per topic and partition, the next offset after the last event this database applied.

    Each partition is read in order, one batch after another, so every message
    before that offset has been applied (or dead-lettered): what a sweep "saw".
    """
    t = mw_applied_events.c
    query = (
        sa.select(t.topic, t.source_partition, sa.func.max(t.source_offset))
        .where(t.source_partition.is_not(None))
        .group_by(t.topic, t.source_partition)
        .order_by(t.topic, t.source_partition)
    )
    out: dict[str, dict[str, int]] = {}
    for topic, partition, last in conn.execute(query):
        out.setdefault(str(topic), {})[str(partition)] = int(last) + 1
    return out
