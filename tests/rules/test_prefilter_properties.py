"""Property test of the pre-filter's month-day ranges."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.prefilter import month_day_ranges


def covered(md: str, ranges: tuple[tuple[str, str], ...]) -> bool:
    return any(lo <= md <= hi for lo, hi in ranges)


@settings(max_examples=300, deadline=None)
@given(st.dates(date(2019, 1, 1), date(2031, 12, 31)), st.integers(0, 400))
def test_month_day_ranges_cover_every_date(first: date, span: int) -> None:
    last = first + timedelta(days=span)
    ranges = month_day_ranges(first, last)
    for lo, hi in ranges:
        assert lo <= hi
    d = first
    seen = set()
    while d <= last:
        md = d.strftime("%m-%d")
        seen.add(md)
        assert covered(md, ranges), (md, ranges)
        d += timedelta(days=1)
    if "02-28" in seen:
        assert covered("02-29", ranges)
    # and nothing much more: a month-day outside the dates is not covered, apart
    # from 02-29 next to 02-28 (or everything for a year or more)
    if span < 365:
        extra = (
            {(date(2024, 1, 1) + timedelta(days=k)).strftime("%m-%d") for k in range(366)}
            - seen
            - {"02-29"}
        )
        assert not any(covered(md, ranges) for md in extra)
