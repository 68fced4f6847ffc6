"""The checksum's sum read by two processes (``streams.store.row_sums``): the same sum as
one process reads, from ranges that cover every row once; a helper that fails costs time,
not the sum."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import streams.store.checksum as checksum_module
from streams.store import row_sums
from streams.store.checksum import EMPTY_CHECKSUM
from tests.sweeps import checksum, sweep


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
