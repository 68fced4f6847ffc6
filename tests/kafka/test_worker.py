"""The worker (``mailwindow worker``) against the real broker: agents, dead letters,
SIGKILL and restart, replay.  Waits are generous; speed belongs to bench/stream.py."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from rules.config import DEFAULT_CONFIG
from streams.events.times import occurred_at_central_date, parse_datetime
from streams.store.checksum import schedule_checksum
from streams.store.engine import new_agency_database, open_store
from streams.store.epochs import start_epoch
from streams.worker.batch import BatchProcessor, Message
from streams.worker.engagement import engagement_values
from streams.worker.replay import replay
from streams.worker.topics import ensure_topics, topic_name
from synthetic.sample_events import SampleEvent, mixed_events
from tests.kafka.workers import DAY, PARTITIONS, WAIT, WorkerProcess, count, read_until
from tests.sweeps import checksum


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def make(broker: str, prefix: str, db: Path, *extra: str) -> WorkerProcess:
        w = WorkerProcess(broker, prefix, db, tmp_path, *extra)
        started.append(w)
        return w

    yield make
    for w in started:
        w.stop()


def fresh_db(path: Path) -> Path:
    return new_agency_database(path)


def produce(broker: str, prefix: str, events: list[tuple[str, bytes, bytes]]) -> None:
    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all", linger_ms=5)
        await producer.start()
        try:
            futures = [await producer.send(topic_name(prefix, t), value=v, key=k) for t, k, v in events]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(go())


def engagement_table(broker: str, prefix: str, done: Callable[[dict[int, Any]], bool]) -> dict[int, Any]:
    """The worker's engagement table: the last value of each contact in its compacted topic."""

    # (contact, value) records; in a dict a contact's later record replaces its earlier one
    records = read_until(
        broker,
        topic_name(prefix, "engagement"),
        lambda seen: done(dict(seen)),
        decode=lambda m: (int(m.key), orjson.loads(m.value)),
    )
    return dict(records)


def test_click_upgrades_pending_cold_followup(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, worker_factory: Callable[..., WorkerProcess]
) -> None:
    asyncio.run(ensure_topics(kafka_broker, topic_prefix, PARTITIONS))
    db = fresh_db(tmp_path / "live.db")
    worker_factory(kafka_broker, topic_prefix, db).start()
    changes = topic_name(topic_prefix, "schedule-changes")

    def ev(topic: str, value: dict[str, object]) -> tuple[str, bytes, bytes]:
        return topic, b"1", orjson.dumps(value)

    produce(kafka_broker, topic_prefix, [ev("contacts", {
        "event_id": "c1", "occurred_at": "2026-03-10T12:00:00Z", "op": "upsert", "contact_id": 1,
        "contact": {"email": "a@example.com", "zip_code": "75201", "state": "TX",
                    "birth_date": "1950-03-24", "effective_date": None}})])
    read_until(kafka_broker, changes, lambda s: any(r["occurrence_key"] == "1:birthday:2026" for r in s))
    produce(kafka_broker, topic_prefix, [ev("email-status", {
        "event_id": "s1", "occurred_at": "2026-03-10T14:00:00Z", "contact_id": 1,
        "occurrence_key": "1:birthday:2026", "status": "sent",
        "actual_send_datetime": "2026-03-10T13:30:00Z"})])
    read_until(kafka_broker, changes, lambda s: any(r["email_type"] == "followup_1_cold" for r in s))
    produce(kafka_broker, topic_prefix, [ev("clicks", {
        "event_id": "k1", "occurred_at": "2026-03-11T09:00:00Z", "contact_id": 1, "tracking_id": "t"})])
    seen = read_until(
        kafka_broker, changes, lambda s: any(r["email_type"] == "followup_2_clicked_no_hq" for r in s)
    )
    upgrade = next(r for r in seen if r["email_type"] == "followup_2_clicked_no_hq")
    assert upgrade["change"] == "changed"
    assert upgrade["previous"]["email_type"] == "followup_1_cold"  # type: ignore[index]
    assert upgrade["cause"] == {"topic": "clicks", "event_id": "k1"}
    assert upgrade["occurrence_key"] == "1:followup:1:birthday:2026"
    # The click is in the contact's engagement, with its event time.
    table = engagement_table(kafka_broker, topic_prefix, lambda t: 1 in t)
    assert table[1] == {"as_of": "2026-03-11", "clicks": ["2026-03-11T09:00:00Z"], "answers": []}


def _messages(events: list[SampleEvent]) -> list[tuple[str, bytes, bytes]]:
    return [(e.topic, e.key, e.value) for e in events]


def _offline_checksum(events: list[SampleEvent], path: Path) -> str:
    """The same events through the agents' step without Kafka, in one go: the expected result."""
    db = fresh_db(path)
    store = open_store(str(db))
    with store.engine.begin() as conn:
        start_epoch(conn, DAY, "baseline")
    p = BatchProcessor(store, DEFAULT_CONFIG)
    p.process([Message(e.topic, 0, i, e.key, e.value) for i, e in enumerate(events)])
    store.close()
    return checksum(db)


def _wait_applied(db: Path, good: int, worker: WorkerProcess) -> None:
    deadline = time.monotonic() + WAIT
    while count(db, "SELECT count(*) FROM mw_applied_events") < good:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"applied {count(db, 'SELECT count(*) FROM mw_applied_events')} of {good} events; "
                f"the worker's log ends:\n{worker.log.read_text()[-4000:]}"
            )
        time.sleep(0.5)


def test_ten_thousand_mixed_events_with_malformed_ones(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, worker_factory: Callable[..., WorkerProcess]
) -> None:
    asyncio.run(ensure_topics(kafka_broker, topic_prefix, PARTITIONS))
    events = list(mixed_events(10_000, seed=4, malformed_share=0.01))
    bad = [e for e in events if e.malformed]
    good = len(events) - len(bad)
    assert len(bad) > 50
    db = fresh_db(tmp_path / "live.db")
    worker = worker_factory(kafka_broker, topic_prefix, db)
    worker.start()
    produce(kafka_broker, topic_prefix, _messages(events))
    dead = read_until(kafka_broker, topic_name(topic_prefix, "deadletter"), lambda s: len(s) >= len(bad))
    assert len(dead) == len(bad)
    assert sorted(bytes(d["raw_text"], "utf-8") for d in dead) == sorted(e.value for e in bad)  # type: ignore[arg-type]
    assert all(d["error"] for d in dead)
    _wait_applied(db, good, worker)
    assert worker.proc is not None and worker.proc.poll() is None  # never stopped
    assert count(db, "SELECT count(*) FROM mw_applied_events") == good
    # Behaviour that came before its contact is stored and counts once the contact came.
    assert count(db, "SELECT count(*) FROM tracking_clicks") == sum(
        1 for e in events if e.topic == "clicks" and not e.malformed
    )
    assert checksum(db) == _offline_checksum(events, tmp_path / "offline.db")


def test_sigkill_and_restart_gives_the_uninterrupted_result_and_replay_agrees(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, worker_factory: Callable[..., WorkerProcess]
) -> None:
    asyncio.run(ensure_topics(kafka_broker, topic_prefix, PARTITIONS))
    events = list(mixed_events(6_000, seed=8, malformed_share=0.0))
    db = fresh_db(tmp_path / "live.db")
    first = worker_factory(kafka_broker, topic_prefix, db)
    first.start()
    produce(kafka_broker, topic_prefix, _messages(events[:3000]))
    # Kill it in the middle of the stream: once it has applied some, not all.
    deadline = time.monotonic() + WAIT
    while count(db, "SELECT count(*) FROM mw_applied_events") < 500:
        assert time.monotonic() < deadline, "worker applied nothing"
        time.sleep(0.05)
    produce(kafka_broker, topic_prefix, _messages(events[3000:]))
    first.kill()
    assert count(db, "SELECT count(*) FROM mw_applied_events") < len(events)
    second = worker_factory(kafka_broker, topic_prefix, db, "--log-level", "info")  # its log if it fails
    second.start()
    _wait_applied(db, len(events), second)
    live = checksum(db)
    assert live == _offline_checksum(events, tmp_path / "offline.db")
    # No duplicate rows, no lost events.
    assert count(db, "SELECT count(*) FROM mw_applied_events") == len(events)
    assert count(
        db,
        "SELECT count(*) FROM (SELECT occurrence_key FROM email_schedules "
        "WHERE occurrence_key IS NOT NULL GROUP BY 1 HAVING count(*) > 1)",
    ) == 0
    # The engagement table lost nothing to the kill either: every contact's last value is
    # its clicks and answers as the database holds them.
    engaged: dict[int, date] = {}
    for e in events:
        if e.topic in ("clicks", "health"):
            value = orjson.loads(e.value)
            day = occurred_at_central_date(parse_datetime(value["occurred_at"]))
            engaged[value["contact_id"]] = max(day, engaged.get(value["contact_id"], day))
    store = open_store(str(db))
    with store.engine.connect() as conn:
        expected = engagement_values(conn, engaged)
    store.close()
    assert len(expected) > 500
    table = engagement_table(kafka_broker, topic_prefix, lambda t: all(t.get(c) == v for c, v in expected.items()))
    assert set(table) == set(expected)
    second.stop()
    # A worker that sweeps (every 2 s here, daily at 03:30 in production) records its runs.
    third = worker_factory(kafka_broker, topic_prefix, db, "--sweep-interval", "2")
    third.start()
    runs = read_until(kafka_broker, topic_name(topic_prefix, "sweep-runs"), lambda s: len(s) >= 1)
    assert runs[0]["offsets"] and runs[0]["config"]
    third.stop()
    live = checksum(db)
    # The audit: a fresh database from the topics gives the live checksum.
    assert replay(kafka_broker, topic_prefix, str(tmp_path / "replayed.db")) == live


def test_agents_and_sweep_agree_without_load_balancing(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, worker_factory: Callable[..., WorkerProcess]
) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text("load_balancing:\n  enabled: false\n")
    asyncio.run(ensure_topics(kafka_broker, topic_prefix, PARTITIONS))
    events = list(mixed_events(3000, seed=12, malformed_share=0.0))
    db = fresh_db(tmp_path / "live.db")
    worker = worker_factory(kafka_broker, topic_prefix, db, "--config", str(config_file))
    worker.start()
    produce(kafka_broker, topic_prefix, _messages(events))
    _wait_applied(db, len(events), worker)
    by_agents = checksum(db)
    assert count(db, "SELECT count(*) FROM email_schedules") > 100
    # The same contacts, their rows removed, through the sweep as of the events' day.
    swept = tmp_path / "swept.db"
    con = sqlite3.connect(db)
    con.execute(f"VACUUM INTO '{swept}'")
    con.close()
    con = sqlite3.connect(swept)
    con.execute("DELETE FROM email_schedules")
    con.commit()
    con.close()
    from streams.config_file import load_config_file
    from streams.sweep.run import run_sweep
    from streams.sweep.summary import SweepOptions

    config, _ = load_config_file(str(config_file))
    store = open_store(str(swept))
    try:
        run_sweep(store, config, SweepOptions(as_of=date(2026, 3, 10)))
    finally:
        store.close()
    assert checksum(swept) == by_agents


def test_the_worker_on_postgresql(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_url: str,
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    """docker-compose.yml's setup: the worker on a PostgreSQL database (empty at start: the
    worker creates the agency tables) gives the schedule the events give on SQLite."""
    asyncio.run(ensure_topics(kafka_broker, topic_prefix, PARTITIONS))
    events = list(mixed_events(2000, seed=15, malformed_share=0.01))
    good = sum(1 for e in events if not e.malformed)
    worker_factory(kafka_broker, topic_prefix, pg_url).start()
    produce(kafka_broker, topic_prefix, _messages(events))
    store = open_store(pg_url)
    try:
        deadline = time.monotonic() + WAIT
        while True:
            with store.engine.connect() as conn:
                applied = conn.exec_driver_sql("SELECT count(*) FROM mw_applied_events").scalar_one()
                if applied >= good:
                    live = schedule_checksum(conn)
                    break
            assert time.monotonic() < deadline, f"applied {applied} of {good} events"
            time.sleep(0.5)
    finally:
        store.close()
    assert applied == good
    assert live == _offline_checksum(events, tmp_path / "offline.db")


def _statuses_for(db: Path, n: int, seed: int) -> list[tuple[str, bytes, bytes]]:
    """The sending side's reports on ``n`` of the database's pre-scheduled rows."""
    import random

    rng = random.Random(seed)
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT contact_id, occurrence_key, scheduled_send_date FROM email_schedules "
        "WHERE status = 'pre-scheduled' AND occurrence_key IS NOT NULL ORDER BY id"
    ).fetchall()
    con.close()
    out = []
    for i, (cid, key, day) in enumerate(rng.sample(rows, min(n, len(rows)))):
        at = f"{day}T14:{i % 60:02d}:00Z"
        value = {"event_id": f"st-{seed}-{i}", "occurred_at": at, "contact_id": cid, "occurrence_key": key,
                 "status": rng.choice(("sent", "delivered", "bounced")), "actual_send_datetime": at}
        out.append(("email-status", str(cid).encode(), orjson.dumps(value)))
    return out


def test_a_real_agency_live_with_a_sweep_and_a_crash_replays_to_its_checksum(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, worker_factory: Callable[..., WorkerProcess]
) -> None:
    """Issue 10's acceptance: start from a generated and swept 2,000-contact agency, run the
    worker live on a few thousand mixed events with sweeps of the next day (the leader's),
    kill it (SIGKILL) in the middle and start it again: replay of the audit record (the
    baseline the worker recorded, the input topics, the sweep runs) gives the live checksum."""
    from streams.sweep.run import run_sweep
    from streams.sweep.summary import SweepOptions
    from synthetic.generate import generate_database

    asyncio.run(ensure_topics(kafka_broker, topic_prefix, PARTITIONS))
    db = tmp_path / "agency.db"
    generate_database(str(db), 2000, seed=31, as_of=DAY, campaign_instances=4, followup_initials=200)
    store = open_store(str(db))
    run_sweep(store, DEFAULT_CONFIG, SweepOptions(as_of=DAY, workers=1))
    store.close()
    events = _messages(list(mixed_events(3000, seed=21, contacts=2000, malformed_share=0.005)))
    events += _statuses_for(db, 400, seed=21)
    next_day = ("--today", "2026-03-11", "--sweep-interval", "4")
    first = worker_factory(kafka_broker, topic_prefix, db, *next_day)
    first.start()
    produce(kafka_broker, topic_prefix, events[:1800])
    deadline = time.monotonic() + WAIT
    while count(db, "SELECT count(*) FROM mw_applied_events") < 600:
        assert time.monotonic() < deadline, f"worker applied nothing:\n{first.log.read_text()[-3000:]}"
        time.sleep(0.05)
    produce(kafka_broker, topic_prefix, events[1800:])
    first.kill()
    second = worker_factory(kafka_broker, topic_prefix, db, *next_day, "--log-level", "info")
    second.start()
    good = sum(1 for _, _, v in events if _parses(v))
    _wait_applied(db, good, second)
    # the leader swept the next day at least once
    runs = read_until(kafka_broker, topic_name(topic_prefix, "sweep-runs"), lambda s: any(r["as_of"] == "2026-03-11" for r in s))
    assert runs
    time.sleep(5)  # a sweep may be under way: let it finish before the worker stops
    second.stop()
    live = checksum(db)
    baselines = read_until(kafka_broker, topic_name(topic_prefix, "baselines"), lambda s: len(s) >= 1)
    assert len(baselines) == 1 and baselines[0]["as_of"] == DAY.isoformat()
    assert count(db, "SELECT count(*) FROM email_schedules WHERE status = 'pre-scheduled' AND scheduled_send_date < '2026-03-11' AND placed_run_id LIKE 'agent:2026-03-11%'") == 0
    assert replay(kafka_broker, topic_prefix, str(tmp_path / "replayed.db")) == live


def _parses(value: bytes) -> bool:
    try:
        v = orjson.loads(value)
        parse_datetime(v["occurred_at"])
        return isinstance(v.get("contact_id"), int)
    except Exception:  # noqa: BLE001 - malformed on purpose
        return False


def test_a_worker_restarted_after_sigkill_processes_again_within_ten_seconds(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, worker_factory: Callable[..., WorkerProcess]
) -> None:
    """The dead member's partitions are free after a 6 s session (Faust's default: 60 s), so
    the restarted worker is assigned them as soon as it has started."""
    asyncio.run(ensure_topics(kafka_broker, topic_prefix, PARTITIONS))
    db = fresh_db(tmp_path / "live.db")
    events = _messages(list(mixed_events(400, seed=5, malformed_share=0.0)))
    first = worker_factory(kafka_broker, topic_prefix, db)
    first.start()
    produce(kafka_broker, topic_prefix, events[:200])
    _wait_applied(db, 200, first)
    first.kill()
    produce(kafka_broker, topic_prefix, events[200:])
    restarted = time.monotonic()
    second = worker_factory(kafka_broker, topic_prefix, db, "--log-level", "info")
    second.start()
    while count(db, "SELECT count(*) FROM mw_applied_events") <= 200:
        assert time.monotonic() - restarted < 60, f"nothing applied after the restart:\n{second.log.read_text()[-3000:]}"
        time.sleep(0.05)
    resumed = time.monotonic() - restarted
    assert resumed < 10, f"the restarted worker applied its first event {resumed:.1f} s after it was started"
    _wait_applied(db, 400, second)
