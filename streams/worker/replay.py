"""``mailwindow replay``: the live database rebuilt from the audit record, for an audit.

The audit record is the deployment's baseline (``baselines`` topic: a snapshot
of the database it started from, ``streams.worker.baseline``), its input topics and
its ``sweep-runs``.  Replay restores the baseline's snapshot into a new SQLite
file (checking its sha256), then, for each sweep recorded after the baseline,
in order: applies the input events the sweep had seen (below its offsets) that
the snapshot had not (from the baseline's offsets on), then runs that sweep
with its recorded config and as-of date.  The events after the last sweep are
applied at the end.  The agents' step is the live one (``streams.worker.batch``), as
of the decision day of each epoch, so the result's checksum equals the live
database's: that is the audit.

Events are applied topic by topic, each partition in offset order, in batches:
the agents' result does not depend on how events of different topics and
partitions were interleaved or batched (``streams.store.epochs``), so any such order
gives what live gave.

Choices written down here:
- The latest baseline is used unless ``--baseline ID`` names another (a
  deployment records one; an operator may record more, each a later start).
- ``--snapshot PATH`` reads the snapshot from another place than the one
  recorded (an auditor's archive); its sha256 must still match.
- ``--until`` (an event time) applies only the events of that time or
  earlier and the sweeps of that day or earlier: what was known then.  Its
  checksum is not the live one unless nothing came later.
- The agents decide with the config the baseline recorded until the first
  sweep, then with each sweep's (the worker's config is the sweep's).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import orjson
from aiokafka import AIOKafkaConsumer

from rules.config import Config, config_from_mapping
from streams.events.codec import parse_event
from streams.events.kinds import BASELINES, SWEEP_RUNS
from streams.events.model import BaselineRecord, SweepRun
from streams.events.schema import EventError
from streams.events.times import parse_datetime
from streams.store.checksum import schedule_checksum
from streams.store.engine import StoreError, open_store
from streams.store.snapshot import file_sha256
from streams.sweep.run import run_sweep
from streams.sweep.summary import SweepOptions
from streams.worker.batch import BatchProcessor, Message
from streams.worker.topics import INPUT_TOPICS, existing_partitions, topic_name

BATCH = 1000
_R = TypeVar("_R", SweepRun, BaselineRecord)


class ReplayError(RuntimeError):
    """The audit record cannot be replayed; the message says why."""


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


@dataclass
class AuditLog:
    """Everything replay reads: input messages, sweep runs and baselines, each in topic order."""

    inputs: list[Recorded] = field(default_factory=list)
    runs: list[SweepRun] = field(default_factory=list)
    baselines: list[BaselineRecord] = field(default_factory=list)
    missing_topics: list[str] = field(default_factory=list)


async def _read_topics(broker: str, topics: Mapping[str, str]) -> tuple[dict[str, list[Recorded]], list[str]]:
    """Every message of these topics (full name -> kind) from the start to their end now."""
    tps, missing = await existing_partitions(broker, list(topics), client_id="mailwindow-replay")
    out: dict[str, list[Recorded]] = {kind: [] for kind in topics.values()}
    if not tps:
        return out, missing
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, messages in batches.items():
                for m in messages:
                    if m.offset < ends[tp]:
                        out[topics[tp.topic]].append(Recorded(topics[tp.topic], tp.partition, m.offset, m.key, m.value))
                    if m.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
    finally:
        await consumer.stop()
    for records in out.values():
        records.sort(key=lambda r: (r.partition, r.offset))
    return out, missing


def read_audit_log(broker: str, prefix: str) -> AuditLog:
    kinds = (*INPUT_TOPICS, SWEEP_RUNS, BASELINES)
    found, missing = asyncio.run(_read_topics(broker, {topic_name(prefix, k): k for k in kinds}))
    log = AuditLog(missing_topics=missing)
    for kind in INPUT_TOPICS:
        log.inputs.extend(found[kind])
    log.runs = _parsed(found[SWEEP_RUNS], SWEEP_RUNS, SweepRun)
    log.baselines = _parsed(found[BASELINES], BASELINES, BaselineRecord)
    return log


def _parsed(records: Iterable[Recorded], kind: str, cls: type[_R]) -> list[_R]:
    out: list[_R] = []
    seen: set[str] = set()
    for r in records:
        try:
            event = parse_event(kind, r.value or b"")
        except EventError:
            continue  # a record the worker did not write: nothing to replay
        if isinstance(event, cls) and event.event_id not in seen:  # published twice: the first
            seen.add(event.event_id)
            out.append(event)
    return out


def replay(
    broker: str,
    prefix: str,
    db: str,
    until: datetime | None = None,
    baseline_id: str | None = None,
    snapshot: str | None = None,
) -> str:
    """Rebuild ``db`` (a new SQLite file) from the deployment's audit record; its checksum."""
    return replay_log(read_audit_log(broker, prefix), db, prefix, until, baseline_id, snapshot)


def choose_baseline(baselines: Sequence[BaselineRecord], baseline_id: str | None, where: str) -> BaselineRecord:
    if not baselines:
        raise ReplayError(
            f"no audit baseline on {where}: a deployment records one when its worker first "
            "starts (or with `mailwindow baseline`); without it there is nothing to start from"
        )
    if baseline_id is None:
        return baselines[-1]
    for b in baselines:
        if b.baseline_id == baseline_id:
            return b
    known = ", ".join(b.baseline_id for b in baselines)
    raise ReplayError(f"no baseline {baseline_id!r} on {where} (recorded: {known})")


def replay_log(
    log: AuditLog,
    db: str,
    prefix: str = "",
    until: datetime | None = None,
    baseline_id: str | None = None,
    snapshot: str | None = None,
) -> str:
    """``replay`` over an audit record already read (the property tests give one directly)."""
    baseline = choose_baseline(log.baselines, baseline_id, f"topic {topic_name(prefix, BASELINES)}")
    _restore(Path(snapshot or baseline.snapshot_path), baseline.snapshot_sha256, Path(db))
    store = open_store(db)
    try:
        store.migrate()
        with store.engine.connect() as conn:
            already = {str(r[0]) for r in conn.exec_driver_sql("SELECT run_id FROM mw_epochs WHERE run_id IS NOT NULL")}
        processor = BatchProcessor(store, _config(baseline.config, "baselines record"), prefix=prefix)
        inputs = [m for m in log.inputs if m.offset >= baseline.offsets.get(m.kind, {}).get(m.partition, 0)]
        if until is not None:
            inputs = [m for m in inputs if (t := m.event_time()) is None or t <= until]
        done: set[tuple[str, int, int]] = set()

        def apply(below: Mapping[str, Mapping[int, int]] | None) -> None:
            todo = [
                m
                for m in inputs
                if (m.kind, m.partition, m.offset) not in done
                and (below is None or m.offset < below.get(m.kind, {}).get(m.partition, 0))
            ]
            for start in range(0, len(todo), BATCH):
                part = todo[start : start + BATCH]
                processor.process([Message(m.kind, m.partition, m.offset, m.key, m.value) for m in part])
                done.update((m.kind, m.partition, m.offset) for m in part)

        for run in log.runs:
            if run.run_id in already:
                continue  # in the snapshot already
            if until is not None and run.as_of > until.date():
                break
            apply(run.offsets)
            run_config = _config(run.config, "sweep-runs record")
            run_sweep(store, run_config, SweepOptions(as_of=run.as_of, workers=1), run_id=run.run_id)
            processor.config = run_config
        apply(None)
        with store.engine.connect() as conn:
            return schedule_checksum(conn)
    finally:
        store.close()


def _config(recorded: Mapping[str, object], where: str) -> Config:
    config, _ = config_from_mapping(dict(recorded), where)
    return config


def _restore(snapshot: Path, sha256: str, db: Path) -> None:
    if db.exists():
        raise StoreError(f"{db} exists: replay builds a fresh database, give a new path")
    if not snapshot.is_file():
        raise ReplayError(f"the baseline's snapshot {snapshot} is not there: give its copy with --snapshot")
    found = file_sha256(snapshot)
    if found != sha256:
        raise ReplayError(f"snapshot {snapshot} is not the baseline's: sha256 {found}, recorded {sha256}")
    shutil.copyfile(snapshot, db)
