"""Which input events this database has applied (``mw_applied_events``), and where they were read.

Kafka delivers at least once; an event id recorded here is never applied
again, so the agents' writes happen exactly once.  The partition and offset
of each event say what a sweep or a baseline "saw" (``applied_offsets``).
Times are stored text (``streams.worker.ingest.stored_time``).

Each record also adds one to its topic's count (``mw_applied_counts``), in the
same transaction: the console's ``/metrics`` reads those few rows, where
counting the events themselves took half a second at a million of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from functools import cache

import sqlalchemy as sa
from sqlalchemy import Connection, TextClause

from streams.store.bulk import driver_write_many
from streams.store.dialects import as_text, upsert
from streams.store.schedules import in_lists
from streams.store.tables import mw_applied_counts, mw_applied_events

_RECORD_ALL = sa.insert(mw_applied_events)


@cache
def _record_applied_sql(dialect: str) -> TextClause:
    statement = upsert(mw_applied_events, dialect).on_conflict_do_nothing(
        index_elements=[mw_applied_events.c.event_id]
    )
    return as_text(statement, dialect, mw_applied_events.c.keys())


@cache
def _add_to_count_sql(dialect: str) -> TextClause:
    statement = upsert(mw_applied_counts, dialect)
    statement = statement.on_conflict_do_update(
        index_elements=[mw_applied_counts.c.topic],
        set_={"applied": mw_applied_counts.c.applied + statement.excluded.applied},
    )
    return as_text(statement, dialect, mw_applied_counts.c.keys())


def _add_to_counts(conn: Connection, per_topic: Mapping[str, int]) -> None:
    rows = [{"topic": topic, "applied": n} for topic, n in sorted(per_topic.items())]
    if rows:
        conn.execute(_add_to_count_sql(conn.dialect.name), rows)


def record_applied(conn: Connection, event: Mapping[str, object]) -> bool:
    """Record one event (``event_id``, ``topic``, ``occurred_at``, ``source_partition``,
    ``source_offset``) as applied; False when it already was."""
    new = conn.execute(_record_applied_sql(conn.dialect.name), dict(event)).rowcount == 1
    if new:
        _add_to_counts(conn, {str(event["topic"]): 1})
    return new


def record_all_applied(conn: Connection, events: Sequence[Mapping[str, object]]) -> None:
    """``record_applied`` for events known to be new, in one statement."""
    if events:
        driver_write_many(conn, _RECORD_ALL, events)
        _add_to_counts(conn, Counter(str(e["topic"]) for e in events))


def applied_per_topic(conn: Connection) -> dict[str, int]:
    """Events this database applied, per topic (the agents', replay's and the webhook's)."""
    query = sa.select(mw_applied_counts.c.topic, mw_applied_counts.c.applied).order_by(mw_applied_counts.c.topic)
    return {str(t): int(n) for t, n in conn.execute(query)}


def count_applied_sql() -> sa.Insert:
    """Counts made from the events themselves (a database recorded before the counts were kept)."""
    t = mw_applied_events.c
    counted = sa.select(t.topic, sa.func.count()).group_by(t.topic)
    return sa.insert(mw_applied_counts).from_select(["topic", "applied"], counted)


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
