"""Synthetic agency databases: legacy schema, realistic dirt, deterministic."""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

import synthetic.generate as generate_module
from rules.anniversary import parse_iso_date
from rules.zip_state import BLANKS, USPS_CODES, normalize_state_code, state_of_zip, zip5
from streams.store.ddl import legacy_schema_sql
from streams.store.engine import StoreError, open_store
from synthetic.generate import GenerateSummary, generate_database
from tests.schema_facts import sqlite_schema

AS_OF = date(2026, 3, 10)
LEGACY_DDL = resources.files("streams").joinpath("sql/legacy_schema.sql").read_text("utf-8")


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def dump(path: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    return (
        rows(path, "SELECT * FROM contacts ORDER BY id"),
        rows(path, "SELECT * FROM email_schedules ORDER BY id"),
    )


def usable_email(raw: str | None) -> bool:
    local, at, domain = (raw or "").strip(BLANKS).partition("@")
    return bool(at and local and domain)


def contact_state(zip_code: str | None, state: str | None) -> str | None:
    return state_of_zip(zip_code) or normalize_state_code(state)


@pytest.fixture(scope="module")
def db5000(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateSummary]:
    path = tmp_path_factory.mktemp("gen") / "agency.db"
    summary = generate_database(str(path), 5000, seed=7, as_of=AS_OF)
    return path, summary


def test_same_seed_gives_identical_databases(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    generate_database(str(a), 1500, seed=3, as_of=AS_OF)
    generate_database(str(b), 1500, seed=3, as_of=AS_OF)
    generate_database(str(c), 1500, seed=4, as_of=AS_OF)
    assert dump(a) == dump(b)
    assert dump(a)[0] != dump(c)[0]


def test_the_second_process_generates_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inline, parallel = tmp_path / "inline.db", tmp_path / "parallel.db"
    first = generate_database(str(inline), 2500, seed=5, as_of=AS_OF)
    monkeypatch.setattr(generate_module, "PARALLEL_MIN_CONTACTS", 1)
    monkeypatch.setattr(generate_module, "CHUNK_ROWS", 700)  # several chunks in flight
    second = generate_database(str(parallel), 2500, seed=5, as_of=AS_OF)
    assert dump(inline) == dump(parallel)
    assert (first.invalid_contacts, first.history_rows) == (
        second.invalid_contacts,
        second.history_rows,
    )


def test_schema_is_exactly_the_legacy_ddl(
    db5000: tuple[Path, GenerateSummary], tmp_path: Path
) -> None:
    path, _ = db5000
    reference = tmp_path / "reference.db"
    con = sqlite3.connect(reference)
    con.executescript(LEGACY_DDL)
    con.close()
    query = "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name != 'sqlite_sequence'"
    assert sorted(rows(path, query)) == sorted(rows(reference, query))
    assert rows(path, "PRAGMA journal_mode") == [("wal",)]


def test_schema_is_the_one_streams_store_tables_declares(
    db5000: tuple[Path, GenerateSummary], tmp_path: Path
) -> None:
    path, _ = db5000
    declared = tmp_path / "declared.db"
    con = sqlite3.connect(declared)
    for statement in legacy_schema_sql():
        con.execute(statement)
    con.commit()
    con.close()
    assert sqlite_schema(path) == sqlite_schema(declared)


def test_counts_match_the_summary(db5000: tuple[Path, GenerateSummary]) -> None:
    path, summary = db5000
    assert summary.contacts == 5000
    assert rows(path, "SELECT count(*) FROM contacts") == [(5000,)]
    assert rows(path, "SELECT count(*) FROM email_schedules") == [(summary.history_rows,)]
    assert summary.elapsed_s > 0


def test_every_usps_code_appears(db5000: tuple[Path, GenerateSummary]) -> None:
    path, _ = db5000
    states = {contact_state(z, s) for z, s in rows(path, "SELECT zip_code, state FROM contacts")}
    assert USPS_CODES <= states


def test_big_states_get_more_contacts(db5000: tuple[Path, GenerateSummary]) -> None:
    path, _ = db5000
    counts = Counter(
        contact_state(z, s) for z, s in rows(path, "SELECT zip_code, state FROM contacts")
    )
    assert counts["CA"] > counts["NV"] > counts["WY"]
    assert counts["TX"] > 5 * counts["NM"]


def test_invalid_contacts_are_about_one_percent(db5000: tuple[Path, GenerateSummary]) -> None:
    path, summary = db5000
    invalid = [
        cid
        for cid, email, z, s in rows(path, "SELECT id, email, zip_code, state FROM contacts")
        if not usable_email(email) or contact_state(z, s) is None
    ]
    assert len(invalid) == summary.invalid_contacts
    assert 20 <= len(invalid) <= 100
    bad_emails = rows(path, "SELECT count(*) FROM contacts WHERE email LIKE 'no-at-sign%'")
    assert bad_emails[0][0] > 0


def test_location_dirt_is_present(db5000: tuple[Path, GenerateSummary]) -> None:
    path, _ = db5000
    data = rows(path, "SELECT zip_code, state FROM contacts")
    zip_plus_4 = [z for z, _ in data if z and len(z) == 10 and z[5] == "-"]
    no_zip_state_ok = [s for z, s in data if zip5(z) is None and normalize_state_code(s)]
    lower = [s for _, s in data if s and s.strip(BLANKS).islower()]
    padded = [s for _, s in data if s and s != s.strip(BLANKS) and s.strip(BLANKS)]
    contradicting = [
        (z, s)
        for z, s in data
        if state_of_zip(z)
        and normalize_state_code(s)
        and state_of_zip(z) != normalize_state_code(s)
    ]
    assert all(len(found) >= 5 for found in (zip_plus_4, no_zip_state_ok, lower, padded))
    assert len(contradicting) >= 3
    assert all(state_of_zip(z) for z in zip_plus_4)


def test_birth_dates(db5000: tuple[Path, GenerateSummary]) -> None:
    path, _ = db5000
    raw = [r[0] for r in rows(path, "SELECT birth_date FROM contacts")]
    parsed = [parse_iso_date(b) for b in raw]
    good = [d for d in parsed if d is not None]
    assert sum(1 for d in good if (d.month, d.day) == (2, 29)) >= 5
    assert sum(1 for d in good if 1935 <= d.year <= 1961) >= 0.95 * len(good)
    assert any(b and b.endswith(" 00:00:00") for b in raw)
    assert None in raw
    junk = [b for b, d in zip(raw, parsed, strict=True) if b is not None and d is None]
    assert len(junk) >= 3


def test_effective_dates_cluster_on_the_first(db5000: tuple[Path, GenerateSummary]) -> None:
    path, _ = db5000
    raw = [r[0] for r in rows(path, "SELECT effective_date FROM contacts")]
    good = [d for d in map(parse_iso_date, raw) if d is not None]
    assert sum(1 for d in good if d.day == 1) >= 0.5 * len(good)
    assert min(d.year for d in good) >= 2000
    assert max(d.year for d in good) == AS_OF.year + 1
    assert any(d > AS_OF for d in good)  # policies that have not started yet
    assert raw.count(None) >= 50


def test_emails_are_unique_and_phones_on_about_half(db5000: tuple[Path, GenerateSummary]) -> None:
    path, _ = db5000
    emails = [r[0] for r in rows(path, "SELECT email FROM contacts")]
    assert len(set(emails)) == len(emails)
    phones = rows(path, "SELECT count(*) FROM contacts WHERE phone_number IS NOT NULL")[0][0]
    assert 2000 <= phones <= 3000


def test_history_rows(db5000: tuple[Path, GenerateSummary]) -> None:
    path, _ = db5000
    by_kind = Counter(
        (t, s, y is None)
        for t, s, y in rows(path, "SELECT email_type, status, event_year FROM email_schedules")
    )
    last_year_sends = sum(
        n
        for (t, s, no_year), n in by_kind.items()
        if t in ("birthday", "effective_date") and s in ("sent", "delivered") and not no_year
    )
    assert 350 <= last_year_sends <= 650  # about 10% of 5000 contacts
    assert by_kind[("BIRTHDAY", "sent", True)] > 0
    assert by_kind[("POST_WINDOW_BIRTHDAY", "sent", True)] > 0
    for status in ("failed", "bounced", "scheduled"):
        assert sum(n for (_, s, _), n in by_kind.items() if s == status) > 0
    years = rows(
        path,
        "SELECT DISTINCT event_year FROM email_schedules WHERE status IN ('sent', 'delivered')"
        " AND email_type IN ('birthday', 'effective_date')",
    )
    assert years == [(AS_OF.year - 1,)]


def test_history_respects_the_legacy_unique_index(db5000: tuple[Path, GenerateSummary]) -> None:
    path, _ = db5000
    indexes = rows(path, "SELECT name FROM sqlite_master WHERE type = 'index'")
    assert ("idx_email_schedules_unique_event",) in indexes
    duplicates = rows(
        path,
        "SELECT contact_id, email_type, event_year FROM email_schedules"
        " WHERE event_year IS NOT NULL GROUP BY 1, 2, 3 HAVING count(*) > 1",
    )
    assert duplicates == []
    orphans = rows(
        path,
        "SELECT count(*) FROM email_schedules WHERE contact_id NOT IN (SELECT id FROM contacts)",
    )
    assert orphans == [(0,)]


def test_history_follows_the_contacts_dates(db5000: tuple[Path, GenerateSummary]) -> None:
    path, _ = db5000
    sent = rows(
        path,
        "SELECT c.birth_date, s.event_month, s.event_day, s.scheduled_send_date"
        " FROM email_schedules s JOIN contacts c ON c.id = s.contact_id"
        " WHERE s.email_type = 'birthday' AND s.status IN ('sent', 'delivered')",
    )
    assert sent
    for birth_raw, month, day, send in sent:
        birth = parse_iso_date(birth_raw)
        assert birth is not None
        # February 29 birthdays fall on the 28th off leap years.
        assert (month, day) == (birth.month, birth.day) or (birth.month, birth.day) == (2, 29)
        event = date(AS_OF.year - 1, month, day)
        assert (event - date.fromisoformat(send)).days == 14


def test_existing_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "agency.db"
    path.write_bytes(b"precious")
    with pytest.raises(StoreError, match=str(path)):
        generate_database(str(path), 10)
    assert path.read_bytes() == b"precious"
    assert list(tmp_path.iterdir()) == [path]


def test_generated_database_migrates(tmp_path: Path) -> None:
    path = tmp_path / "agency.db"
    generate_database(str(path), 300, seed=2, as_of=AS_OF)
    before = dump(path)
    with open_store(str(path)) as store:
        assert store.migrate()
        assert store.migrate() == []
    after = dump(path)
    assert [row[: len(before[1][0])] for row in after[1]] == before[1]
    assert after[0] == before[0]


# --- campaigns and follow-ups -------------------------------------------------

CAMPAIGN_OPTIONS: dict[str, Any] = {
    "campaign_instances": 20,
    "campaign_share": 0.10,
    "followup_initials": 800,
}
FIRST_INITIAL_DAY = AS_OF - timedelta(days=35)
INITIAL_TYPES = ("birthday", "effective_date", "aep", "post_window", "campaign_rate_increase")
KEY_PATTERNS = {
    "birthday": r"(\d+):birthday:(\d{4})",
    "effective_date": r"(\d+):effective_date:(\d{4})",
    "aep": r"(\d+):aep:(\d{4}-\d\d-\d\d)",
    "post_window": r"(\d+):post_window:(\d{4}-\d\d-\d\d)",
    "campaign_rate_increase": r"(\d+):campaign:(\d+):(\d{4}-\d\d-\d\d)",
}


@pytest.fixture(scope="module")
def campaign_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateSummary]:
    path = tmp_path_factory.mktemp("gen") / "campaigns.db"
    summary = generate_database(str(path), 5000, seed=7, as_of=AS_OF, **CAMPAIGN_OPTIONS)
    return path, summary


def ideal_send_dates(path: Path) -> list[tuple[int, int, str, date | None, str]]:
    """(contact, instance, type, ideal send date or None, status) per target."""
    data = rows(
        path,
        "SELECT cc.contact_id, cc.campaign_instance_id, t.name, cc.trigger_date,"
        " t.days_before_event, cc.status FROM contact_campaigns cc"
        " JOIN campaign_instances i ON i.id = cc.campaign_instance_id"
        " JOIN campaign_types t ON t.name = i.campaign_type ORDER BY cc.id",
    )
    return [
        (
            cid,
            iid,
            kind,
            None if trigger is None else date.fromisoformat(trigger) - timedelta(days=before),
            status,
        )
        for cid, iid, kind, trigger, before, status in data
    ]


def initial_rows(path: Path) -> list[tuple[Any, ...]]:
    return rows(
        path,
        "SELECT id, contact_id, email_type, status, scheduled_send_date, actual_send_datetime,"
        " occurrence_key, event_year, event_month, event_day, campaign_instance_id, priority"
        " FROM email_schedules WHERE scheduled_send_date >= '2026-01-01'"
        " AND status IN ('sent', 'delivered') AND email_type NOT LIKE 'followup%' ORDER BY id",
    )


def test_defaults_add_no_campaign_or_followup_data(db5000: tuple[Path, GenerateSummary]) -> None:
    path, summary = db5000
    for table in ("campaign_types", "campaign_instances", "contact_campaigns"):
        assert rows(path, f"SELECT count(*) FROM {table}") == [(0,)]
    for table in ("tracking_clicks", "contact_events", "campaign_change_log"):
        assert rows(path, f"SELECT count(*) FROM {table}") == [(0,)]
    columns = [r[1] for r in rows(path, "PRAGMA table_info(email_schedules)")]
    assert "occurrence_key" not in columns
    assert (summary.campaign_instances, summary.campaign_targets) == (0, 0)
    assert (summary.followup_initials, summary.existing_followups) == (0, 0)
    assert (summary.tracking_clicks, summary.contact_events) == (0, 0)


def test_campaign_options_leave_contacts_and_history_alone(
    db5000: tuple[Path, GenerateSummary], campaign_db: tuple[Path, GenerateSummary]
) -> None:
    (plain, plain_summary), (path, summary) = db5000, campaign_db
    assert summary.history_rows == plain_summary.history_rows
    assert summary.invalid_contacts == plain_summary.invalid_contacts
    assert dump(path)[0] == dump(plain)[0]
    history = dump(plain)[1]
    width = len(history[0])
    ours = rows(path, f"SELECT * FROM email_schedules WHERE id <= {len(history)} ORDER BY id")
    assert [r[:width] for r in ours] == history
    assert all(r[width:] == (None,) for r in ours)  # occurrence_key: legacy rows have none


def test_campaign_data_is_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tables = (
        "contacts",
        "email_schedules",
        "campaign_types",
        "campaign_instances",
        "contact_campaigns",
        "tracking_clicks",
        "contact_events",
    )

    def everything(path: Path) -> list[list[tuple[Any, ...]]]:
        return [rows(path, f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables]

    options: dict[str, Any] = {
        "campaign_instances": 9,
        "campaign_share": 0.2,
        "followup_initials": 400,
    }
    a, b, c, d = (tmp_path / f"{n}.db" for n in "abcd")
    generate_database(str(a), 2000, seed=3, as_of=AS_OF, **options)
    generate_database(str(b), 2000, seed=3, as_of=AS_OF, **options)
    generate_database(str(c), 2000, seed=4, as_of=AS_OF, **options)
    assert everything(a) == everything(b)
    assert everything(a)[2:] != everything(c)[2:]
    # Rows generated in a second process feed the follow-ups alike.
    monkeypatch.setattr(generate_module, "PARALLEL_MIN_CONTACTS", 1)
    monkeypatch.setattr(generate_module, "CHUNK_ROWS", 300)
    generate_database(str(d), 2000, seed=3, as_of=AS_OF, **options)
    assert everything(a) == everything(d)


def test_campaign_types(campaign_db: tuple[Path, GenerateSummary]) -> None:
    path, _ = campaign_db
    types = {
        r[0]: r[1:]
        for r in rows(
            path,
            "SELECT name, respect_exclusion_windows, enable_followups, days_before_event,"
            " target_all_contacts, priority, active FROM campaign_types",
        )
    }
    assert types == {
        "rate_increase": (1, 1, 14, 0, 1, 1),
        "regulatory_notice": (0, 0, 0, 0, 2, 1),
        "promotion": (1, 0, -3, 0, 6, 1),
        "annual_review": (0, 0, 0, 1, 7, 1),
    }


def test_campaign_instances(campaign_db: tuple[Path, GenerateSummary]) -> None:
    path, summary = campaign_db
    data = rows(
        path,
        "SELECT id, campaign_type, instance_name, email_template, sms_template,"
        " active_start_date, active_end_date FROM campaign_instances ORDER BY id",
    )
    assert summary.campaign_instances == len(data) == 20
    assert all(r[3] for r in data)  # every instance has an email template
    assert any(r[4] is None for r in data) and any(r[4] for r in data)
    end_of_range = AS_OF + timedelta(days=30)

    def parse(d: str | None) -> date | None:
        return None if d is None else date.fromisoformat(d)

    spans = [(r[1], parse(r[5]), parse(r[6])) for r in data]
    open_in_range = [
        kind
        for kind, start, end in spans
        if (start is None or start <= end_of_range) and (end is None or end >= AS_OF)
    ]
    assert len(open_in_range) >= 15
    assert {"rate_increase", "regulatory_notice", "promotion"} <= set(open_in_range)
    assert sum(1 for _, start, end in spans if end is None) >= 2
    assert sum(1 for _, start, end in spans if start is None) >= 2
    assert sum(1 for _, start, end in spans if end is not None and end < AS_OF) >= 2
    # The all-contacts instance is long over: none of its emails is in play.
    review = [(start, end) for kind, start, end in spans if kind == "annual_review"]
    assert (
        len(review) == 1 and review[0][1] is not None and review[0][1] < AS_OF - timedelta(days=60)
    )


def test_campaign_targets(campaign_db: tuple[Path, GenerateSummary]) -> None:
    path, summary = campaign_db
    targets = ideal_send_dates(path)
    assert summary.campaign_targets == len(targets)
    assert len({cid for cid, *_ in targets}) == 500  # campaign_share of 5000 contacts
    assert rows(path, "SELECT count(*) FROM contact_campaigns WHERE contact_id > 5000") == [(0,)]
    statuses = Counter(status for *_, status in targets)
    assert set(statuses) == {"pending", "scheduled", "cancelled"}
    assert 1 <= statuses["cancelled"] <= 0.03 * len(targets)
    no_trigger = sum(1 for _, _, _, ideal, _ in targets if ideal is None)
    assert 3 <= no_trigger <= 0.06 * len(targets)
    assert "annual_review" not in {kind for _, _, kind, _, _ in targets}
    per_instance = Counter(iid for _, iid, *_ in targets)
    assert len(per_instance) == 19  # every instance but the all-contacts one
    soon = [
        ideal
        for *_, ideal, _ in targets
        if ideal is not None and AS_OF - timedelta(days=7) <= ideal <= AS_OF + timedelta(days=30)
    ]
    assert len(soon) >= 0.4 * len(targets)
    # Some contacts get two instances on one day: a campaign conflict to resolve.
    by_day = Counter((cid, ideal) for cid, _, _, ideal, _ in targets if ideal is not None)
    conflicts = [k for k, n in by_day.items() if n > 1]
    assert 1 <= len(conflicts) <= 0.03 * len(targets)


def test_followup_initials(campaign_db: tuple[Path, GenerateSummary]) -> None:
    path, summary = campaign_db
    initials = initial_rows(path)
    assert summary.followup_initials == len(initials) == 800
    assert len({r[1] for r in initials}) == 800  # one per contact
    kinds = Counter(r[2] for r in initials)
    assert set(kinds) == set(INITIAL_TYPES)
    assert kinds["birthday"] >= 200 and kinds["effective_date"] >= 150
    assert set(Counter(r[3] for r in initials)) == {"sent", "delivered"}
    no_actual = 0
    for _id, cid, kind, _status, send, actual, key, year, month, day, instance, _prio in initials:
        scheduled = date.fromisoformat(send)
        assert FIRST_INITIAL_DAY <= scheduled <= AS_OF
        if actual is None:
            no_actual += 1
        else:
            sent = datetime.strptime(actual, "%Y-%m-%d %H:%M:%S")
            assert FIRST_INITIAL_DAY <= sent.date() <= AS_OF
            assert sent.date() - scheduled in (timedelta(0), timedelta(days=1))
        assert (instance is not None) == (kind == "campaign_rate_increase")
        if key is None:
            continue
        m = re.fullmatch(KEY_PATTERNS[kind], key)
        assert m is not None, key
        assert int(m.group(1)) == cid
        event = date(year, month, day)
        if kind in ("birthday", "effective_date"):
            assert int(m.group(2)) == year
            assert event - scheduled == timedelta(days=14 if kind == "birthday" else 30)
        elif kind == "aep":
            assert m.group(2) == event.isoformat() == send
        elif kind == "post_window":
            assert date.fromisoformat(m.group(2)) == scheduled - timedelta(days=1)
        else:
            assert int(m.group(2)) == instance
            assert m.group(3) == event.isoformat()
            assert event - scheduled == timedelta(days=14)
    assert 0.05 * 800 <= no_actual <= 0.2 * 800
    unkeyed = sum(1 for r in initials if r[6] is None)
    assert 0.04 * 800 <= unkeyed <= 0.2 * 800
    assert any(r[6] is None and r[7] is None for r in initials)  # legacy, no event year
    keys = rows(path, "SELECT occurrence_key FROM email_schedules WHERE occurrence_key IS NOT NULL")
    assert len(keys) == len({k for (k,) in keys})


def test_followup_initials_follow_the_contacts_dates(
    campaign_db: tuple[Path, GenerateSummary],
) -> None:
    path, _ = campaign_db
    data = rows(
        path,
        "SELECT s.email_type, s.event_month, s.event_day, c.birth_date, c.effective_date"
        " FROM email_schedules s JOIN contacts c ON c.id = s.contact_id"
        " WHERE s.email_type IN ('birthday', 'effective_date') AND s.event_year = 2026",
    )
    assert data
    for kind, month, day, birth_raw, effective_raw in data:
        base = parse_iso_date(birth_raw if kind == "birthday" else effective_raw)
        assert base is not None
        assert (month, day) == (base.month, base.day) or (base.month, base.day) == (2, 29)


def test_campaign_initials_have_their_target(campaign_db: tuple[Path, GenerateSummary]) -> None:
    path, _ = campaign_db
    data = rows(
        path,
        "SELECT s.contact_id, s.campaign_instance_id, s.priority, s.email_template,"
        " i.email_template, cc.status, i.active_start_date, i.active_end_date,"
        " s.scheduled_send_date FROM email_schedules s"
        " JOIN campaign_instances i ON i.id = s.campaign_instance_id"
        " JOIN contact_campaigns cc ON cc.contact_id = s.contact_id"
        " AND cc.campaign_instance_id = s.campaign_instance_id"
        " AND cc.trigger_date = printf('%04d-%02d-%02d', s.event_year, s.event_month, s.event_day)"
        " WHERE s.email_type = 'campaign_rate_increase'",
    )
    assert (
        len(data)
        == rows(
            path, "SELECT count(*) FROM email_schedules WHERE email_type = 'campaign_rate_increase'"
        )[0][0]
    )
    assert len(data) >= 20
    for _cid, _iid, priority, template, instance_template, status, start, end, send in data:
        assert priority == 1 and template == instance_template and status == "scheduled"
        assert (start is None or start <= send) and (end is None or send <= end)


def test_existing_followups(campaign_db: tuple[Path, GenerateSummary]) -> None:
    path, summary = campaign_db
    data = rows(
        path,
        "SELECT contact_id, email_type, status, scheduled_send_date, occurrence_key, metadata"
        " FROM email_schedules WHERE email_type LIKE 'followup%'",
    )
    assert summary.existing_followups == len(data) >= 5
    initials = {r[1]: r for r in initial_rows(path)}
    keyed = 0
    for cid, kind, status, send, key, metadata in data:
        assert (kind, status) == ("followup_1_cold", "sent")
        initial = initials[cid]
        assert date.fromisoformat(send) == date.fromisoformat(initial[4]) + timedelta(days=2)
        if key is None:
            assert metadata is None
            continue
        keyed += 1
        assert key == f"{cid}:followup:{initial[6]}"
        named = json.loads(metadata)
        assert (named["initial_key"], named["initial_row_id"]) == (initial[6], initial[0])
        assert named["initial_type"] == initial[2]
    assert 0 < keyed < len(data)


def test_clicks_and_health_answers(campaign_db: tuple[Path, GenerateSummary]) -> None:
    path, summary = campaign_db
    sent_at = {
        cid: datetime.strptime(actual or f"{send} 08:30:00", "%Y-%m-%d %H:%M:%S")
        for _, cid, _, _, send, actual, *_ in initial_rows(path)
    }
    clicks = rows(path, "SELECT contact_id, tracking_id, clicked_at FROM tracking_clicks")
    assert summary.tracking_clicks == len(clicks)
    clickers = {cid for cid, _, _ in clicks if cid is not None}
    assert clickers <= set(sent_at)
    assert 0.2 * 800 <= len(clickers) <= 0.4 * 800
    assert any(cid is None for cid, _, _ in clicks)
    assert len({t for _, t, _ in clicks}) == len(clicks)
    limit = datetime.combine(AS_OF, datetime.max.time())
    moments = [(cid, datetime.strptime(at, "%Y-%m-%d %H:%M:%S")) for cid, _, at in clicks if cid]
    after = sum(1 for cid, at in moments if at >= sent_at[cid])
    assert 0.7 * len(moments) <= after < len(moments)  # some before the send: they don't count
    assert all(at <= limit for _, at in moments)

    events = rows(path, "SELECT contact_id, event_type, metadata, created_at FROM contact_events")
    assert summary.contact_events == len(events)
    answers = [(cid, meta, at) for cid, kind, meta, at in events if kind == "eligibility_answered"]
    assert {kind for _, kind, _, _ in events} == {"eligibility_answered", "email_opened"}
    assert 0.05 * 800 <= len({cid for cid, _, _ in answers}) <= 0.15 * 800
    outcomes: Counter[str] = Counter()
    for cid, meta, at in answers:
        assert cid in sent_at
        assert datetime.strptime(at, "%Y-%m-%d %H:%M:%S") <= limit
        try:
            data = json.loads(meta)
        except ValueError:
            outcomes["malformed"] += 1
            continue
        assert set(data) == {"answers_count", "main_questions_yes_count", "has_medical_conditions"}
        if data["has_medical_conditions"]:
            outcomes["flagged"] += 1
        elif data["main_questions_yes_count"] > 0:
            outcomes["yes count only"] += 1
        else:
            outcomes["none"] += 1
    assert set(outcomes) == {"malformed", "flagged", "yes count only", "none"}
    assert outcomes["malformed"] <= 0.03 * len(answers)


def test_campaign_database_keeps_the_legacy_index_and_migrates(tmp_path: Path) -> None:
    path = tmp_path / "agency.db"
    generate_database(str(path), 1500, seed=2, as_of=AS_OF, **CAMPAIGN_OPTIONS)
    indexes = rows(path, "SELECT name FROM sqlite_master WHERE type = 'index'")
    assert ("idx_email_schedules_unique_event",) in indexes
    before = dump(path)
    with open_store(str(path)) as store:
        assert store.migrate()  # the unique index on occurrence_key builds
        assert store.migrate() == []
    after = dump(path)
    assert after[0] == before[0]
    assert [row[: len(before[1][0])] for row in after[1]] == before[1]


def test_followups_without_campaigns(tmp_path: Path) -> None:
    path = tmp_path / "agency.db"
    summary = generate_database(str(path), 1000, seed=2, as_of=AS_OF, followup_initials=1000)
    assert summary.followup_initials == 1000 and summary.campaign_targets == 0
    kinds = Counter(r[2] for r in initial_rows(path))
    assert sum(kinds.values()) == 1000 and "campaign_rate_increase" not in kinds
    assert rows(path, "SELECT count(*) FROM campaign_types") == [(0,)]


def test_campaigns_without_followups(tmp_path: Path) -> None:
    path = tmp_path / "agency.db"
    summary = generate_database(str(path), 1000, seed=2, as_of=AS_OF, campaign_instances=3)
    assert summary.campaign_instances == 3 and summary.campaign_targets >= 100
    assert summary.followup_initials == 0
    columns = [r[1] for r in rows(path, "PRAGMA table_info(email_schedules)")]
    assert "occurrence_key" not in columns
    assert rows(
        path, "SELECT count(*) FROM campaign_instances WHERE campaign_type = 'annual_review'"
    ) == [(0,)]


@pytest.mark.parametrize(
    "options",
    [
        {"campaign_instances": -1},
        {"campaign_share": 1.5},
        {"campaign_share": -0.1},
        {"followup_initials": 11},
        {"followup_initials": -1},
    ],
)
def test_bad_options_are_refused(tmp_path: Path, options: dict[str, Any]) -> None:
    path = tmp_path / "agency.db"
    with pytest.raises(ValueError):
        generate_database(str(path), 10, **options)
    assert not path.exists()


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"as_of": date(9999, 12, 31)}, "as_of 9999-12-31 is outside 1999-01-01..2999-12-31"),
        ({"as_of": date(1, 1, 1)}, "as_of 0001-01-01 is outside 1999-01-01..2999-12-31"),
        ({"as_of": date(1998, 12, 31)}, "as_of 1998-12-31 is outside 1999-01-01..2999-12-31"),
        ({"followup_initials": 11}, "followup_initials 11 is outside 0..10"),
        ({"followup_initials": -1}, "followup_initials -1 is outside 0..10"),
        ({"campaign_instances": -1}, "campaign_instances -1 is outside 0..9223372036854775807"),
        ({"campaign_share": 1.5}, "campaign_share 1.5 is outside 0..1"),
        ({"campaign_share": float("nan")}, "campaign_share nan is outside 0..1"),
    ],
)
def test_refusals_name_the_argument_and_its_range(
    tmp_path: Path, options: dict[str, Any], words: str
) -> None:
    path = tmp_path / "agency.db"
    with pytest.raises(ValueError) as refused:
        generate_database(str(path), 10, **options)
    assert words in str(refused.value) and "\n" not in str(refused.value)
    assert not path.exists() and not path.with_name(path.name + ".partial").exists()


@pytest.mark.parametrize("as_of", [date(1999, 1, 1), date(2999, 12, 31)])
def test_the_ends_of_the_as_of_range_generate(tmp_path: Path, as_of: date) -> None:
    summary = generate_database(
        str(tmp_path / "agency.db"), 400, as_of=as_of, campaign_instances=9, followup_initials=40
    )
    assert summary.contacts == 400 and summary.followup_initials == 40
