"""A sweep that writes most of the schedule afresh builds the day and send indexes after
its writes (``streams.sweep.deferred_indexes``): the same rows, the same indexes after it,
also after a failure or a kill."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.store.engine import open_store
from streams.sweep.deferred_indexes import DEFERRABLE
from tests.legacy_db import dump
from tests.sweeps import checksum, crash_rules_on, decisions, sweep

AS_OF = date(2026, 3, 10)
NEVER = 10**9  # a threshold no test agency reaches: the indexes stay


def _index_sql(db: Path) -> dict[str, str]:
    """Every index of email_schedules, by name, with the statement that made it."""
    return {
        name: sql
        for name, sql in dump(
            db, "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'email_schedules'"
        )
        if sql is not None
    }


def _figures(summary: Any) -> dict[str, Any]:
    skip = {"run_id", "elapsed_s", "phase_s", "indexes_built_after_writes"}
    return {k: v for k, v in summary.to_dict().items() if k not in skip}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_first_sweep_builds_them_after_its_writes_and_decides_the_same(
    generated_copy, workers: int  # type: ignore[no-untyped-def]
) -> None:
    kept, deferred = generated_copy(), generated_copy()
    a = sweep(kept, AS_OF, workers=workers, chunk_size=200, batch_rows=500, defer_indexes_from=NEVER)
    b = sweep(deferred, AS_OF, workers=workers, chunk_size=200, batch_rows=500, defer_indexes_from=1)
    assert a.indexes_built_after_writes == []
    assert sorted(b.indexes_built_after_writes) == sorted(DEFERRABLE)
    assert b.contacts_processed > 200
    assert decisions(deferred) == decisions(kept)
    assert checksum(deferred) == checksum(kept)
    assert _figures(b) == _figures(a)
    # Built again as the migration makes them.
    assert _index_sql(deferred) == _index_sql(kept)
    assert set(DEFERRABLE) <= set(_index_sql(deferred))

    # The next day has its owned rows: it rewrites little, and keeps the indexes.
    c = sweep(deferred, AS_OF + timedelta(days=1), defer_indexes_from=1, full_scan=True)
    assert c.indexes_built_after_writes == []


def test_a_failed_run_builds_them_again_and_the_rerun_completes(
    generated_copy, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    reference, db = generated_copy(), generated_copy()
    sweep(reference, AS_OF, workers=1)
    decided = [r[0] for r in dump(reference, "SELECT DISTINCT contact_id FROM email_schedules "
                                  "WHERE status = 'pre-scheduled' ORDER BY contact_id")]
    restore = crash_rules_on(monkeypatch, decided[len(decided) // 2])
    with pytest.raises(RuntimeError, match="rules crashed"):
        sweep(db, AS_OF, workers=1, chunk_size=100, batch_rows=200, defer_indexes_from=1)
    # Rows of the chunks before the failure were written without them: they are back.
    assert dump(db, "SELECT count(*) FROM email_schedules WHERE status = 'skipped'")[0][0] > 0
    assert _index_sql(db) == _index_sql(reference)

    restore()
    sweep(db, AS_OF, workers=1, defer_indexes_from=1)
    assert checksum(db) == checksum(reference)


def test_a_database_left_without_them_gets_them_back_when_next_opened(
    generated_copy,  # type: ignore[no-untyped-def]
) -> None:
    """A run killed between its first write and its rebuild leaves them out; every command
    migrates the database first, which builds what is missing."""
    reference, db = generated_copy(), generated_copy()
    sweep(reference, AS_OF)
    sweep(db, AS_OF)
    store = open_store(str(db))
    try:
        with store.engine.begin() as conn:
            for name in DEFERRABLE:
                conn.exec_driver_sql(f"DROP INDEX {name}")
    finally:
        store.close()
    assert not set(DEFERRABLE) & set(_index_sql(db))
    sweep(db, AS_OF + timedelta(days=1))  # any command: it opens and migrates first
    assert _index_sql(db) == _index_sql(reference)
