"""The order-independence property (tests/streams/worker/test_event_order.py) through the real
broker, with fewer examples: a generated log produced to the topics, the real worker
killed (SIGKILL) at a random point and started again, then ``replay`` of the real topics.
The live database, the simulated worker's and the replayed one must agree."""

from __future__ import annotations

import asyncio
import random
import shutil
import time
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from streams.worker.replay import replay
from streams.worker.topics import ensure_topics, topic_name
from tests.event_logs import DAY0, PARTITIONS, EventLog, agency_template, event_logs, run_live
from tests.kafka.workers import WAIT, WorkerProcess, count
from tests.sweeps import checksum


def produce_log(broker: str, prefix: str, log: EventLog, seed: int) -> None:
    """Each partition's events in order; the partitions interleaved at random."""
    rng = random.Random(seed)
    queues = {k: list(v) for k, v in log.queues.items()}

    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all", linger_ms=2)
        await producer.start()
        try:
            pending = []
            while queues:
                k = rng.choice(sorted(queues))
                e = queues[k].pop(0)
                if not queues[k]:
                    del queues[k]
                pending.append(
                    await producer.send(topic_name(prefix, e.topic), orjson.dumps(e.value), key=e.key, partition=e.partition)
                )
            await asyncio.gather(*pending)
        finally:
            await producer.stop()

    asyncio.run(go())


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return agency_template(tmp_path_factory.mktemp("template") / "agency.db")


@settings(
    max_examples=4,
    deadline=None,
    phases=[Phase.generate],  # shrinking would restart the worker hundreds of times
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(log=event_logs(max_events=60), seed=st.integers(0, 10**6), kill_share=st.floats(0.0, 0.9))
def test_live_through_the_broker_with_a_crash_equals_the_simulation_and_replay(
    kafka_broker: str, template: Path, tmp_path_factory: pytest.TempPathFactory,
    log: EventLog, seed: int, kill_share: float,
) -> None:
    work = tmp_path_factory.mktemp("broker-order")
    prefix = f"o{uuid.uuid4().hex[:8]}."
    asyncio.run(ensure_topics(kafka_broker, prefix, PARTITIONS))
    db = work / "live.db"
    shutil.copyfile(template, db)
    total = sum(len(q) for q in log.queues.values())
    args = ("--today", DAY0.isoformat(), "--sweep-cron", "off")
    first = WorkerProcess(kafka_broker, prefix, db, work, *args)
    second = WorkerProcess(kafka_broker, prefix, db, work, *args, "--log-level", "info")
    try:
        first.start()
        produce_log(kafka_broker, prefix, log, seed)
        deadline = time.monotonic() + WAIT
        while count(db, "SELECT count(*) FROM mw_applied_events") < int(total * kill_share):
            assert time.monotonic() < deadline, first.log.read_text()[-3000:]
            time.sleep(0.02)
        first.kill()
        second.start()
        while count(db, "SELECT count(*) FROM mw_applied_events") < total:
            assert time.monotonic() < deadline, second.log.read_text()[-3000:]
            time.sleep(0.1)
    finally:
        first.stop()
        second.stop()
    live = checksum(db)
    assert run_live(template, work, log, seed).checksum == live
    assert replay(kafka_broker, prefix, str(work / "replayed.db")) == live
