"""``mailwindow copy`` (issue 16) on a real PostgreSQL server: an agency's SQLite file moved to
PostgreSQL and back, row for row, a working database afterwards; a target with rows refused;
a copy interrupted (an exception between pages, SIGKILL) finished by the same command; the
command line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import ProgrammingError

from rules.config import DEFAULT_CONFIG
from streams.cli import main
from streams.store.checksum import schedule_checksum
from streams.store.copy import COPY_ORDER, copy_agency
from streams.store.engine import StoreError, open_store
from streams.sweep.run import run_sweep
from streams.sweep.summary import SweepOptions
from tests.agency_copies import (
    NEXT_DAY,
    Interrupted,
    add_contact,
    contents,
    counts,
    stop_after,
    swept_agency,
)
from tests.legacy_db import copy_database, dump
from tests.sweeps import checksum, summary_counts, sweep

ROOT = Path(__file__).resolve().parents[2]



@pytest.fixture(scope="module")
def agency(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return swept_agency(tmp_path_factory.mktemp("agency") / "agency.db")


def working_copy(agency: Path, path: Path) -> Path:
    copy_database(agency, path)
    return path


def pg_checksum(url: str) -> str:
    with open_store(url, read_only=True) as store, store.engine.connect() as conn:
        return schedule_checksum(conn)


def progress(url: str) -> dict[str, tuple[int, str | None]]:
    """mw_copy_progress on the target: table -> (rows copied, finished at)."""
    with open_store(url, read_only=True) as store, store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT table_name, rows_copied, finished_at FROM mw_copy_progress")
        return {str(t): (int(n), f) for t, n, f in rows}


def test_an_agency_moves_to_postgresql_and_back(agency: Path, pg_url: str, tmp_path: Path) -> None:
    before = agency.read_bytes()
    report = copy_agency(str(agency), pg_url, page_rows=1000)
    assert agency.read_bytes() == before  # the source is never written
    assert report.differences == [] and not report.resumed
    assert report.source_checksum == report.target_checksum == checksum(agency) == pg_checksum(pg_url)
    source = contents(str(agency))
    assert source["mw_changed"] and source["mw_decided"] and source["mw_epochs"] and source["mw_outbox"]
    assert source["scheduler_checkpoints"] and source["contact_campaigns"] and source["tracking_clicks"]
    # Every table row for row, history and the change marks included.
    assert contents(pg_url) == source
    assert {t.table: t.source_rows for t in report.tables} == {k: len(v) for k, v in source.items()}

    # A working database: the next day's sweep decides there as on the SQLite file, from the
    # copied ledger and marks (the same summary: incremental, the same contacts decided).
    work = working_copy(agency, tmp_path / "work.db")
    on_sqlite = sweep(work, NEXT_DAY)
    with open_store(pg_url) as pg:
        on_postgresql = run_sweep(pg, DEFAULT_CONFIG, SweepOptions(as_of=NEXT_DAY))
    assert summary_counts(on_postgresql) == summary_counts(on_sqlite)
    assert pg_checksum(pg_url) == checksum(work)
    # The ids continue after the source's counter (its newest contact was deleted): no collision.
    counters = dict(dump(agency, "SELECT name, seq FROM sqlite_sequence"))
    assert counters["contacts"] > max(r[0] for r in source["contacts"])  # type: ignore[type-var]
    assert add_contact(pg_url) == counters["contacts"] + 1

    # And back into a new SQLite file (an audit copy).
    back = tmp_path / "back.db"
    report = copy_agency(pg_url, str(back))
    assert report.differences == []
    assert report.source_checksum == report.target_checksum == pg_checksum(pg_url) == checksum(back)
    assert contents(str(back)) == contents(pg_url)
    assert counts(str(back)) == {t.table: t.source_rows for t in report.tables}
    # PostgreSQL's counters came back too.
    with open_store(pg_url, read_only=True) as pg, pg.engine.connect() as conn:
        pg_contacts = conn.exec_driver_sql(
            "SELECT pg_sequence_last_value(pg_get_serial_sequence('contacts', 'id'))"
        ).scalar_one()
    assert dict(dump(back, "SELECT name, seq FROM sqlite_sequence"))["contacts"] == pg_contacts


def test_a_target_with_rows_is_refused_then_forced(agency: Path, pg_url: str) -> None:
    with open_store(pg_url) as pg:
        pg.migrate()
    add_contact(pg_url, "theirs@example.com")
    refused = "is not empty: table(s) contacts, mw_changed have rows; --force empties them"
    with pytest.raises(StoreError, match=re.escape(refused)):
        copy_agency(str(agency), pg_url)
    assert counts(pg_url)["contacts"] == 1 and "mw_copy_progress" not in counts(pg_url)
    report = copy_agency(str(agency), pg_url, force=True)
    assert report.differences == []
    assert contents(pg_url) == contents(str(agency))
    # A finished copy is not copied onto again (nor resumed) without --force.
    with pytest.raises(StoreError, match="holds a finished copy of"):
        copy_agency(str(agency), pg_url)
    assert copy_agency(str(agency), pg_url, force=True).differences == []


@pytest.mark.parametrize(
    ("table", "page_rows", "stop_at"),
    [
        ("contacts", 400, 800),
        ("email_schedules", 300, 300),
        ("mw_zip_states", 5000, 20000),
        ("mw_changed", 100, 100),
    ],
)
def test_an_interrupted_copy_continues_where_it_stopped(
    agency: Path, pg_url: str, table: str, page_rows: int, stop_at: int
) -> None:
    with pytest.raises(Interrupted):
        copy_agency(str(agency), pg_url, page_rows=page_rows, on_page=stop_after(table, stop_at))
    stopped = progress(pg_url)
    assert stopped[table] == (stop_at, None) and stopped["*"][1] is None
    with open_store(pg_url, read_only=True) as pg, pg.engine.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one() == stop_at
    report = copy_agency(str(agency), pg_url, page_rows=page_rows)
    assert report.resumed and report.differences == []
    copied = {t.table: t for t in report.tables}
    assert copied[table].copied == copied[table].source_rows - stop_at
    assert contents(pg_url) == contents(str(agency))  # no row twice, none missing
    assert all(finished is not None for _, finished in progress(pg_url).values())


def test_a_copy_resumes_only_from_its_own_unchanged_source(agency: Path, pg_url: str, tmp_path: Path) -> None:
    source = working_copy(agency, tmp_path / "agency.db")
    with pytest.raises(Interrupted):
        copy_agency(str(source), pg_url, page_rows=500, on_page=stop_after("email_schedules", 500))
    other = working_copy(agency, tmp_path / "other.db")
    refused = f"holds an unfinished copy of {source}, not of {other}: resume it with --from {source}, or --force"
    with pytest.raises(StoreError, match=re.escape(refused)):
        copy_agency(str(other), pg_url)
    # A contact already copied changed (a column no rule reads: no change mark either).
    with open_store(str(source)) as working, working.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE contacts SET phone_number = '555-0100' WHERE id = 2")
    with pytest.raises(StoreError, match=r"changed since the interrupted copy began \(table contacts\)"):
        copy_agency(str(source), pg_url)
    # The target changed under the copy.
    with open_store(pg_url) as pg, pg.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM email_schedules WHERE id = (SELECT min(id) FROM email_schedules)")
    refused = "changed since the interrupted copy: table email_schedules has 499 rows, the copy wrote 500"
    with pytest.raises(StoreError, match=refused):
        copy_agency(str(source), pg_url)
    report = copy_agency(str(source), pg_url, force=True)
    assert report.differences == [] and not report.resumed
    assert contents(pg_url) == contents(str(source))


def test_a_killed_copy_is_finished_by_the_same_command(agency: Path, pg_url: str) -> None:
    command = [
        sys.executable, "-m", "streams.cli", "copy", "--from", str(agency), "--to", pg_url, "--page-rows", "50"
    ]
    copying = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    engine = sa.create_engine(pg_url)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert copying.poll() is None, copying.stderr.read() if copying.stderr else ""
            assert time.monotonic() < deadline
            try:
                with engine.connect() as conn:
                    done = conn.exec_driver_sql(
                        "SELECT rows_copied FROM mw_copy_progress WHERE table_name = 'contacts'"
                    ).scalar()
            except ProgrammingError:  # no progress table yet
                done = None
            if done:
                break
            time.sleep(0.01)
        copying.kill()
        copying.wait(30)
    finally:
        if copying.poll() is None:
            copying.kill()
            copying.wait(30)
        engine.dispose()
    stopped = progress(pg_url)
    assert stopped["*"][1] is None  # killed before it finished
    with open_store(pg_url, read_only=True) as pg, pg.engine.connect() as conn:
        for table, (rows, _) in stopped.items():
            if table not in ("*", "mw_changed", "mw_zip_states") and rows:
                assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one() == rows
    finished = subprocess.run([*command, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout)
    assert report["resumed"] is True and report["same"] is True
    assert contents(pg_url) == contents(str(agency))


def test_the_command_line(agency: Path, pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["copy", "--from", str(agency), "--to", pg_url]) == 0
    out = capsys.readouterr().out.splitlines()
    tables = [line.split()[0] for line in out[: len(COPY_ORDER)]]
    assert tables == [t.name for t in COPY_ORDER]
    rows = dict(line.split()[:2] for line in out[: len(COPY_ORDER)])
    assert {t: int(n.replace(",", "")) for t, n in rows.items()} == counts(str(agency))
    assert all(line.endswith(" s") for line in out[: len(COPY_ORDER)])
    source_line, target_line, summary = out[len(COPY_ORDER) :]
    assert source_line == f"source checksum {checksum(agency)}"
    assert target_line == f"target checksum {checksum(agency)}"
    assert summary.startswith(f"copied {agency} into postgresql+psycopg://postgres@127.0.0.1:")
    assert summary.endswith("s)") and "the same row counts and checksum" in summary

    # Again: refused in one line, exit code 2.
    assert main(["copy", "--from", str(agency), "--to", pg_url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mailwindow copy: ") and "holds a finished copy of" in err[0]

    # Back, as one JSON object.
    back = tmp_path / "back.db"
    assert main(["copy", "--from", pg_url, "--to", str(back), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["same"] is True and report["differences"] == [] and report["resumed"] is False
    assert report["source_checksum"] == report["target_checksum"] == checksum(back)
    assert {t["table"]: t["rows"] for t in report["tables"]} == counts(str(back))
    assert report["source"].startswith("postgresql+psycopg://") and report["target"] == str(back)


def test_the_command_line_says_what_differs_with_exit_code_1(
    agency: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import streams.store.copy as copy_module

    real = copy_module.schedule_checksum
    monkeypatch.setattr(
        copy_module,
        "schedule_checksum",
        lambda conn: "sha256:other" if conn.dialect.name == "postgresql" else real(conn),
    )
    assert main(["copy", "--from", str(agency), "--to", pg_url]) == 1
    captured = capsys.readouterr()
    assert "target checksum sha256:other" in captured.out
    assert captured.err.strip() == (
        f"mailwindow copy: the copy differs from the source: schedule checksum {checksum(agency)} in the"
        " source, sha256:other in the target"
    )


def test_a_value_postgresql_cannot_hold_is_refused_before_anything_is_written(
    agency: Path, pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = working_copy(agency, tmp_path / "agency.db")
    with open_store(str(source)) as store, store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE contacts SET agent_id = 'agent seven' WHERE id = 5")
    assert main(["copy", "--from", str(source), "--to", pg_url]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"mailwindow copy: {source}: contacts row 5: agent_id is 'agent seven', and PostgreSQL's column"
        " holds whole numbers: correct it in the source first"
    )
    with open_store(pg_url, read_only=True) as pg, pg.engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []  # not even migrated
    assert main(["copy", "--from", str(tmp_path / "missing.db"), "--to", pg_url]) == 2
    assert capsys.readouterr().err.strip() == f"mailwindow copy: database not found: {tmp_path / 'missing.db'}"
