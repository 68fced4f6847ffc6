"""``mailwindow copy`` between SQLite files (streams.store.copy; PostgreSQL in
tests/postgres/test_copy.py): every table alike, the counters continued, refusals named,
an interrupted copy resumed."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from streams.store.copy import copy_agency
from streams.store.engine import StoreError
from tests.agency_copies import (
    NEXT_DAY,
    Interrupted,
    add_contact,
    contents,
    stop_after,
    swept_agency,
)
from tests.legacy_db import add_contacts, copy_database, dump, make_legacy_db
from tests.sweeps import checksum, summary_counts, sweep


@pytest.fixture(scope="module")
def agency(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return swept_agency(tmp_path_factory.mktemp("agency") / "agency.db")


def file_bytes(path: Path) -> bytes:
    return path.read_bytes()


def execute(path: Path, sql: str) -> None:
    con = sqlite3.connect(path)
    try:
        con.execute(sql)
        con.commit()
    finally:
        con.close()


def working_copy(agency: Path, path: Path) -> Path:
    copy_database(agency, path)
    return path


def test_a_copy_has_every_table_alike_and_works_as_the_source_does(agency: Path, tmp_path: Path) -> None:
    before = file_bytes(agency)
    target = tmp_path / "copy.db"
    report = copy_agency(str(agency), str(target), page_rows=700)
    assert file_bytes(agency) == before  # the source is never written
    assert report.differences == [] and not report.resumed
    assert report.source_checksum == report.target_checksum == checksum(agency)
    source, copied = contents(str(agency)), contents(str(target))
    assert copied.keys() == source.keys() and copied == source
    assert source["mw_changed"] and source["mw_decided"] and source["mw_epochs"]  # history, marks
    # The copy decides the next day as the source does (the ledger and marks came along).
    work = tmp_path / "work.db"
    copy_database(agency, work)
    assert summary_counts(sweep(target, NEXT_DAY)) == summary_counts(sweep(work, NEXT_DAY))
    assert checksum(target) == checksum(work)
    # The counters continue: the source's deleted newest contact's id is not given again.
    counters = dict(dump(agency, "SELECT name, seq FROM sqlite_sequence"))
    [(newest,)] = dump(agency, "SELECT max(id) FROM contacts")
    assert counters["contacts"] > newest
    assert add_contact(str(target)) == counters["contacts"] + 1


def test_an_interrupted_copy_continues_where_it_stopped(agency: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy.db"
    with pytest.raises(Interrupted):
        copy_agency(str(agency), str(target), page_rows=300, on_page=stop_after("email_schedules", 600))
    progress = dict(dump(target, "SELECT table_name, rows_copied FROM mw_copy_progress"))
    assert dump(target, "SELECT count(*) FROM email_schedules") == [(600,)]
    assert progress["email_schedules"] == 600 and progress["contacts"] > 0 and progress["mw_changed"] == 0
    report = copy_agency(str(agency), str(target), page_rows=300)
    assert report.resumed and report.differences == []
    by_table = {t.table: t for t in report.tables}
    assert by_table["contacts"].copied == 0
    assert by_table["email_schedules"].copied == by_table["email_schedules"].source_rows - 600
    assert contents(str(target)) == contents(str(agency))
    # Finished: a third run is refused, as onto any database with rows.
    with pytest.raises(StoreError, match="holds a finished copy of"):
        copy_agency(str(agency), str(target))


def test_a_changed_source_or_another_source_is_not_resumed(agency: Path, tmp_path: Path) -> None:
    source = working_copy(agency, tmp_path / "agency.db")
    target = tmp_path / "copy.db"
    with pytest.raises(Interrupted):
        copy_agency(str(source), str(target), page_rows=500, on_page=stop_after("contacts", 1000))
    other = working_copy(agency, tmp_path / "other.db")
    refused = f"holds an unfinished copy of {source}, not of {other}: resume it with --from {source}, or --force"
    with pytest.raises(StoreError, match=re.escape(refused)):
        copy_agency(str(other), str(target))
    # A contact already copied changes (a column no rule reads: no change mark).
    execute(source, "UPDATE contacts SET phone_number = '555-0100' WHERE id = 2")
    with pytest.raises(StoreError, match="changed since the interrupted copy began \\(table contacts\\)"):
        copy_agency(str(source), str(target))
    report = copy_agency(str(source), str(target), force=True)
    assert report.differences == [] and not report.resumed
    assert contents(str(target)) == contents(str(source))


def test_a_contact_added_after_the_copied_part_is_copied_on_resume(agency: Path, tmp_path: Path) -> None:
    """The part not yet copied is read in the resumed run's moment: the result is the source
    as it is then."""
    source = working_copy(agency, tmp_path / "agency.db")
    target = tmp_path / "copy.db"
    with pytest.raises(Interrupted):
        copy_agency(str(source), str(target), page_rows=500, on_page=stop_after("contacts", 500))
    add_contact(str(source), "later@example.com")
    report = copy_agency(str(source), str(target))
    assert report.resumed and report.differences == []
    assert contents(str(target)) == contents(str(source))


def test_a_target_with_rows_is_refused_untouched_and_forced(agency: Path, tmp_path: Path) -> None:
    target = make_legacy_db(tmp_path / "theirs.db")
    add_contacts(target, [{"id": 1, "zip_code": "75201", "birth_date": "1950-04-20"}])
    before = file_bytes(target)
    with pytest.raises(StoreError, match=f"{target} is not empty: table\\(s\\) contacts have rows; --force"):
        copy_agency(str(agency), str(target))
    assert file_bytes(target) == before  # refused before anything, not migrated either
    report = copy_agency(str(agency), str(target), force=True)
    assert report.differences == []
    assert contents(str(target)) == contents(str(agency))


def test_tables_and_columns_the_scheduler_does_not_know_are_refused(agency: Path, tmp_path: Path) -> None:
    source = working_copy(agency, tmp_path / "agency.db")
    execute(source, "ALTER TABLE contacts ADD COLUMN favourite_colour TEXT")
    with pytest.raises(StoreError, match="contacts.favourite_colour are not the scheduler's"):
        copy_agency(str(source), str(tmp_path / "a.db"))
    execute(source, "ALTER TABLE contacts DROP COLUMN favourite_colour")
    execute(source, "CREATE TABLE agents (id INTEGER PRIMARY KEY, name TEXT)")
    with pytest.raises(StoreError, match="table\\(s\\) the scheduler does not know: agents"):
        copy_agency(str(source), str(tmp_path / "b.db"))
    assert not (tmp_path / "a.db").exists() and not (tmp_path / "b.db").exists()


def test_a_database_is_not_copied_onto_itself(agency: Path) -> None:
    with pytest.raises(StoreError, match="both the source and the target"):
        copy_agency(str(agency), str(agency))


def test_an_unfinished_copy_is_not_copied_from(agency: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy.db"
    with pytest.raises(Interrupted):
        copy_agency(str(agency), str(target), page_rows=500, on_page=stop_after("contacts", 500))
    refused = f"{target} is an unfinished copy of {agency}: finish it first"
    with pytest.raises(StoreError, match=re.escape(refused)):
        copy_agency(str(target), str(tmp_path / "copy-of-copy.db"))
    copy_agency(str(agency), str(target))  # finished: a source like any other
    assert copy_agency(str(target), str(tmp_path / "copy-of-copy.db")).differences == []
    assert contents(str(tmp_path / "copy-of-copy.db")) == contents(str(agency))
