"""What the console reads from and writes to Kafka when a broker is given (aiokafka).

- ``BrokerView``: the dead letters (the ``<prefix>deadletter`` topic, the last
  ``DEADLETTERS_READ`` of each partition, newest first), dead letters per day (of
  those read, by the broker's timestamp, Central days), how many the topic holds,
  and the worker's consumer lag per input topic (its consumer group is its Faust
  app id, ``mailwindow worker --app-id``).  Read at most every ``REFRESH_S``
  seconds and kept: a page must not wait on the broker each time, and a broker
  that cannot be reached is said on the page, not an error page.
- ``Publisher``: the webhook's events onto ``email-status`` and ``clicks``, keyed by
  contact id, acknowledged by all in-sync replicas before the webhook answers.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from streams.events.kinds import AGENT_INPUT_KINDS, DEADLETTER
from streams.events.times import CENTRAL
from streams.worker.topics import existing_partitions, topic_name

DEADLETTERS_READ = 500
REFRESH_S = 15.0
TIMEOUT_S = 5.0


@dataclass
class BrokerSnapshot:
    read_at: float = 0.0
    error: str | None = None
    deadletters: list[dict[str, Any]] = field(default_factory=list)
    deadletters_total: int = 0  # messages the topic holds now
    deadletters_per_day: dict[str, int] = field(default_factory=dict)  # of those read
    deadletters_per_topic: dict[str, int] = field(default_factory=dict)  # of those read
    lag: dict[str, int] = field(default_factory=dict)  # input topic -> messages not yet committed

    def as_json(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "deadletters_total": self.deadletters_total,
            "deadletters_read": len(self.deadletters),
            "deadletters_per_day": dict(sorted(self.deadletters_per_day.items())),
            "deadletters_per_topic": dict(sorted(self.deadletters_per_topic.items())),
            "consumer_lag": dict(sorted(self.lag.items())),
        }


def _dead_letter(message: Any) -> dict[str, Any]:
    """One message of the deadletter topic as the page lists it."""
    try:
        value = orjson.loads(message.value) if message.value is not None else {}
    except orjson.JSONDecodeError:
        value = {}
    if not isinstance(value, dict):
        value = {}
    when = datetime.fromtimestamp(message.timestamp / 1000, CENTRAL) if message.timestamp else None
    return {
        "at": when.isoformat(timespec="seconds") if when else None,
        "day": when.date().isoformat() if when else None,
        "deadletter_offset": message.offset,
        "source_topic": value.get("source_topic"),
        "partition": value.get("partition"),
        "offset": value.get("offset"),
        "key": value.get("key"),
        "error": value.get("error"),
        "raw_text": value.get("raw_text"),
        "raw_base64": value.get("raw_base64") if value.get("raw_text") is None else None,
    }


async def _partitions(broker: str, topics: Sequence[str]) -> list[Any]:
    return (await existing_partitions(broker, topics, timeout_ms=int(TIMEOUT_S * 1000)))[0]


async def read_deadletters(broker: str, prefix: str, limit: int) -> tuple[list[dict[str, Any]], int]:
    """The last ``limit`` dead letters of each partition (newest first), and how many the topic holds."""
    from aiokafka import AIOKafkaConsumer

    tps = await _partitions(broker, [topic_name(prefix, DEADLETTER)])
    if not tps:
        return [], 0
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False, request_timeout_ms=int(TIMEOUT_S * 1000))
    await consumer.start()
    try:
        consumer.assign(tps)
        first = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        total = sum(end[tp] - first[tp] for tp in tps)
        for tp in tps:
            consumer.seek(tp, max(first[tp], end[tp] - limit))
        found: list[dict[str, Any]] = []
        pending = {tp for tp in tps if end[tp] > first[tp]}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=int(TIMEOUT_S * 1000))
            if not batch:
                break  # the broker has nothing more for us in time: show what was read
            for tp, messages in batch.items():
                found.extend(_dead_letter(m) for m in messages)
                if messages and messages[-1].offset + 1 >= end[tp]:
                    pending.discard(tp)
        found.sort(key=lambda d: (d["at"] or "", d["deadletter_offset"]), reverse=True)
        return found, total
    finally:
        await _stop(consumer)


async def consumer_lag(broker: str, prefix: str, group: str) -> dict[str, int]:
    """Per input topic, the messages the worker's consumer group has not committed yet."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    topics = {topic_name(prefix, k): k for k in AGENT_INPUT_KINDS}
    tps = await _partitions(broker, list(topics))
    admin = AIOKafkaAdminClient(bootstrap_servers=broker, request_timeout_ms=int(TIMEOUT_S * 1000))
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False)
    await consumer.start()
    try:
        end = await consumer.end_offsets(tps) if tps else {}
    finally:
        await _stop(consumer)
    lag: Counter[str] = Counter()
    for tp in tps:
        done = committed.get(tp)
        position = done.offset if done is not None and done.offset >= 0 else 0
        lag[topics[tp.topic]] += max(0, end[tp] - position)
    return {k: lag.get(k, 0) for k in AGENT_INPUT_KINDS}


async def _stop(consumer: Any) -> None:
    # aiokafka 0.14 awaits a task of the consumer's that a stop right after its start
    # cancels before it ran: one turn of the loop lets it start, so stopping is clean.
    await asyncio.sleep(0)
    await consumer.stop()


class BrokerView:
    """The broker's side of the pages, read again at most every ``REFRESH_S`` seconds."""

    def __init__(self, broker: str, prefix: str, group: str) -> None:
        self.broker, self.prefix, self.group = broker, prefix, group
        self.snapshot = BrokerSnapshot()
        self._lock = asyncio.Lock()
        self._reading: asyncio.Task[None] | None = None

    async def current(self) -> BrokerSnapshot:
        """The last read; a stale one starts a new read and is returned meanwhile, so a broker
        that answers slowly (up to ``TIMEOUT_S`` x 3) never holds a page.  Only the very
        first request waits for a read."""
        if self.snapshot.read_at == 0.0:
            await self._refresh()
        elif time.monotonic() - self.snapshot.read_at >= REFRESH_S and (
            self._reading is None or self._reading.done()
        ):
            self._reading = asyncio.create_task(self._refresh())
        return self.snapshot

    async def _refresh(self) -> None:
        async with self._lock:  # one reader at a time; the others get what it read
            if time.monotonic() - self.snapshot.read_at >= REFRESH_S or self.snapshot.read_at == 0.0:
                self.snapshot = await self._read()

    async def _read(self) -> BrokerSnapshot:
        snap = BrokerSnapshot(read_at=time.monotonic())
        try:
            letters, total = await asyncio.wait_for(
                read_deadletters(self.broker, self.prefix, DEADLETTERS_READ), TIMEOUT_S * 3
            )
            snap.lag = await asyncio.wait_for(consumer_lag(self.broker, self.prefix, self.group), TIMEOUT_S * 3)
        except Exception as exc:  # noqa: BLE001 - any failure of the broker is shown, never raised
            snap.error = f"broker {self.broker}: {type(exc).__name__}: {exc}".strip()
            return snap
        snap.deadletters, snap.deadletters_total = letters, total
        snap.deadletters_per_day = dict(Counter(d["day"] for d in letters if d["day"]))
        snap.deadletters_per_topic = dict(Counter(str(d["source_topic"]) for d in letters))
        return snap


class Publisher:
    """The webhook's producer, started on first use and kept."""

    def __init__(self, broker: str, prefix: str) -> None:
        self.broker, self.prefix = broker, prefix
        self._producer: Any = None
        self._lock = asyncio.Lock()

    async def _started(self) -> Any:
        from aiokafka import AIOKafkaProducer

        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(bootstrap_servers=self.broker, acks="all", request_timeout_ms=10000)
                await producer.start()
                self._producer = producer
        return self._producer

    async def publish(self, messages: Sequence[tuple[str, bytes, bytes]]) -> None:
        """(topic kind, key, value) each sent, and all acknowledged, before returning."""
        producer = await self._started()
        sent = [
            await producer.send(topic_name(self.prefix, kind), value=value, key=key) for kind, key, value in messages
        ]
        await asyncio.gather(*sent)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
