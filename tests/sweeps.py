"""Sweep helpers shared by the tests of the sweep, the store, the CLI, the worker and the
Kafka runs: a sweep on a database file, its decisions and checksum, a summary without its
run id and timings, the changes from one owned schedule to another (what a dry run must
list), and two crafted agencies (``crafted``: windows, catch-ups, an invalid contact;
``campaign_agency``: campaign types, instances and targets)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection

from rules.config import DEFAULT_CONFIG, Config
from streams.store.engine import open_store
from streams.sweep.run import run_sweep
from streams.sweep.summary import SweepOptions, SweepSummary
from tests.legacy_db import add_contacts, dump

R = TypeVar("R")
OWNED = "('pre-scheduled', 'skipped')"
DECISION_COLS = (
    "occurrence_key, contact_id, email_type, scheduled_send_date, scheduled_send_time, status, "
    "skip_reason, priority, campaign_instance_id, email_template, sms_template, event_year, "
    "event_month, event_day, ideal_send_date"
)


def sweep(db: Path, as_of: date, config: Config = DEFAULT_CONFIG, **kw: object) -> SweepSummary:
    store = open_store(str(db))
    try:
        return run_sweep(store, config, SweepOptions(as_of=as_of, **kw))  # type: ignore[arg-type]
    finally:
        store.close()


def crash_rules_on(monkeypatch: Any, contact_id: int) -> Callable[[], None]:
    """The sweep's rules raise on ``contact_id`` (set before a pool starts: forked workers run
    it too); returns what puts the real rules back."""
    from streams.sweep import chunks as sweep_chunks

    # Its validation raises: every contact is validated, whichever path then decides it.
    real = sweep_chunks.validate_contact

    def failing(record, *args, **kw):  # type: ignore[no-untyped-def]
        if record.id == contact_id:
            raise RuntimeError(f"rules crashed on contact {contact_id}")
        return real(record, *args, **kw)

    monkeypatch.setattr(sweep_chunks, "validate_contact", failing)
    return lambda: monkeypatch.setattr(sweep_chunks, "validate_contact", real)


def decisions(db: Path) -> list[tuple[object, ...]]:
    return dump(
        db,
        f"SELECT {DECISION_COLS} FROM email_schedules WHERE status IN {OWNED} ORDER BY occurrence_key",
    )


def read(db: Path, what: Callable[[Connection], R], *, committed: bool = False) -> R:
    """``what`` of the database at ``db``, over a connection of its own (``committed``: in a
    transaction committed after it, for what also writes)."""
    store = open_store(str(db))
    try:
        with store.engine.begin() if committed else store.engine.connect() as conn:
            return what(conn)
    finally:
        store.close()


def checksum(db: Path) -> str:
    from streams.store.checksum import schedule_checksum

    return read(db, schedule_checksum)


def changed_rules() -> dict[str, Any]:
    """A rule change to preview (issue 15), as a config mapping: CA's birthday window longer
    after the birthday (90 days) but with no days before and no pre-window extension (so some
    CA emails are no longer blocked), a birthday window for TX (many contacts), and
    effective-date emails 25 days ahead instead of 30 (their ideal dates move).  On a
    generated agency swept the day before it makes every kind of change."""
    d = DEFAULT_CONFIG.to_dict()
    windows = d["state_rules"]["birthday_windows"]
    windows["CA"].update(window_before_days=0, window_after_days=90, pre_window_extension_days=0)
    del windows["CA"]["source"]
    windows["TX"] = {"window_before_days": 0, "window_after_days": 30}
    d["timing_constants"]["effective_date_days_before"] = 25
    return d


def summary_counts(s: SweepSummary) -> dict[str, object]:
    """What a sweep decided, without its run id, times and timings."""
    skip = {"run_id", "elapsed_s", "phase_s", "contacts_checksum"}
    return {k: v for k, v in s.to_dict().items() if k not in skip}


# -- what changes from one schedule to another (the dry run's list, computed simply) --------

_OWNED_COLS = ("id", "contact_id", "occurrence_key", "email_type", "scheduled_send_date", "status", "skip_reason")
Change = tuple[object, object, str, object, object]  # contact, key, kind, (from), (to)


def owned_rows(conn: Connection) -> list[dict[str, object]]:
    """The owned schedule rows (columns an unmigrated database lacks read as NULL)."""
    have = {c["name"] for c in sa.inspect(conn).get_columns("email_schedules")}
    cols = ", ".join(c if c in have else f"NULL AS {c}" for c in _OWNED_COLS)
    rows = conn.execute(sa.text(f"SELECT {cols} FROM email_schedules WHERE status IN {OWNED}"))
    return [dict(r._mapping) for r in rows]


def schedule_changes(before: list[dict[str, object]], after: list[dict[str, object]]) -> set[Change]:
    """The changes from ``before`` to ``after`` as issue 15 names them, computed here on their
    own: rows matched by (contact, key), keyless rows by id; created, deleted, skipped
    (also a skip whose reason changed), unskipped, moved (same status, another date)."""
    def key(r: dict[str, object]) -> tuple[object, ...]:
        return ("key", r["contact_id"], r["occurrence_key"]) if r["occurrence_key"] else ("id", r["id"])

    def side(r: dict[str, object]) -> tuple[object, object, object]:
        return (r["scheduled_send_date"], r["status"], r["skip_reason"])

    old = {key(r): r for r in before}
    keyless_ids = {r["id"] for r in before if not r["occurrence_key"]}
    new: dict[tuple[object, ...], dict[str, object]] = {}
    for r in after:  # a keyless row the sweep gave a key (adopted) is still matched by its id
        new[("id", r["id"]) if r["id"] in keyless_ids else key(r)] = r
    changes: set[Change] = set()
    for k in old.keys() | new.keys():
        b, a = old.get(k), new.get(k)
        shown = a if a is not None else b
        assert shown is not None
        if b is None or a is None:
            kind = "created" if b is None else "deleted"
        elif a["status"] == "skipped" and (b["status"] != "skipped" or a["skip_reason"] != b["skip_reason"]):
            kind = "skipped"
        elif b["status"] == "skipped" and a["status"] != "skipped":
            kind = "unskipped"
        elif a["scheduled_send_date"] != b["scheduled_send_date"]:
            kind = "moved"
        else:
            continue
        changes.add((
            shown["contact_id"], shown["occurrence_key"], kind,
            None if b is None else side(b), None if a is None else side(a),
        ))
    return changes


def listed_changes(changes: list[dict[str, Any]]) -> set[Change]:
    """A dry run's listed changes in ``schedule_changes``' terms."""
    def side(s: dict[str, object] | None) -> tuple[object, object, object] | None:
        return None if s is None else (s["date"], s["status"], s["reason"])

    return {(c["contact_id"], c["occurrence_key"], c["change"], side(c["from"]), side(c["to"])) for c in changes}


# -- a crafted agency ---------------------------------------------------------

T = date(2026, 4, 1)


def crafted(db: Path) -> None:
    add_contacts(
        db,
        [
            # TX, birthday on Apr 20: S = Apr 6, in range: pre-scheduled
            {"id": 1, "zip_code": "75201", "state": "TX", "birth_date": "1950-04-20"},
            # CA birthday Apr 20: inside the CA window -> skipped, post-window planned
            {"id": 2, "zip_code": "90210", "state": "CA", "birth_date": "1950-04-20"},
            # NY: year-round
            {"id": 3, "zip_code": "10001", "state": "ny", "birth_date": "1950-04-20"},
            # invalid: no email form
            {"id": 4, "email": "nobody", "zip_code": "75201", "birth_date": "1950-04-20"},
            # catch-up: S = Mar 28 (3 days ago), event Apr 11 still ahead
            {"id": 5, "zip_code": "75201", "birth_date": "1948-04-11"},
            # MO effective date May 1: S = Apr 1 in the MO window -> skipped
            {"id": 6, "zip_code": "63101", "state": "MO", "effective_date": "2012-05-01"},
            # ZIP says TX, column says CA: ZIP wins (no CA window)
            {"id": 7, "zip_code": "75201-1234", "state": "CA", "birth_date": "1951-04-25 00:00:00"},
        ],
    )


# -- an agency with campaigns ---------------------------------------------------


def execute_rows(db: Path, sql: str, rows: list[tuple[object, ...]]) -> None:
    import sqlite3

    con = sqlite3.connect(db)
    con.executemany(sql, rows)
    con.commit()
    con.close()


def campaign_agency(db: Path) -> None:
    add_contacts(
        db,
        [
            {"id": 1, "zip_code": "75201", "state": "TX", "birth_date": "1950-12-20", "phone_number": "555"},
            {"id": 2, "zip_code": "10001", "state": "NY", "birth_date": "1950-12-20"},
            {"id": 3, "zip_code": "90210", "state": "CA", "birth_date": "1950-04-25"},
            {"id": 4, "zip_code": "75201", "state": "TX", "birth_date": "1950-12-20"},
            {"id": 5, "email": "broken", "zip_code": "75201", "birth_date": "1950-12-20"},
        ],
    )
    execute_rows(
        db,
        "INSERT INTO campaign_types (name, respect_exclusion_windows, enable_followups, "
        "days_before_event, target_all_contacts, priority, active) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            ("rate_increase", 1, 1, 14, 0, 1, 1),
            ("regulatory_notice", 0, 0, 0, 0, 2, 1),
            ("promotion", 1, 1, -3, 0, 6, 1),
        ],
    )
    execute_rows(
        db,
        "INSERT INTO campaign_instances (id, campaign_type, instance_name, email_template, "
        "sms_template, active_start_date, active_end_date) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (10, "rate_increase", "2026 Q1", "ri_q1", "ri_sms", "2026-01-01", "2026-03-31"),
            (11, "rate_increase", "2026 Q2", "ri_q2", None, "2026-04-01", "2026-06-30"),
            (12, "regulatory_notice", "notice", "notice_tpl", None, "2026-04-01", None),
            (13, "promotion", "spring", "promo", None, None, None),
        ],
    )
    execute_rows(
        db,
        "INSERT INTO contact_campaigns (contact_id, campaign_instance_id, trigger_date, status) "
        "VALUES (?, ?, ?, ?)",
        [
            # contact 1: Q1 (ideal Mar 28, catch-up: trigger Apr 11 ahead) and Q2 (ideal Apr 6)
            (1, 10, "2026-04-11", "pending"),
            (1, 11, "2026-04-20", "pending"),
            # contact 2 (NY, year-round): notice ignores windows, Q2 respects them
            (2, 12, None, "pending"),
            (2, 11, "2026-04-20", "pending"),
            # contact 3 (CA birthday Apr 25: window Mar 26..Jun 24): Q2 on Apr 6 is in it
            (3, 11, "2026-04-20", "pending"),
            # contact 4: promotion 3 days after Apr 2 -> Apr 5; the notice on its start date
            # Apr 1 and Q2 on Apr 5 collide with the promotion: priority 1 beats 6
            (4, 13, "2026-04-02", "pending"),
            (4, 11, "2026-04-19", "pending"),
            (4, 12, None, "cancelled"),
            # invalid contact: nothing, and its target is left pending
            (5, 11, "2026-04-20", "pending"),
        ],
    )
