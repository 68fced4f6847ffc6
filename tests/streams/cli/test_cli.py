"""The ``mailwindow`` command as a user runs it: real processes, real files."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.legacy_db import add_contacts, dump

CLI = [sys.executable, "-m", "streams.cli"]
ROOT = Path(__file__).resolve().parents[3]


def run(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_missing_database_file(tmp_path: Path) -> None:
    assert_one_line_error(run("sweep", "--db", str(tmp_path / "nope.db")), "nope.db", "not found")


def test_database_without_contacts_table(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    sqlite3.connect(db).execute("CREATE TABLE other (x)").connection.commit()
    assert_one_line_error(run("sweep", "--db", str(db)), "contacts")


def test_not_a_database(tmp_path: Path) -> None:
    db = tmp_path / "notes.db"
    db.write_text("these are my notes\n" * 100)
    assert_one_line_error(run("checksum", "--db", str(db)), "notes.db")


def test_malformed_config_names_the_line(legacy_db: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("load_balancing:\n  daily_send_percentage_cap: [0.07\n")
    assert_one_line_error(run("sweep", "--db", str(legacy_db), "--config", str(cfg)), "bad.yaml", "line")


def test_impossible_config_value_names_the_key(legacy_db: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("load_balancing:\n  daily_send_percentage_cap: 1.5\n")
    assert_one_line_error(
        run("sweep", "--db", str(legacy_db), "--config", str(cfg)),
        "load_balancing.daily_send_percentage_cap",
    )


def test_bad_as_of_date(legacy_db: Path) -> None:
    assert_one_line_error(run("sweep", "--db", str(legacy_db), "--as-of", "2025-02-30"), "2025-02-30")


def test_legacy_config_loads_with_warnings(legacy_db: Path) -> None:
    add_contacts(legacy_db, [{"id": 1, "zip_code": "75201", "birth_date": "1950-04-20"}])
    proc = run(
        "sweep", "--db", str(legacy_db), "--as-of", "2026-04-01",
        "--config", str(ROOT / "tests" / "data" / "legacy_scheduler_config.yaml"), "--json",
    )
    assert proc.returncode == 0, proc.stderr
    assert "'processing' is not used" in proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["emails_scheduled"] == 1


def test_sweep_json_summary_has_the_contract_fields(generated_copy) -> None:  # type: ignore[no-untyped-def]
    db = generated_copy()
    proc = run("sweep", "--db", str(db), "--as-of", "2026-03-10", "--json", check=True)
    summary = json.loads(proc.stdout)
    for key in ("run_id", "as_of", "contacts_scanned", "contacts_processed", "contacts_invalid",
                "emails_scheduled", "emails_skipped", "elapsed_s"):
        assert key in summary
    assert summary["as_of"] == "2026-03-10"
    assert summary["contacts_processed"] < summary["contacts_scanned"] == 3000
    assert summary["emails_scheduled"] == dump(db, "SELECT count(*) FROM email_schedules WHERE status = 'pre-scheduled'")[0][0]
    checksum = run("checksum", "--db", str(db), check=True).stdout.strip()
    assert checksum == summary["schedules_after_checksum"]


def test_explain_says_why_in_plain_words(legacy_db: Path) -> None:
    add_contacts(legacy_db, [{"id": 9, "zip_code": "90210", "state": "CA", "birth_date": "1950-04-20"}])
    run("sweep", "--db", str(legacy_db), "--as-of", "2026-04-01", check=True)
    out = run("explain", "--db", str(legacy_db), "--contact", "9", "--as-of", "2026-04-01", check=True).stdout
    assert "CA birthday window 2026-01-20..2026-06-19" in out
    assert "SKIPPED on 2026-04-06" in out
    assert "post_window" in out and "2026-06-20" in out
    missing = run("explain", "--db", str(legacy_db), "--contact", "12345")
    assert_one_line_error(missing, "12345")


def test_gen_then_sweep_then_checksum_is_reproducible(tmp_path: Path) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    for db in (a, b):
        run("gen", "--db", str(db), "--contacts", "2000", "--seed", "5", check=True)
        run("sweep", "--db", str(db), "--as-of", "2026-05-01", check=True)
    ca = run("checksum", "--db", str(a), check=True).stdout
    cb = run("checksum", "--db", str(b), check=True).stdout
    assert ca == cb and re.fullmatch(r"rowsum:[0-9a-f]{64}\n", ca)
    assert_one_line_error(run("gen", "--db", str(a), "--contacts", "10"), "existing file", "a.db")


def test_checksum_key_order_prints_the_earlier_digest(generated_copy) -> None:  # type: ignore[no-untyped-def]
    from streams.store.checksum import key_order_checksum, schedule_checksum
    from tests.sweeps import read

    db = generated_copy()
    run("sweep", "--db", str(db), "--as-of", "2026-03-10", check=True)
    before = db.read_bytes()
    ordered = run("checksum", "--db", str(db), "--key-order", check=True).stdout
    rowsum = run("checksum", "--db", str(db), check=True).stdout
    assert db.read_bytes() == before  # read, never written
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", ordered)
    assert ordered.strip() == read(db, key_order_checksum)
    assert rowsum.strip() == read(db, schedule_checksum) and rowsum.startswith("rowsum:")


def _start_sweep(db: Path, as_of: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "sweep", "--db", str(db), "--as-of", as_of],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # A test run started in the background (nohup, `&`) ignores SIGINT, and a
        # child inherits that: the sweep must get Ctrl-C as a terminal gives it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for_first_batch(db: Path, proc: subprocess.Popen[str]) -> bool:
    """True once the running sweep has committed some rows (and is still running)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            n = dump(
                db,
                "SELECT count(*) FROM email_schedules WHERE scheduler_run_id IN "
                "(SELECT scheduler_run_id FROM scheduler_checkpoints WHERE status = 'started')",
            )[0][0]
        except sqlite3.OperationalError:
            n = 0  # the run has not added its columns or checkpoint table yet
        if n > 0:
            return proc.poll() is None
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_sweep_is_finished_by_the_next_run(generated_copy, sig: signal.Signals) -> None:  # type: ignore[no-untyped-def]
    reference, db = generated_copy(20000), generated_copy(20000)
    as_of = "2026-09-01"  # AEP season: every contact is processed, the run is long enough
    run("sweep", "--db", str(reference), "--as-of", as_of, check=True)
    expected = run("checksum", "--db", str(reference), check=True).stdout

    proc = _start_sweep(db, as_of)
    assert _wait_for_first_batch(db, proc), "the sweep finished before it could be interrupted"
    proc.send_signal(sig)
    proc.wait(timeout=120)
    status, error = dump(db, "SELECT status, error_message FROM scheduler_checkpoints")[0]
    if sig == signal.SIGKILL:
        assert status == "started"  # nobody could write anything else
    else:
        assert proc.returncode == 130
        assert (status, error) == ("failed", "interrupted (Ctrl-C)")

    run("sweep", "--db", str(db), "--as-of", as_of, check=True)
    checkpoints = dump(db, "SELECT status, error_message FROM scheduler_checkpoints ORDER BY id")
    assert checkpoints[0][0] == "failed" and "interrupted" in checkpoints[0][1]
    assert checkpoints[1][0] == "completed"
    assert run("checksum", "--db", str(db), check=True).stdout == expected
    keys = [r[0] for r in dump(db, "SELECT occurrence_key FROM email_schedules WHERE occurrence_key IS NOT NULL")]
    assert len(keys) == len(set(keys))
