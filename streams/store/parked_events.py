"""``mw_parked_events``: what an older worker parked for contacts it did not know yet.

Workers no longer park anything (a fact is stored whether or not its contact
exists); the table is read once at start and emptied, its events stored as
facts (``streams.worker.batch.BatchProcessor.adopt_parked_events``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Connection

from streams.store.tables import mw_parked_events


def parked_events(conn: Connection) -> list[tuple[str, str, bytes]]:
    """(event_id, topic, payload) of every parked event."""
    p = mw_parked_events.c
    return [
        (str(e), str(t), bytes(v))
        for e, t, v in conn.execute(sa.select(p.event_id, p.topic, p.payload))
    ]


def forget_parked_events(conn: Connection) -> None:
    conn.execute(sa.delete(mw_parked_events))
