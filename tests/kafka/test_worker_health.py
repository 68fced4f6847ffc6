"""The worker's health endpoints and its stop on SIGTERM, through the real broker (issue 16,
"production shape").

Each worker is a ``mailwindow worker --health-port 0`` process (``tests/kafka/workers.py``);
the port it took is read from its first line.  Readiness is asked over HTTP like an
orchestrator would; who owns which partition is asked of the worker's readiness body and
checked against the broker's group description.  The handover figures are printed (``-s``);
the only timing asserts are generous bounds, and SIGTERM against the session timeout a
SIGKILL has to wait out.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.store.engine import new_agency_database
from streams.worker.app import SESSION_TIMEOUT_S, STOP_TIMEOUT_S
from streams.worker.topics import INPUT_TOPICS, ensure_topics, topic_name
from synthetic.sample_events import contact_upsert, mixed_events
from tests.kafka.test_worker import produce
from tests.kafka.workers import PARTITIONS, ROOT, WAIT, WorkerProcess, count

ALL_PARTITIONS = len(INPUT_TOPICS) * PARTITIONS
HANDOVER_BOUND_S = 15.0  # generous: a SIGTERM's partitions measured moving in about 1.5 s

Answer = tuple[int, dict[str, Any]] | None  # (status code, JSON body); None: nobody listens


class HealthWorker(WorkerProcess):
    """A worker serving its health endpoints on a port of its choosing."""

    def __init__(self, broker: str, prefix: str, db: Path, tmp: Path, *extra: str) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        super().__init__(broker, prefix, db, tmp, "--health-port", "0", *extra)
        self._port: int | None = None

    def spawn(self) -> None:
        """Started, without waiting for it to be ready."""
        self.proc = subprocess.Popen(self.args, cwd=ROOT, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)

    @property
    def port(self) -> int:
        deadline = time.monotonic() + WAIT
        while self._port is None:
            found = re.search(rb"health on http://127\.0\.0\.1:(\d+)/health/", self.log.read_bytes())
            if found:
                self._port = int(found[1])
            else:
                assert self.proc is not None
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"no health endpoint:\n{self.log.read_text()[-3000:]}")
                time.sleep(0.02)
        return self._port

    def get(self, path: str) -> Answer:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
        except (ConnectionError, urllib.error.URLError):
            return None

    def ready(self) -> Answer:
        return self.get("/health/ready")

    def live(self) -> Answer:
        return self.get("/health/live")

    def until_ready(self, partitions: Callable[[int], bool] = lambda n: True) -> dict[str, Any]:
        """The first 200 of /health/ready whose partition count ``partitions`` accepts."""
        deadline = time.monotonic() + WAIT
        while True:
            answer = self.ready()
            if answer is not None and answer[0] == 200 and partitions(answer[1]["group"]["partitions"]):
                return answer[1]
            if time.monotonic() > deadline:
                raise AssertionError(f"not ready: {answer}\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)


@pytest.fixture
def health_workers(tmp_path: Path) -> Iterator[Callable[..., HealthWorker]]:
    started: list[HealthWorker] = []

    def make(broker: str, prefix: str, db: Path, *extra: str) -> HealthWorker:
        w = HealthWorker(broker, prefix, db, tmp_path / f"w{len(started)}", *extra)
        started.append(w)
        return w

    yield make
    for w in started:
        w.stop()


def group_state(broker: str, group: str) -> tuple[str, int]:
    """The consumer group's state and member count, as the broker describes it."""

    async def go() -> tuple[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker)
        await admin.start()
        try:
            described = (await admin.describe_consumer_groups([group]))[0].groups[0]
            return described[2], len(described[5])  # (error, group, state, protocol type, protocol, members)
        finally:
            await admin.close()

    return asyncio.run(go())


def committed_offsets(broker: str, group: str) -> dict[tuple[str, int], int]:
    async def go() -> dict[tuple[str, int], int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(group)
        finally:
            await admin.close()
        return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    return asyncio.run(go())


def every_record(broker: str, topic: str) -> list[dict[str, Any]]:
    """Everything on ``topic`` now, from its start to its end offsets."""

    async def go() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=broker, auto_offset_reset="earliest", enable_auto_commit=False
        )
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            records: list[dict[str, Any]] = []
            deadline = time.monotonic() + WAIT
            for tp in tps:
                while await consumer.position(tp) < ends[tp]:
                    assert time.monotonic() < deadline, f"timed out reading {topic}"
                    for message in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                        records.append(orjson.loads(message.value))
            return records
        finally:
            await consumer.stop()

    return asyncio.run(go())


def announced_rows_equal_the_database(broker: str, prefix: str, db: Path) -> None:
    """Every owned row of the database is on ``schedule-changes``, as its latest announcement
    for its occurrence key, and nothing announced as present is missing from the database: no
    batch's announcements were lost."""
    latest: dict[str, dict[str, Any]] = {}
    for record in every_record(broker, topic_name(prefix, "schedule-changes")):
        latest[record["occurrence_key"]] = record  # a key's records are on one partition, in order
    announced = {k: (r["email_type"], r["scheduled_send_date"], r["status"]) for k, r in latest.items() if r["change"] != "cancelled"}
    con = sqlite3.connect(db)
    try:
        rows = {
            k: (t, d, s)
            for k, t, d, s in con.execute(
                "SELECT occurrence_key, email_type, scheduled_send_date, status FROM email_schedules "
                "WHERE occurrence_key IS NOT NULL"
            )
        }
    finally:
        con.close()
    assert rows, "the events decided no email: nothing to compare"
    assert set(rows) == set(announced), (
        f"{len(set(rows) - set(announced))} rows never announced, "
        f"{len(set(announced) - set(rows))} announced rows missing"
    )
    assert rows == announced


def applied_at_or_after(db: Path, prefix: str, committed: dict[tuple[str, int], int]) -> tuple[int, int]:
    """(events applied whose offset is below their partition's committed offset,
    events applied at or beyond it)."""
    con = sqlite3.connect(db)
    try:
        applied = con.execute("SELECT topic, source_partition, source_offset FROM mw_applied_events").fetchall()
    finally:
        con.close()
    below = beyond = 0
    for kind, partition, offset in applied:
        mark = committed.get((topic_name(prefix, kind), partition), 0)
        if offset < mark:
            below += 1
        else:
            beyond += 1
    return below, beyond


def messages(n: int, seed: int) -> list[tuple[str, bytes, bytes]]:
    return [(e.topic, e.key, e.value) for e in mixed_events(n, seed=seed, malformed_share=0.0)]


def test_ready_once_in_the_group_and_a_sigterm_mid_stream_commits_what_it_announced_and_exits_0(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, health_workers: Callable[..., HealthWorker]
) -> None:
    asyncio.run(ensure_topics(kafka_broker, topic_prefix, PARTITIONS))
    db = new_agency_database(tmp_path / "live.db")
    worker = health_workers(kafka_broker, topic_prefix, db)
    worker.spawn()
    # Readiness from the moment the endpoint answers: 503 while starting, then 200 once joined.
    answers: list[Answer] = []
    deadline = time.monotonic() + WAIT
    while not answers or answers[-1] is None or answers[-1][0] != 200:
        assert time.monotonic() < deadline, f"never ready: {answers[-3:]}\n{worker.log.read_text()[-3000:]}"
        answers.append(worker.ready())
        time.sleep(0.05)
    before = [a for a in answers[:-1] if a is not None]
    assert before, "the first answer was already 200: the worker was never seen starting"
    assert all(code == 503 and body["status"] == "starting" for code, body in before), before
    print(f"\nreadiness before 200: {sorted({b['reason'] for _, b in before})}")
    assert answers[-1] is not None
    ready = answers[-1][1]
    assert ready["status"] == "ok" and ready["reason"] is None
    assert ready["group"]["joined"] and not ready["group"]["rebalancing"] and ready["group"]["leader"]
    assert ready["group"]["assigned"] == {topic_name(topic_prefix, k): list(range(PARTITIONS)) for k in INPUT_TOPICS}
    assert group_state(kafka_broker, f"{topic_prefix}app") == ("Stable", 1)  # the broker agrees
    live = worker.live()
    assert live is not None and live[0] == 200 and live[1]["database"]["alive"]

    # A stream in flight: SIGTERM once part of it is applied.  Far more events than the
    # worker holds at once (an agent a topic, batches of up to 2,000 each, one being applied
    # and the next one buffered), so that some are still to be read when it stops.
    events = messages(20_000, seed=8)
    produce(kafka_broker, topic_prefix, events)
    deadline = time.monotonic() + WAIT
    while count(db, "SELECT count(*) FROM mw_applied_events") < 1500:
        assert time.monotonic() < deadline, f"worker applied nothing:\n{worker.log.read_text()[-3000:]}"
        time.sleep(0.02)
    assert worker.live() is not None
    worker.signal(signal.SIGTERM)
    sent = time.monotonic()
    after: list[Answer] = []
    assert worker.proc is not None
    while worker.proc.poll() is None and time.monotonic() - sent < STOP_TIMEOUT_S + 15:
        after.append(worker.ready())
        time.sleep(0.02)
    code = worker.wait_exit(30)
    stopped_in = time.monotonic() - sent
    applied = count(db, "SELECT count(*) FROM mw_applied_events")
    seen = [a[1]["status"] for a in after if a is not None]
    print(f"SIGTERM mid-stream: exit {code} after {stopped_in:.2f} s, {applied} of {len(events)} "
          f"events applied; readiness while stopping: {seen[:3]}... ({len(seen)} answers, "
          f"{sum(a is None for a in after)} refused)")
    assert code == 0, worker.log.read_text()[-3000:]
    assert stopped_in < STOP_TIMEOUT_S
    assert all(a is None or (a[0] == 503 and a[1]["status"] == "stopping") for a in after), after
    assert applied < len(events), "the stream was over before the SIGTERM: nothing in hand"
    # What it applied is exactly what it committed: the batch in hand was finished and its
    # offsets committed; nothing applied is left to be read again, nothing committed unapplied.
    committed = committed_offsets(kafka_broker, f"{topic_prefix}app")
    below, beyond = applied_at_or_after(db, topic_prefix, committed)
    assert (below, beyond) == (applied, 0)
    assert sum(committed.values()) == applied
    # ... and its announcements are all on the broker.
    announced_rows_equal_the_database(kafka_broker, topic_prefix, db)

    # The next worker takes the rest from the committed offsets.
    second = health_workers(kafka_broker, topic_prefix, db)
    second.start()
    deadline = time.monotonic() + WAIT
    while count(db, "SELECT count(*) FROM mw_applied_events") < len(events):
        assert time.monotonic() < deadline, f"not all applied:\n{second.log.read_text()[-3000:]}"
        time.sleep(0.2)
    second.signal(signal.SIGTERM)
    assert second.wait_exit(STOP_TIMEOUT_S + 15) == 0
    assert count(db, "SELECT count(*) FROM mw_applied_events") == len(events)
    announced_rows_equal_the_database(kafka_broker, topic_prefix, db)


def _time_until_all_partitions(survivor: HealthWorker, since: float) -> float:
    deadline = since + WAIT
    while True:
        answer = survivor.ready()
        if answer is not None and answer[0] == 200 and answer[1]["group"]["partitions"] == ALL_PARTITIONS:
            return time.monotonic() - since
        assert time.monotonic() < deadline, f"the survivor never took every partition: {answer}"
        time.sleep(0.05)


def test_sigterm_hands_the_partitions_over_at_once_sigkill_only_after_the_session(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, health_workers: Callable[..., HealthWorker]
) -> None:
    asyncio.run(ensure_topics(kafka_broker, topic_prefix, PARTITIONS))
    db = new_agency_database(tmp_path / "live.db")
    survivor = health_workers(kafka_broker, topic_prefix, db, "--sweep-cron", "off")
    survivor.start()
    survivor.until_ready(lambda n: n == ALL_PARTITIONS)

    def second_member() -> HealthWorker:
        w = health_workers(kafka_broker, topic_prefix, db, "--sweep-cron", "off")
        w.start()
        w.until_ready(lambda n: 0 < n < ALL_PARTITIONS)
        survivor.until_ready(lambda n: 0 < n < ALL_PARTITIONS)
        assert group_state(kafka_broker, f"{topic_prefix}app") == ("Stable", 2)
        return w

    leaving = second_member()
    leaving.signal(signal.SIGTERM)
    sent = time.monotonic()
    term_s = _time_until_all_partitions(survivor, sent)
    assert leaving.wait_exit(STOP_TIMEOUT_S + 15) == 0
    killed = second_member()
    killed.signal(signal.SIGKILL)
    sent = time.monotonic()
    kill_s = _time_until_all_partitions(survivor, sent)
    killed.wait_exit(30)
    assert group_state(kafka_broker, f"{topic_prefix}app") == ("Stable", 1)
    print(f"\npartitions with the other worker: {term_s:.2f} s after SIGTERM, {kill_s:.2f} s after "
          f"SIGKILL (session timeout {SESSION_TIMEOUT_S:g} s)")
    assert term_s < HANDOVER_BOUND_S
    # SIGTERM leaves the group (LeaveGroup): no wait for the session to expire, which a killed
    # member's partitions must (it expires up to a heartbeat after the kill's last one).
    assert term_s < kill_s


def _upsert(contact_id: int) -> list[tuple[str, bytes, bytes]]:
    at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    value = contact_upsert(contact_id, at, random.Random(contact_id), f"stuck-{contact_id}")
    return [("contacts", str(contact_id).encode(), orjson.dumps(value))]


def _wait_busy_on_a_batch(worker: HealthWorker) -> None:
    deadline = time.monotonic() + WAIT
    while True:
        answer = worker.live()
        busy = answer[1]["database"]["busy"] if answer is not None else None
        if busy is not None and busy["call"] == "process":
            return
        assert time.monotonic() < deadline, f"the batch never reached the database process: {answer}"
        time.sleep(0.05)


def _wait_stopping(worker: HealthWorker) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        answer = worker.ready()
        assert answer is not None, "the endpoint went away before it said stopping"
        if answer[1]["status"] == "stopping":
            assert answer[0] == 503
            return answer[1]
        assert time.monotonic() < deadline, answer
        time.sleep(0.02)


def test_a_stop_that_cannot_finish_ends_at_its_bound_and_a_second_sigterm_at_once(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, health_workers: Callable[..., HealthWorker]
) -> None:
    """A batch the database cannot take (the test holds SQLite's write lock): the stop waits
    for it, readiness says stopping all along, and the process ends with exit code 1 at
    --stop-timeout, or at once on a second SIGTERM.  The batch, never committed, is applied
    by the next worker."""
    asyncio.run(ensure_topics(kafka_broker, topic_prefix, PARTITIONS))
    db = new_agency_database(tmp_path / "live.db")
    no_sweep = ("--sweep-cron", "off")
    lock = sqlite3.connect(db, isolation_level=None)

    first = health_workers(kafka_broker, topic_prefix, db, *no_sweep, "--stop-timeout", "4")
    first.start()
    first.until_ready()
    lock.execute("BEGIN EXCLUSIVE")
    produce(kafka_broker, topic_prefix, _upsert(1))
    _wait_busy_on_a_batch(first)
    first.signal(signal.SIGTERM)
    sent = time.monotonic()
    stopping = _wait_stopping(first)
    assert stopping["database"]["busy"]["call"] == "process"
    code = first.wait_exit(60)
    bounded_s = time.monotonic() - sent
    assert code == 1
    assert b"the stop took longer than 4 s: ending now" in first.log.read_bytes()
    assert 4 <= bounded_s < 4 + 10
    lock.execute("ROLLBACK")

    second = health_workers(kafka_broker, topic_prefix, db, *no_sweep)
    second.start()
    second.until_ready(lambda n: n == ALL_PARTITIONS)  # the first member left by its session
    deadline = time.monotonic() + WAIT
    while count(db, "SELECT count(*) FROM mw_applied_events") < 1:
        assert time.monotonic() < deadline, "the batch the first worker could not finish was lost"
        time.sleep(0.1)
    lock.execute("BEGIN EXCLUSIVE")
    produce(kafka_broker, topic_prefix, _upsert(2))
    _wait_busy_on_a_batch(second)
    second.signal(signal.SIGTERM)
    _wait_stopping(second)
    second.signal(signal.SIGTERM)
    sent = time.monotonic()
    code = second.wait_exit(60)
    second_s = time.monotonic() - sent
    assert code == 1
    assert b"a second SIGTERM while stopping: ending now" in second.log.read_bytes()
    assert second_s < 10 < STOP_TIMEOUT_S
    lock.execute("ROLLBACK")
    lock.close()

    third = health_workers(kafka_broker, topic_prefix, db, *no_sweep)
    third.start()
    deadline = time.monotonic() + WAIT
    while count(db, "SELECT count(*) FROM mw_applied_events") < 2:
        assert time.monotonic() < deadline, "the batch the second worker could not finish was lost"
        time.sleep(0.1)
    third.signal(signal.SIGTERM)
    assert third.wait_exit(STOP_TIMEOUT_S + 15) == 0
    print(f"\nstop bounded at 4 s: ended after {bounded_s:.2f} s; second SIGTERM: ended after {second_s:.2f} s")
