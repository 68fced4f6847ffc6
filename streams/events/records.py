"""The records the stream writes: ``schedule-changes`` and ``deadletter`` values.

Each carries a deterministic ``event_id``, so a record sent twice (after a
crash, or by a retried send) is recognised and consumers de-duplicate on it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from streams.events.times import format_datetime


@dataclass(frozen=True)
class RowState:
    """A schedule row's decision as it was before a change (``previous``)."""

    email_type: str
    scheduled_send_date: date
    status: str
    skip_reason: str | None = None


def schedule_change_id(
    cause_topic: str, cause_event_id: str, occurrence_key: str, change: str
) -> str:
    """Deterministic: the same cause announcing the same change of the same row, same id."""
    parts = "\x1f".join((cause_topic, cause_event_id, occurrence_key, change))
    return "sc-" + hashlib.sha256(parts.encode()).hexdigest()


def schedule_change_record(
    *,
    contact_id: int,
    occurrence_key: str,
    change: str,
    email_type: str,
    scheduled_send_date: date,
    status: str,
    skip_reason: str | None,
    previous: RowState | None,
    cause_topic: str,
    cause_event_id: str,
    occurred_at: datetime,
) -> dict[str, Any]:
    """A ``schedule-changes`` value: ``change`` is created / changed / cancelled, ``status``
    pre-scheduled / skipped, ``occurred_at`` the cause's time (aware), ``cause_topic`` the
    topic kind without prefix (``sweep-runs`` with the run id for the sweep)."""
    return {
        "event_id": schedule_change_id(cause_topic, cause_event_id, occurrence_key, change),
        "occurred_at": format_datetime(occurred_at),
        "contact_id": contact_id,
        "occurrence_key": occurrence_key,
        "change": change,
        "email_type": email_type,
        "scheduled_send_date": scheduled_send_date.isoformat(),
        "status": status,
        "skip_reason": skip_reason,
        "previous": None
        if previous is None
        else {
            "email_type": previous.email_type,
            "scheduled_send_date": previous.scheduled_send_date.isoformat(),
            "status": previous.status,
            "skip_reason": previous.skip_reason,
        },
        "cause": {"topic": cause_topic, "event_id": cause_event_id},
    }


def deadletter_record(
    source_topic: str,
    partition: int,
    offset: int,
    key: bytes | str | None,
    raw: bytes | None,
    error: str,
) -> dict[str, Any]:
    """A ``deadletter`` value for the message at ``source_topic``/``partition``/``offset``.

    The raw bytes are always kept (base64), and as text too when they are valid
    UTF-8; a key that is not UTF-8 is kept with backslash escapes.
    """
    raw_bytes = b"" if raw is None else bytes(raw)
    try:
        raw_text: str | None = raw_bytes.decode("utf-8") if raw is not None else None
    except UnicodeDecodeError:
        raw_text = None
    key_text = key.decode("utf-8", errors="backslashreplace") if isinstance(key, bytes) else key
    return {
        "event_id": f"{source_topic}:{partition}:{offset}",
        "source_topic": source_topic,
        "partition": partition,
        "offset": offset,
        "key": key_text,
        "raw_text": raw_text,
        "raw_base64": base64.b64encode(raw_bytes).decode("ascii"),
        "error": error or "(no message)",
    }
