"""``mailwindow replay``: a fresh database rebuilt from the input topics, for an audit.

For each ``sweep-runs`` record in order: the input events up to the offsets
that sweep saw are applied (the agents' own step, ``streams.agents``), then
that sweep runs with its recorded config and as-of date.  The events after
the last sweep are applied at the end (up to ``--until``, an event time).
The result's checksum equals the live database's (ARCHITECTURE.md).

Choices written down here:
- Events not yet applied at a sweep are applied in event-time order (ties: by
  topic, partition, offset), in batches; the agents' result does not depend
  on batch sizes, and with per-contact decisions it does not depend on how
  the live worker interleaved topics either, as long as a contact's events
  fall on the same Central day as its last decision's.
- The agents decide with the config of the first recorded sweep (the worker's
  config), or the one given when no sweep was recorded yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from rules.config import Config, config_from_mapping
from streams.agents import BatchProcessor, Message
from streams.checksum import schedule_checksum
from streams.events import SWEEP_RUNS, EventError, SweepRun, parse_datetime, parse_event
from streams.store import Store, StoreError, legacy_ddl, open_store
from streams.sweep import SweepOptions, run_sweep
from streams.topics import INPUT_TOPICS, topic_name

BATCH = 1000


@dataclass(frozen=True)
class Recorded:
    kind: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    def event_time(self) -> datetime | None:
        try:
            value = orjson.loads(self.value or b"")
            return parse_datetime(str(value["occurred_at"]))
        except (ValueError, KeyError, TypeError, EventError):
            return None


async def read_topic(broker: str, topic: str, kind: str) -> list[Recorded]:
    """Every message of a topic, from the start to its end now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False)
    await consumer.start()
    try:
        # The consumer tracks metadata of the topics it uses only: ask for this one.
        consumer._client.add_topic(topic)
        await consumer._client.force_metadata_update()
        partitions = consumer._client.cluster.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[Recorded] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, messages in batches.items():
                for m in messages:
                    if m.offset < ends[tp]:
                        out.append(Recorded(kind, tp.partition, m.offset, m.key, m.value))
                    if m.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
        return out
    finally:
        await consumer.stop()


def _fresh_store(db: str) -> Store:
    path = Path(db)
    if path.exists():
        raise StoreError(f"{db} exists: replay builds a fresh database, give a new path")
    import sqlite3

    con = sqlite3.connect(path)
    try:
        for s in legacy_ddl():
            con.execute(s.sql)
        con.commit()
    finally:
        con.close()
    store = open_store(db)
    store.migrate()
    return store


def _order(messages: Sequence[Recorded]) -> list[Recorded]:
    far = datetime.max.replace(tzinfo=None)
    kinds = {k: i for i, k in enumerate(INPUT_TOPICS)}

    def key(m: Recorded) -> tuple[object, ...]:
        t = m.event_time()
        return ((t.replace(tzinfo=None) if t else far), kinds.get(m.kind, 99), m.partition, m.offset)

    return sorted(messages, key=key)


def replay(broker: str, prefix: str, db: str, config: Config, until: datetime | None = None) -> str:
    """Rebuild ``db`` (a new SQLite file) from the topics; returns its checksum."""
    inputs: list[Recorded] = []
    for kind in INPUT_TOPICS:
        inputs.extend(asyncio.run(read_topic(broker, topic_name(prefix, kind), kind)))
    runs: list[SweepRun] = []
    for r in asyncio.run(read_topic(broker, topic_name(prefix, SWEEP_RUNS), SWEEP_RUNS)):
        try:
            run = parse_event(SWEEP_RUNS, r.value or b"")
        except EventError:
            continue  # a sweep-runs record the worker did not write: nothing to replay
        if isinstance(run, SweepRun):
            runs.append(run)
    if until is not None:
        inputs = [m for m in inputs if (t := m.event_time()) is None or t <= until]
    store = _fresh_store(db)
    try:
        agent_config = config
        if runs:
            agent_config, _ = config_from_mapping(dict(runs[0].config), "sweep-runs record")
        processor = BatchProcessor(store, agent_config)
        applied: set[tuple[str, int, int]] = set()

        def apply(messages: list[Recorded]) -> None:
            todo = [m for m in _order(messages) if (m.kind, m.partition, m.offset) not in applied]
            for start in range(0, len(todo), BATCH):
                part = todo[start : start + BATCH]
                processor.process([Message(m.kind, m.partition, m.offset, m.key, m.value) for m in part])
                applied.update((m.kind, m.partition, m.offset) for m in part)

        for run in runs:
            offsets = run.offsets
            apply([m for m in inputs if m.offset < offsets.get(m.kind, {}).get(m.partition, 0)])
            run_config, _ = config_from_mapping(dict(run.config), "sweep-runs record")
            if until is not None and run.as_of > until.date():
                break
            run_sweep(store, run_config, SweepOptions(as_of=run.as_of))
        apply(inputs)
        with store.engine.connect() as conn:
            return schedule_checksum(conn)
    finally:
        store.close()
