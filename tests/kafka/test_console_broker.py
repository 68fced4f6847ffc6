"""The ops console in broker mode (``mailwindow serve --broker``) against the real broker.

What an operator sees: a signed SendGrid batch lands on the ``email-status`` and ``clicks``
topics (not in the database: the worker applies it, and then the contact page shows it);
a message the worker dead-letters is listed with its source topic, partition, offset and
reason; the worker's consumer lag is what the broker says, before and after the worker
ran; ``/metrics`` says the broker is up and how many dead letters the topic holds.
The console is ``make_app`` through Starlette's TestClient, as ``mailwindow serve`` makes it.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from starlette.testclient import TestClient

from rules.config import DEFAULT_CONFIG
from streams.console import broker as console_broker
from streams.console.app import ConsoleOptions, make_app
from streams.events.codec import dumps_event
from streams.events.kinds import AGENT_INPUT_KINDS
from streams.events.records import deadletter_record
from streams.store.engine import new_agency_database, open_store
from streams.worker.topics import ensure_topics, topic_name
from synthetic.sample_events import mixed_events
from tests.kafka.conftest import free_ports
from tests.kafka.workers import PARTITIONS, WAIT, WorkerProcess, count, read_until
from tests.legacy_db import add_contacts, dump, make_legacy_db
from tests.streams.console.console_app import SECRET, sign
from tests.sweeps import sweep

T = date(2026, 4, 1)
KEY = "1:birthday:2026"  # contact 1's birthday email, dated T by the sweep
AT = int(datetime(2026, 4, 1, 14, 0, tzinfo=UTC).timestamp())


@pytest.fixture(autouse=True)
def fresh_broker_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each request reads the broker again (the console keeps a read ``REFRESH_S`` = 15 s)."""
    monkeypatch.setattr(console_broker, "REFRESH_S", 0.0)


@pytest.fixture
def workers(kafka_broker: str, topic_prefix: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(db: Path, *extra: str) -> WorkerProcess:
        w = WorkerProcess(kafka_broker, topic_prefix, db, tmp_path, *extra)
        started.append(w)
        w.start()
        return w

    yield start
    for w in started:
        w.stop()


@contextmanager
def console(db: Path, broker: str, prefix: str) -> Iterator[TestClient]:
    """``mailwindow serve --broker B --prefix P --app-id <the workers' app id>``: no writable store."""
    store = open_store(str(db), read_only=True)
    options = ConsoleOptions(today=T, broker=broker, prefix=prefix, app_id=f"{prefix}app", webhook_secret=SECRET)
    try:
        with TestClient(make_app(store, DEFAULT_CONFIG, options)) as client:
            yield client
    finally:
        store.close()


def poll(read: Callable[[], Any], done: Callable[[Any], bool], what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while not done(value := read()):
        assert time.monotonic() < deadline, f"{what}: still {value!r}"
        time.sleep(0.3)
    return value


def produce(broker: str, messages: list[tuple[str, bytes, bytes]]) -> list[Any]:
    """(full topic, key, value) each, acknowledged; their RecordMetadata (partition, offset)."""

    async def go() -> list[Any]:
        producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
        await producer.start()
        try:
            return list(await asyncio.gather(*[await producer.send(t, value=v, key=k) for t, k, v in messages]))
        finally:
            await producer.stop()

    return asyncio.run(go())


def broker_lag(broker: str, prefix: str, group: str) -> dict[str, int]:
    """Per input topic kind: end offsets minus the group's committed offsets, asked of the broker."""

    async def go() -> dict[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker)
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(group)
            described = await admin.describe_topics([topic_name(prefix, k) for k in AGENT_INPUT_KINDS])
        finally:
            await admin.close()
        tps = [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]]
        consumer = AIOKafkaConsumer(bootstrap_servers=broker)
        await consumer.start()
        try:
            end = await consumer.end_offsets(tps)
        finally:
            await asyncio.sleep(0)
            await consumer.stop()
        lag = dict.fromkeys(AGENT_INPUT_KINDS, 0)
        for tp in tps:
            done = committed[tp].offset if tp in committed else 0
            lag[tp.topic.removeprefix(prefix)] += end[tp] - done
        return lag

    return asyncio.run(go())


def agency(tmp_path: Path) -> Path:
    db = make_legacy_db(tmp_path / "agency.db")
    add_contacts(db, [{"id": 1, "zip_code": "75201", "state": "TX", "birth_date": "1950-04-15"}])
    sweep(db, T)
    assert dump(db, "SELECT status FROM email_schedules WHERE occurrence_key = ?", (KEY,)) == [("pre-scheduled",)]
    return db


def recorded(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    tables = ("email_schedules", "mw_applied_events", "mw_status_facts", "tracking_clicks")
    return {t: dump(db, f"SELECT * FROM {t} ORDER BY 1") for t in tables}


def test_a_signed_batch_goes_onto_the_topics_and_the_worker_applies_it(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, workers: Callable[..., WorkerProcess]
) -> None:
    asyncio.run(ensure_topics(kafka_broker, topic_prefix, PARTITIONS))
    db = agency(tmp_path)
    before = recorded(db)
    common = {"email": "c1@example.com", "contact_id": "1", "occurrence_key": KEY}
    body = orjson.dumps([
        {"event": "delivered", "timestamp": AT, "sg_event_id": "sg-1", **common},
        {"event": "click", "timestamp": AT + 3600, "sg_event_id": "sg-2", "url": "https://a.example/q", **common},
        {"event": "open", "timestamp": AT + 60, "sg_event_id": "sg-3", **common},
    ])
    with console(db, kafka_broker, topic_prefix) as client:
        r = client.post("/webhooks/delivery", content=body, headers=sign(body))
        assert r.status_code == 200, r.text
        assert r.json() == {"received": 3, "published": 2, "ignored": 1}

    def keyed(m: Any) -> tuple[bytes, dict[str, Any]]:
        return m.key, orjson.loads(m.value)

    statuses = read_until(kafka_broker, topic_name(topic_prefix, "email-status"), lambda s: len(s) >= 1, keyed)
    clicks = read_until(kafka_broker, topic_name(topic_prefix, "clicks"), lambda s: len(s) >= 1, keyed)
    assert [(k, v["event_id"], v["contact_id"], v["occurrence_key"], v["status"]) for k, v in statuses] == [
        (b"1", "sendgrid:sg-1", 1, KEY, "delivered")
    ]
    assert [(k, v["event_id"], v["contact_id"], v["tracking_id"]) for k, v in clicks] == [
        (b"1", "sendgrid:sg-2", 1, KEY)
    ]
    assert recorded(db) == before  # in broker mode the console writes nothing itself

    workers(db, "--today", T.isoformat())
    applied = "SELECT count(*) FROM mw_applied_events WHERE event_id IN ('sendgrid:sg-1', 'sendgrid:sg-2')"
    poll(lambda: count(db, applied), lambda n: n == 2, "the worker's applied webhook events")
    with console(db, kafka_broker, topic_prefix) as client:
        page = client.get("/contacts/1").text
    assert 'data-type="birthday" data-status="delivered"' in page


def test_a_message_the_worker_dead_letters_is_listed_with_where_it_came_from_and_why(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, workers: Callable[..., WorkerProcess]
) -> None:
    asyncio.run(ensure_topics(kafka_broker, topic_prefix, PARTITIONS))
    db = new_agency_database(tmp_path / "live.db")
    workers(db)
    clicks = topic_name(topic_prefix, "clicks")
    [sent] = produce(kafka_broker, [(clicks, b"7", b"{not json")])
    with console(db, kafka_broker, topic_prefix) as client:
        data = poll(lambda: client.get("/api/deadletters").json(), lambda d: d["deadletters"], "dead letters")
        page = client.get("/deadletters").text
        metrics = client.get("/metrics").text
    assert data["error"] is None and data["deadletters_total"] == 1
    assert data["deadletters_per_topic"] == {clicks: 1}
    [dead] = data["deadletters"]
    assert (dead["source_topic"], dead["partition"], dead["offset"], dead["key"], dead["raw_text"]) == (
        clicks, sent.partition, sent.offset, "7", "{not json"
    )
    assert "not valid JSON" in dead["error"]
    row = (
        f"<td>{clicks}</td><td class=\"n\">{sent.partition}</td><td class=\"n\">{sent.offset}</td>"
        f"<td>{html.escape(dead['error'])}</td>"
    )
    assert row in page
    assert "mailwindow_deadletters 1.0" in metrics
    assert f'mailwindow_deadletters_recent{{source_topic="{clicks}"}} 1.0' in metrics


def test_consumer_lag_is_what_the_broker_says_before_and_after_the_worker(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, workers: Callable[..., WorkerProcess]
) -> None:
    asyncio.run(ensure_topics(kafka_broker, topic_prefix, PARTITIONS))
    db = new_agency_database(tmp_path / "live.db")
    events = list(mixed_events(300, seed=3, malformed_share=0.0))
    produce(kafka_broker, [(topic_name(topic_prefix, e.topic), e.key, e.value) for e in events])
    produced = Counter(e.topic for e in events)
    expected = {k: produced[k] for k in AGENT_INPUT_KINDS}
    assert sum(1 for n in expected.values() if n) >= 3
    group = f"{topic_prefix}app"
    with console(db, kafka_broker, topic_prefix) as client:
        lag = client.get("/api/dashboard").json()["broker"]["consumer_lag"]
        assert lag == expected == broker_lag(kafka_broker, topic_prefix, group)
        page = client.get("/").text
        assert f'<tr><td>clicks</td><td class="n">{expected["clicks"]}</td></tr>' in page

        workers(db)
        poll(lambda: count(db, "SELECT count(*) FROM mw_applied_events"), lambda n: n == len(events), "applied")
        zero = dict.fromkeys(AGENT_INPUT_KINDS, 0)
        poll(lambda: client.get("/api/dashboard").json()["broker"]["consumer_lag"], lambda lag: lag == zero, "lag")
        metrics = client.get("/metrics").text
    assert broker_lag(kafka_broker, topic_prefix, group) == zero
    assert 'mailwindow_consumer_lag{topic="clicks"} 0.0' in metrics


def test_metrics_say_the_broker_is_up_and_count_the_dead_letters(
    kafka_broker: str, topic_prefix: str, tmp_path: Path
) -> None:
    asyncio.run(ensure_topics(kafka_broker, topic_prefix, PARTITIONS))
    db = new_agency_database(tmp_path / "live.db")
    with console(db, kafka_broker, topic_prefix) as client:
        before = client.get("/metrics").text
        assert "mailwindow_broker_up 1.0" in before and "mailwindow_deadletters 0.0" in before
        # A dead letter in the shape the worker writes it (streams.worker.batch), on its topic.
        source = topic_name(topic_prefix, "health")
        record = deadletter_record(source, 1, 41, b"9", b"[]", "health: not an object")
        produce(kafka_broker, [(topic_name(topic_prefix, "deadletter"), b"x", dumps_event(record))])
        after = poll(lambda: client.get("/metrics").text, lambda t: "mailwindow_deadletters 1.0" in t, "the gauge")
    assert "mailwindow_broker_up 1.0" in after
    assert f'mailwindow_deadletters_recent{{source_topic="{source}"}} 1.0' in after
    # A broker nobody answers at: said on /metrics and on the page, never an error page.
    [port] = free_ports(1)
    with console(db, f"127.0.0.1:{port}", topic_prefix) as client:
        down = client.get("/metrics")
        dashboard = client.get("/api/dashboard")
    assert down.status_code == 200 and "mailwindow_broker_up 0.0" in down.text
    assert dashboard.status_code == 200 and f"127.0.0.1:{port}" in dashboard.json()["broker"]["error"]
