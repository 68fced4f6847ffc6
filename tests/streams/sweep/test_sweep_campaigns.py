"""Campaigns and follow-ups through the whole sweep, on legacy-schema SQLite files."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from rules.config import config_from_mapping
from tests.legacy_db import add_contacts, add_schedule_rows, dump
from tests.sweeps import campaign_agency, checksum, execute_rows, sweep

T = date(2026, 4, 1)


def rows(db: Path, contact_id: int) -> list[tuple[object, ...]]:
    return dump(
        db,
        "SELECT occurrence_key, email_type, scheduled_send_date, status, skip_reason, "
        "campaign_instance_id, email_template, sms_template, priority "
        "FROM email_schedules WHERE contact_id = ? ORDER BY occurrence_key",
        (contact_id,),
    )


def test_campaigns_through_the_sweep(legacy_db: Path) -> None:
    campaign_agency(legacy_db)
    summary = sweep(legacy_db, T)
    c1 = {r[0]: r for r in rows(legacy_db, 1)}
    # Two instances of one type in one year: two rows (the legacy unique index is gone).
    q1 = c1["1:campaign:10:2026-04-11"]
    q2 = c1["1:campaign:11:2026-04-20"]
    assert q1[1] == q2[1] == "campaign_rate_increase"
    assert q1[3] == q2[3] == "pre-scheduled"
    assert (q1[5], q1[6], q1[7], q1[8]) == (10, "ri_q1", "ri_sms", 1)
    assert (q2[5], q2[6], q2[7]) == (11, "ri_q2", None)
    assert q2[2] == "2026-04-06"
    assert T <= date.fromisoformat(str(q1[2])) < date(2026, 4, 8)  # catch-up within the spread

    c2 = {r[0]: r for r in rows(legacy_db, 2)}
    notice = c2["2:campaign:12:2026-04-01"]
    assert (notice[2], notice[3]) == ("2026-04-01", "pre-scheduled")
    assert c2["2:campaign:11:2026-04-20"][3:5] == ("skipped", "NY year-round")

    c3 = {r[0]: r for r in rows(legacy_db, 3)}
    skipped = c3["3:campaign:11:2026-04-20"]
    assert skipped[3] == "skipped" and "CA birthday window" in str(skipped[4])
    assert any(r[1] == "post_window" for r in c3.values())

    c4 = {r[0]: r for r in rows(legacy_db, 4)}
    assert c4["4:campaign:11:2026-04-19"][2:4] == ("2026-04-05", "pre-scheduled")
    assert c4["4:campaign:13:2026-04-02"][2:5] == ("2026-04-05", "skipped", "campaign conflict")
    assert not any(k.startswith("4:campaign:12") for k in c4)  # cancelled target
    assert rows(legacy_db, 5) == []

    statuses = dict(
        ((cid, iid), status)
        for cid, iid, status in dump(
            legacy_db, "SELECT contact_id, campaign_instance_id, status FROM contact_campaigns"
        )
    )
    assert statuses[(1, 10)] == statuses[(1, 11)] == "scheduled"
    assert statuses[(2, 11)] == "skipped" and statuses[(2, 12)] == "scheduled"
    assert statuses[(4, 13)] == "skipped" and statuses[(4, 12)] == "cancelled"
    assert statuses[(5, 11)] == "pending"

    assert summary.per_type["campaign_rate_increase"]["pre-scheduled"] >= 3
    assert summary.per_type["campaign_promotion"]["skipped"] == 1
    assert summary.per_type["campaign_regulatory_notice"]["pre-scheduled"] == 1

    # A second sweep changes nothing; the pre-filter finds the same as a full scan.
    before = checksum(legacy_db)
    again = sweep(legacy_db, T)
    assert checksum(legacy_db) == before
    assert again.rows_inserted == again.rows_updated == again.rows_deleted == 0


def test_campaigns_prefilter_equals_full_scan(legacy_db: Path, tmp_path: Path) -> None:
    campaign_agency(legacy_db)
    other = tmp_path / "full.db"
    other.write_bytes(legacy_db.read_bytes())
    sweep(legacy_db, T)
    sweep(other, T, full_scan=True)
    assert checksum(legacy_db) == checksum(other)


def test_instance_date_change_reschedules_on_next_sweep(legacy_db: Path) -> None:
    campaign_agency(legacy_db)
    sweep(legacy_db, T)
    assert "1:campaign:11:2026-04-20" in {r[0] for r in rows(legacy_db, 1)}
    # Q2 now starts later: contact 1's Apr 6 email no longer belongs to it.
    execute_rows(legacy_db, "UPDATE campaign_instances SET active_start_date = ? WHERE id = ?", [("2026-04-10", 11)])
    sweep(legacy_db, T)
    assert "1:campaign:11:2026-04-20" not in {r[0] for r in rows(legacy_db, 1)}


def test_config_campaign_types_and_table_precedence(legacy_db: Path) -> None:
    add_contacts(legacy_db, [{"id": 1, "zip_code": "75201", "birth_date": "1950-12-20"}])
    execute_rows(
        legacy_db,
        "INSERT INTO campaign_instances (id, campaign_type, instance_name, active_start_date) "
        "VALUES (?, ?, ?, ?)",
        [(1, "welcome", "w", "2026-04-03"), (2, "rate_increase", "r", "2026-04-03")],
    )
    execute_rows(
        legacy_db,
        "INSERT INTO contact_campaigns (contact_id, campaign_instance_id, trigger_date) VALUES (?, ?, ?)",
        [(1, 1, None), (1, 2, None)],
    )
    execute_rows(
        legacy_db,
        "INSERT INTO campaign_types (name, priority, days_before_event) VALUES (?, ?, ?)",
        [("rate_increase", 4, 0)],
    )
    config, _ = config_from_mapping(
        {"campaign_types": {"welcome": {"priority": 7}, "rate_increase": {"priority": 9}}}
    )
    sweep(legacy_db, T, config)
    got = {r[1]: r for r in rows(legacy_db, 1)}
    assert got["campaign_welcome"][2] == "2026-04-03"
    # Same day: the table's priority 4 (not the config's 9) beats welcome's 7.
    assert got["campaign_rate_increase"][8] == 4 and got["campaign_rate_increase"][3] == "pre-scheduled"
    assert got["campaign_welcome"][3:5] == ("skipped", "campaign conflict")


def migrate(db: Path) -> None:
    from streams.store.engine import open_store

    store = open_store(str(db))
    try:
        store.migrate()
    finally:
        store.close()


def _initial(cid: int, row_id: int, sent: str, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": row_id,
        "contact_id": cid,
        "email_type": "birthday",
        "scheduled_send_date": sent[:10],
        "actual_send_datetime": sent,
        "status": "sent",
        "event_year": 2026,
        "occurrence_key": f"{cid}:birthday:2026",
        "priority": 5,
    }
    base.update(kw)
    return base


def followups(db: Path) -> dict[int, tuple[object, ...]]:
    return {
        int(r[0]): r[1:]
        for r in dump(
            db,
            "SELECT contact_id, email_type, scheduled_send_date, status, occurrence_key, metadata, "
            "skip_reason FROM email_schedules WHERE email_type LIKE 'followup%' ORDER BY id",
        )
    }


def test_followups_through_the_sweep(legacy_db: Path) -> None:
    add_contacts(
        legacy_db,
        [
            {"id": i, "zip_code": "75201", "state": "TX", "birth_date": "1950-12-20"}
            for i in range(1, 7)
        ]
        + [{"id": 7, "zip_code": "63101", "state": "MO", "effective_date": "2012-05-01"}],
    )
    migrate(legacy_db)
    add_schedule_rows(
        legacy_db,
        [
            _initial(1, 101, "2026-03-20 09:00:00"),  # cold
            _initial(2, 102, "2026-03-20 09:00:00"),  # click after
            _initial(3, 103, "2026-03-20 09:00:00"),  # click before only
            _initial(4, 104, "2026-03-31 09:00:00"),  # answer with condition; ideal Apr 2
            _initial(5, 105, "2026-02-10 09:00:00"),  # older than 35 days: none
            _initial(6, 106, "2026-03-25 09:00:00", status="delivered"),  # malformed answer
            # MO effective-date window Jan 31..Jun 3 (ED May 1): the follow-up is skipped
            _initial(7, 107, "2026-03-30 09:00:00", email_type="effective_date",
                     occurrence_key="7:effective_date:2026"),
        ],
    )
    execute_rows(
        legacy_db,
        "INSERT INTO tracking_clicks (tracking_id, contact_id, clicked_at) VALUES (?, ?, ?)",
        [("a", 2, "2026-03-21 10:00:00"), ("b", 3, "2026-03-19 10:00:00")],
    )
    execute_rows(
        legacy_db,
        "INSERT INTO contact_events (contact_id, event_type, metadata, created_at) VALUES (?, ?, ?, ?)",
        [
            (4, "eligibility_answered", '{"main_questions_yes_count": 2}', "2026-03-31 12:00:00"),
            (6, "eligibility_answered", "{not json", "2026-03-26 12:00:00"),
        ],
    )
    summary = sweep(legacy_db, T)
    got = followups(legacy_db)
    assert got[1][:4] == ("followup_1_cold", "2026-04-02", "pre-scheduled", "1:followup:1:birthday:2026")
    assert got[2][0] == "followup_2_clicked_no_hq"
    assert got[3][0] == "followup_1_cold"  # the click came before the birthday email
    assert got[4][:3] == ("followup_4_hq_with_yes", "2026-04-02", "pre-scheduled")
    assert 5 not in got
    assert got[6][0] == "followup_3_hq_no_yes"
    assert any("not JSON" in w for w in summary.warning_examples)
    assert got[7][2] == "skipped" and "MO effective date window" in str(got[7][5])
    assert not any(r[1] == "post_window" for r in followups(legacy_db).values())
    meta = json.loads(str(got[2][4]))
    assert meta["initial_key"] == "2:birthday:2026"
    assert meta["behaviour"]["decided_by"] == "click"
    assert summary.per_type["followup_1_cold"]["pre-scheduled"] == 2

    # Rerun: no second follow-up; a later click upgrades contact 1 in place.
    count = dump(legacy_db, "SELECT count(*) FROM email_schedules WHERE email_type LIKE 'followup%'")
    execute_rows(
        legacy_db,
        "INSERT INTO tracking_clicks (tracking_id, contact_id, clicked_at) VALUES (?, ?, ?)",
        [("c", 1, "2026-03-31 18:00:00")],
    )
    sweep(legacy_db, T)
    assert dump(legacy_db, "SELECT count(*) FROM email_schedules WHERE email_type LIKE 'followup%'") == count
    after = followups(legacy_db)
    assert after[1][:4] == ("followup_2_clicked_no_hq", "2026-04-02", "pre-scheduled", "1:followup:1:birthday:2026")

    # The sending side takes contact 2's follow-up: it never changes again.
    execute_rows(legacy_db, "UPDATE email_schedules SET status = 'sent' WHERE contact_id = 2 AND email_type LIKE 'followup%'", [()])
    execute_rows(
        legacy_db,
        "INSERT INTO contact_events (contact_id, event_type, metadata, created_at) VALUES (?, ?, ?, ?)",
        [(2, "eligibility_answered", '{"has_medical_conditions": true}', "2026-04-01 07:00:00")],
    )
    sweep(legacy_db, date(2026, 4, 2))
    later = followups(legacy_db)
    assert later[2][:3] == ("followup_2_clicked_no_hq", "2026-04-02", "sent")


def test_followup_placed_tomorrow_survives_next_day(legacy_db: Path) -> None:
    add_contacts(legacy_db, [{"id": 1, "zip_code": "75201", "birth_date": "1950-12-20"}])
    migrate(legacy_db)
    add_schedule_rows(legacy_db, [_initial(1, 101, "2026-02-25 09:00:00")])  # T - 35
    sweep(legacy_db, T)
    first = followups(legacy_db)[1]
    assert first[1:3] == ("2026-04-02", "pre-scheduled")
    sweep(legacy_db, date(2026, 4, 2))  # the initial is now 36 days old
    assert followups(legacy_db)[1][1:3] == ("2026-04-02", "pre-scheduled")


def test_followups_prefilter_equals_full_scan(generated_copy: object, tmp_path: Path) -> None:
    from collections.abc import Callable

    assert callable(generated_copy)
    make: Callable[..., Path] = generated_copy  # type: ignore[assignment]
    db = make(2000)
    migrate(db)
    add_schedule_rows(
        db,
        [_initial(cid, 900000 + cid, "2026-03-05 09:00:00", email_type="aep", event_year=None,
                  occurrence_key=f"{cid}:aep:test") for cid in range(1, 2000, 37)],
    )
    other = tmp_path / "full.db"
    other.write_bytes(db.read_bytes())
    as_of = date(2026, 3, 10)
    a = sweep(db, as_of)
    sweep(other, as_of, full_scan=True)
    assert a.per_type.get("followup_1_cold", {}).get("pre-scheduled", 0) > 0
    assert checksum(db) == checksum(other)


def test_explain_names_instance_trigger_and_followup_behaviour(
    legacy_db: Path, capsys: object
) -> None:
    from streams.cli import main

    campaign_agency(legacy_db)
    migrate(legacy_db)
    add_schedule_rows(legacy_db, [_initial(1, 101, "2026-03-20 09:00:00")])
    execute_rows(
        legacy_db,
        "INSERT INTO tracking_clicks (tracking_id, contact_id, clicked_at) VALUES (?, ?, ?)",
        [("a", 1, "2026-03-21 10:00:00")],
    )
    assert main(["explain", "--db", str(legacy_db), "--contact", "1", "--as-of", T.isoformat()]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "campaign 'rate_increase' instance 11 ('2026 Q2'): trigger 2026-04-20 (its target row)" in out
    assert "followup_2_clicked_no_hq (key 1:followup:1:birthday:2026)" in out
    assert "type followup_2_clicked_no_hq: click at 2026-03-21T10:00:00" in out
    assert main(["explain", "--db", str(legacy_db), "--contact", "4", "--as-of", T.isoformat()]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "campaign conflict: 4:campaign:11:2026-04-19 goes out on 2026-04-05" in out
    assert "instance 12 ('notice', type regulatory_notice)" in out and "cancelled: no email" in out
