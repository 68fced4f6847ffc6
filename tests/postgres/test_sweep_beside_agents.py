"""Issue 16: the leader's sweep beside other workers' agents on one PostgreSQL database.

Two threads stand for two workers, each applying the batches of its own partitions
(contacts keyed to partitions as Kafka does) through the agents' batch step, with
engines of their own, while the main thread runs a full sweep of the same contacts.
The sweep's ``sweep-runs`` record says which input offsets it saw; a serial run on a
second copy (those events, the sweep, the rest) must give the same schedule: no
batch's change is overwritten by the sweep's older reading, no sweep write is lost
to a batch deciding as of the old day (``streams.store.epoch_lock``).
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from rules.config import DEFAULT_CONFIG
from streams.events.kinds import SWEEP_RUNS
from streams.store import outbox
from streams.store.checksum import schedule_checksum
from streams.store.engine import Store, open_store
from streams.store.epochs import current_epoch, start_epoch
from streams.sweep.run import run_sweep
from streams.sweep.summary import SweepOptions
from streams.worker.batch import BatchProcessor, Message
from synthetic.generate import generate_database
from synthetic.sample_events import mixed_events
from tests.postgres.conftest import new_database
from tests.postgres.test_postgres_store import copy_agency_rows

D = date(2026, 3, 10)
PARTITIONS = 2
BATCH = 15


def agency(url: str, source: Path) -> None:
    """The generated agency on PostgreSQL, its baseline and a first sweep as of D."""
    with open_store(url) as store:
        store.migrate()
        copy_agency_rows(source, store)
        with store.engine.begin() as conn:
            start_epoch(conn, D, "baseline")
        run_sweep(store, DEFAULT_CONFIG, SweepOptions(as_of=D))


def partitioned(n: int, seed: int) -> dict[int, list[Message]]:
    """Events on the agency's contacts, each partition's in offset order."""
    out: dict[int, list[Message]] = defaultdict(list)
    offsets: dict[tuple[str, int], int] = defaultdict(int)
    for e in mixed_events(n, seed=seed, contacts=n // 4, malformed_share=0.0):
        p = zlib.crc32(e.key) % PARTITIONS
        out[p].append(Message(e.topic, p, offsets[e.topic, p], e.key, e.value))
        offsets[e.topic, p] += 1
    return out


def apply_all(store: Store, messages: list[Message], pause_s: float = 0.0) -> None:
    processor = BatchProcessor(store, DEFAULT_CONFIG)
    for i in range(0, len(messages), BATCH):
        processor.process(messages[i : i + BATCH])
        time.sleep(pause_s)


def checksum(url: str) -> str:
    with open_store(url) as store, store.engine.connect() as conn:
        return schedule_checksum(conn)


def sweep_offsets(url: str) -> dict[str, dict[str, int]]:
    with open_store(url) as store, store.engine.connect() as conn:
        records = [r for r in outbox.unpublished(conn) if r.topic == SWEEP_RUNS]
        return records[-1].record["offsets"]  # type: ignore[no-any-return]


def concurrent_run(url: str, events: dict[int, list[Message]]) -> None:
    """Each 'worker' applies its partitions' batches; the sweep of D+1 starts midway."""
    stores = [open_store(url) for _ in events]
    failures: list[BaseException] = []

    def worker(store: Store, messages: list[Message]) -> None:
        try:
            apply_all(store, messages, pause_s=0.002)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    threads = [
        threading.Thread(target=worker, args=(s, events[p])) for s, p in zip(stores, sorted(events), strict=True)
    ]
    for t in threads:
        t.start()
    time.sleep(0.5)  # some batches applied as of D before the sweep
    with open_store(url) as store:
        run_sweep(store, DEFAULT_CONFIG, SweepOptions(as_of=D + timedelta(days=1)))
    for t in threads:
        t.join(timeout=600)
    for s in stores:
        s.close()
    assert not failures, failures


def serial_run(url: str, events: dict[int, list[Message]], seen: dict[str, dict[str, int]]) -> None:
    """The events the sweep saw, the sweep, then the others: one worker's order."""

    def before(m: Message) -> bool:
        return m.offset is not None and m.offset < seen.get(m.topic_kind, {}).get(str(m.partition), 0)

    with open_store(url) as store:
        for p in sorted(events):
            apply_all(store, [m for m in events[p] if before(m)])
        run_sweep(store, DEFAULT_CONFIG, SweepOptions(as_of=D + timedelta(days=1)))
        for p in sorted(events):
            apply_all(store, [m for m in events[p] if not before(m)])


@pytest.fixture
def two_copies(pg_server: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    source = tmp_path / "agency.db"
    generate_database(str(source), 3000, seed=21, as_of=D)
    with new_database(pg_server) as live, new_database(pg_server) as serial:
        for url in (live, serial):
            agency(url, source)
        yield live, serial


def test_a_sweep_beside_live_agents_equals_the_serial_order(two_copies: tuple[str, str]) -> None:
    live, serial = two_copies
    events = partitioned(1200, seed=8)
    concurrent_run(live, events)
    seen = sweep_offsets(live)
    total = sum(len(v) for v in events.values())
    seen_count = sum(sum(p.values()) for p in seen.values())
    # The sweep ran beside the agents: some events before it, some after.
    assert 0 < seen_count < total, (seen_count, total)
    with open_store(live) as store, store.engine.connect() as conn:
        epoch = current_epoch(conn)
        assert epoch is not None and epoch.as_of == D + timedelta(days=1)
    serial_run(serial, events, seen)
    assert checksum(live) == checksum(serial)
