"""Generated event logs for the order-independence properties (issue 10), with a worker
simulated without Kafka: random interleavings of the partitions, random batches, crashes
with redelivery, sweeps at random points; and the audit (baseline, sweep runs) it leaves.

A log is what the topics hold: per (topic, partition) a list of values in offset order.
Contacts' topics are keyed by contact (partition = contact id mod P); campaigns by
instance (its type's events by name, in partition 0).  Events cover what the agents
take: contact upserts and deletes, clicks, health answers, sending-side statuses (for
rows that exist, that will exist, and that never will), campaign types, instances and
targets; statuses may come before their contact, events may name unknown contacts.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from hypothesis import strategies as st

from rules.config import DEFAULT_CONFIG, Config
from streams.events.codec import parse_event
from streams.events.model import BaselineRecord, SweepRun
from streams.store import outbox
from streams.store.checksum import schedule_checksum
from streams.store.engine import new_agency_database, open_store
from streams.sweep.run import run_sweep
from streams.sweep.summary import SweepOptions
from streams.worker.baseline import record_baseline
from streams.worker.batch import BatchProcessor, Message
from streams.worker.replay import AuditLog, Recorded, replay_log

DAY0 = date(2026, 3, 10)  # the baseline's decision day
PARTITIONS = 2
PLACES = (("75201", "TX"), ("90210", "CA"), ("40202", "KY"), ("10001", "NY"), ("63101", "MO"), ("89501", "NV"))
STATUSES = ("sent", "delivered", "failed", "bounced", "scheduled")


@dataclass(frozen=True)
class LogEvent:
    topic: str
    partition: int
    key: bytes
    value: dict[str, Any]


@dataclass
class EventLog:
    """Per (topic, partition): the values in offset order."""

    queues: dict[tuple[str, int], list[LogEvent]] = field(default_factory=dict)

    def add(self, event: LogEvent) -> None:
        self.queues.setdefault((event.topic, event.partition), []).append(event)

    def messages(self) -> list[Message]:
        return [
            Message(topic, part, offset, e.key, orjson.dumps(e.value))
            for (topic, part), events in sorted(self.queues.items())
            for offset, e in enumerate(events)
        ]


def _near(draw: st.DrawFn, first_year: int, last_year: int, first: int, last: int) -> date:
    """A date of those years whose month and day fall ``first..last`` days from DAY0's."""
    d = DAY0 + timedelta(days=draw(st.integers(first, last)))
    return date(draw(st.integers(first_year, last_year)), d.month, min(d.day, 28))


def _at(base: datetime, minutes: int) -> str:
    return (base + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


@st.composite
def event_logs(draw: st.DrawFn, max_contacts: int = 4, max_events: int = 40) -> EventLog:
    """A random log: a few contacts and instances, events on random days around DAY0."""
    contacts = draw(st.integers(1, max_contacts))
    n = draw(st.integers(1, max_events))
    base = datetime(DAY0.year, DAY0.month, DAY0.day, 6, tzinfo=UTC) - timedelta(days=2)
    log = EventLog()
    versions: dict[int, int] = {}
    for i in range(n):
        at = _at(base, draw(st.integers(0, 6 * 24 * 60)))
        event_id = f"e{i}"
        kind = draw(
            st.sampled_from(
                ("upsert", "upsert", "upsert", "delete", "click", "health", "status", "status", "campaign")
            )
        )
        cid = draw(st.integers(1, contacts + 1))  # contacts + 1: never upserted, perhaps
        part = cid % PARTITIONS
        key = str(cid).encode()
        if kind == "upsert":
            versions[cid] = versions.get(cid, 0) + 1
            zip_code, state = draw(st.sampled_from(PLACES))
            # Anniversaries near the decision days, so that emails are in play (and in windows).
            which = draw(st.integers(0, 5))  # no birth date, Feb 29, or one whose emails are near
            birth = None if which == 0 else date(1952, 2, 29) if which == 1 else _near(draw, 1940, 1962, -10, 45)
            effective = _near(draw, 2005, 2024, 0, 60) if draw(st.booleans()) else None
            value: dict[str, Any] = {
                "event_id": event_id, "occurred_at": at, "op": "upsert", "contact_id": cid,
                "contact": {
                    # one address per contact and version: no contact takes another's
                    "email": f"c{cid}v{versions[cid]}@example.com", "zip_code": zip_code, "state": state,
                    "birth_date": None if birth is None else birth.isoformat(),
                    "effective_date": None if effective is None else effective.isoformat(),
                    "phone_number": draw(st.sampled_from((None, "555-0100"))),
                },
            }
            log.add(LogEvent("contacts", part, key, value))
        elif kind == "delete":
            value = {"event_id": event_id, "occurred_at": at, "op": "delete", "contact_id": cid}
            log.add(LogEvent("contacts", part, key, value))
        elif kind == "click":
            value = {"event_id": event_id, "occurred_at": at, "contact_id": cid, "tracking_id": f"t{i}"}
            log.add(LogEvent("clicks", part, key, value))
        elif kind == "health":
            yes = draw(st.booleans())
            value = {"event_id": event_id, "occurred_at": at, "contact_id": cid,
                     "answers": {"has_medical_conditions": yes, "main_questions_yes_count": int(yes)}}
            log.add(LogEvent("health", part, key, value))
        elif kind == "status":
            year = draw(st.sampled_from((2026, 2026, 2026, 2025, 2027)))
            occurrence = draw(
                st.sampled_from(
                    (
                        f"{cid}:birthday:{year}",
                        f"{cid}:effective_date:{year}",
                        f"{cid}:aep:{year}-09-15",
                        f"{cid}:followup:{cid}:birthday:{year}",
                        f"{cid}:campaign:1:{DAY0 + timedelta(days=20)}",
                    )
                )
            )
            value = {"event_id": event_id, "occurred_at": at, "contact_id": cid,
                     "occurrence_key": occurrence, "status": draw(st.sampled_from(STATUSES))}
            if draw(st.booleans()):
                value["actual_send_datetime"] = at
            log.add(LogEvent("email-status", part, key, value))
        else:
            instance = draw(st.integers(1, 2))
            op = draw(st.sampled_from(("type", "instance", "targets", "targets")))
            if op == "type":
                value = {"event_id": event_id, "occurred_at": at, "op": "type_upsert",
                         "campaign_type": {"name": "rate_increase",
                                           "days_before_event": draw(st.sampled_from((0, 14))),
                                           "priority": draw(st.integers(1, 9)),
                                           "target_all_contacts": draw(st.booleans()),
                                           "respect_exclusion_windows": draw(st.booleans())}}
                log.add(LogEvent("campaigns", 0, b"rate_increase", value))
                continue
            if op == "instance":
                start = DAY0 + timedelta(days=draw(st.integers(-10, 10)))
                value = {"event_id": event_id, "occurred_at": at, "op": "instance_upsert", "changed_by": "ops",
                         "instance": {"id": instance, "campaign_type": "rate_increase",
                                      "instance_name": f"I{instance}", "email_template": "ri",
                                      "sms_template": None, "active_start_date": start.isoformat(),
                                      "active_end_date": (start + timedelta(days=60)).isoformat(),
                                      "metadata": None}}
            else:
                trigger = DAY0 + timedelta(days=draw(st.integers(0, 30)))
                value = {"event_id": event_id, "occurred_at": at, "op": "targets", "instance_id": instance,
                         "targets": [{"contact_id": cid, "trigger_date": trigger.isoformat(),
                                      "status": draw(st.sampled_from(("pending", "cancelled")))}]}
            log.add(LogEvent("campaigns", instance % PARTITIONS, str(instance).encode(), value))
    return log


def agency_template(path: Path) -> Path:
    """An empty, migrated agency database (copied for each run: migrating costs seconds)."""
    return new_agency_database(path)


@dataclass
class LiveRun:
    checksum: str
    baseline: BaselineRecord
    runs: list[SweepRun]


def run_live(
    template: Path,
    workdir: Path,
    log: EventLog,
    seed: int,
    sweep_days: Sequence[date] = (),
    config: Config = DEFAULT_CONFIG,
) -> LiveRun:
    """The worker, simulated: partitions interleaved and batched at random, crashes that
    lose uncommitted offsets (the batches are read again), and a sweep at random points
    for each of ``sweep_days``.  Returns the final checksum and the audit it recorded."""
    rng = random.Random(seed)
    db = workdir / f"live-{seed}.db"
    shutil.copyfile(template, db)
    store = open_store(str(db))
    try:
        baseline = record_baseline(store, config, DAY0, workdir / f"snapshots-{seed}")
        processor = BatchProcessor(store, config)
        queues = {k: [Message(k[0], k[1], i, e.key, orjson.dumps(e.value)) for i, e in enumerate(v)]
                  for k, v in log.queues.items()}
        read = dict.fromkeys(queues, 0)  # the next offset to read
        committed = dict.fromkeys(queues, 0)
        total = sum(len(q) for q in queues.values())
        sweeps = sorted(sweep_days)
        sweep_at = sorted(rng.randrange(0, total + 1) for _ in sweeps)
        handled = 0
        while True:
            while sweeps and sweep_at and sweep_at[0] <= handled:
                run_sweep(store, config, SweepOptions(as_of=sweeps.pop(0), workers=1))
                sweep_at.pop(0)
            open_queues = [k for k, q in queues.items() if read[k] < len(q)]
            if not open_queues:
                if all(committed[k] == len(q) for k, q in queues.items()):
                    break
                for k in queues:  # the last batches committed after all
                    committed[k] = read[k]
                continue
            batch: list[Message] = []
            took: dict[tuple[str, int], int] = {}
            for k in rng.sample(open_queues, rng.randint(1, len(open_queues))):
                n = rng.randint(1, 7)
                part = queues[k][read[k] : read[k] + n]
                batch.extend(part)
                took[k] = read[k] + len(part)
            rng.shuffle(batch) if rng.random() < 0.3 else None  # a batch's order across partitions is free
            batch.sort(key=lambda m: (m.topic_kind, m.partition, m.offset)) if rng.random() < 0.3 else None
            batch = _partition_order_kept(batch)
            processor.process(batch)
            handled += len(batch)
            read.update(took)
            roll = rng.random()
            if roll < 0.6:
                committed.update(took)
            elif roll < 0.75:  # a crash: what was not committed is read again
                read = dict(committed)
                processor = BatchProcessor(store, config)
        for k in sorted(sweeps):  # sweeps whose turn never came run at the end
            run_sweep(store, config, SweepOptions(as_of=k, workers=1))
        with store.engine.connect() as conn:
            checksum = schedule_checksum(conn)
            runs = [
                parse_event("sweep-runs", orjson.dumps(r.record))
                for r in outbox.unpublished(conn)
                if r.topic == "sweep-runs"
            ]
        record = parse_event("baselines", orjson.dumps(baseline.record))
        assert isinstance(record, BaselineRecord)
        return LiveRun(checksum, record, [r for r in runs if isinstance(r, SweepRun)])
    finally:
        store.close()


def _partition_order_kept(batch: list[Message]) -> list[Message]:
    """Any order across partitions, each partition's own order kept (as a consumer gives)."""
    by_queue: dict[tuple[str, int], list[Message]] = {}
    slots: list[tuple[str, int]] = []
    for m in batch:
        by_queue.setdefault((m.topic_kind, m.partition), []).append(m)
        slots.append((m.topic_kind, m.partition))
    for q in by_queue.values():
        q.sort(key=lambda m: m.offset)
    return [by_queue[s].pop(0) for s in slots]


def replay_of(log: EventLog, live: LiveRun, workdir: Path, name: str = "replayed.db") -> str:
    """``mailwindow replay`` over the same record, without Kafka."""
    audit = AuditLog(
        inputs=[Recorded(m.topic_kind, m.partition, m.offset, m.key, m.value) for m in log.messages()],
        runs=live.runs,
        baselines=[live.baseline],
    )
    return replay_log(audit, str(workdir / name))
