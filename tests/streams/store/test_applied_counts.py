"""Events applied per topic (``mw_applied_counts``): kept with each applied event, so the
console's /metrics reads a few rows; they must always equal counting the events."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import sqlalchemy as sa

from rules.config import DEFAULT_CONFIG
from streams.store.applied_events import applied_per_topic
from streams.store.engine import open_store
from streams.store.epochs import current_epoch, start_epoch
from streams.worker.batch import BatchProcessor, Message
from synthetic.sample_events import mixed_events
from tests.legacy_db import make_legacy_db

COUNTED = "SELECT topic, count(*) FROM mw_applied_events GROUP BY topic ORDER BY topic"


def streamed(db: Path, messages: list[Message], batch: int) -> None:
    with open_store(str(db)) as store:
        store.migrate()
        with store.engine.begin() as conn:
            if current_epoch(conn) is None:
                start_epoch(conn, date(2026, 3, 10), "baseline")
        processor = BatchProcessor(store, DEFAULT_CONFIG)
        for start in range(0, len(messages), batch):
            processor.process(messages[start : start + batch])


def messages(count: int, seed: int, prefix: str = "ev") -> list[Message]:
    events = mixed_events(count, seed=seed, malformed_share=0.02, prefix=prefix)
    return [Message(e.topic, 0, i, e.key, e.value) for i, e in enumerate(events)]


def test_the_counts_equal_the_events_applied_even_when_kafka_delivers_twice(tmp_path: Path) -> None:
    db = make_legacy_db(tmp_path / "agency.db")
    first = messages(1500, seed=3)
    # At-least-once: a restarted worker reads the second half again, in other batch sizes.
    streamed(db, first, 200)
    streamed(db, first[700:], 77)
    with open_store(str(db)) as store, store.engine.connect() as conn:
        counted = {str(t): int(n) for t, n in conn.execute(sa.text(COUNTED))}
        kept = applied_per_topic(conn)
    assert kept == counted
    assert sum(kept.values()) > 1000  # most of the 1,500 are well-formed and applied once
    assert set(kept) == {"contacts", "clicks", "health"}


def test_a_database_from_before_the_counts_gets_them_from_its_events(tmp_path: Path) -> None:
    db = make_legacy_db(tmp_path / "agency.db")
    streamed(db, messages(600, seed=8), 100)
    with open_store(str(db)) as store:
        with store.engine.begin() as conn:
            expected = {str(t): int(n) for t, n in conn.execute(sa.text(COUNTED))}
            conn.execute(sa.text("DROP TABLE mw_applied_counts"))
        assert "filled mw_applied_counts from mw_applied_events" in store.migrate()
        assert store.migrate() == []
        with store.engine.connect() as conn:
            assert applied_per_topic(conn) == expected
    # and they go on counting from there
    streamed(db, messages(300, seed=9, prefix="later"), 100)
    with open_store(str(db)) as store, store.engine.connect() as conn:
        assert applied_per_topic(conn) == {str(t): int(n) for t, n in conn.execute(sa.text(COUNTED))}
        assert sum(applied_per_topic(conn).values()) > sum(expected.values())
