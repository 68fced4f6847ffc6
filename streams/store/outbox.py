"""Records for the audit topics, written in the same transaction as what they record.

A sweep's ``sweep-runs`` record and a baseline's ``baselines`` record are what
replay starts from.  Sent straight to the broker after the fact, a crash in
between would leave the database with a sweep (or a baseline) the audit never
hears of, and replay would disagree with it.  So each record is written into
``mw_outbox`` with the change it records, and the worker publishes what is
not published yet, in order: when it starts, and after each sweep.  A record
published twice has the same key and event id; replay keeps the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, text


@dataclass(frozen=True)
class OutboxRecord:
    seq: int
    topic: str  # the topic's kind, without the deployment's prefix
    key: str
    record: dict[str, Any]


def put(conn: Connection, topic: str, key: str, record: Mapping[str, Any]) -> None:
    """Queue a record for ``topic`` (a kind of ``streams.worker.topics.TOPICS``)."""
    seq = conn.execute(text("SELECT coalesce(max(seq), 0) + 1 FROM mw_outbox")).scalar_one()
    conn.execute(
        text("INSERT INTO mw_outbox (seq, topic, record_key, record, published) VALUES (:s, :t, :k, :r, 0)"),
        {"s": int(seq), "t": topic, "k": key, "r": orjson.dumps(dict(record)).decode()},
    )


def unpublished(conn: Connection) -> list[OutboxRecord]:
    return [
        OutboxRecord(int(seq), str(topic), str(key), orjson.loads(record))
        for seq, topic, key, record in conn.execute(
            text("SELECT seq, topic, record_key, record FROM mw_outbox WHERE published = 0 ORDER BY seq")
        )
    ]


def mark_published(conn: Connection, seqs: list[int]) -> None:
    if seqs:
        conn.execute(text("UPDATE mw_outbox SET published = 1 WHERE seq = :s"), [{"s": s} for s in seqs])
