"""The checksum's sum read by two processes (``streams.store.row_sums``): the same sum as
one process reads, from ranges that cover every row once; a helper that fails costs time,
not the sum."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

import streams.store.checksum as checksum_module
from streams.store import row_sums
from streams.store.checksum import EMPTY_CHECKSUM
from streams.store.engine import open_store
from tests.sweeps import checksum, read, sweep


@given(st.integers(-5, 10**7), st.integers(0, 10**6), st.integers(1, 40))
def test_the_ranges_cover_every_id_once(lo: int, span: int, parts: int) -> None:
    hi = lo + span
    cut = row_sums.ranges(lo, hi, parts)
    assert cut[0][0] == lo and cut[-1][1] == hi + 1
    assert all(a < b for a, b in cut)
    assert all(cut[i][1] == cut[i + 1][0] for i in range(len(cut) - 1))  # no gap, no overlap
    assert len(cut) <= parts


@pytest.fixture
def helpers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int] | None]:
    """Every row of the agency is worth a helper, and its first sweep reads the sum from
    the rows after its writes (as a large agency's does); records what each helper answered."""
    monkeypatch.setattr(row_sums, "HELPER_FROM", 0)
    monkeypatch.setattr(checksum_module, "REBUILD_FROM", 0)
    answers: list[tuple[int, int] | None] = []
    real = row_sums._Helper.result

    def recorded(self: Any) -> tuple[int, int] | None:
        found = real(self)
        answers.append(found)
        return found

    monkeypatch.setattr(row_sums._Helper, "result", recorded)
    return answers


def test_a_sum_read_by_two_processes_is_the_sum_of_the_rows(
    generated_copy, helpers: list[tuple[int, int] | None]  # type: ignore[no-untyped-def]
) -> None:
    db = generated_copy()
    first = sweep(db, date(2026, 3, 10))
    # The first sweep drops the kept sum and computes it from its rows after its writes.
    assert first.schedules_after_checksum == checksum(db) != EMPTY_CHECKSUM
    # Before it (no owned row yet) and after it (its rows): each helper read its share.
    assert len(helpers) == 2 and helpers[0] == (0, 0)
    assert helpers[1] is not None and helpers[1][1] > 0


def test_a_helper_that_fails_leaves_the_sum_to_its_caller(
    generated_copy, helpers: list[tuple[int, int] | None], monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    db = generated_copy()
    real = row_sums._Helper.__init__

    def elsewhere(self: Any, target: str, parts: Any) -> None:
        real(self, target + ".missing", parts)  # no such database: the helper exits with an error

    monkeypatch.setattr(row_sums._Helper, "__init__", elsewhere)
    first = sweep(db, date(2026, 3, 10))
    assert helpers and all(found is None for found in helpers)
    assert first.schedules_after_checksum == checksum(db) != EMPTY_CHECKSUM


def test_indexes_built_while_two_helpers_read_give_the_same_sum(
    generated_copy, helpers: list[tuple[int, int] | None]  # type: ignore[no-untyped-def]
) -> None:
    """A run that dropped indexes builds them while two helpers read every row for its
    checksum after (``sum_in_two``'s ``meanwhile``)."""
    db = generated_copy()
    first = sweep(db, date(2026, 3, 10), defer_indexes_from=1)
    assert first.indexes_built_after_writes
    assert "indexes and checksum" in first.phase_s
    assert first.schedules_after_checksum == checksum(db) != EMPTY_CHECKSUM
    # Before it (no owned row yet), then the two halves after it.
    assert len(helpers) == 3 and helpers[0] == (0, 0)
    assert all(found is not None and found[1] > 0 for found in helpers[1:])
    assert read(db, lambda conn: {i["name"] for i in sa.inspect(conn).get_indexes("email_schedules")}) >= set(
        first.indexes_built_after_writes
    )


def test_work_that_fails_beside_the_helpers_stops_them(
    generated_copy, helpers: list[tuple[int, int] | None], monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    db = generated_copy()
    sweep(db, date(2026, 3, 10))
    started: list[Any] = []
    real = row_sums._Helper.__init__

    def tracked(self: Any, target: str, parts: Any) -> None:
        real(self, target, parts)
        started.append(self.process)

    monkeypatch.setattr(row_sums._Helper, "__init__", tracked)

    def failing(conn: Any) -> None:
        raise RuntimeError("no room for the index")

    store = open_store(str(db))
    try:
        with pytest.raises(RuntimeError, match="no room"), store.engine.connect() as conn:
            row_sums.sum_in_two(conn, store.reopen_target(), checksum_module.sum_of_id_range, 2**64, failing)
    finally:
        store.close()
    assert len(started) == 2
    assert all(p.poll() is not None for p in started)  # none left running
