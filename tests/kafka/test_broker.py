"""The real broker: topic creation, plain aiokafka, and a Faust worker run in-process."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.worker.topics import (
    CONTACT_KEYED_TOPICS,
    KEPT_FOREVER_TOPICS,
    TOPICS,
    CoPartitioningError,
    ensure_topics,
    topic_name,
)

TIMEOUT = 60.0  # generous: a loaded CI machine, a first consumer-group join
DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs config_source: set on the topic itself
RETENTION_KEYS = ("retention.ms", "retention.bytes", "cleanup.policy")


async def _partition_counts(bootstrap: str, prefix: str) -> dict[str, int]:
    """Partition count of every existing topic with this prefix, by short name."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if not names:
            return {}
        return {
            t["topic"].removeprefix(prefix): len(t["partitions"])
            for t in await admin.describe_topics(names)
        }
    finally:
        await admin.close()


async def _retention_configs(bootstrap: str, prefix: str) -> dict[str, dict[str, Any]]:
    """Per short topic name: {key: (value, config_source)} for the retention keys."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC, topic_name(prefix, n), dict.fromkeys(RETENTION_KEYS)
                )
                for n in TOPICS
            ]
        )
    finally:
        await admin.close()
    found: dict[str, dict[str, Any]] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            assert resource["error_code"] == 0, resource
            found[resource["resource_name"].removeprefix(prefix)] = {
                e["config_names"]: (e["config_value"], e["config_source"])
                for e in resource["config_entries"]
            }
    return found


def test_ensure_topics_creates_every_topic_once(kafka_broker: str, topic_prefix: str) -> None:
    asyncio.run(ensure_topics(kafka_broker, topic_prefix, 3))

    counts = asyncio.run(_partition_counts(kafka_broker, topic_prefix))
    assert counts == {
        "contacts": 3,
        "clicks": 3,
        "health": 3,
        "email-status": 3,
        "schedule-changes": 3,
        "campaigns": 3,
        "sweep-runs": 1,
        "baselines": 1,
        "deadletter": 1,
        "engagement": 3,
    }
    configs = asyncio.run(_retention_configs(kafka_broker, topic_prefix))
    for name in KEPT_FOREVER_TOPICS:
        assert configs[name] == {
            "retention.ms": ("-1", DYNAMIC_TOPIC_CONFIG),
            "retention.bytes": ("-1", DYNAMIC_TOPIC_CONFIG),
            "cleanup.policy": ("delete", DYNAMIC_TOPIC_CONFIG),
        }, name
    assert configs["engagement"]["cleanup.policy"] == ("compact", DYNAMIC_TOPIC_CONFIG)  # a table
    for name in ("schedule-changes", "deadletter"):  # the broker's defaults
        assert all(source != DYNAMIC_TOPIC_CONFIG for _, source in configs[name].values()), name

    asyncio.run(ensure_topics(kafka_broker, topic_prefix, 3))  # idempotent
    assert asyncio.run(_partition_counts(kafka_broker, topic_prefix)) == counts
    assert asyncio.run(_retention_configs(kafka_broker, topic_prefix)) == configs


def test_ensure_topics_reports_broken_co_partitioning(kafka_broker: str, topic_prefix: str) -> None:
    async def make_clicks_with_two_partitions() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic_name(topic_prefix, "clicks"), 2, 1)])
        finally:
            await admin.close()

    asyncio.run(make_clicks_with_two_partitions())
    with pytest.raises(CoPartitioningError, match=rf"{topic_prefix}clicks=2") as raised:
        asyncio.run(ensure_topics(kafka_broker, topic_prefix, 3))
    assert "co-partitioning broken" in str(raised.value)
    assert "\n" not in str(raised.value)
    # Nothing was created next to the broken topic.
    assert asyncio.run(_partition_counts(kafka_broker, topic_prefix)) == {"clicks": 2}


def test_topic_names() -> None:
    assert topic_name("org206.", "email-status") == "org206.email-status"
    assert set(CONTACT_KEYED_TOPICS) <= set(TOPICS)
    with pytest.raises(ValueError, match="unknown topic 'click'"):
        topic_name("org206.", "click")


def test_produce_and_consume(kafka_broker: str, topic_prefix: str) -> None:
    topic = topic_name(topic_prefix, "contacts")

    async def round_trip() -> tuple[bytes | None, bytes | None]:
        await ensure_topics(kafka_broker, topic_prefix, 2)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_broker)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b'{"id": 1}', key=b"contact-1")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka_broker, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            message = await asyncio.wait_for(consumer.getone(), TIMEOUT)
        finally:
            await consumer.stop()
        return message.key, message.value

    assert asyncio.run(round_trip()) == (b"contact-1", b'{"id": 1}')


def test_faust_agent_forwards_messages(
    kafka_broker: str, topic_prefix: str, tmp_path: Path
) -> None:
    """faust-streaming + aiokafka against the real broker: an agent forwards raw bytes."""
    source, sink = (
        topic_name(topic_prefix, "contacts"),
        topic_name(topic_prefix, "schedule-changes"),
    )
    app = faust.App(
        f"{topic_prefix}smoke",  # Faust's own topics (leader, changelogs) are named after it
        broker=f"kafka://{kafka_broker}",
        store="memory://",
        topic_partitions=2,  # = the partitions ensure_topics gives the contact-keyed topics
        web_enabled=False,
        datadir=str(tmp_path / "faust"),
    )
    source_topic = app.topic(source, key_serializer="raw", value_serializer="raw")
    sink_topic = app.topic(sink, key_serializer="raw", value_serializer="raw")
    leader_ticks: list[bool] = []

    @app.agent(source_topic)
    async def forward(stream: faust.StreamT[bytes]) -> None:
        async for key, value in stream.items():
            await sink_topic.send(key=key, value=value)

    @app.timer(interval=0.2, on_leader=True)
    async def leader_tick() -> None:
        leader_ticks.append(app.is_leader())

    async def run() -> tuple[bytes | None, bytes | None]:
        # Faust creates only its internal topics; ours must exist, and be in the
        # broker's metadata, before the worker subscribes (ensure_topics waits).
        await ensure_topics(kafka_broker, topic_prefix, 2)
        started = time.monotonic()
        # Returns once partitions are assigned and (table) recovery is done.
        await asyncio.wait_for(app.start(), TIMEOUT)
        try:
            consumer = AIOKafkaConsumer(
                sink, bootstrap_servers=kafka_broker, auto_offset_reset="earliest"
            )
            await consumer.start()
            producer = AIOKafkaProducer(bootstrap_servers=kafka_broker)
            await producer.start()
            try:
                await producer.send_and_wait(source, b"\x00raw bytes\xff", key=b"contact-7")
                message = await asyncio.wait_for(consumer.getone(), TIMEOUT)
            finally:
                await producer.stop()
                await consumer.stop()
            while not leader_ticks and time.monotonic() - started < TIMEOUT:
                await asyncio.sleep(0.1)
            return message.key, message.value
        finally:
            await asyncio.wait_for(app.stop(), TIMEOUT)

    assert asyncio.run(run()) == (b"contact-7", b"\x00raw bytes\xff")
    assert leader_ticks and all(leader_ticks)  # one worker: the leader, so its timer ran
