"""The figures a sweep reads beside its work (``streams.sweep.side_reads``): the invalid
contacts, from a snapshot taken before the run's first write, in a process of their own or,
where none can open the database, in line.  (The checksum of the schedule before the run,
once read there too, is now the kept checksum the run takes before its first write: tested
here as the run reports it.)"""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from rules.config import DEFAULT_CONFIG
from streams.store.checksum import EMPTY_CHECKSUM, schedule_checksum
from streams.store.engine import open_store
from streams.sweep import side_reads
from streams.sweep.prefilter import count_valid_contacts, invalid_contact_ids
from streams.sweep.run import run_sweep
from streams.sweep.side_reads import SideReads
from streams.sweep.summary import SweepError, SweepOptions
from tests.legacy_db import dump
from tests.sweeps import checksum, read, sweep

LEGACY_DDL = resources.files("streams").joinpath("sql/legacy_schema.sql").read_text("utf-8")


@pytest.fixture(autouse=True)
def side_process_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """The small agencies here read in a side process too, as large ones do."""
    monkeypatch.setattr(side_reads, "SIDE_PROCESS_FROM", 0)


def _valid(db: Path) -> int:
    return read(db, count_valid_contacts)


def test_before_checksum_is_the_schedule_before_the_run(generated_copy: Any) -> None:
    db = generated_copy()
    sweep(db, date(2026, 3, 10))
    # Something for the next run to change: a moved row and a deleted one.
    with open_store(str(db)) as store, store.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE email_schedules SET scheduled_send_date = '2026-03-25' WHERE id = "
            "(SELECT min(id) FROM email_schedules WHERE status = 'pre-scheduled')"
        )
    before, valid = checksum(db), _valid(db)
    summary = sweep(db, date(2026, 3, 11), full_scan=True)
    assert summary.rows_updated + summary.rows_inserted + summary.rows_deleted > 0
    assert summary.schedules_before_checksum == before
    assert summary.schedules_after_checksum == checksum(db) != before
    assert summary.valid_contacts == valid
    assert 0 < valid < summary.contacts_scanned  # the generated agency has invalid contacts


def test_side_reads_see_the_snapshot_taken_when_they_start(generated_copy: Any) -> None:
    db = generated_copy()
    sweep(db, date(2026, 3, 10))
    expected_valid = _valid(db)
    expected_invalid = read(db, invalid_contact_ids)
    with open_store(str(db)) as store:
        side = SideReads.start(store, find_invalid=True, contacts=3000)
        try:
            assert side._process is not None  # read in a process of its own (forked)
            # Written after the snapshot: not in the figures.
            with store.engine.begin() as conn:
                conn.exec_driver_sql("UPDATE contacts SET email = 'nobody-' || id WHERE id % 2 = 0")
            figures = side.figures()
        finally:
            side.close()
    assert figures.invalid_contacts == expected_invalid != []
    assert read(db, invalid_contact_ids) != expected_invalid and _valid(db) < expected_valid


def test_a_run_that_needs_no_invalid_contacts_reads_nothing_beside(generated_copy: Any) -> None:
    db = generated_copy()
    with open_store(str(db)) as store:
        side = SideReads.start(store, find_invalid=False, contacts=3000)
        assert side._process is None  # no process started for nothing
        assert side.figures().invalid_contacts is None


def test_in_memory_database_reads_them_in_line() -> None:
    store = open_store(":memory:", create=True)
    try:
        with store.engine.begin() as conn:
            conn.connection.driver_connection.executescript(LEGACY_DDL)  # type: ignore[union-attr]
            conn.exec_driver_sql(
                "INSERT INTO contacts (first_name, last_name, email, state, birth_date) VALUES "
                "('A', 'B', 'a@example.com', 'TX', '1950-03-20'), ('C', 'D', 'not an email', 'TX', '1950-03-21')"
            )
        summary = run_sweep(store, DEFAULT_CONFIG, SweepOptions(as_of=date(2026, 3, 10)))
        assert store.reopen_target() is None  # no other process could read it
        assert summary.schedules_before_checksum == EMPTY_CHECKSUM  # no schedule rows yet
        assert summary.valid_contacts == 1
        with store.engine.connect() as conn:
            assert summary.schedules_after_checksum == schedule_checksum(conn) != summary.schedules_before_checksum
    finally:
        store.close()


def test_a_failed_side_read_fails_the_run_and_names_what_failed(
    generated_copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = generated_copy()

    def broken(_conn: object) -> int:
        raise RuntimeError("the contacts table could not be read")

    monkeypatch.setattr(side_reads, "invalid_contact_ids", broken)  # the forked process inherits it
    with pytest.raises(SweepError, match="invalid contacts failed: RuntimeError: the contacts table could not be read"):
        sweep(db, date(2026, 3, 10))
    status = dump(db, "SELECT status, error_message FROM scheduler_checkpoints ORDER BY id DESC LIMIT 1")
    assert status[0][0] == "failed" and "could not be read" in str(status[0][1])
