"""SPEC section 3 (anniversaries) and section 2 (ISO dates)."""

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.anniversary import anniversary, by_the_pattern, next_anniversary, parse_iso_date
from rules.zip_state import BLANKS


@pytest.mark.parametrize(
    ("d", "year", "expected"),
    [
        (date(1950, 6, 10), 2025, date(2025, 6, 10)),
        (date(1950, 12, 31), 2026, date(2026, 12, 31)),
        # February 29 becomes February 28 when the year is not a leap year
        (date(1952, 2, 29), 2025, date(2025, 2, 28)),
        (date(1952, 2, 29), 2100, date(2100, 2, 28)),  # 2100 is not a leap year
        (date(1952, 2, 29), 2024, date(2024, 2, 29)),
        (date(1952, 2, 29), 2000, date(2000, 2, 29)),
        (date(1952, 2, 28), 2024, date(2024, 2, 28)),
    ],
)
def test_anniversary(d: date, year: int, expected: date) -> None:
    assert anniversary(d, year) == expected


@pytest.mark.parametrize(
    ("d", "as_of", "expected"),
    [
        (date(1950, 6, 10), date(2025, 6, 10), date(2025, 6, 10)),  # on the day: >= T
        (date(1950, 6, 10), date(2025, 6, 9), date(2025, 6, 10)),
        (date(1950, 6, 10), date(2025, 6, 11), date(2026, 6, 10)),
        (date(1950, 1, 1), date(2025, 12, 31), date(2026, 1, 1)),
        # Feb 29 birthdays: Feb 28 off leap years, Feb 29 in them
        (date(1952, 2, 29), date(2025, 2, 1), date(2025, 2, 28)),
        (date(1952, 2, 29), date(2025, 2, 28), date(2025, 2, 28)),
        (date(1952, 2, 29), date(2025, 3, 1), date(2026, 2, 28)),
        (date(1952, 2, 29), date(2027, 3, 1), date(2028, 2, 29)),
        (date(1952, 2, 29), date(2028, 2, 29), date(2028, 2, 29)),
        (date(1952, 2, 29), date(2028, 3, 1), date(2029, 2, 28)),
        # only Y > year(d): a policy starting in the future has no anniversary yet
        (date(2025, 8, 1), date(2025, 6, 1), date(2026, 8, 1)),
        (date(2025, 8, 1), date(2025, 8, 1), date(2026, 8, 1)),
        (date(2026, 3, 1), date(2025, 6, 1), date(2027, 3, 1)),
        (date(2025, 1, 15), date(2025, 6, 1), date(2026, 1, 15)),
    ],
)
def test_next_anniversary(d: date, as_of: date, expected: date) -> None:
    assert next_anniversary(d, as_of) == expected


def _by_definition(d: date, as_of: date) -> date:
    return min(a for y in range(d.year + 1, max(d.year, as_of.year) + 3) if (a := anniversary(d, y)) >= as_of)


@settings(max_examples=400)
@given(
    st.dates(date(1900, 1, 1), date(2100, 12, 31)),
    st.lists(st.integers(1900, 2099), min_size=1, max_size=4),
    st.dates(date(1990, 1, 1), date(2099, 12, 31)),
)
def test_next_anniversary_by_its_definition_for_dates_sharing_a_month_and_day(
    d: date, years: list[int], as_of: date
) -> None:
    # Kept answers are shared by dates of the same month and day: any year, leap or not.
    for year in years:
        other = anniversary(d, year)
        if (other.month, other.day) != (d.month, d.day):
            continue  # no Feb 29 that year: another month-day
        for _ in range(2):  # asked again: the kept answer
            assert next_anniversary(other, as_of) == _by_definition(other, as_of)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1950-06-10", date(1950, 6, 10)),
        ("  1950-06-10\t", date(1950, 6, 10)),
        ("1950-06-10T08:30:00", date(1950, 6, 10)),  # a time part is ignored
        ("1950-06-10 08:30:00", date(1950, 6, 10)),
        ("2024-02-29", date(2024, 2, 29)),
        ("2025-02-30", None),  # not a date
        ("2023-02-29", None),  # not a leap year
        ("2025-13-01", None),
        ("06/10/1950", None),
        ("1950-6-10", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_parse_iso_date(raw: str | None, expected: date | None) -> None:
    assert parse_iso_date(raw) == expected


@settings(max_examples=600)
@given(
    st.one_of(
        st.dates().map(date.isoformat),
        st.text(alphabet="0123456789-TW :\t\u0663\uff10", min_size=8, max_size=12),
        # Ten characters with the two dashes in place: digits of other scripts, signs, blanks.
        st.lists(st.sampled_from("0123456789+ _\u0663\uff10"), min_size=8, max_size=8).map(
            lambda c: f"{''.join(c[:4])}-{''.join(c[4:6])}-{''.join(c[6:])}"
        ),
        st.builds(
            lambda y, m, d, pad: f"{pad}{y:04d}-{m:02d}-{d:02d}{pad}",
            st.integers(0, 9999), st.integers(0, 99), st.integers(0, 99), st.sampled_from(["", " ", "\t"]),
        ),
    )
)
def test_parse_iso_date_reads_what_its_pattern_reads(raw: str) -> None:
    assert parse_iso_date(raw) == by_the_pattern(raw.strip(BLANKS))
