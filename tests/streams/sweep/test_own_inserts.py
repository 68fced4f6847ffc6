"""A sweep with many phase 3 emails sums its own inserts instead of having the trigger
append them (``streams.store.own_inserts``): the checksum after is the checksum of its
rows, and stays so from the changes after it; another writer's inserts, updates and
deletes meanwhile are in it; a batch that went through the upsert, a failed run and a
killed one each leave a sum the rows confirm."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streams.store.checksum as checksum_module
from rules.statuses import OWNED_STATUSES
from streams.store import own_inserts
from streams.store.checksum import digest_of_sum, kept_checksum, schedule_checksum
from streams.store.engine import open_store
from streams.store.schedules import DECISION_COLUMNS, ScheduleRow
from streams.store.tables import QUIET_PREFIX, SCHEDULE_DELTAS
from streams.sweep.writes import RunWrites
from tests.legacy_db import add_contacts, dump
from tests.sweeps import checksum, decisions, read, sweep

AS_OF = date(2026, 3, 10)
NEVER = 10**9


@pytest.fixture
def hushing(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every run sums its phase 3 inserts, and a first sweep drops the kept sum (as a large
    agency's does); records what each run added (``unhush``'s ``inserted``)."""
    monkeypatch.setattr(own_inserts, "HUSH_FROM", 1)
    monkeypatch.setattr(checksum_module, "REBUILD_FROM", 0)
    added: list[Any] = []
    real = own_inserts.unhush

    def recorded(conn: Any, run_id: str, inserted: Any) -> None:
        added.append(inserted)
        real(conn, run_id, inserted)

    monkeypatch.setattr(own_inserts, "unhush", recorded)
    return added


def _kept_now(db: Path) -> str:
    """The kept checksum as the next run would take it (in a transaction that writes)."""
    return read(db, kept_checksum, committed=True)


def _quiet_rows(db: Path) -> list[tuple[object, ...]]:
    return dump(db, f"SELECT name FROM mw_schedule_sum WHERE name LIKE '{QUIET_PREFIX}%'")


def _owned_sum(db: Path) -> list[tuple[object, ...]]:
    return dump(db, "SELECT total, rows FROM mw_schedule_sum WHERE name = 'owned'")


@pytest.mark.parametrize(("workers", "apart_from"), [(1, NEVER), (2, 1)])
def test_a_run_that_sums_its_inserts_has_the_checksum_of_its_rows(
    generated_copy, hushing: list[Any], monkeypatch: pytest.MonkeyPatch, workers: int, apart_from: int  # type: ignore[no-untyped-def]
) -> None:
    hushed, plain = generated_copy(), generated_copy()
    a = sweep(hushed, AS_OF, workers=workers, batch_rows=100, make_rows_apart_from=apart_from)
    assert len(hushing) == 1 and hushing[0] is not None
    inserted_sum, inserted = hushing[0]
    assert inserted > 100  # several batches of phase 3
    assert a.schedules_after_checksum == checksum(hushed)
    assert _quiet_rows(hushed) == []
    # The sum is kept (not dropped), and the inserts were not appended as changes.
    assert _owned_sum(hushed) and dump(hushed, "SELECT count(*) FROM mw_schedule_deltas") == [(0,)]

    monkeypatch.setattr(own_inserts, "HUSH_FROM", NEVER)
    b = sweep(plain, AS_OF, workers=workers, batch_rows=100, make_rows_apart_from=apart_from)
    assert decisions(hushed) == decisions(plain)
    assert a.schedules_after_checksum == b.schedules_after_checksum

    # The next days take the changes from the sum the run left, and agree with the rows.
    for day in (1, 2):
        s = sweep(hushed, AS_OF + timedelta(days=day))
        assert s.schedules_after_checksum == checksum(hushed) == _kept_now(hushed)


def _during_phase_3(monkeypatch: pytest.MonkeyPatch, act: Any) -> list[int]:
    """``act(batch, calls)`` before each of phase 3's batches (after ``hush``); returns the
    list of those batches' sizes."""
    real = RunWrites.batch
    sizes: list[int] = []

    def batch(self: RunWrites, made: Any, *args: Any, **kw: Any) -> bool:
        if self.own_inserts is not None:
            sizes.append(len(made))
            act(made, len(sizes))
        return real(self, made, *args, **kw)

    monkeypatch.setattr(RunWrites, "batch", batch)
    return sizes


def _other_writer(db: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    """Writes as the agency's own software does, over a connection of its own."""
    con = sqlite3.connect(db)
    try:
        with con:
            for sql, params in statements:
                con.execute(sql, params)
    finally:
        con.close()


_INSERT = f"INSERT INTO email_schedules ({', '.join(DECISION_COLUMNS)}) VALUES ({', '.join('?' * len(DECISION_COLUMNS))})"


def _row(key: str, contact: int, status: str = "pre-scheduled") -> tuple[object, ...]:
    return tuple(
        ScheduleRow(
            key, contact, "birthday", "2026-03-20", "08:30:00", status, None, 5, None,
            "birthday_email", None, 2026, 3, 20, None, None, "2026-03-20", None,
        )
    )


def test_another_writers_changes_during_phase_3_are_in_the_checksum(
    generated_copy, hushing: list[Any], monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    db = generated_copy()

    def act(made: Any, n: int) -> None:
        if n == 2:
            # After the first batch: the sending side sends one of the run's new rows and
            # the agency deletes another; someone inserts a row of their own.
            first, second = dump(
                db, "SELECT id FROM email_schedules WHERE status = 'pre-scheduled' ORDER BY id DESC LIMIT 2"
            )
            _other_writer(
                db,
                ("UPDATE email_schedules SET status = 'sent' WHERE id = ?", first),
                ("DELETE FROM email_schedules WHERE id = ?", second),
                (_INSERT, _row("999001:birthday:2026", 999001)),
            )

    sizes = _during_phase_3(monkeypatch, act)
    s = sweep(db, AS_OF, batch_rows=100)
    assert len(sizes) > 2 and hushing[0] is not None
    assert dump(db, "SELECT count(*) FROM email_schedules WHERE occurrence_key = '999001:birthday:2026'") == [(1,)]
    assert s.schedules_after_checksum == checksum(db) == _kept_now(db)


def test_a_batch_through_the_upsert_leaves_the_sum_to_the_rows(
    generated_copy, hushing: list[Any], monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    db = generated_copy()

    def act(made: Any, n: int) -> None:
        if n == 2:
            # Another writer creates a key the batch is about to insert: its plain insert
            # fails, the upsert updates that row, and which rows it inserted is unknown.
            _other_writer(db, (_INSERT, tuple(made.inserts[0])))

    _during_phase_3(monkeypatch, act)
    s = sweep(db, AS_OF, batch_rows=100)
    assert hushing == [None]
    assert s.schedules_after_checksum == checksum(db) == _kept_now(db)


def test_a_run_that_fails_in_phase_3_adds_what_it_committed(
    generated_copy, hushing: list[Any], monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    db = generated_copy()

    def act(made: Any, n: int) -> None:
        if n == 3:
            raise RuntimeError("the disk went away")

    _during_phase_3(monkeypatch, act)
    with pytest.raises(Exception, match="the disk went away"):
        sweep(db, AS_OF, batch_rows=100)
    assert hushing and hushing[0] is not None and hushing[0][1] > 0  # two batches' worth
    assert _quiet_rows(db) == []
    assert _kept_now(db) == checksum(db)


def test_a_killed_run_leaves_its_quiet_row_and_the_next_checksum_reads_the_rows(
    generated_copy, hushing: list[Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture  # type: ignore[no-untyped-def]
) -> None:
    db = generated_copy()

    def act(made: Any, n: int) -> None:
        if n == 3:
            raise KeyboardInterrupt  # stands in for a kill: nothing of the run's runs after it

    _during_phase_3(monkeypatch, act)
    monkeypatch.setattr(RunWrites, "unhush_after_failure", lambda self: None)  # killed: no way out
    with pytest.raises(BaseException):  # noqa: B017 - what the run raises on its way out
        sweep(db, AS_OF, batch_rows=100)
    assert len(_quiet_rows(db)) == 1 and _owned_sum(db)
    # The kept sum misses the committed inserts; the quiet row says so (without it, the
    # count of owned rows would, with a warning about writes the triggers do not see).
    with caplog.at_level(logging.WARNING, logger=checksum_module.__name__):
        assert _kept_now(db) == checksum(db)
    assert not [r for r in caplog.records if r.name == checksum_module.__name__]
    assert _quiet_rows(db) == []
    s = sweep(db, AS_OF)  # the rerun
    assert s.schedules_after_checksum == checksum(db) == _kept_now(db)


def test_an_agency_whose_columns_would_store_other_values_is_read_from_its_rows(
    tmp_path: Path, hushing: list[Any]
) -> None:
    """``event_year TEXT`` stores 2026 as '2026': the run's hashes of 2026 would not be the
    rows' hashes, so it lets the trigger and the rows do it."""
    db = tmp_path / "text_years.db"
    con = sqlite3.connect(db)
    con.executescript(LEGACY_DDL.replace("event_year           INTEGER", "event_year           TEXT"))
    con.close()
    add_contacts(
        db,
        (
            {"id": i, "birth_date": f"19{50 + i % 40}-{1 + i % 12:02d}-{1 + i % 28:02d}",
             "effective_date": f"20{10 + i % 15}-{1 + (i * 5) % 12:02d}-01", "state": "TX", "zip_code": "75001"}
            for i in range(1, 401)
        ),
    )
    s = sweep(db, AS_OF)
    assert hushing == []  # never hushed
    assert s.schedules_after_checksum == checksum(db) == _kept_now(db)
    assert s.emails_scheduled > 0


def _insert_triggers(db: Path) -> list[tuple[object, ...]]:
    return dump(
        db,
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'email_schedules' ORDER BY name",
    )


def test_phase_3_sets_the_insert_triggers_aside_only_within_its_transactions(
    generated_copy, hushing: list[Any], monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    """Every phase 3 transaction sets both aside, another connection never finds them
    missing, and the run leaves them as they were."""
    db, plain = generated_copy(), generated_copy()
    seen: list[list[tuple[object, ...]]] = []
    dropped: list[set[str]] = []
    real = own_inserts.insert_triggers_set_aside

    @contextmanager
    def watched(conn: Any, run_id: str) -> Iterator[None]:
        with real(conn, run_id):
            dropped.append(
                set(own_inserts.QUIET_INSERT_TRIGGERS)
                - {str(r[0]) for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
            )
            yield

    monkeypatch.setattr(own_inserts, "insert_triggers_set_aside", watched)
    _during_phase_3(monkeypatch, lambda made, n: seen.append(_insert_triggers(db)))
    s = sweep(db, AS_OF, batch_rows=100)
    monkeypatch.setattr(own_inserts, "HUSH_FROM", NEVER)
    sweep(plain, AS_OF, batch_rows=100)
    assert len(dropped) > 2 and all(d == set(own_inserts.QUIET_INSERT_TRIGGERS) for d in dropped)
    names = {str(r[0]) for r in _insert_triggers(plain)}
    assert set(own_inserts.QUIET_INSERT_TRIGGERS) <= names
    assert seen and all(found == _insert_triggers(plain) for found in seen)
    assert _insert_triggers(db) == _insert_triggers(plain)
    assert s.schedules_after_checksum == checksum(db) == _kept_now(db)
    assert decisions(db) == decisions(plain)


def test_a_sum_taken_from_the_rows_during_phase_3_keeps_the_insert_triggers(
    generated_copy, hushing: list[Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture  # type: ignore[no-untyped-def]
) -> None:
    """Once someone computed the sum from the rows (which takes the quiet row away), the
    run's later inserts must be appended by the trigger: it is no longer set aside.  (Were
    they left out, the kept sum would miss them; the count of owned rows would catch that,
    with a warning, and read the rows.)"""
    db = generated_copy()

    def act(made: Any, n: int) -> None:
        if n == 2:
            _kept_now(db)
            assert _quiet_rows(db) == []

    sizes = _during_phase_3(monkeypatch, act)
    with caplog.at_level(logging.WARNING, logger=checksum_module.__name__):
        s = sweep(db, AS_OF, batch_rows=100)
        assert s.schedules_after_checksum == checksum(db) == _kept_now(db)
    assert len(sizes) > 3
    assert not [r for r in caplog.records if r.name == checksum_module.__name__]


def test_the_migration_replaces_an_insert_trigger_of_an_earlier_version(generated_copy) -> None:  # type: ignore[no-untyped-def]
    db = generated_copy()
    sweep(db, AS_OF)
    name = SCHEDULE_DELTAS[0][0]
    wanted = dump(db, f"SELECT sql FROM sqlite_master WHERE name = '{name}'")[0][0]
    earlier = str(wanted).split(" AND NOT EXISTS")[0] + str(wanted)[str(wanted).index("\nBEGIN") :]
    assert "quiet" not in earlier and earlier != wanted
    _other_writer(db, (f"DROP TRIGGER {name}", ()), (earlier, ()))
    store = open_store(str(db))
    try:
        assert f"replaced trigger {name} on email_schedules" in store.migrate()
        assert store.migrate() == []
    finally:
        store.close()
    assert dump(db, f"SELECT sql FROM sqlite_master WHERE name = '{name}'")[0][0] == wanted


# -- the sum of a batch's inserts is the sum the rows give once written ----------------------

LEGACY_DDL = resources.files("streams").joinpath("sql/legacy_schema.sql").read_text("utf-8")


@pytest.fixture(scope="module")
def empty_agency(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("own") / "agency.db"
    con = sqlite3.connect(path)
    con.executescript(LEGACY_DDL)
    con.close()
    store = open_store(str(path))
    store.migrate()
    store.close()
    yield path


_text = st.text(max_size=12)
_maybe_text = st.none() | _text
_int = st.integers(-(2**40), 2**40)


@st.composite
def _rows(draw: st.DrawFn) -> list[tuple[object, ...]]:
    n = draw(st.integers(0, 8))
    rows: list[tuple[object, ...]] = []
    for i in range(n):
        rows.append(
            tuple(
                ScheduleRow(
                    f"{i}:{draw(_text)}",
                    draw(_int),
                    draw(_text),
                    draw(_text),
                    draw(_text),
                    draw(st.sampled_from([*sorted(OWNED_STATUSES), "sent", "Skipped"])),
                    draw(_maybe_text),
                    draw(_int),
                    draw(st.none() | _int),
                    draw(_maybe_text),
                    draw(_maybe_text),
                    draw(_int),
                    draw(_int),
                    draw(_int),
                    draw(_maybe_text),
                    draw(_maybe_text),
                    draw(_text),
                    draw(_maybe_text),
                )
            )
        )
    return rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_rows())
def test_the_sum_of_rows_made_is_the_sum_of_the_rows_written(
    empty_agency: Path, tmp_path: Path, rows: list[tuple[object, ...]]
) -> None:
    db = tmp_path / "a.db"
    shutil.copyfile(empty_agency, db)
    _other_writer(db, *((_INSERT, r) for r in rows))
    total, owned = own_inserts.inserts_sum(rows)
    assert read(db, schedule_checksum) == digest_of_sum(total)
    assert owned == sum(1 for r in rows if r[5] in OWNED_STATUSES)
