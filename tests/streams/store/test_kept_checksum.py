"""The kept schedule checksum (``streams.store.checksum.kept_checksum``) on SQLite files: the
sum kept from the triggers' changes equals the checksum read from every row
(``schedule_checksum``), whatever writes the rows, however, and between whichever calls.

Every test calls ``kept_checksum`` once before the writes it is about: a first call (no sum
yet) computes the sum from the rows and would hide any change the triggers missed before it.
The writes go through plain ``sqlite3`` connections, as the agency's own software writes,
with foreign keys on where a contact's deletion is to cascade (the store's engine turns them
off, and the pragma does nothing inside a transaction: autocommit connections set it).
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streams.store.checksum as checksum_module
from rules.statuses import OWNED_STATUSES
from streams.store.checksum import EMPTY_CHECKSUM, kept_checksum, schedule_checksum
from streams.store.copy import copy_agency
from streams.store.engine import Store, open_store
from tests.sweeps import checksum, sweep

LEGACY_DDL = resources.files("streams").joinpath("sql/legacy_schema.sql").read_text("utf-8")
CONTACTS = range(1, 6)  # contacts 1..5; contact 6 never exists (its rows fail the foreign key)
OWNED = sorted(OWNED_STATUSES)
NOT_OWNED = ["sent", "scheduled", "Skipped", "delivered"]  # 'Skipped': not owned (exact case)
INSERT_COLUMNS = (
    "occurrence_key, contact_id, email_type, scheduled_send_date, status, priority, "
    "email_template, skip_reason, event_year, metadata"
)
OWNED_SQL = "status IN ('pre-scheduled', 'skipped')"
LOGGER = checksum_module.__name__  # "streams.store.checksum"


# -- the database and how it is read ----------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated legacy database with contacts 1..5 and no schedule rows (migrating is slow)."""
    path = tmp_path_factory.mktemp("kept") / "template.db"
    con = sqlite3.connect(path)
    con.executescript(LEGACY_DDL)
    con.executemany(
        "INSERT INTO contacts (id, first_name, last_name, email) VALUES (?, 'Pat', 'Doe', ?)",
        [(c, f"c{c}@example.com") for c in CONTACTS],
    )
    con.commit()
    con.close()
    with open_store(str(path)) as store:
        store.migrate()
    return path


@dataclass
class Agency:
    """One copy of the template: the store (its engine reads and keeps the checksum) and a
    plain autocommit ``sqlite3`` connection with foreign keys on (the agency's writer)."""

    path: Path
    store: Store
    raw: sqlite3.Connection

    def kept(self) -> str:
        with self.store.engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")  # a write transaction, as the sweep's
            with conn.begin():
                return kept_checksum(conn)

    def full(self) -> str:
        with self.store.engine.connect() as conn:
            return schedule_checksum(conn)

    def one(self, sql: str, *params: Any) -> Any:
        return self.raw.execute(sql, params).fetchone()[0]

    def owned_rows(self) -> int:
        return int(self.one(f"SELECT count(*) FROM email_schedules WHERE {OWNED_SQL}"))

    def kept_rows(self) -> int:
        return int(self.one("SELECT rows FROM mw_schedule_sum"))

    def pending(self) -> int:
        return int(self.one("SELECT count(*) FROM mw_schedule_deltas"))

    def ids(self) -> list[int]:
        return [i for (i,) in self.raw.execute("SELECT id FROM email_schedules ORDER BY id")]

    def assert_kept_is_full(self) -> str:
        kept = self.kept()
        assert kept == self.full()
        assert self.kept_rows() == self.owned_rows()
        assert self.pending() == 0  # the changes taken are gone
        return kept


@contextmanager
def agency_at(path: Path) -> Iterator[Agency]:
    store = open_store(str(path))
    raw = sqlite3.connect(path, isolation_level=None, timeout=30)
    raw.execute("PRAGMA foreign_keys=ON")
    try:
        yield Agency(path, store, raw)
    finally:
        raw.close()
        store.close()


@pytest.fixture
def agency(template: Path, tmp_path: Path) -> Iterator[Agency]:
    path = tmp_path / "agency.db"
    shutil.copyfile(template, path)
    with agency_at(path) as a:
        yield a


def insert(a: Agency, *rows: tuple[Any, ...], verb: str = "INSERT") -> None:
    """Rows of (key, contact, type, date, status, priority, template, reason, year, metadata)."""
    marks = ", ".join("?" * 10)
    for row in rows:
        a.raw.execute(f"{verb} INTO email_schedules ({INSERT_COLUMNS}) VALUES ({marks})", row)


def row(key: str | None, contact: int = 1, status: str = "pre-scheduled", day: str = "2026-04-01") -> tuple[Any, ...]:
    return (key, contact, "birthday", day, status, 5, None, None, 2026, None)


# -- random writes --------------------------------------------------------------------------

KEYS = st.one_of(st.none(), st.sampled_from([f"{c}|birthday|k{i}" for c in (1, 2) for i in range(4)]))
STATUSES = st.sampled_from(OWNED + NOT_OWNED)
CONTACT_IDS = st.integers(1, 6)
PICK = st.integers(0, 10**6)  # a row, as an index into the current ids (modulo)
# Values of other storage classes than the column's: integers and floats into TEXT columns
# (stored as text by the affinity), text and floats into INTEGER ones (kept as text, real).
ODD = st.sampled_from([None, 5, "5", 2.5, "abc", 20260401, "2026-04-01", 2**62, -1, "ä", "", 7.0])
CHANGED = {  # checksum columns a sending side or another program may change, and values for them
    "scheduled_send_date": st.one_of(st.sampled_from(["2026-04-01", "2026-05-02"]), ODD),
    "email_template": ODD,
    "priority": ODD,
    "skip_reason": st.sampled_from([None, "window", "frequency limit"]),
    "event_year": ODD,
    "scheduled_send_time": st.sampled_from(["08:30:00", "09:00:00"]),
    "contact_id": CONTACT_IDS,
    "occurrence_key": KEYS,
}

OPS = st.one_of(
    st.tuples(st.just("insert"), KEYS, CONTACT_IDS, STATUSES, ODD, ODD, st.sampled_from(["INSERT", "INSERT OR IGNORE"])),
    st.tuples(st.just("status"), PICK, STATUSES),
    st.tuples(st.just("sent"), CONTACT_IDS),
    st.tuples(st.just("metadata"), PICK, st.text(max_size=5)),
    st.sampled_from(sorted(CHANGED)).flatmap(lambda c: st.tuples(st.just("set"), PICK, st.just(c), CHANGED[c])),
    st.tuples(st.just("delete"), PICK),
    st.tuples(st.just("delete contact"), CONTACT_IDS),
    st.tuples(st.just("upsert"), KEYS.filter(lambda k: k is not None), STATUSES, ODD),
    st.tuples(st.just("rolled back"), PICK, KEYS),
    # Writes the triggers do not see in full: REPLACE deletes what it replaces unseen.
    st.tuples(st.just("replace id"), PICK, KEYS, STATUSES, st.sampled_from(["REPLACE", "INSERT OR REPLACE"])),
    st.tuples(st.just("replace key"), KEYS, CONTACT_IDS, STATUSES, st.sampled_from(["REPLACE", "INSERT OR REPLACE"])),
    st.tuples(st.just("update or replace"), PICK, KEYS),
)
REPLACING = {"replace id", "replace key", "update or replace"}


def _picked(a: Agency, pick: int) -> int | None:
    ids = a.ids()
    return ids[pick % len(ids)] if ids else None


def apply(a: Agency, op: tuple[Any, ...]) -> None:
    """One write through the plain connection (a failed statement changes nothing)."""
    kind = op[0]
    try:
        if kind == "insert":
            _, key, contact, status, template, priority, verb = op
            insert(a, (key, contact, "birthday", "2026-04-01", status, priority, template, None, 2026, None), verb=verb)
        elif kind == "status":  # owned <-> sent, owned <-> owned, ...
            if (rid := _picked(a, op[1])) is not None:
                a.raw.execute("UPDATE email_schedules SET status = ? WHERE id = ?", (op[2], rid))
        elif kind == "sent":  # the sending side takes a contact's owned rows
            a.raw.execute(
                "UPDATE email_schedules SET status = 'sent', actual_send_datetime = '2026-04-01 08:30:00' "
                "WHERE status = 'pre-scheduled' AND contact_id = ?",
                (op[1],),
            )
        elif kind == "metadata":  # no checksum column: nothing changes, nothing is appended
            if (rid := _picked(a, op[1])) is not None:
                full, pending = a.full(), a.pending()
                a.raw.execute(
                    "UPDATE email_schedules SET metadata = ?, catchup_note = ?, updated_at = 'later', "
                    "placed_run_id = 'p', ideal_send_date = '2026-01-01' WHERE id = ?",
                    (op[2], op[2], rid),
                )
                assert a.full() == full and a.pending() == pending
        elif kind == "set":
            _, pick, column, value = op
            if (rid := _picked(a, pick)) is not None:
                a.raw.execute(f"UPDATE email_schedules SET {column} = ? WHERE id = ?", (value, rid))
        elif kind == "delete":
            if (rid := _picked(a, op[1])) is not None:
                a.raw.execute("DELETE FROM email_schedules WHERE id = ?", (rid,))
        elif kind == "delete contact":  # cascades to the contact's rows; the contact comes back
            a.raw.execute("DELETE FROM contacts WHERE id = ?", (op[1],))
            a.raw.execute(
                "INSERT OR IGNORE INTO contacts (id, first_name, last_name, email) VALUES (?, 'Pat', 'Doe', ?)",
                (op[1], f"c{op[1]}@example.com"),
            )
        elif kind == "upsert":
            _, key, status, priority = op
            a.raw.execute(
                f"INSERT INTO email_schedules ({INSERT_COLUMNS}) VALUES (?, 1, 'birthday', '2026-06-01', ?, ?, "
                "NULL, NULL, 2026, NULL) ON CONFLICT (occurrence_key) DO UPDATE SET status = excluded.status, "
                "priority = excluded.priority, scheduled_send_date = '2026-06-02'",
                (key, status, priority),
            )
        elif kind == "rolled back":  # a transaction's writes and their changes, undone together
            a.raw.execute("BEGIN")
            try:
                insert(a, row(op[2], status="skipped"))
                if (rid := _picked(a, op[1])) is not None:
                    a.raw.execute("UPDATE email_schedules SET scheduled_send_date = '2027-01-01' WHERE id = ?", (rid,))
                    a.raw.execute("DELETE FROM email_schedules WHERE id = ?", (rid,))
            finally:
                a.raw.execute("ROLLBACK")
        elif kind == "replace id":
            _, pick, key, status, verb = op
            rid = _picked(a, pick)
            a.raw.execute(
                f"{verb} INTO email_schedules (id, {INSERT_COLUMNS}) VALUES (?, ?, 2, 'aep', '2026-09-15', ?, 3, "
                "'tpl', NULL, 2026, NULL)",
                (rid, key, status),
            )
        elif kind == "replace key":
            _, key, contact, status, verb = op
            insert(a, (key, contact, "aep", "2026-09-16", status, 4, None, None, 2026, None), verb=verb)
        elif kind == "update or replace":  # takes another row's key: that row is deleted unseen
            if (rid := _picked(a, op[1])) is not None:
                a.raw.execute("UPDATE OR REPLACE email_schedules SET occurrence_key = ? WHERE id = ?", (op[2], rid))
        else:  # pragma: no cover - the strategies name every kind
            raise AssertionError(kind)
    except sqlite3.IntegrityError:
        pass  # a clashing key, a missing contact: the statement (and its triggers) undone


@contextmanager
def warnings_of_checksum() -> Iterator[list[logging.LogRecord]]:
    """The warnings ``kept_checksum`` logs (caplog is function-scoped: not for hypothesis)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.WARNING)
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


SEED = [
    row("1|birthday|2026"),
    row("2|birthday|2026", contact=2, status="skipped"),
    row(None, contact=3),
    row("3|birthday|2025", contact=3, status="sent"),
    row(None, contact=4, status="Skipped"),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(steps=st.lists(st.lists(OPS, min_size=1, max_size=4), min_size=1, max_size=10))
def test_random_writes_keep_the_checksum_of_the_rows(template: Path, steps: list[list[tuple[Any, ...]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "agency.db"
        shutil.copyfile(template, path)
        with agency_at(path) as a, warnings_of_checksum() as warned:
            insert(a, *SEED)
            a.assert_kept_is_full()  # the sum, from the rows: what the steps start from
            for step in steps:
                for op in step:
                    apply(a, op)
                before = len(warned)
                a.assert_kept_is_full()
                if not any(op[0] in REPLACING for op in step):
                    # Kept from the changes, not computed again from the rows: the triggers saw all.
                    assert len(warned) == before, [r.getMessage() for r in warned[before:]]
            # Nothing written since: the same checksum, kept or read.
            assert a.kept() == a.full() == a.kept()


# -- REPLACE, and the sum started from the rows ---------------------------------------------


@pytest.mark.parametrize("verb", ["REPLACE", "INSERT OR REPLACE"])
def test_a_replace_is_found_by_the_count_logged_and_computed_again(
    agency: Agency, caplog: pytest.LogCaptureFixture, verb: str
) -> None:
    insert(agency, row("1|birthday|2026"), row("2|birthday|2026", contact=2))
    before = agency.assert_kept_is_full()
    [first, _] = agency.ids()
    # The owned row replaced by a sent one under the same id: its delete fires no trigger.
    agency.raw.execute(
        f"{verb} INTO email_schedules (id, contact_id, email_type, scheduled_send_date, status) "
        "VALUES (?, 1, 'birthday', '2026-04-01', 'sent')",
        (first,),
    )
    assert agency.kept_rows() == 2 and agency.owned_rows() == 1  # the count the check compares
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        kept = agency.kept()
    assert kept == agency.full() != before
    assert agency.kept_rows() == 1 and agency.pending() == 0
    [warning] = [r for r in caplog.records if r.name == LOGGER]
    assert warning.levelno == logging.WARNING
    assert "counts 2 owned rows, the table has 1" in warning.getMessage()
    # Kept from the changes again afterwards: no second warning.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        agency.raw.execute("UPDATE email_schedules SET scheduled_send_date = '2026-04-09' WHERE status = 'pre-scheduled'")
        assert agency.assert_kept_is_full() != kept
    assert [r for r in caplog.records if r.name == LOGGER] == []


def test_a_replace_with_recursive_triggers_on_is_seen_by_the_triggers(
    agency: Agency, caplog: pytest.LogCaptureFixture
) -> None:
    insert(agency, row("1|birthday|2026"))
    agency.assert_kept_is_full()
    agency.raw.execute("PRAGMA recursive_triggers=ON")  # REPLACE then fires the delete triggers
    agency.raw.execute(
        "REPLACE INTO email_schedules (id, contact_id, email_type, scheduled_send_date, status) "
        "VALUES (?, 1, 'birthday', '2026-04-02', 'pre-scheduled')",
        (agency.ids()[0],),
    )
    assert agency.kept_rows() == agency.owned_rows() == 1
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        agency.assert_kept_is_full()
    assert [r for r in caplog.records if r.name == LOGGER] == []


def test_the_first_kept_checksum_sums_the_rows_and_drops_their_changes(agency: Agency) -> None:
    insert(agency, *SEED)
    assert agency.one("SELECT count(*) FROM mw_schedule_sum") == 0  # no sum yet ...
    assert agency.pending() == 0  # ... so the triggers appended nothing
    kept = agency.kept()
    assert kept == agency.full() != EMPTY_CHECKSUM
    assert agency.pending() == 0 and agency.kept_rows() == agency.owned_rows() == 3  # not counted twice
    assert agency.kept() == kept


def test_a_database_migrated_with_rows_starts_its_sum_from_them(tmp_path: Path) -> None:
    path = tmp_path / "legacy.db"
    con = sqlite3.connect(path)
    con.executescript(LEGACY_DDL)
    con.execute("INSERT INTO contacts (id, first_name, last_name, email) VALUES (1, 'Pat', 'Doe', 'p@example.com')")
    con.executemany(
        "INSERT INTO email_schedules (contact_id, email_type, scheduled_send_date, status) VALUES (1, ?, ?, ?)",
        [("BIRTHDAY", "2026-03-15", "pre-scheduled"), ("BIRTHDAY", "2026-03-15", "skipped"), ("aep", "2026-09-15", "sent")],
    )
    con.commit()
    con.close()
    with open_store(str(path)) as store:
        store.migrate()  # the triggers come after the rows: nothing pending
    with agency_at(path) as a:
        assert a.pending() == 0
        assert a.assert_kept_is_full() != EMPTY_CHECKSUM
        assert a.kept_rows() == 2


def test_many_pending_changes_are_summed_from_the_rows_instead(
    agency: Agency, monkeypatch: pytest.MonkeyPatch
) -> None:
    rebuilt: list[int] = []
    real = checksum_module._rebuilt

    def spy(conn: Any, changes_coming: int, helper_target: str | None = None, meanwhile: Any = None) -> str:
        rebuilt.append(1)
        return real(conn, changes_coming, helper_target, meanwhile)

    monkeypatch.setattr(checksum_module, "_rebuilt", spy)
    insert(agency, *SEED)
    agency.assert_kept_is_full()
    assert rebuilt == [1]  # no sum yet
    # Fewer changes than the threshold: added to the sum.
    for day in range(1, 6):
        agency.raw.execute(f"UPDATE email_schedules SET scheduled_send_date = '2026-05-0{day}' WHERE {OWNED_SQL}")
    insert(agency, row("5|birthday|2026", contact=5))
    assert agency.pending() == 5 * 3 * 2 + 1
    agency.assert_kept_is_full()
    assert rebuilt == [1]
    # More than max(owned rows, REBUILD_FROM): the rows are read instead.
    monkeypatch.setattr(checksum_module, "REBUILD_FROM", 1)
    for day in range(1, 6):
        agency.raw.execute(f"UPDATE email_schedules SET scheduled_send_date = '2026-06-0{day}' WHERE {OWNED_SQL}")
    agency.raw.execute("DELETE FROM email_schedules WHERE occurrence_key = '1|birthday|2026'")
    assert agency.pending() > agency.owned_rows() == 3
    agency.assert_kept_is_full()
    assert rebuilt == [1, 1]


def test_a_run_about_to_write_more_than_the_sum_counts_drops_it_and_the_next_reads_the_rows(
    agency: Agency, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first sweep or an AEP season writes most of the schedule: its checksum before drops
    the sum, the triggers append nothing while there is none (the run's writes, and a
    sending side's between), and the checksum after reads the rows."""
    monkeypatch.setattr(checksum_module, "REBUILD_FROM", 2)
    insert(agency, *SEED)
    before = agency.assert_kept_is_full()
    with agency.store.engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            assert kept_checksum(conn, changes_coming=agency.owned_rows()) == before  # not more: kept
        assert agency.kept_rows() == 3
        with conn.begin():
            assert kept_checksum(conn, changes_coming=agency.owned_rows() + 1) == before
    assert agency.one("SELECT count(*) FROM mw_schedule_sum") == 0
    insert(agency, *(row(f"4|birthday|{year}", contact=4) for year in range(2030, 2036)))
    agency.raw.execute(f"UPDATE email_schedules SET status = 'sent' WHERE id = (SELECT min(id) FROM email_schedules WHERE {OWNED_SQL})")
    assert agency.pending() == 0  # nothing appended without a sum
    after = agency.assert_kept_is_full()  # read from the rows: both writes are in it
    assert after != before and agency.kept_rows() == 3 + 6 - 1
    # Kept again from there on.
    agency.raw.execute("DELETE FROM email_schedules WHERE occurrence_key = '4|birthday|2030'")
    assert agency.pending() == 1
    assert agency.assert_kept_is_full() != after


def test_changes_taken_in_small_pages_give_the_same_sum(agency: Agency, monkeypatch: pytest.MonkeyPatch) -> None:
    insert(agency, *SEED)
    agency.assert_kept_is_full()
    monkeypatch.setattr(checksum_module, "FETCH_ROWS", 2)
    insert(agency, *(row(f"4|birthday|{year}", contact=4, status=OWNED[year % 2]) for year in range(2030, 2041)))
    agency.raw.execute("UPDATE email_schedules SET priority = 'high' WHERE contact_id = 4")
    assert agency.pending() > 2 * 2
    agency.assert_kept_is_full()


def test_a_cascade_from_a_deleted_contact_is_seen(agency: Agency) -> None:
    insert(agency, row("1|birthday|2026"), row("1|aep|2026", status="skipped"), row("2|birthday|2026", contact=2))
    before = agency.assert_kept_is_full()
    agency.raw.execute("DELETE FROM contacts WHERE id = 1")
    assert agency.owned_rows() == 1  # the foreign key cascaded
    assert agency.assert_kept_is_full() != before


# -- the sweep, and a copy ------------------------------------------------------------------


def test_the_sweeps_checksums_are_the_schedules(generated_copy: Any) -> None:
    db = generated_copy()
    first = sweep(db, date(2026, 3, 10))
    assert first.schedules_before_checksum == EMPTY_CHECKSUM
    assert first.schedules_after_checksum == checksum(db) != EMPTY_CHECKSUM
    # Nothing else wrote: the next day starts where the last ended.
    second = sweep(db, date(2026, 3, 11))
    assert second.schedules_before_checksum == first.schedules_after_checksum
    assert second.schedules_after_checksum == checksum(db)
    # The sending side takes an owned row between the days: the next run starts from that.
    con = sqlite3.connect(db)
    con.execute(
        "UPDATE email_schedules SET status = 'sent', actual_send_datetime = '2026-03-12 08:30:00' "
        f"WHERE id = (SELECT min(id) FROM email_schedules WHERE {OWNED_SQL})"
    )
    con.commit()
    con.close()
    taken = checksum(db)
    third = sweep(db, date(2026, 3, 12))
    assert third.schedules_before_checksum == taken != second.schedules_after_checksum
    assert third.schedules_after_checksum == checksum(db)


def test_a_copy_starts_its_sum_from_its_rows(generated_copy: Any, tmp_path: Path) -> None:
    source = generated_copy()
    sweep(source, date(2026, 3, 10))
    with agency_at(source) as a:
        # The source has a kept sum and changes pending: neither may be copied.
        a.raw.execute(f"UPDATE email_schedules SET scheduled_send_date = '2031-01-01' WHERE id IN "
                      f"(SELECT id FROM email_schedules WHERE {OWNED_SQL} LIMIT 3)")
        assert a.kept_rows() > 0 and a.pending() == 6
        expected = a.full()
    target = tmp_path / "copy.db"
    report = copy_agency(str(source), str(target), page_rows=700)
    assert report.differences == []
    assert report.source_checksum == report.target_checksum == checksum(target) == expected
    with agency_at(target) as t:
        assert t.one("SELECT count(*) FROM mw_schedule_sum") == 0 and t.pending() == 0
        assert t.assert_kept_is_full() == expected  # no row counted twice
        assert t.kept_rows() == t.owned_rows() > 0
        # From there on kept from the changes.
        t.raw.execute(f"DELETE FROM email_schedules WHERE id = (SELECT max(id) FROM email_schedules WHERE {OWNED_SQL})")
        assert t.assert_kept_is_full() != expected


def agency_of_schema(path: Path, legacy: str, own: str) -> Path:
    """A migrated agency database whose schema says ``own`` where the legacy one says
    ``legacy``, with one contact."""
    ddl = LEGACY_DDL.replace(legacy, own)
    assert ddl != LEGACY_DDL
    con = sqlite3.connect(path)
    con.executescript(ddl)
    con.execute("INSERT INTO contacts (id, first_name, last_name, email) VALUES (1, 'Pat', 'Doe', 'p@example.com')")
    con.commit()
    con.close()
    with open_store(str(path)) as store:
        store.migrate()
    return path


def test_a_change_of_storage_class_alone_on_a_column_without_affinity(tmp_path: Path) -> None:
    """IS NOT finds 5 and 5.0 equal, the checksum hashes them apart: on a checksum column an
    agency declared without affinity (not so in the legacy schema), a change of storage
    class alone must still reach the kept sum."""
    # An agency whose schema declares priority without a type.
    path = agency_of_schema(tmp_path / "typeless.db", "priority             INTEGER DEFAULT 10", "priority             DEFAULT 10")
    with agency_at(path) as a:
        insert(a, row("1|birthday|2026"))  # priority 5, an integer
        a.assert_kept_is_full()
        a.raw.execute("UPDATE email_schedules SET priority = 5.0")
        assert a.one("SELECT typeof(priority) FROM email_schedules") == "real"
        a.assert_kept_is_full()


def test_a_change_of_case_alone_on_a_column_an_agency_collates_without_case(tmp_path: Path) -> None:
    """Under a column's NOCASE collation 'Bday' IS NOT 'bday' is false; the checksum hashes
    them apart, so the trigger compares as the checksum does."""
    # An agency whose schema compares its templates without case.
    path = agency_of_schema(tmp_path / "nocase.db", "email_template       TEXT,", "email_template       TEXT COLLATE NOCASE,")
    with agency_at(path) as a:
        insert(a, row("1|birthday|2026"))
        a.raw.execute("UPDATE email_schedules SET email_template = 'Bday'")
        before = a.assert_kept_is_full()
        a.raw.execute("UPDATE email_schedules SET email_template = 'bday'")
        assert a.one("SELECT email_template = 'Bday' FROM email_schedules") == 1  # equal to the column
        assert a.assert_kept_is_full() != before
