"""Every SQL statement of the console: read-only, each value bound, none built from a request.

Each query is shaped by an index (the console must answer in under 300 ms on
a 1M-contact agency, so no page scans a table whose size grows with the
agency):

- ``day_mix``: the dashboard's one aggregate, over ``mw_email_schedules_day_mix``
  (date, status, type, skip reason, move note), which covers it;
- checkpoints: the newest first by primary key, a page at a time;
- a contact: by primary key, its rows, clicks and answers by their
  ``contact_id`` indexes; the search by id, or by the e-mail address's UNIQUE
  index (an exact address, or addresses starting with the text typed);
- campaigns: the agency's few types and instances; the change log newest
  first, a page; targets by status over ``mw_contact_campaigns_instance``.

The rows come back as plain dicts and tuples: the pages and their JSON twins
are built from them (``streams.console.pages``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from sqlalchemy import Connection, inspect, text

from rules.bounds import MAX_ID

# The console reads these tables and columns; an older database lacks some until it is
# migrated (by the sweep, the worker, or `serve` itself when it takes webhooks).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "contacts": ("id", "email", "first_name", "last_name"),
    "email_schedules": ("scheduled_send_date", "status", "email_type", "skip_reason", "catchup_note", "occurrence_key"),
    "scheduler_checkpoints": ("scheduler_run_id", "as_of", "summary", "contacts_scanned", "contacts_invalid"),
    "mw_applied_counts": ("topic", "applied"),
    "mw_epochs": ("as_of",),
}


def missing_schema(conn: Connection) -> list[str]:
    """What the console needs and the database lacks (empty: it can be served)."""
    found = inspect(conn)
    tables = set(found.get_table_names())
    missing: list[str] = []
    for table, columns in REQUIRED_COLUMNS.items():
        if table not in tables:
            missing.append(f"table {table}")
            continue
        have = {c["name"] for c in found.get_columns(table)}
        missing.extend(f"column {table}.{c}" for c in columns if c not in have)
    return missing


# --- the dashboard ---------------------------------------------------------------------------

# Grouped in the covering index's own column order: SQLite then counts the index range
# as it reads it, with no sort (a temporary B-tree for another grouping cost 4x at 200k
# contacts).  What moved a row and the skip reasons are read from the groups in Python.
_DAY_MIX = text(
    "SELECT scheduled_send_date, status, email_type, skip_reason, catchup_note, count(*) "
    "FROM email_schedules "
    "WHERE scheduled_send_date >= :first AND scheduled_send_date <= :last "
    "GROUP BY scheduled_send_date, status, email_type, skip_reason, catchup_note"
)

# The notes the sweep leaves on the rows it moved (streams.sweep.movables).
_MOVED_NOTES = (("moved by daily cap", "daily_cap"), ("moved by effective-date smoothing", "smoothing"))


def moved_by(note: str | None) -> str:
    """'daily_cap', 'smoothing', or '' (not moved by the sweep's balancing)."""
    if note:
        for start, what in _MOVED_NOTES:
            if note.startswith(start):
                return what
    return ""


@dataclass(frozen=True)
class DayMix:
    """One group of the dashboard's aggregate."""

    day: str  # as stored: ISO text
    email_type: str
    status: str
    moved: str  # '', 'smoothing' or 'daily_cap'
    skip_reason: str | None  # skipped rows only
    count: int


def day_mix(conn: Connection, first: date, last: date) -> list[DayMix]:
    """Rows dated ``first..last``, counted by date, type, status, what moved them and
    (skipped ones) their reason: one query, read from the covering index in its order."""
    params = {"first": first.isoformat(), "last": last.isoformat()}
    return [
        DayMix(
            str(d), str(t), str(s), moved_by(None if n is None else str(n)),
            None if r is None or s != "skipped" else str(r), int(c),
        )
        for d, s, t, r, n, c in conn.execute(_DAY_MIX, params)
    ]


# --- sweeps (scheduler_checkpoints) -----------------------------------------------------------

_CHECKPOINT_COLUMNS = (
    "id, scheduler_run_id, run_timestamp, completed_at, as_of, status, contacts_scanned, "
    "contacts_processed, contacts_invalid, emails_scheduled, emails_skipped, error_message, summary"
)
_CHECKPOINTS = text(
    f"SELECT {_CHECKPOINT_COLUMNS} FROM scheduler_checkpoints WHERE id < :before ORDER BY id DESC LIMIT :n"
)
_LAST_COMPLETED = text(
    f"SELECT {_CHECKPOINT_COLUMNS} FROM scheduler_checkpoints WHERE status = 'completed' "
    "ORDER BY id DESC LIMIT 1"
)


def _checkpoint(row: Sequence[Any]) -> dict[str, Any]:
    names = [n.strip() for n in _CHECKPOINT_COLUMNS.split(",")]
    out = dict(zip(names, row, strict=True))
    raw = out.pop("summary")
    try:
        summary = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        summary = {}  # another program's text: the columns still say what happened
    out["summary"] = summary if isinstance(summary, dict) else {}
    return out


def checkpoints(conn: Connection, limit: int, before: int | None = None) -> list[dict[str, Any]]:
    """Sweeps newest first (``before``: only those with a smaller id, the next page)."""
    params = {"before": MAX_ID if before is None else before, "n": limit}
    return [_checkpoint(r) for r in conn.execute(_CHECKPOINTS, params)]


def last_completed_checkpoint(conn: Connection) -> dict[str, Any] | None:
    row = conn.execute(_LAST_COMPLETED).first()
    return None if row is None else _checkpoint(row)


# --- a contact -------------------------------------------------------------------------------

_CONTACT = text(
    "SELECT id, first_name, last_name, email, zip_code, state, birth_date, effective_date, phone_number "
    "FROM contacts WHERE id = :id"
)
_BY_EMAIL_PREFIX = text(
    "SELECT id, first_name, last_name, email FROM contacts "
    "WHERE email >= :q AND email < :q_end ORDER BY email LIMIT :n"
)
_CLICKS = text(
    "SELECT tracking_id, quote_id, clicked_at FROM tracking_clicks WHERE contact_id = :id "
    "ORDER BY clicked_at DESC LIMIT :n"
)
_ANSWERS = text(
    "SELECT event_type, metadata, created_at FROM contact_events WHERE contact_id = :id "
    "ORDER BY event_type, created_at DESC LIMIT :n"
)
_ROWS = text(
    "SELECT id, email_type, scheduled_send_date, scheduled_send_time, status, skip_reason, "
    "occurrence_key, ideal_send_date, catchup_note, actual_send_datetime, priority, "
    "campaign_instance_id FROM email_schedules WHERE contact_id = :id ORDER BY scheduled_send_date, id"
)


def contact(conn: Connection, contact_id: int) -> dict[str, Any] | None:
    row = conn.execute(_CONTACT, {"id": contact_id}).mappings().first()
    return None if row is None else dict(row)


def contacts_by_email_prefix(conn: Connection, typed: str, limit: int) -> list[dict[str, Any]]:
    """Contacts whose address starts with ``typed`` (exactly, letter case included): a range
    over the UNIQUE index on ``contacts.email``, never a scan."""
    # U+10FFFF sorts after every character an address can hold: [typed, typed + it) is the prefix.
    params = {"q": typed, "q_end": typed + "\U0010ffff", "n": limit}
    return [dict(r) for r in conn.execute(_BY_EMAIL_PREFIX, params).mappings()]


def contact_clicks(conn: Connection, contact_id: int, limit: int) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(_CLICKS, {"id": contact_id, "n": limit}).mappings()]


def contact_answers(conn: Connection, contact_id: int, limit: int) -> list[dict[str, Any]]:
    """The contact's ``contact_events`` (health answers among them), newest first per kind."""
    return [dict(r) for r in conn.execute(_ANSWERS, {"id": contact_id, "n": limit}).mappings()]


def contact_rows(conn: Connection, contact_id: int) -> list[dict[str, Any]]:
    """The contact's ``email_schedules`` rows as stored (the page's table of them)."""
    return [dict(r) for r in conn.execute(_ROWS, {"id": contact_id}).mappings()]


# --- campaigns -------------------------------------------------------------------------------

_CHANGE_LOG = text(
    "SELECT id, campaign_instance_id, field_changed, old_value, new_value, changed_at, changed_by "
    "FROM campaign_change_log ORDER BY id DESC LIMIT :n"
)
_TARGETS_BY_STATUS = text(
    "SELECT campaign_instance_id, status, count(*) FROM contact_campaigns "
    "GROUP BY campaign_instance_id, status ORDER BY campaign_instance_id, status"
)


def change_log(conn: Connection, limit: int) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(_CHANGE_LOG, {"n": limit}).mappings()]


def targets_by_status(conn: Connection) -> dict[int, dict[str, int]]:
    """instance id -> target status (as stored; NULL as '') -> count."""
    out: dict[int, dict[str, int]] = {}
    for instance_id, status, n in conn.execute(_TARGETS_BY_STATUS):
        if isinstance(instance_id, int):
            out.setdefault(instance_id, {})["" if status is None else str(status)] = int(n)
    return out
