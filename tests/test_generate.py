"""Synthetic agency databases: legacy schema, realistic dirt, deterministic."""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

import streams.generate as generate_module
from rules.anniversary import parse_iso_date
from rules.zip_state import BLANKS, USPS_CODES, normalize_state_code, state_of_zip, zip5
from streams.generate import GenerateSummary, generate_database
from streams.store import StoreError, open_store

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
