"""Stored data the rules cannot compute with (issue 11), through whole sweeps on real SQLite files.

Each test plants the bad values with sqlite3 into one of two twin databases,
sweeps both, and checks that the sweep completes, that the bad row, target,
instance or contact is reported, that every other decision equals the
twin's (the same database without the bad data), and that the sending
side's rows are byte for byte what they were.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from rules.bounds import MAX_ID
from rules.config import DEFAULT_CONFIG
from streams.store import schedules as schedule_rows
from streams.store.behaviour import fetch_behaviour
from streams.store.campaigns import fetch_targets, load_campaign_book
from streams.store.engine import open_store
from streams.store.schedules import fetch_contacts, fetch_rows
from streams.sweep.summary import SweepSummary
from synthetic.generate import generate_database
from tests.legacy_db import (
    LEGACY_DDL,
    add_contacts,
    add_schedule_rows,
    dump,
    make_legacy_db,
)
from tests.sweeps import campaign_agency, sweep

T = date(2026, 4, 1)
AEP_SEASON = date(2026, 9, 10)  # AEP emails in play: the pre-filter selects every contact
OWNED = "('pre-scheduled', 'skipped')"
DECISIONS = (
    "SELECT occurrence_key, contact_id, email_type, scheduled_send_date, scheduled_send_time, status, "
    "skip_reason, priority, campaign_instance_id, email_template, sms_template, event_year, "
    f"event_month, event_day, ideal_send_date FROM email_schedules WHERE status IN {OWNED} "
    "ORDER BY occurrence_key"
)
NEW_TARGET = (
    "INSERT INTO contact_campaigns (id, contact_id, campaign_instance_id, trigger_date, status) "
    "VALUES (?, ?, ?, ?, 'pending')"
)


def execute(db: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    con = sqlite3.connect(db)
    try:
        for sql, params in statements:
            con.execute(sql, params)
        con.commit()
    finally:
        con.close()


def migrate(db: Path) -> None:
    with open_store(str(db)) as store:
        store.migrate()


def twin(db: Path) -> Path:
    """A copy of ``db``: the database without the bad data, to compare with."""
    copy = db.with_name(f"twin-{db.name}")
    shutil.copyfile(db, copy)
    return copy


def decisions(db: Path, without: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    return [r for r in dump(db, DECISIONS) if r[1] not in without]


def warned(summary: SweepSummary, *words: str) -> bool:
    return any(all(w in example for w in words) for example in summary.warning_examples)


def sending_side(db: Path, columns: list[str]) -> list[tuple[Any, ...]]:
    return dump(db, f"SELECT {', '.join(columns)} FROM email_schedules WHERE status NOT IN {OWNED} ORDER BY id")


def sweep_both(
    bad: Path, clean: Path, as_of: date, full_scan: bool = False
) -> tuple[SweepSummary, SweepSummary]:
    """Sweep both twins; the bad one completes and leaves the sending side's rows as they were.

    As they were: every column they had (a first sweep adds the scheduler's columns).
    """
    columns = [str(c[1]) for c in dump(bad, "PRAGMA table_info(email_schedules)")]
    sending = sending_side(bad, columns)
    s_bad, s_clean = sweep(bad, as_of, full_scan=full_scan), sweep(clean, as_of, full_scan=full_scan)
    assert s_bad.status == s_clean.status == "completed"
    assert sending_side(bad, columns) == sending
    return s_bad, s_clean


# --- campaign dates and offsets ------------------------------------------


def poisoned_campaigns(db: Path) -> None:
    """Four campaign values, each of which stopped every sweep (or would have been used)."""
    execute(
        db,
        # promotion (sent 3 days after its trigger): 9999-12-31 + 3 days overflows
        (NEW_TARGET, (901, 1, 13, "9999-12-31")),
        # rate_increase (14 days before): 0001-01-01 - 14 days overflows
        (NEW_TARGET, (902, 2, 11, "0001-01-01")),
        # an instance starting in 9999: its targets without a date get start + 14 days
        (
            "INSERT INTO campaign_instances (id, campaign_type, instance_name, active_start_date) "
            "VALUES (14, 'rate_increase', 'far', '9999-12-31')",
            (),
        ),
        (NEW_TARGET, (903, 3, 14, None)),
        # a type sent ten years after its trigger
        ("INSERT INTO campaign_types (name, days_before_event) VALUES ('decade', -3650)", ()),
        ("INSERT INTO campaign_instances (id, campaign_type, instance_name) VALUES (15, 'decade', 'd')", ()),
        (NEW_TARGET, (904, 4, 15, "2026-04-20")),
    )


@pytest.mark.parametrize(("as_of", "full_scan"), [(T, False), (T, True), (AEP_SEASON, False)])
def test_poisoned_campaign_values_are_ignored_and_reported(
    legacy_db: Path, as_of: date, full_scan: bool
) -> None:
    campaign_agency(legacy_db)
    clean = twin(legacy_db)
    poisoned_campaigns(legacy_db)
    s_bad, _ = sweep_both(legacy_db, clean, as_of, full_scan=full_scan)
    # Ignored is as if absent: every contact is decided as in the clean twin.
    assert decisions(legacy_db) == decisions(clean)
    assert warned(s_bad, "campaign_instances row 14", "active_start_date", "'9999-12-31'", "ignored")
    assert warned(s_bad, "campaign_types row 'decade'", "days_before_event -3650", "-366..366")
    if full_scan:  # targets are reported where their contact is read
        assert warned(s_bad, "contact_campaigns row 901", "trigger_date", "'9999-12-31'", "ignored")
        assert warned(s_bad, "contact_campaigns row 902", "trigger_date", "'0001-01-01'", "ignored")
    # The ignored targets keep their status; the good ones are written back as in the twin.
    statuses = "SELECT id, status FROM contact_campaigns WHERE id < 900 ORDER BY id"
    assert dump(legacy_db, statuses) == dump(clean, statuses)
    assert dump(legacy_db, "SELECT status FROM contact_campaigns WHERE id > 900") == [("pending",)] * 4


def test_a_poisoned_trigger_of_an_all_contacts_type_falls_back_to_the_default(legacy_db: Path) -> None:
    """The ignored row is as if absent: the contact gets what every contact without a row gets."""
    campaign_agency(legacy_db)
    execute(
        legacy_db,
        ("INSERT INTO campaign_types (name, target_all_contacts) VALUES ('everyone', 1)", ()),
        (
            "INSERT INTO campaign_instances (id, campaign_type, instance_name, active_start_date) "
            "VALUES (16, 'everyone', 'all', '2026-04-10')",
            (),
        ),
    )
    clean = twin(legacy_db)
    execute(legacy_db, (NEW_TARGET, (905, 1, 16, "0001-01-01")))
    sweep_both(legacy_db, clean, T)
    assert decisions(legacy_db) == decisions(clean)
    assert "1:campaign:16:2026-04-10" in {r[0] for r in decisions(legacy_db)}


# --- junk in the sending history -----------------------------------------


def junk_history(db: Path) -> None:
    add_schedule_rows(
        db,
        [
            # an epoch in milliseconds for a year: date() overflowed
            {"id": 801, "contact_id": 1, "email_type": "aep", "scheduled_send_date": "2025-09-15",
             "status": "sent", "event_year": 1718000000000, "event_month": 9, "event_day": 15},
            # a month no date has: date() overflowed
            {"id": 802, "contact_id": 2, "email_type": "birthday", "scheduled_send_date": "2025-12-06",
             "status": "delivered", "event_year": 2025, "event_month": 2**62, "event_day": 1},
            # an offset that moves year 9999 past Python's last date
            {"id": 803, "contact_id": 3, "email_type": "birthday", "scheduled_send_date": "2025-04-11",
             "status": "sent", "actual_send_datetime": "9999-12-31T23:00:00-05:00"},
            # send dates no rule can compute with
            {"id": 804, "contact_id": 4, "email_type": "BIRTHDAY", "scheduled_send_date": "9999-12-31",
             "status": "sent"},
            {"id": 805, "contact_id": 4, "email_type": "aep", "scheduled_send_date": "0001-01-01",
             "status": "sent"},
        ],
    )


@pytest.mark.parametrize(("as_of", "full_scan"), [(T, False), (T, True), (AEP_SEASON, False)])
def test_junk_history_values_are_unknown_and_reported(legacy_db: Path, as_of: date, full_scan: bool) -> None:
    campaign_agency(legacy_db)
    migrate(legacy_db)
    clean = twin(legacy_db)
    junk_history(legacy_db)
    s_bad, _ = sweep_both(legacy_db, clean, as_of, full_scan=full_scan)
    # None is what a legacy row without a year or a date already is: none of these rows
    # handles an occurrence in view, so every contact is decided as without them.
    assert decisions(legacy_db) == decisions(clean)
    if full_scan or as_of == AEP_SEASON:  # every contact read
        assert warned(s_bad, "email_schedules row 801", "event_year 1718000000000", "1900..2999")
        assert warned(s_bad, "email_schedules row 802", "event_month/event_day", str(2**62))
        assert warned(s_bad, "email_schedules row 803", "actual_send_datetime", "'9999-12-31T23:00:00-05:00'")
        assert warned(s_bad, "email_schedules row 804", "scheduled_send_date", "'9999-12-31'")
        assert warned(s_bad, "email_schedules row 805", "scheduled_send_date", "'0001-01-01'")


def test_an_owned_row_with_junk_dates_is_decided_again(legacy_db: Path) -> None:
    """A row of ours with an impossible date: its occurrence rewrites it (values kept as stored)."""
    add_contacts(legacy_db, [{"id": 1, "zip_code": "75201", "state": "TX", "birth_date": "1950-04-20"}])
    clean = twin(legacy_db)
    sweep(clean, T)
    expected = decisions(clean)
    migrate(legacy_db)
    add_schedule_rows(
        legacy_db,
        [{"contact_id": 1, "email_type": "birthday", "scheduled_send_date": "9999-12-31",
          "status": "pre-scheduled", "event_year": 2026, "event_month": 4, "event_day": 20,
          "occurrence_key": "1:birthday:2026", "ideal_send_date": "0001-01-01"}],
    )
    summary = sweep(legacy_db, T)
    assert summary.status == "completed" and summary.rows_updated == 1
    assert decisions(legacy_db) == expected
    assert warned(summary, "ideal_send_date", "'0001-01-01'")


# --- contact ids that are not ids ----------------------------------------

# The legacy contacts.id is the rowid and can hold nothing but an integer; a table
# another program made may not be so strict.
LOOSE_DDL = LEGACY_DDL.replace(
    "CREATE TABLE contacts (\n    id               INTEGER PRIMARY KEY AUTOINCREMENT,",
    "CREATE TABLE contacts (\n    id               INTEGER,",
)
BAD_IDS: tuple[object, ...] = ("C105", 105.5, None, 0, -7)


def loose_db(path: Path) -> Path:
    assert LOOSE_DDL != LEGACY_DDL
    con = sqlite3.connect(path)
    con.executescript(LOOSE_DDL)
    con.close()
    return path


def rows_of_no_id(db: Path) -> None:
    """An owned row in range and a sent one, of a contact whose id is no id.

    In both twins: whoever they are for, they are emails of their day (the sending
    side sends a ``pre-scheduled`` row on its date), so they count toward its volume.
    """
    add_schedule_rows(
        db,
        [
            {"contact_id": "C105", "email_type": "birthday", "scheduled_send_date": "2026-04-06",
             "status": "pre-scheduled", "event_year": 2026},
            {"contact_id": "C105", "email_type": "birthday", "scheduled_send_date": "2026-03-20",
             "status": "sent"},
        ],
    )


def bad_id_contacts(db: Path) -> None:
    # Birthdays in range: the pre-filter's month-day branch selects them.
    add_contacts(
        db,
        [
            {"id": bad, "email": f"bad{n}@example.com", "zip_code": "75201", "state": "TX",
             "birth_date": "1950-04-20"}
            for n, bad in enumerate(BAD_IDS)
        ],
    )
    execute(db, (NEW_TARGET, (906, "C105", 11, "2026-04-20")))


@pytest.mark.parametrize(("as_of", "full_scan"), [(T, False), (T, True), (AEP_SEASON, False)])
def test_contacts_whose_id_is_no_id_are_skipped_and_reported(
    tmp_path: Path, as_of: date, full_scan: bool
) -> None:
    db = loose_db(tmp_path / "loose.db")
    campaign_agency(db)
    rows_of_no_id(db)
    clean = twin(db)
    bad_id_contacts(db)
    of_no_id = "SELECT id, status, scheduled_send_date FROM email_schedules WHERE contact_id = 'C105'"
    rows_before = dump(db, of_no_id)
    s_bad, s_clean = sweep_both(db, clean, as_of, full_scan=full_scan)
    assert decisions(db) == decisions(clean)
    assert dump(db, of_no_id) == rows_before  # left alone: no contact of theirs is decided
    assert s_bad.contacts_invalid == s_clean.contacts_invalid + len(BAD_IDS)
    shown = {str(e["contact_id"]): e["reasons"] for e in s_bad.invalid_examples}
    for bad in BAD_IDS:
        reasons = shown[repr(bad)]
        assert f"id {bad!r} is not a whole number in 1..{MAX_ID}" in reasons[0]  # type: ignore[index]
    assert s_bad.valid_contacts == s_clean.valid_contacts  # the daily cap's base


def test_on_the_legacy_schema_ids_below_one_are_reported_from_the_key(tmp_path: Path) -> None:
    """The legacy ``id INTEGER PRIMARY KEY`` is the rowid: only ids below 1 can be unusable
    (``prefilter.unusable_contacts`` looks for those alone, on the key), and they are
    reported and left out as on a schema that lets any value in."""
    db = make_legacy_db(tmp_path / "agency.db")
    campaign_agency(db)
    clean = twin(db)
    add_contacts(
        db,
        [
            {"id": bad, "email": f"bad{n}@example.com", "zip_code": "75201", "state": "TX", "birth_date": "1950-04-20"}
            for n, bad in enumerate((0, -7))
        ],
    )
    s_bad, s_clean = sweep_both(db, clean, T, full_scan=False)
    assert decisions(db) == decisions(clean)
    assert s_bad.contacts_invalid == s_clean.contacts_invalid + 2
    shown = {str(e["contact_id"]): e["reasons"] for e in s_bad.invalid_examples}
    for bad in (0, -7):
        assert f"id {bad!r} is not a whole number in 1..{MAX_ID}" in shown[repr(bad)][0]  # type: ignore[index]


def test_a_huge_id_quoted_in_the_report_is_cut(tmp_path: Path) -> None:
    db = loose_db(tmp_path / "loose.db")
    add_contacts(db, [{"id": "C" * 5000, "email": "huge@example.com", "zip_code": "75201"}])
    summary = sweep(db, T, full_scan=True)
    (example,) = summary.invalid_examples
    assert len(str(example["contact_id"])) < 120 and "5,000 characters" in str(example["contact_id"])
    assert all(len(reason) < 200 for reason in example["reasons"])  # type: ignore[attr-defined]


# --- the same on a generated agency ----------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("boundary") / "agency.db"
    generate_database(
        str(path), 1500, seed=5, as_of=date(2026, 3, 10), campaign_instances=6, followup_initials=60
    )
    migrate(path)
    return path


def test_a_generated_agency_with_every_poison_sweeps_as_without_it(generated: Path, tmp_path: Path) -> None:
    clean = tmp_path / "clean.db"
    bad = tmp_path / "bad.db"
    shutil.copyfile(generated, clean)
    shutil.copyfile(generated, bad)
    contact = dump(bad, "SELECT contact_id FROM contact_campaigns ORDER BY id LIMIT 1")[0][0]
    junk_year = "status IN ('sent', 'delivered') AND id % 40 = 0"
    # A junk year replaces a good one: those contacts' rows may differ, no other's may.
    touched = tuple(r[0] for r in dump(bad, f"SELECT DISTINCT contact_id FROM email_schedules WHERE {junk_year}"))
    assert touched
    execute(
        bad,
        (
            "INSERT INTO contact_campaigns (contact_id, campaign_instance_id, trigger_date, status) "
            "SELECT contact_id, campaign_instance_id, '0001-01-01', 'pending' FROM contact_campaigns "
            "WHERE id % 50 = 0",
            (),
        ),
        (f"UPDATE email_schedules SET event_year = 1718000000000 WHERE {junk_year}", ()),
        (
            "INSERT INTO campaign_instances (id, campaign_type, instance_name, active_start_date) "
            "VALUES (99, 'rate_increase', 'far', '9999-12-31')",
            (),
        ),
        (NEW_TARGET, (99999, contact, 99, None)),
    )
    for as_of in (date(2026, 3, 10), date(2026, 9, 10)):
        s_bad, s_clean = sweep_both(bad, clean, as_of)
        assert s_bad.warnings > s_clean.warnings
        assert decisions(bad, without=touched) == decisions(clean, without=touched)


# --- an unmigrated database, read read-only -------------------------------


def read_only_engine(db: Path) -> Engine:
    return sa.create_engine(
        "sqlite://", creator=lambda: sqlite3.connect(f"file:{db}?mode=ro", uri=True, check_same_thread=False)
    )


@pytest.fixture
def engines() -> Iterator[Callable[[Path], Engine]]:
    made: list[Engine] = []

    def make(db: Path) -> Engine:
        made.append(read_only_engine(db))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


def oldest_schema(path: Path) -> Path:
    """The legacy schema of a database without the optional columns (SPEC section 10)."""
    ddl = LEGACY_DDL.replace(
        "    scheduler_run_id     TEXT,              -- missing in some databases\n", ""
    ).replace("    metadata             TEXT,              -- JSON; missing in some databases\n", "")
    assert "missing in some databases" not in ddl
    con = sqlite3.connect(path)
    con.executescript(ddl)
    con.close()
    return path


def test_reads_of_an_unmigrated_database_take_missing_columns_as_null(
    tmp_path: Path, engines: Callable[[Path], Engine]
) -> None:
    db = oldest_schema(tmp_path / "old.db")
    campaign_agency(db)
    add_schedule_rows(
        db,
        [{"id": 7, "contact_id": 1, "email_type": "BIRTHDAY", "scheduled_send_date": "2025-12-06",
          "status": "sent", "event_year": 2025, "event_month": 12, "event_day": 20,
          "actual_send_datetime": "2025-12-06 08:31:00"}],
    )
    execute(
        db,
        ("INSERT INTO tracking_clicks (tracking_id, contact_id, clicked_at) VALUES ('t', 1, '2026-03-30 10:00:00')", ()),
    )
    before = db.read_bytes()
    with engines(db).connect() as conn:
        (record,) = fetch_contacts(conn, [1])
        (row,) = fetch_rows(conn, [1])[1]
        book = load_campaign_book(conn, DEFAULT_CONFIG).book
        targets, problems = fetch_targets(conn, [1], (i.id for i in book.instances))
        behaviour = fetch_behaviour(conn, [1], "2026-03-01")
    assert record.id == 1 and problems == []
    e = row.existing
    assert (e.id, e.send_date, e.occurrence_key, e.ideal_send_date, e.placed_run_id, e.metadata) == (
        7, date(2025, 12, 6), None, None, None, None,
    )
    assert e.actual_send_at == datetime(2025, 12, 6, 8, 31) and e.event_date == date(2025, 12, 20)
    assert [i.id for i in book.instances] == [10, 11, 12, 13]
    assert sorted(t.instance_id for t in targets[1]) == [10, 11]
    assert len(behaviour[1].clicks) == 1
    assert db.read_bytes() == before


def test_reads_of_a_database_without_campaign_tables_find_none(
    tmp_path: Path, engines: Callable[[Path], Engine]
) -> None:
    db = make_legacy_db(tmp_path / "bare.db")
    add_contacts(db, [{"id": 1, "zip_code": "75201", "birth_date": "1950-04-20"}])
    execute(
        db,
        *((f"DROP TABLE {t}", ()) for t in (
            "campaign_change_log", "contact_campaigns", "campaign_instances", "campaign_types",
            "tracking_clicks", "contact_events",
        )),
    )
    with engines(db).connect() as conn:
        loaded = load_campaign_book(conn, DEFAULT_CONFIG)
        assert loaded.book.instances == () and loaded.problems == []
        assert fetch_targets(conn, [1], [10]) == ({}, [])
        assert fetch_behaviour(conn, [1], "2026-03-01") == {}
        assert fetch_rows(conn, [1]) == {1: []}


def test_the_column_list_is_inspected_once_per_engine_and_never_kept_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = make_legacy_db(tmp_path / "agency.db")
    add_contacts(db, [{"id": 1, "zip_code": "75201", "birth_date": "1950-04-20"}])
    calls: list[object] = []
    real_inspect = sa.inspect

    def counting(subject: Any) -> Any:
        calls.append(subject)
        return real_inspect(subject)

    monkeypatch.setattr(schedule_rows.sa, "inspect", counting)
    with open_store(str(db)) as store:
        with store.engine.connect() as conn:
            assert fetch_rows(conn, [1]) == {1: []}
            fetch_rows(conn, [1])
        assert len(calls) == 2  # unmigrated: no occurrence_key yet, so nothing is kept
        store.migrate()
        add_schedule_rows(
            db,
            [{"contact_id": 1, "email_type": "birthday", "scheduled_send_date": "2026-04-06",
              "status": "pre-scheduled", "occurrence_key": "1:birthday:2026"}],
        )
        calls.clear()
        for _ in range(3):
            with store.engine.connect() as conn:
                (row,) = fetch_rows(conn, [1])[1]
                assert row.existing.occurrence_key == "1:birthday:2026"  # the new column is read
        assert len(calls) == 1
