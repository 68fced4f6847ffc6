"""The checksum's sum over the owned rows, read by two processes when there are many.

Computing the sum from the rows (``streams.store.checksum``) hashes each owned row in
Python: about 3 µs a row, 12.7 s for the 3.8 million rows of a 3M agency's AEP season,
on one core while the other waits.  With a helper, the rows are cut into ``PARTS``
ranges of row ids; the helper sums every other one over a connection of its own while
the caller sums the rest, and the two sums are added (the sum is a sum: any split
gives the same total).

The helper is a fresh interpreter (``python -m streams.store.row_sums``), not a fork: the
caller holds an open SQLite connection in a transaction, and SQLite's locks do not
survive a fork.  It reads what is committed; its caller's transaction must not have
written ``email_schedules`` (the sweep's checksums run in transactions of their own,
which hold the write lock, so nobody else writes meanwhile).  It reads the database
target from its standard input (a URL may hold a password) and prints its sum.  When
it fails, the caller sums its ranges itself: slower, the same total.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy.engine import Connection

_log = logging.getLogger(__name__)

# Row ids cut into this many ranges, taken alternately: legacy rows (not owned) sit at the
# low ids, so halves would give one side little to hash.
PARTS = 16
# Below this span of row ids the helper's start (about 0.3 s) costs more than it saves.
HELPER_FROM = 400_000

RangeSum = Callable[[Connection, int, int], tuple[int, int]]
Meanwhile = Callable[[Connection], None]


def ranges(lo: int, hi: int, parts: int = PARTS) -> list[tuple[int, int]]:
    """``[lo, hi]`` cut into ``parts`` half-open ranges ``[start, end)`` covering it."""
    width = max(1, -(-(hi - lo + 1) // parts))
    return [(start, min(start + width, hi + 1)) for start in range(lo, hi + 1, width)]


def sum_in_two(
    conn: Connection,
    target: str | None,
    sum_of_range: RangeSum,
    modulus: int,
    meanwhile: Meanwhile | None = None,
) -> tuple[int, int] | None:
    """The (sum, rows) of the owned rows, read here and by a helper; None when there are too
    few rows for a helper to pay (the caller then reads them alone).

    ``meanwhile``: other work of the caller's transaction that leaves every row as it is
    (a sweep's deferred indexes, its balancing); a second helper then reads the caller's
    half while it runs.  It is called exactly once, also when the result is None (first)."""
    span = None if target is None else conn.exec_driver_sql("SELECT min(id), max(id) FROM email_schedules").one()
    if target is None or span is None or span[0] is None or span[1] - span[0] < HELPER_FROM:
        if meanwhile is not None:
            meanwhile(conn)
        return None
    cut = ranges(int(span[0]), int(span[1]))
    mine, theirs = cut[0::2], cut[1::2]
    helper = _Helper(target, theirs)
    if meanwhile is None:
        total, rows = _sum_ranges(conn, mine, sum_of_range)
    else:
        second = _Helper(target, mine)
        try:
            meanwhile(conn)
        except BaseException:
            second.stop()
            helper.stop()
            raise
        found_mine = second.result()
        total, rows = found_mine if found_mine is not None else _sum_ranges(conn, mine, sum_of_range)
    found = helper.result()
    if found is None:
        found = _sum_ranges(conn, theirs, sum_of_range)
    return (total + found[0]) % modulus, rows + found[1]


def _sum_ranges(conn: Connection, parts: Iterable[tuple[int, int]], sum_of_range: RangeSum) -> tuple[int, int]:
    total = rows = 0
    for start, end in parts:
        t, r = sum_of_range(conn, start, end)
        total, rows = total + t, rows + r
    return total, rows


class _Helper:
    """``python -m streams.store.row_sums`` summing ``parts`` of the database at ``target``."""

    def __init__(self, target: str, parts: Sequence[tuple[int, int]]) -> None:
        self.process: subprocess.Popen[bytes] | None
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.store.row_sums"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps({"target": target, "parts": list(parts)}).encode())
            self.process.stdin.close()
            self.process.stdin = None  # sent: ``communicate`` reads the two outputs only
        except OSError:
            self.process = None

    def stop(self) -> None:
        """The helper ended without its result (the caller's transaction failed)."""
        if self.process is not None:
            self.process.kill()
            self.process.communicate()
            self.process = None

    def result(self) -> tuple[int, int] | None:
        if self.process is None:
            return None
        out, err = self.process.communicate()  # both at once: neither pipe can fill and stall it
        if self.process.returncode == 0:
            try:
                found = json.loads(out)
                return int(found["sum"], 16), int(found["rows"])
            except (ValueError, KeyError, TypeError):
                pass
        last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        _log.warning("the checksum's helper process failed (%s): its rows are read here", last[0])
        return None


def _main() -> None:
    from streams.store.checksum import sum_of_id_range
    from streams.store.engine import open_store

    asked = json.loads(sys.stdin.read())
    store = open_store(asked["target"], read_only=True)
    try:
        with store.engine.connect() as conn:
            total, rows = _sum_ranges(conn, [(int(a), int(b)) for a, b in asked["parts"]], sum_of_id_range)
    finally:
        store.close()
    print(json.dumps({"sum": format(total, "x"), "rows": rows}))


if __name__ == "__main__":
    _main()

