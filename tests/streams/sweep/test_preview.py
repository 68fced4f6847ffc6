"""The sweep's dry run (issue 15, ``mailwindow sweep --dry-run``) on real SQLite files: it
lists what the real sweep then does, and writes nothing to the database."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from rules.config import DEFAULT_CONFIG, Config
from streams.cli import main
from streams.config_file import load_config_file
from streams.store.engine import open_store
from streams.sweep import preview as preview_module
from streams.sweep.liveness import checkpoint_time, process_start
from streams.sweep.preview import CHANGE_KINDS, PreviewError, preview_sweep
from streams.sweep.summary import SweepOptions, SweepSummary
from tests.legacy_db import add_schedule_rows, copy_database, dump, make_legacy_db
from tests.sweeps import (
    T,
    changed_rules,
    checksum,
    crafted,
    listed_changes,
    owned_rows,
    read,
    schedule_changes,
    summary_counts,
    sweep,
)

D = date(2026, 3, 10)  # the generated agencies' day: swept for real on it
NEXT = D + timedelta(days=1)  # previewed as of this day
CLI = [sys.executable, "-m", "streams.cli"]
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "new_rules.yaml"
    path.write_text(yaml.safe_dump(changed_rules()))
    return path


@pytest.fixture
def swept(generated_copy: Callable[..., Path]) -> Path:
    """A generated agency of 3,000 contacts swept for real as of D (its ledger filled)."""
    db = generated_copy(3000)
    sweep(db, D)
    return db


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "scratch"
    where.mkdir()
    yield where
    assert list(where.iterdir()) == []  # the copy is gone


def dry_run(db: Path, config: Config, as_of: date, scratch: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The preview as the command makes it (the database opened read-only): its head and changes."""
    with open_store(str(db), read_only=True) as store, preview_sweep(
        store, config, SweepOptions(as_of=as_of), scratch=scratch
    ) as p:
        return p.head(), list(p.changes())


def real_run(db: Path, config: Config, as_of: date, copy: Path) -> tuple[Any, set[Any]]:
    """The real sweep on a copy of ``db``: its summary and the changes it made there."""
    copy_database(db, copy)
    before = read(copy, owned_rows)
    summary = sweep(copy, as_of, config)
    return summary, schedule_changes(before, read(copy, owned_rows))


def file_state(db: Path) -> tuple[str, int]:
    import hashlib

    return hashlib.sha256(db.read_bytes()).hexdigest(), db.stat().st_mtime_ns


def checkpoints(db: Path) -> int:
    return int(dump(db, "SELECT count(*) FROM scheduler_checkpoints")[0][0])


def test_the_preview_lists_what_the_real_sweep_then_changes(
    swept: Path, config_file: Path, scratch: Path, tmp_path: Path
) -> None:
    config, _ = load_config_file(str(config_file))
    head, changes = dry_run(swept, config, NEXT, scratch)
    summary, made = real_run(swept, config, NEXT, tmp_path / "real.db")

    assert listed_changes(changes) == made
    assert len(changes) == len(made)  # one entry per change, none twice
    kinds = Counter(c["change"] for c in changes)
    assert set(kinds) == set(CHANGE_KINDS)  # the scenario makes every kind
    assert head["counts"]["by_change"] == {k: kinds[k] for k in CHANGE_KINDS}
    assert head["dry_run"] is True
    # The sweep on the copy is the real one: the same counts, the same schedule after.
    assert summary_counts(summary) == summary_counts(SweepSummary(**head["summary"]))
    assert head["summary"]["schedules_after_checksum"] == checksum(tmp_path / "real.db")
    assert not head["summary"]["incremental"]  # another config: every contact decided again
    # Counted by email type and state as listed; sorted by contact, then key.
    by_type: Counter[str] = Counter(c["email_type"] for c in changes)
    assert {t: sum(k.values()) for t, k in head["counts"]["by_type"].items()} == by_type
    by_state: Counter[str] = Counter(c["state"] or "(none)" for c in changes)
    assert {s: sum(k.values()) for s, k in head["counts"]["by_state"].items()} == by_state
    assert head["counts"]["by_state"]["TX"]["skipped"] > 0  # TX's new window blocks emails
    assert [(c["contact_id"], c["occurrence_key"]) for c in changes] == sorted(
        (c["contact_id"], c["occurrence_key"]) for c in changes
    )
    for c in changes:
        if c["change"] == "skipped":
            assert c["reason"] == c["to"]["reason"] and "window" in c["reason"]
        if c["change"] == "deleted":
            assert c["to"] is None and c["reason"] == "no longer in play"
    assert head["other_changes"] == {"rows": 0, "by_column": {}}


def test_the_preview_of_the_opt_in_profile_is_the_real_sweep(swept: Path, scratch: Path, tmp_path: Path) -> None:
    """Issue 15: the packaged profile (VA 60 days from 2025-07-01, IL's age band, new LA, UT,
    WY, IN windows, OR's wider reading) previewed on a generated agency equals the real sweep."""
    from rules.config import config_from_mapping

    profile = config_from_mapping({"state_rules": {"profile": "state-changes-2024-2026"}})[0]
    head, changes = dry_run(swept, profile, NEXT, scratch)
    summary, made = real_run(swept, profile, NEXT, tmp_path / "real.db")
    assert listed_changes(changes) == made and len(changes) == len(made)
    assert head["summary"]["schedules_after_checksum"] == checksum(tmp_path / "real.db")
    assert head["summary"]["config_digest"] == summary.config_digest
    newly_skipped = {c["state"] for c in changes if c["change"] == "skipped"}
    assert newly_skipped & {"IL", "LA", "UT", "WY", "IN"}, newly_skipped  # states that had no window
    for c in changes:
        if c["change"] == "skipped" and c["state"] in {"IL", "LA", "UT", "WY", "IN", "VA"}:
            assert "(rule" in c["reason"] or c["state"] == "LA", c  # a dated version names itself
            assert "source:" in c["reason"] or c["state"] == "LA", c


def test_the_next_incremental_sweep_previewed_is_the_one_that_runs(
    swept: Path, scratch: Path, tmp_path: Path
) -> None:
    """The copy carries the ledger and the change marks: the preview builds on the last sweep
    as the real next sweep does, and decides the same contacts."""
    head, changes = dry_run(swept, DEFAULT_CONFIG, NEXT, scratch)
    summary, made = real_run(swept, DEFAULT_CONFIG, NEXT, tmp_path / "real.db")
    assert summary.incremental and head["summary"]["incremental"]
    assert summary_counts(summary) == summary_counts(SweepSummary(**head["summary"]))
    assert listed_changes(changes) == made


def test_a_dry_run_writes_nothing(swept: Path, config_file: Path, scratch: Path) -> None:
    before = file_state(swept)
    stored, runs = checksum(swept), checkpoints(swept)
    before_state = file_state(swept)  # reading the checksum wrote nothing either
    assert before_state == before
    for flags in ([], ["--json"]):
        proc = subprocess.run(
            [*CLI, "sweep", "--db", str(swept), "--config", str(config_file), "--as-of", NEXT.isoformat(),
             "--dry-run", "--scratch", str(scratch), *flags],
            capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert file_state(swept) == before  # bytes (sha256) and mtime
    assert checksum(swept) == stored
    assert checkpoints(swept) == runs  # no checkpoint written, no lock taken
    assert file_state(swept) == before


def test_a_dry_run_of_an_unmigrated_legacy_database_leaves_it_as_it_was(
    tmp_path: Path, scratch: Path
) -> None:
    db = make_legacy_db(tmp_path / "legacy.db")
    crafted(db)
    # A legacy row of the scheduler's (no key) that the sweep adopts, and one it deletes.
    add_schedule_rows(db, [
        {"contact_id": 1, "email_type": "birthday", "scheduled_send_date": "2026-04-05",
         "status": "pre-scheduled", "event_year": 2026},
        {"contact_id": 3, "email_type": "aep", "scheduled_send_date": "2026-04-10", "status": "pre-scheduled"},
    ])
    before = file_state(db)
    proc = subprocess.run(
        [*CLI, "sweep", "--db", str(db), "--as-of", T.isoformat(), "--dry-run", "--json", "--scratch", str(scratch)],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert file_state(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["legacy.db", "scratch"]  # no -wal, no -journal
    assert "occurrence_key" not in {r[1] for r in dump(db, "PRAGMA table_info(email_schedules)")}  # not migrated
    out = orjson.loads(proc.stdout)
    _, made = real_run(db, DEFAULT_CONFIG, T, tmp_path / "real.db")
    assert listed_changes(out["changes"]) == made
    kinds = Counter(c["change"] for c in out["changes"])
    assert kinds["created"] > 0 and kinds["deleted"] == 1  # the legacy AEP row goes
    # The adopted row is matched by its id (not deleted and created again): it moves to its ideal date.
    adopted = [c for c in out["changes"] if c["contact_id"] == 1 and c["email_type"] == "birthday"]
    assert [(c["change"], c["occurrence_key"], c["from"]["date"], c["to"]["date"]) for c in adopted] == [
        ("moved", "1:birthday:2026", "2026-04-05", "2026-04-06")
    ]


def test_the_command_prints_the_counts_or_every_change_as_json(
    swept: Path, config_file: Path, scratch: Path
) -> None:
    args = [*CLI, "sweep", "--db", str(swept), "--config", str(config_file), "--as-of", NEXT.isoformat(),
            "--dry-run", "--scratch", str(scratch)]
    as_json = subprocess.run([*args, "--json"], capture_output=True, text=True, cwd=ROOT, timeout=300, check=True)
    out = orjson.loads(as_json.stdout)  # one JSON object
    assert as_json.stdout.count("\n") == 1
    assert out["dry_run"] is True and set(out) == {"dry_run", "summary", "counts", "other_changes", "changes"}
    assert set(out["counts"]) == {"by_change", "by_type", "by_state"}
    assert out["changes"] and len(out["changes"]) == sum(out["counts"]["by_change"].values())
    for c in out["changes"]:
        assert set(c) == {"contact_id", "occurrence_key", "email_type", "change", "from", "to", "reason", "state"}
        assert c["change"] in CHANGE_KINDS
        for side in (c["from"], c["to"]):
            assert side is None or set(side) == {"date", "status", "reason"}
    text = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=300, check=True).stdout
    by_change = out["counts"]["by_change"]
    assert f"would make {sum(by_change.values()):,} changes" in text
    assert "  by change: " + ", ".join(f"{k} {by_change.get(k, 0):,}" for k in CHANGE_KINDS) in text
    assert "  by email type:" in text and "  by state:" in text
    assert list(by_change) == list(CHANGE_KINDS) and all(by_change.values())  # the scenario makes every kind
    for kind, n in by_change.items():
        assert f"\n{kind} ({min(10, n)} of {n:,}):\n" in text
    first = out["changes"][0]
    assert f"  contact {first['contact_id']} {first['occurrence_key']}: " in text
    assert re.search(rf"^  sweep sweep-{NEXT}-[0-9a-f]+ as of {NEXT}: completed in ", text, re.M)  # each run its id
    assert f"schedules checksum {out['summary']['schedules_after_checksum']}" in text


def test_a_bad_config_is_refused_in_the_same_line_as_by_the_real_sweep(swept: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("state_rules:\n  birthday_windows:\n    CA:\n      window_after_days: 400\n")
    real = subprocess.run([*CLI, "sweep", "--db", str(swept), "--config", str(cfg)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, check=False)
    dry = subprocess.run([*CLI, "sweep", "--db", str(swept), "--config", str(cfg), "--dry-run"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert real.returncode == dry.returncode == 2
    assert dry.stderr == real.stderr and len(dry.stderr.splitlines()) == 1 and "bad.yaml" in dry.stderr


def _refusal(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_a_scratch_directory_that_cannot_hold_the_copy_is_named(
    swept: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["sweep", "--db", str(swept), "--as-of", NEXT.isoformat(), "--dry-run", "--scratch"]
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    assert f"scratch directory {a_file} is not a directory" in _refusal(capsys, *base, str(a_file))
    missing = tmp_path / "missing"
    assert f"scratch directory {missing} is not found" in _refusal(capsys, *base, str(missing))
    small = tmp_path / "small"
    small.mkdir()

    class Usage:
        free = 1000

    monkeypatch.setattr(preview_module.shutil, "disk_usage", lambda _path: Usage())
    err = _refusal(capsys, *base, str(small))
    assert f"no room in scratch directory {small}" in err and "MB free" in err
    monkeypatch.undo()

    def full(_store: object, path: Path) -> None:
        path.write_bytes(b"partial")
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(preview_module, "snapshot_to_sqlite", full)
    assert f"no room in scratch directory {small}" in _refusal(capsys, *base, str(small))
    assert list(small.iterdir()) == []  # the partial copy is gone
    assert "--scratch is where a dry run" in _refusal(capsys, "sweep", "--db", str(swept), "--scratch", str(small))


def test_a_sweep_running_on_the_database_is_named_not_the_copy(swept: Path, scratch: Path) -> None:
    """The copy carries the running sweep's checkpoint: the dry run refuses as the real sweep
    would, naming the database (not the private copy)."""
    other = subprocess.Popen(["sleep", "60"])
    try:
        con = sqlite3.connect(swept)
        con.execute(
            "INSERT INTO scheduler_checkpoints (run_timestamp, scheduler_run_id, contacts_checksum, status, as_of, "
            "pid, pid_started, host, heartbeat_at) VALUES (?, 'sweep-live', '', 'started', ?, ?, ?, ?, ?)",
            (checkpoint_time(), NEXT.isoformat(), other.pid, process_start(other.pid), socket.gethostname(),
             checkpoint_time()),
        )
        con.commit()
        con.close()
        with open_store(str(swept), read_only=True) as store, pytest.raises(PreviewError) as refused:
            preview_sweep(store, DEFAULT_CONFIG, SweepOptions(as_of=NEXT), scratch=scratch)
        message = str(refused.value)
        assert "another sweep is running on" in message and str(swept) in message and "copy.db" not in message
    finally:
        other.kill()
        other.wait()
    assert os.path.exists(swept)
