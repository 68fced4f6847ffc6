"""Producing records from the command line: a database's audit records, or synthetic events (demo).

``publish_outbox`` sends what the database's outbox holds (a baseline just
recorded by ``mailwindow baseline``, sweep runs of sweeps run by hand) to the
audit topics, creating the deployment's topics first when they are missing.
``send_test_events`` produces a deterministic mix of synthetic input events.

Choice written down here: topics created by these commands get the partition
count given, else the count the deployment's topics already have, else 4; a
worker started later with another count is refused in one line naming the
topics and their counts (``streams.worker.topics.CoPartitioningError``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer

from streams.events.codec import dumps_event
from streams.store import outbox
from streams.store.engine import Store, run_with_retry
from streams.worker.topics import contact_partitions, ensure_topics, topic_name
from synthetic.sample_events import mixed_events

DEFAULT_PARTITIONS = 4


async def _produce(broker: str, messages: Iterable[tuple[str, bytes, bytes]]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=broker, linger_ms=5, acks="all")
    await producer.start()
    sent = 0
    try:
        pending = []
        for topic, key, value in messages:
            pending.append(await producer.send(topic, value=value, key=key))
            sent += 1
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


async def _ensure(broker: str, prefix: str, partitions: int | None) -> None:
    count = partitions or await contact_partitions(broker, prefix) or DEFAULT_PARTITIONS
    await ensure_topics(broker, prefix, count)


def send_test_events(
    broker: str,
    prefix: str,
    count: int,
    seed: int = 1,
    malformed_share: float = 0.01,
    partitions: int | None = None,
) -> int:
    async def go() -> int:
        await _ensure(broker, prefix, partitions)
        events = mixed_events(count, seed=seed, malformed_share=malformed_share)
        return await _produce(broker, ((topic_name(prefix, e.topic), e.key, e.value) for e in events))

    return asyncio.run(go())


def publish_outbox(store: Store, broker: str, prefix: str, partitions: int | None = None) -> int:
    """Send the outbox's unpublished records to their topics, in order; how many were sent."""
    with store.engine.connect() as conn:
        records = outbox.unpublished(conn)

    async def go() -> int:
        await _ensure(broker, prefix, partitions)
        return await _produce(
            broker, ((topic_name(prefix, r.topic), r.key.encode(), dumps_event(r.record)) for r in records)
        )

    sent = asyncio.run(go())

    def mark() -> None:
        with store.engine.begin() as conn:
            outbox.mark_published(conn, [r.seq for r in records])

    run_with_retry(mark)
    return sent
