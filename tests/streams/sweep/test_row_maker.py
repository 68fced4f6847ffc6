"""Phase 3's rows made by a forked process (``streams.sweep.row_maker``): the same rows,
counts and checksum as when the main process makes them, and a maker that fails or
dies fails the run, whose rerun completes."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.sweep.movables import Movables
from tests.sweeps import checksum, decisions, sweep

AS_OF = date(2026, 3, 10)
AEP_SEASON = date(2026, 9, 1)
NEVER = 10**9  # no test agency has this many movables: rows made in the main process


def _figures(summary: Any) -> dict[str, Any]:
    return {k: v for k, v in summary.to_dict().items() if k not in {"run_id", "elapsed_s", "phase_s"}}


@pytest.mark.parametrize("workers", [1, 2])
def test_rows_made_apart_are_the_rows_made_here_day_after_day(
    generated_copy, workers: int  # type: ignore[no-untyped-def]
) -> None:
    here, apart = generated_copy(), generated_copy()
    days = [AS_OF, AS_OF + timedelta(days=1), AEP_SEASON]
    for day in days:
        a = sweep(here, day, workers=workers, batch_rows=300, make_rows_apart_from=NEVER, full_scan=day != AS_OF)
        b = sweep(apart, day, workers=workers, batch_rows=300, make_rows_apart_from=1, full_scan=day != AS_OF)
        assert _figures(b) == _figures(a), day
        assert decisions(apart) == decisions(here), day
        assert checksum(apart) == checksum(here), day
    assert a.rows_inserted + a.rows_updated > 300  # several batches went down the pipe
    assert a.moved_by_daily_cap + a.moved_by_smoothing > 0


def _break_row(monkeypatch: pytest.MonkeyPatch, at: int, how: str) -> None:
    real = Movables.row

    def row(self: Movables, i: int, *args: Any) -> Any:
        if i == at:
            if how == "die":
                os._exit(3)
            raise ValueError(f"no row for email {i}")
        return real(self, i, *args)

    monkeypatch.setattr(Movables, "row", row)


@pytest.mark.parametrize(
    ("how", "message"),
    [("raise", r"making phase 3's rows failed: ValueError: no row for email 400"),
     ("die", r"ended before its last batch \(exit code 3\)")],
)
def test_a_maker_that_fails_or_dies_fails_the_run_and_the_rerun_completes(
    generated_copy, monkeypatch: pytest.MonkeyPatch, how: str, message: str  # type: ignore[no-untyped-def]
) -> None:
    reference, db = generated_copy(), generated_copy()
    sweep(reference, AS_OF)
    _break_row(monkeypatch, 400, how)
    with pytest.raises(RuntimeError, match=message):
        sweep(db, AS_OF, batch_rows=100, make_rows_apart_from=1)
    monkeypatch.undo()
    sweep(db, AS_OF, make_rows_apart_from=1)
    assert checksum(db) == checksum(reference)
    assert decisions(db) == decisions(reference)


def test_a_small_run_makes_its_rows_here(generated_copy, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Below the threshold nothing is forked: a broken row raises its own error, unwrapped."""
    db: Path = generated_copy()
    _break_row(monkeypatch, 10, "raise")
    with pytest.raises(ValueError, match="no row for email 10"):
        sweep(db, AS_OF, make_rows_apart_from=NEVER)
