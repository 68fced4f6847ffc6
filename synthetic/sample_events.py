"""Synthetic input events for demos, tests and the stream benchmark.

``mixed_events`` gives a deterministic stream (by seed) of contact upserts,
clicks, health answers and sending-side statuses, in event-time order, with a
chosen share of malformed messages of every kind the agents must survive:
bad JSON, wrong types, missing fields, impossible dates.  Some clicks and
answers name contacts whose upsert comes later in the stream (they must be
parked, then applied).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import orjson

STATES_ZIPS = (("75201", "TX"), ("90210", "CA"), ("10001", "NY"), ("63101", "MO"), ("89501", "NV"), ("33101", "FL"))
MALFORMED_KINDS = ("bad json", "wrong type", "missing field", "impossible date")


@dataclass(frozen=True)
class SampleEvent:
    topic: str  # contacts | clicks | health | email-status
    key: bytes
    value: bytes
    malformed: str | None = None  # which kind of bad message, when it is one


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def contact_upsert(contact_id: int, at: datetime, rng: random.Random, event_id: str) -> dict[str, object]:
    zip_code, state = rng.choice(STATES_ZIPS)
    birth = date(1940 + rng.randrange(25), 1 + rng.randrange(12), 1 + rng.randrange(28))
    effective = date(2010 + rng.randrange(15), 1 + rng.randrange(12), 1)
    return {
        "event_id": event_id,
        "occurred_at": _iso(at),
        "op": "upsert",
        "contact_id": contact_id,
        "contact": {
            "email": f"c{contact_id}@example.com",
            "zip_code": zip_code,
            "state": state,
            "birth_date": birth.isoformat(),
            "effective_date": effective.isoformat(),
            "phone_number": "555-0100" if rng.random() < 0.5 else None,
            "first_name": "Pat",
            "last_name": f"Doe{contact_id}",
        },
    }


def click(contact_id: int, at: datetime, event_id: str) -> dict[str, object]:
    return {
        "event_id": event_id,
        "occurred_at": _iso(at),
        "contact_id": contact_id,
        "tracking_id": f"trk-{event_id}",
    }


def health(contact_id: int, at: datetime, event_id: str, condition: bool) -> dict[str, object]:
    return {
        "event_id": event_id,
        "occurred_at": _iso(at),
        "contact_id": contact_id,
        "answers": {
            "has_medical_conditions": condition,
            "main_questions_yes_count": 1 if condition else 0,
            "answers_count": 7,
        },
    }


def _malform(payload: dict[str, object], kind: str) -> bytes:
    if kind == "bad json":
        return orjson.dumps(payload)[:-3] + b",,}"
    broken = dict(payload)
    if kind == "wrong type":
        broken["contact_id"] = str(broken["contact_id"])
    elif kind == "missing field":
        broken.pop("occurred_at")
    else:  # impossible date
        broken["occurred_at"] = "2025-02-30T10:00:00Z"
    return orjson.dumps(broken)


def mixed_events(
    count: int,
    *,
    seed: int = 1,
    contacts: int | None = None,
    start: datetime = datetime(2026, 3, 10, 14, 0, tzinfo=UTC),
    malformed_share: float = 0.01,
    prefix: str = "ev",
) -> Iterator[SampleEvent]:
    """``count`` events over ``contacts`` contacts (default count // 5), in event-time order."""
    rng = random.Random(seed)
    n_contacts = contacts or max(1, count // 5)
    known: list[int] = []
    pending = list(range(1, n_contacts + 1))
    rng.shuffle(pending)
    at = start
    for i in range(count):
        at += timedelta(milliseconds=rng.randrange(1, 50))
        event_id = f"{prefix}-{seed}-{i}"
        roll = rng.random()
        if pending and (not known or roll < 0.3):
            cid = pending.pop()
            topic, payload = "contacts", contact_upsert(cid, at, rng, event_id)
            known.append(cid)
        elif roll < 0.05 and pending:
            # behaviour of a contact that arrives later: parked until it does
            cid = pending[0]
            topic, payload = "clicks", click(cid, at, event_id)
        elif roll < 0.7:
            cid = rng.choice(known)
            topic, payload = "clicks", click(cid, at, event_id)
        elif roll < 0.9:
            cid = rng.choice(known)
            topic, payload = "health", health(cid, at, event_id, rng.random() < 0.3)
        else:
            cid = rng.choice(known)
            topic, payload = "contacts", contact_upsert(cid, at, rng, event_id)
        key = str(cid).encode()
        if rng.random() < malformed_share:
            kind = MALFORMED_KINDS[i % len(MALFORMED_KINDS)]
            yield SampleEvent(topic, key, _malform(payload, kind), kind)
        else:
            yield SampleEvent(topic, key, orjson.dumps(payload))
