"""Issue 11 on real databases: reading never writes, a refused file stays as it was,
another program's lock is waited for, a full disk and a lost decide worker end as one
line, stale checkpoints are recognised, and the next sweep completes the job."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

import streams.store.engine as store_module
from rules.config import DEFAULT_CONFIG
from streams import cli
from streams.store.checksum import (
    EMPTY_CHECKSUM,
    kept_checksum,
    key_order_checksum,
    schedule_checksum,
)
from streams.store.engine import Store, StoreError, open_store
from streams.store.tables import LEGACY_UNIQUE_INDEX
from streams.sweep import chunks as sweep_chunks
from streams.sweep import transactions as sweep_transactions
from streams.sweep.liveness import STALE_HEARTBEAT_S, process_start
from streams.sweep.run import run_sweep
from streams.sweep.summary import SweepError, SweepOptions
from tests.legacy_db import dump
from tests.postgres.conftest import pg_server, pg_url  # noqa: F401 - fixtures of the PostgreSQL test
from tests.sweeps import T, checksum, crafted, sweep

NOBODY = 65534  # the unprivileged user: root ignores file modes
AEP_DAY = date(2026, 8, 25)  # AEP season: every contact is processed


def file_state(path: Path) -> tuple[str, int]:
    """The file's digest and modification time: what reading must not change."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def schema(path: Path) -> dict[str, str | None]:
    return dict(dump(path, "SELECT name, sql FROM sqlite_master"))  # type: ignore[arg-type]


def is_wal_file(path: Path) -> bool:
    with path.open("rb") as f:
        header = f.read(20)
    return header[18:20] == b"\x02\x02"


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def migrated(db: Path) -> Path:
    with open_store(str(db)) as store:
        store.migrate()
    return db


# -- 1. reading never writes ------------------------------------------------------


def read_checksum(path: Path) -> str:
    with open_store(str(path), read_only=True) as store, store.engine.connect() as conn:
        return schedule_checksum(conn)


def test_reading_a_writable_legacy_database_changes_nothing(legacy_db: Path) -> None:
    crafted(legacy_db)
    before, tables = file_state(legacy_db), schema(legacy_db)
    assert LEGACY_UNIQUE_INDEX in tables

    digest = read_checksum(legacy_db)
    with open_store(str(legacy_db), read_only=True) as store:
        with pytest.raises(StoreError, match="read-only") as err:
            store.migrate()
        assert str(legacy_db) in str(err.value)
        with pytest.raises(sa.exc.OperationalError, match="readonly"), store.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM contacts"))

    assert file_state(legacy_db) == before
    assert schema(legacy_db) == tables  # the legacy index stays, no index is added
    assert os.listdir(legacy_db.parent) == [legacy_db.name]
    migrated(legacy_db)
    assert checksum(legacy_db) == digest  # migrating does not change the checksum


@contextmanager
def read_only_copy(source: Path, parent: Path) -> Iterator[Path]:
    """A copy of ``source``, mode 0444, alone in a directory of mode 0555 (an auditor's copy)."""
    folder = Path(tempfile.mkdtemp(prefix="mw-read-only-", dir=parent))
    copy = folder / "agency.db"
    shutil.copyfile(source, copy)
    copy.chmod(0o444)
    folder.chmod(0o555)
    try:
        yield copy
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


def as_nobody(fn: Callable[[], str]) -> str:
    """``fn()`` in a forked child running as the user nobody: 'ok <result>' or 'error ...'."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        out = "error: no result"
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            out = "ok " + fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            out = f"error {type(exc).__name__}: {exc}"
        finally:
            os.write(write_end, out.encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        result = f.read().decode()
    os.waitpid(pid, 0)
    return result


@pytest.fixture
def swept(generated_copy: Callable[..., Path]) -> Path:
    """A generated agency after a sweep: a WAL-mode file, closed, nothing beside it."""
    db = generated_copy(1000)
    sweep(db, date(2026, 3, 10), workers=1)
    assert is_wal_file(db)
    assert os.listdir(db.parent) == [db.name]
    return db


def test_a_read_only_copy_in_a_read_only_directory_is_read_unchanged(swept: Path, tmp_path: Path) -> None:
    expected = checksum(swept)
    with read_only_copy(swept, tmp_path) as copy:
        before = file_state(copy)
        assert read_checksum(copy) == expected
        assert file_state(copy) == before
    if os.geteuid() == 0:
        # Root may write whatever the modes say: the user nobody meets them.  The
        # directory must be one nobody can enter (pytest's tmp_path is not).
        with read_only_copy(swept, Path(tempfile.gettempdir())) as copy:
            before = file_state(copy)
            assert as_nobody(partial(read_checksum, copy)) == f"ok {expected}"
            assert file_state(copy) == before
            assert os.listdir(copy.parent) == [copy.name]


def test_a_read_only_postgresql_session_writes_nothing(pg_url: str) -> None:  # noqa: F811
    with open_store(pg_url) as store:
        store.migrate()
    with open_store(pg_url, read_only=True) as store:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW default_transaction_read_only").scalar() == "on"
            assert schedule_checksum(conn) == EMPTY_CHECKSUM  # a new database: no owned rows
            assert key_order_checksum(conn) == f"sha256:{hashlib.sha256().hexdigest()}"
        with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"), store.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM contacts"))
        # The kept checksum writes (its sum, the changes it takes): refused, not faked.
        with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"), store.engine.begin() as conn:
            kept_checksum(conn)
        with pytest.raises(StoreError, match="read-only"):
            store.migrate()


# -- 2. recognise before changing ---------------------------------------------------


@pytest.mark.parametrize(
    "ddl",
    [None, "CREATE TABLE notes (x TEXT)", "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT)"],
    ids=["empty file", "no contacts table", "contacts lacking columns"],
)
def test_a_refused_file_is_left_byte_for_byte(
    tmp_path: Path, ddl: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "other.db"
    path.touch()
    if ddl is not None:
        con = sqlite3.connect(path)
        con.execute(ddl)
        con.commit()
        con.close()
    before = file_state(path)

    with open_store(str(path)) as store, pytest.raises(StoreError):
        store.migrate()
    assert cli.main(["sweep", "--db", str(path), "--as-of", T.isoformat()]) == 2
    assert str(path) in one_line_error(capsys)

    assert file_state(path) == before
    assert os.listdir(tmp_path) == [path.name]  # no -wal, -shm or -journal left either
    if ddl is None:
        assert path.stat().st_size == 0


def test_a_legacy_file_turns_wal_with_its_migration_only(legacy_db: Path) -> None:
    crafted(legacy_db)
    before = file_state(legacy_db)
    with open_store(str(legacy_db)) as store, store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM contacts")).scalar_one() == 7
    assert file_state(legacy_db) == before
    assert not is_wal_file(legacy_db)
    migrated(legacy_db)
    assert is_wal_file(legacy_db)


# -- 3. the write lock first ----------------------------------------------------------


def test_the_sweep_waits_the_busy_timeout_for_another_programs_lock(
    legacy_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crafted(legacy_db)
    assert is_wal_file(migrated(legacy_db))
    # No retries: only SQLite's busy timeout may wait for the lock.
    monkeypatch.setattr(sweep_transactions, "run_with_retry", partial(store_module.run_with_retry, attempts=1))
    hold_s, timeout_ms = 1.5, 4000
    holder = sqlite3.connect(legacy_db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(hold_s, holder.execute, args=("COMMIT",))
    store = open_store(str(legacy_db), busy_timeout_ms=timeout_ms)
    try:
        started = time.monotonic()
        release.start()
        summary = run_sweep(store, DEFAULT_CONFIG, SweepOptions(as_of=T, workers=1))
        waited = time.monotonic() - started
    finally:
        release.join()
        holder.close()
        store.close()
    assert summary.status == "completed"
    assert hold_s - 0.2 <= waited
    assert dump(legacy_db, "SELECT status FROM scheduler_checkpoints") == [("completed",)]


# -- 4. a full disk named as such ------------------------------------------------------


def limit_growth(store: Store, spare_pages: int) -> None:
    """The database may grow by ``spare_pages`` pages only: a full disk, as SQLite sees it."""
    with store.engine.connect() as conn:
        limit = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one()) + spare_pages

    def set_limit(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA max_page_count={limit:d}")
        cursor.close()

    event.listen(store.engine, "connect", set_limit)
    store.engine.dispose()  # every connection from now on has the limit


def test_a_full_disk_is_named_and_the_next_sweep_completes(
    generated_copy: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reference, db = generated_copy(), migrated(generated_copy())
    sweep(reference, AEP_DAY, workers=1)
    real_open = store_module.open_store

    def open_on_a_full_disk(target: str, **kw: Any) -> Store:
        store = real_open(target, **kw)
        limit_growth(store, 40)  # room for the checkpoint, not for the first batch
        return store

    monkeypatch.setattr(store_module, "open_store", open_on_a_full_disk)
    argv = ["sweep", "--db", str(db), "--as-of", AEP_DAY.isoformat()]
    assert cli.main(argv) == 2
    line = one_line_error(capsys)
    assert line.startswith(f"mailwindow sweep: disk full writing {db}: database or disk is full; run sweep-")
    assert "savepoint" not in line
    status, error = dump(db, "SELECT status, error_message FROM scheduler_checkpoints")[0]
    assert (status, error) == ("failed", "disk full: database or disk is full")

    monkeypatch.setattr(store_module, "open_store", real_open)  # space freed
    assert cli.main(argv) == 0
    assert checksum(db) == checksum(reference)
    keys = [r[0] for r in dump(db, "SELECT occurrence_key FROM email_schedules WHERE occurrence_key IS NOT NULL")]
    assert len(keys) == len(set(keys))


# -- 5. stale checkpoints ---------------------------------------------------------------


@pytest.fixture
def other_process() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is no sweep."""
    proc = subprocess.Popen(["sleep", "120"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def add_started_run(
    db: Path, run_id: str, *, pid: int | None, pid_started: str | None, host: str, heartbeat_age_s: float
) -> None:
    heartbeat = (datetime.now(UTC) - timedelta(seconds=heartbeat_age_s)).strftime("%Y-%m-%d %H:%M:%S")
    con = sqlite3.connect(db)
    con.execute(
        "INSERT INTO scheduler_checkpoints (run_timestamp, scheduler_run_id, contacts_checksum, status, "
        "pid, pid_started, host, heartbeat_at) VALUES (?, ?, '', 'started', ?, ?, ?, ?)",
        (heartbeat, run_id, pid, pid_started, host, heartbeat),
    )
    con.commit()
    con.close()


def checkpoint(db: Path, run_id: str) -> tuple[str, str | None]:
    return dump(  # type: ignore[return-value]
        db, "SELECT status, error_message FROM scheduler_checkpoints WHERE scheduler_run_id = ?", (run_id,)
    )[0]


@pytest.fixture
def agency(legacy_db: Path) -> Path:
    crafted(legacy_db)
    return migrated(legacy_db)


@pytest.mark.parametrize("recorded_by", ["this version", "an older version"])
def test_a_pid_now_owned_by_another_process_does_not_block(
    agency: Path, other_process: subprocess.Popen[bytes], recorded_by: str
) -> None:
    start = process_start(other_process.pid)
    assert start is not None
    if recorded_by == "this version":
        # The run's own process start: not the one of the process that has its pid now.
        boot, _ticks = start.rsplit(":", 1)
        add_started_run(
            agency, "old-run", pid=other_process.pid, pid_started=f"{boot}:1",
            host=socket.gethostname(), heartbeat_age_s=0,
        )
    else:
        # No process start recorded: the pid exists, but the heartbeat stopped long ago.
        add_started_run(
            agency, "old-run", pid=other_process.pid, pid_started=None,
            host=socket.gethostname(), heartbeat_age_s=2 * 3600,
        )
    assert sweep(agency, T, workers=1).status == "completed"
    status, error = checkpoint(agency, "old-run")
    assert status == "failed" and error is not None and error.startswith("interrupted")


def test_a_live_run_blocks_until_an_operator_takes_over(
    agency: Path, other_process: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    # Alive on this host whatever its heartbeat says: its process runs.
    add_started_run(
        agency, "live-run", pid=other_process.pid, pid_started=process_start(other_process.pid),
        host=socket.gethostname(), heartbeat_age_s=2 * 3600,
    )
    assert cli.main(["sweep", "--db", str(agency), "--as-of", T.isoformat()]) == 2
    line = one_line_error(capsys)
    assert f"another sweep is running on {agency}: run 'live-run' (pid {other_process.pid}" in line
    assert "--take-over" in line
    assert checkpoint(agency, "live-run") == ("started", None)

    assert sweep(agency, T, workers=1, take_over=True).status == "completed"
    assert checkpoint(agency, "live-run") == ("failed", "taken over by an operator")


@pytest.mark.parametrize(
    ("age_s", "alive"), [(STALE_HEARTBEAT_S - 300, True), (STALE_HEARTBEAT_S + 60, False)]
)
def test_a_run_on_another_host_is_alive_while_its_heartbeat_is_fresh(
    agency: Path, age_s: float, alive: bool
) -> None:
    assert STALE_HEARTBEAT_S == 600
    add_started_run(
        agency, "far-run", pid=4242, pid_started="other-boot:77", host="another-host", heartbeat_age_s=age_s
    )
    if alive:
        with pytest.raises(SweepError, match="another sweep is running"):
            sweep(agency, T, workers=1)
        assert checkpoint(agency, "far-run") == ("started", None)
    else:
        assert sweep(agency, T, workers=1).status == "completed"
        assert checkpoint(agency, "far-run")[0] == "failed"


def test_process_start_tells_processes_apart() -> None:
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert process_start(os.getpid()) == f"{boot}:{fields[19]}"  # field 22 of the stat line
    ended = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while process_start(ended.pid) is not None and time.monotonic() < deadline:
        time.sleep(0.01)  # a zombie until reaped: ended all the same
    assert process_start(ended.pid) is None
    ended.wait()
    assert process_start(ended.pid) is None


# -- 6. a lost decide worker --------------------------------------------------------------


def test_a_killed_decide_worker_is_one_line_and_the_rerun_completes(
    generated_copy: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    reference, db = generated_copy(), generated_copy()
    sweep(reference, AEP_DAY, workers=1)
    ids = [r[0] for r in dump(db, "SELECT id FROM contacts ORDER BY id")]
    doomed, main = ids[len(ids) // 2], os.getpid()
    real = sweep_chunks.validate_contact  # every contact is validated, whichever path decides it

    def killed_on_doomed(record, *args, **kw):  # type: ignore[no-untyped-def]
        if record.id == doomed and os.getpid() != main:
            os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer does
        return real(record, *args, **kw)

    # Set before the workers start: they are forked, so they run it too.
    monkeypatch.setattr(sweep_chunks, "validate_contact", killed_on_doomed)
    with pytest.raises(SweepError) as err:
        sweep(db, AEP_DAY, workers=2, chunk_size=200)
    line = str(err.value)  # what `mailwindow sweep` prints after its name
    assert "\n" not in line
    assert line.startswith(f"sweep of {db}: a decide worker process died (killed?); run sweep-")
    assert line.endswith("marked failed; run the sweep again")
    assert multiprocessing.active_children() == []
    assert dump(db, "SELECT status, error_message FROM scheduler_checkpoints") == [
        ("failed", "a decide worker process died (killed?)")
    ]

    monkeypatch.setattr(sweep_chunks, "validate_contact", real)
    sweep(db, AEP_DAY, workers=2, chunk_size=200)
    assert checksum(db) == checksum(reference)
