"""Producing input events: an existing database's contacts (bootstrap), or synthetic ones (demo).

``publish_database`` turns each contact row into a ``contacts`` upsert whose
event id is derived from the row (``publish:{id}:{updated_at}``), so
publishing the same database twice is recognised by the agents as the same
events.  Its event time is the row's ``updated_at`` (UTC, as SQLite writes
it), or now when the row has none.  Contacts whose stored dates are not real
dates are published without them (the rules would treat them as missing)
and counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from rules.anniversary import parse_iso_date
from streams.events import format_datetime
from streams.sample_events import mixed_events
from streams.store import open_store
from streams.topics import ensure_topics, topic_name

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


def send_test_events(
    broker: str, prefix: str, count: int, seed: int = 1, malformed_share: float = 0.01
) -> int:
    async def go() -> int:
        await ensure_topics(broker, prefix, DEFAULT_PARTITIONS)
        events = mixed_events(count, seed=seed, malformed_share=malformed_share)
        return await _produce(broker, ((topic_name(prefix, e.topic), e.key, e.value) for e in events))

    return asyncio.run(go())


def _event_time(raw: object) -> datetime:
    if raw is not None:
        try:
            return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


def _date_or_none(raw: object) -> str | None:
    day = parse_iso_date(None if raw is None else str(raw))
    return day.isoformat() if day is not None else None


def publish_database(broker: str, prefix: str, db: str) -> int:
    store = open_store(db)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, email, zip_code, state, birth_date, effective_date, phone_number, "
                    "first_name, last_name, updated_at FROM contacts ORDER BY id"
                )
            ).fetchall()
    finally:
        store.close()
    topic = topic_name(prefix, "contacts")

    def messages() -> Iterable[tuple[str, bytes, bytes]]:
        for r in rows:
            at = _event_time(r[9])
            value = {
                "event_id": f"publish:{r[0]}:{r[9] or 'unknown'}",
                "occurred_at": format_datetime(at),
                "op": "upsert",
                "contact_id": int(r[0]),
                "contact": {
                    "email": str(r[1] or ""),
                    "zip_code": r[2],
                    "state": r[3],
                    "birth_date": _date_or_none(r[4]),
                    "effective_date": _date_or_none(r[5]),
                    "phone_number": r[6],
                    "first_name": r[7],
                    "last_name": r[8],
                },
            }
            yield topic, str(r[0]).encode(), orjson.dumps(value)

    async def go() -> int:
        await ensure_topics(broker, prefix, DEFAULT_PARTITIONS)
        return await _produce(broker, messages())

    return asyncio.run(go())
