"""The incremental sweep on real SQLite files: which writes mark a contact as changed, when
a sweep builds on the last one's ledger and when it decides as the pre-filter says."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from rules.config import DEFAULT_CONFIG
from streams.store.engine import open_store
from tests.legacy_db import add_contacts, copy_database, dump, make_legacy_db
from tests.sweeps import T, checksum, crafted, sweep


def marked(db: Path) -> list[int]:
    return sorted({int(r[0]) for r in dump(db, "SELECT contact_id FROM mw_changed") if r[0] is not None})


def clear(db: Path) -> None:
    con = sqlite3.connect(db)
    con.execute("DELETE FROM mw_changed")
    con.commit()
    con.close()


def run_sql(db: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    con = sqlite3.connect(db)
    con.execute(sql, params)
    con.commit()
    con.close()


@pytest.fixture
def agency(tmp_path: Path) -> Path:
    db = make_legacy_db(tmp_path / "agency.db")
    crafted(db)
    with open_store(str(db)) as store:
        store.migrate()  # the triggers come with the migration
    return db


def test_the_sweep_s_own_writes_mark_nobody_and_a_completed_sweep_clears_the_marks(agency: Path) -> None:
    assert marked(agency) == []  # contacts added before the migration: no marks (no triggers yet)
    add_contacts(agency, [{"id": 8, "zip_code": "75201", "state": "TX", "birth_date": "1950-04-22"}])
    assert marked(agency) == [8]
    sweep(agency, T)
    assert marked(agency) == []  # it saw contact 8's mark and decided it
    assert dump(agency, "SELECT count(*) FROM email_schedules WHERE status = 'pre-scheduled'")[0][0] > 0
    sweep(agency, T + timedelta(days=1))  # places, keeps, moves: all its own statuses
    assert marked(agency) == []


@pytest.mark.parametrize(
    ("write", "contact"),
    [
        ("UPDATE contacts SET birth_date = '1950-06-01' WHERE id = 1", 1),
        ("DELETE FROM contacts WHERE id = 7", 7),
        ("INSERT INTO tracking_clicks (contact_id, tracking_id, clicked_at) VALUES (5, 't', '2026-04-01 10:00:00')", 5),
        ("INSERT INTO contact_events (contact_id, event_type, created_at) VALUES (6, 'eligibility_answered', '2026-04-01')", 6),
        ("INSERT INTO contact_campaigns (contact_id, campaign_instance_id, status) VALUES (3, 1, 'pending')", 3),
        # the sending side: a status of its own, a real send time
        ("UPDATE email_schedules SET status = 'sent', actual_send_datetime = '2026-04-06 08:31:00' WHERE contact_id = 1", 1),
    ],
)
def test_each_input_the_rules_read_marks_its_contact(agency: Path, write: str, contact: int) -> None:
    sweep(agency, T)
    clear(agency)
    run_sql(agency, write)
    assert marked(agency) == [contact]


def test_deleting_a_row_marks_only_when_the_row_was_the_sending_side_s(agency: Path) -> None:
    sweep(agency, T)
    run_sql(agency, "UPDATE email_schedules SET status = 'delivered' WHERE contact_id = 1")
    clear(agency)
    run_sql(agency, "DELETE FROM email_schedules WHERE contact_id = 2 AND status = 'skipped'")
    assert marked(agency) == []
    run_sql(agency, "DELETE FROM email_schedules WHERE contact_id = 1")
    assert marked(agency) == [1]


def test_a_click_without_a_contact_id_is_written_and_marks_nobody(agency: Path) -> None:
    run_sql(agency, "INSERT INTO tracking_clicks (tracking_id, contact_id) VALUES ('t', NULL)")
    assert dump(agency, "SELECT count(*) FROM tracking_clicks WHERE contact_id IS NULL")[0][0] == 1
    assert marked(agency) == []  # the trigger never fails the agency's write


def test_the_next_day_builds_on_the_ledger_and_gives_the_full_scan_s_rows(agency: Path, tmp_path: Path) -> None:
    first = sweep(agency, T)
    assert not first.incremental and first.basis
    ledger = dict(dump(agency, "SELECT contact_id, due FROM mw_decided"))
    assert len(ledger) == first.contacts_processed  # an entry per contact decided
    assert all(date.fromisoformat(due) > T for due in ledger.values())
    copy = tmp_path / "copy.db"
    copy_database(agency, copy)
    day = T + timedelta(days=1)
    nxt = sweep(agency, day)
    full = sweep(copy, day, full_scan=True)
    assert nxt.incremental and not full.incremental
    assert nxt.contacts_processed < full.contacts_processed
    assert "incremental since 2026-04-01" in nxt.prefilter
    assert checksum(agency) == checksum(copy)


def test_another_config_a_failed_run_or_a_full_scan_decide_as_the_pre_filter_says(agency: Path) -> None:
    sweep(agency, T)
    other = replace(DEFAULT_CONFIG, aep_dates=((9, 15), (10, 1)))
    s = sweep(agency, T + timedelta(days=1), other)
    assert not s.incremental  # another basis: the ledger is cleared and refilled
    assert sweep(agency, T + timedelta(days=2), other).incremental
    assert not sweep(agency, T + timedelta(days=3), other, full_scan=True).incremental
    run_sql(
        agency,
        "INSERT INTO scheduler_checkpoints (run_timestamp, scheduler_run_id, contacts_checksum, status, as_of) "
        "VALUES ('2026-04-05 03:30:00', 'sweep-dead', '', 'failed', '2026-04-05')",
    )
    assert not sweep(agency, T + timedelta(days=4), other).incremental  # a run failed since the last
    assert sweep(agency, T + timedelta(days=5), other).incremental


def test_a_day_before_the_last_sweep_is_not_built_on_it(agency: Path) -> None:
    sweep(agency, T)
    assert not sweep(agency, T - timedelta(days=3)).incremental


def test_explain_shows_the_ledger_entry(agency: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from streams.cli import main

    sweep(agency, T)
    due = dump(agency, "SELECT due FROM mw_decided WHERE contact_id = 1")[0][0]
    assert main(["explain", "--db", str(agency), "--contact", "1", "--as-of", T.isoformat()]) == 0
    out = capsys.readouterr().out
    assert f"next due {due}" in out and "decided as of 2026-04-01" in out
    assert date.fromisoformat(due) > T


def test_a_re_import_with_the_same_values_or_a_field_the_rules_do_not_read_marks_nobody(agency: Path) -> None:
    sweep(agency, T)
    clear(agency)
    # A nightly full re-sync from a CRM: every contact rewritten as it was.
    run_sql(agency, "UPDATE contacts SET email = email, birth_date = birth_date, state = state, zip_code = zip_code")
    run_sql(agency, "UPDATE contacts SET first_name = 'Renamed', last_name = 'Person'")
    assert marked(agency) == []
    run_sql(agency, "UPDATE contacts SET zip_code = '90210' WHERE id = 1")
    assert marked(agency) == [1]


def test_a_target_table_without_some_columns_still_gets_its_triggers(tmp_path: Path) -> None:
    db = make_legacy_db(tmp_path / "agency.db")
    run_sql(db, "ALTER TABLE contact_campaigns DROP COLUMN metadata")  # an older agency schema
    with open_store(str(db)) as store:
        assert "created trigger mw_mark_contact_campaigns_change on contact_campaigns" in store.migrate()
    add_contacts(db, [{"id": 1, "zip_code": "75201", "state": "TX", "birth_date": "1950-04-22"}])
    run_sql(db, "INSERT INTO contact_campaigns (contact_id, campaign_instance_id, status) VALUES (1, 1, 'pending')")
    clear(db)
    run_sql(db, "UPDATE contact_campaigns SET status = 'cancelled'")
    assert marked(db) == [1]


@pytest.mark.parametrize(
    ("old", "new", "marks"),
    [
        # the write-back of what was written (SPEC section 8): nothing the rules read
        ("pending", "scheduled", False),
        (None, "skipped", False),
        (" Pending ", "scheduled", False),
        ("scheduled", "skipped", False),
        # a cancellation, and its undoing, change the decision
        ("scheduled", "cancelled", True),
        ("cancelled", "scheduled", True),
        ("\tcanceled", "skipped", True),  # (SQL's trim leaves the tab: counted as a change)
        # the sending side's own statuses
        ("scheduled", "sent", True),
        ("sent", "scheduled", True),
    ],
)
def test_a_target_s_status_write_back_marks_nobody_but_a_cancellation_does(
    agency: Path, old: str | None, new: str, marks: bool
) -> None:
    run_sql(agency, "INSERT INTO contact_campaigns (contact_id, campaign_instance_id, status) VALUES (3, 1, ?)", (old,))
    clear(agency)
    run_sql(agency, "UPDATE contact_campaigns SET status = ? WHERE contact_id = 3", (new,))
    assert marked(agency) == ([3] if marks else [])


def test_a_database_migrated_before_gets_the_new_target_trigger(tmp_path: Path) -> None:
    """The earlier trigger marked the write-back too: the migration replaces it."""
    from streams.store.ddl import change_mark_sql
    from streams.store.tables import ChangeMark, contact_campaigns

    db = make_legacy_db(tmp_path / "agency.db")
    with open_store(str(db)) as store:
        store.migrate()
    old = ChangeMark("mw_mark_contact_campaigns_update", contact_campaigns, "UPDATE", "contact_id",
                     changed=("contact_id", "campaign_instance_id", "trigger_date", "status", "metadata"))
    run_sql(db, "DROP TRIGGER mw_mark_contact_campaigns_change")
    run_sql(db, change_mark_sql(old)[0])  # as the earlier version left it
    with open_store(str(db)) as store:
        done = store.migrate()
    assert "dropped trigger mw_mark_contact_campaigns_update on contact_campaigns (replaced)" in done
    assert "created trigger mw_mark_contact_campaigns_change on contact_campaigns" in done
    triggers = {r[0] for r in dump(db, "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert "mw_mark_contact_campaigns_update" not in triggers
    add_contacts(db, [{"id": 1, "zip_code": "75201", "state": "TX", "birth_date": "1950-04-22"}])
    run_sql(db, "INSERT INTO contact_campaigns (contact_id, campaign_instance_id, status) VALUES (1, 1, 'pending')")
    clear(db)
    run_sql(db, "UPDATE contact_campaigns SET status = 'scheduled'")
    assert marked(db) == []


def test_an_email_stored_as_sent_at_a_time_still_to_come_gets_its_follow_up_the_next_days(
    agency: Path, tmp_path: Path
) -> None:
    # Contact 9 has nothing in view at T; the sending side has already stored a birthday email
    # as sent two days ahead. The first sweep leaves the contact alone (not an initial email
    # yet, so no ledger entry); once that day has come, its follow-up must be placed without a
    # change mark, as a full scan places it.
    add_contacts(agency, [{"id": 9, "zip_code": "75201", "state": "TX", "birth_date": "1950-10-20"}])
    sweep(agency, T)
    assert dump(agency, "SELECT count(*) FROM mw_decided WHERE contact_id = 9")[0][0] == 0
    run_sql(
        agency,
        "INSERT INTO email_schedules (contact_id, email_type, scheduled_send_date, status, actual_send_datetime) "
        "VALUES (9, 'BIRTHDAY', ?, 'sent', ?)",
        ((T + timedelta(days=2)).isoformat(), f"{T + timedelta(days=2)} 08:30:00"),
    )
    clear(agency)  # as if the row had been there before the sweep: no mark to find it by
    copy = tmp_path / "copy.db"
    copy_database(agency, copy)
    day = T + timedelta(days=3)
    nxt = sweep(agency, day)
    sweep(copy, day, full_scan=True)
    assert nxt.incremental
    followups = "SELECT count(*) FROM email_schedules WHERE contact_id = 9 AND occurrence_key LIKE '9:followup:%'"
    assert dump(copy, followups)[0][0] == 1
    assert dump(agency, followups)[0][0] == 1
    assert checksum(agency) == checksum(copy)
