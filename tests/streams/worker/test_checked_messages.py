"""Values checked by the agents before the database process reads them
(``streams.worker.batch.checked_messages``): the same events, the same dead letters with the
same wording, the same schedule, as when the database process checks them itself."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from rules.config import DEFAULT_CONFIG
from streams.events.codec import parse_event
from streams.events.model import Event
from streams.events.schema import EventError
from streams.store.checksum import schedule_checksum
from streams.store.engine import new_agency_database, open_store
from streams.store.epochs import start_epoch
from streams.worker.batch import BatchProcessor, BatchResult, Message, checked_messages
from synthetic.sample_events import mixed_events

DAY = date(2026, 3, 10)


def messages() -> list[Message]:
    # A fifth malformed: not JSON, wrong types, missing fields, unknown ops, NULs.
    events = mixed_events(3000, seed=8, malformed_share=0.2)
    return [Message(e.topic, 0, i, e.key, e.value) for i, e in enumerate(events)]


def run(db: Path, batches: list[list[Message]]) -> tuple[list[BatchResult], str]:
    new_agency_database(db)
    store = open_store(str(db))
    try:
        with store.engine.begin() as conn:
            start_epoch(conn, DAY, "baseline")
        processor = BatchProcessor(store, DEFAULT_CONFIG)
        results = [processor.process(batch) for batch in batches]
        with store.engine.connect() as conn:
            return results, schedule_checksum(conn)
    finally:
        store.close()


def test_exactly_the_values_the_database_process_would_accept_are_marked() -> None:
    msgs = messages()
    marked = checked_messages(msgs)
    assert [(m.topic_kind, m.offset, m.value) for m in marked] == [(m.topic_kind, m.offset, m.value) for m in msgs]
    accepted: list[Event | None] = []
    for m in msgs:
        try:
            accepted.append(parse_event(m.topic_kind, m.value))
        except EventError:
            accepted.append(None)
    assert [m.checked for m in marked] == [a is not None for a in accepted]
    assert 400 < sum(a is None for a in accepted) < 800  # the malformed fifth
    assert [parse_event(m.topic_kind, m.value, checked=True) for m in marked if m.checked] == [
        a for a in accepted if a is not None
    ]


def test_checked_batches_give_the_results_unchecked_ones_give(tmp_path: Path) -> None:
    msgs = messages()
    batches = [msgs[i : i + 250] for i in range(0, len(msgs), 250)]
    plain, plain_sum = run(tmp_path / "plain.db", batches)
    checked, checked_sum = run(tmp_path / "checked.db", [checked_messages(b) for b in batches])
    assert checked_sum == plain_sum
    assert [r.deadletters for r in checked] == [r.deadletters for r in plain]
    assert [r.changes for r in checked] == [r.changes for r in plain]
    assert [r.engagement for r in checked] == [r.engagement for r in plain]
    assert sum(len(r.deadletters) for r in plain) > 400 and sum(r.applied for r in plain) > 2000
