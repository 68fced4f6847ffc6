"""Deciding chunks in worker processes gives exactly what one process gives."""

from __future__ import annotations

import multiprocessing
from datetime import date, timedelta
from typing import Any

import pytest

from streams.sweep import pool as sweep_pool
from streams.sweep.summary import SweepSummary
from tests.legacy_db import dump
from tests.sweeps import checksum, crash_rules_on, decisions, sweep

# Figures of a run that depend on when and how it ran, not on what it decided.
RUN_FIELDS = {"run_id", "elapsed_s", "phase_s"}


def _figures(summary: SweepSummary) -> dict[str, Any]:
    return {k: v for k, v in summary.to_dict().items() if k not in RUN_FIELDS}


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the worker pools the sweep starts (one entry per pool: its size)."""
    started: list[int] = []
    real = sweep_pool.ProcessPoolExecutor

    class Counted(real):  # type: ignore[misc, valid-type]
        def __init__(self, max_workers: int, **kw: Any) -> None:
            started.append(max_workers)
            super().__init__(max_workers, **kw)

    monkeypatch.setattr(sweep_pool, "ProcessPoolExecutor", Counted)
    return started


@pytest.mark.parametrize(
    "as_of",
    [date(2026, 3, 10), date(2026, 9, 1)],  # outside AEP season; inside: every contact
    ids=["outside-aep", "aep-season"],
)
def test_two_workers_decide_exactly_like_one_process(
    generated_copy, pools: list[int], as_of: date  # type: ignore[no-untyped-def]
) -> None:
    one, two = generated_copy(), generated_copy()
    # Small chunks: many of them, so the workers really share the run.
    # The next day keeps, moves and deletes; deciding only what can have changed, it
    # decides far fewer contacts (in chunks of 2: still several), the same in both runs.
    for day, at_least, chunk in ((as_of, 200, 100), (as_of + timedelta(days=1), 10, 2)):
        a = sweep(one, day, workers=1, chunk_size=chunk)
        b = sweep(two, day, workers=2, chunk_size=chunk)
        assert a.contacts_processed > at_least
        assert a.contacts_processed == b.contacts_processed
        assert decisions(one) == decisions(two)
        assert _figures(a) == _figures(b)
    assert pools == [2, 2]  # one pool per two-worker run, none for the one-process runs
    assert multiprocessing.active_children() == []


def test_a_failing_worker_stops_the_run_and_the_rerun_completes_it(
    generated_copy, pools: list[int], monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    reference, db = generated_copy(), generated_copy()
    as_of = date(2026, 8, 25)  # AEP season: every contact is processed
    sweep(reference, as_of, workers=1)

    ids = [r[0] for r in dump(db, "SELECT id FROM contacts ORDER BY id")]
    bad = ids[len(ids) // 2]
    restore = crash_rules_on(monkeypatch, bad)
    with pytest.raises(RuntimeError, match=f"rules crashed on contact {bad}"):
        sweep(db, as_of, workers=2, chunk_size=200, batch_rows=500)
    assert pools == [2]
    assert multiprocessing.active_children() == []  # the pool is shut down
    status, error = dump(db, "SELECT status, error_message FROM scheduler_checkpoints")[0]
    assert status == "failed" and f"rules crashed on contact {bad}" in error
    # Whole chunks before the failing one were written; nothing from it or after it.
    rows, last = dump(
        db,
        "SELECT count(*), max(contact_id) FROM email_schedules "
        "WHERE scheduler_run_id = (SELECT scheduler_run_id FROM scheduler_checkpoints)",
    )[0]
    assert rows > 0 and last < bad

    restore()
    sweep(db, as_of, workers=2, chunk_size=200)
    assert checksum(db) == checksum(reference)
