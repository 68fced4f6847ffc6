"""The pure half of the sweep's pre-filter: month-day ranges of base dates."""

from datetime import date

import pytest

from rules.config import DEFAULT_CONFIG
from rules.placement import Horizon
from rules.prefilter import month_day_ranges, prefilter_plan


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (date(2025, 5, 1), date(2025, 5, 31), (("05-01", "05-31"),)),
        (date(2025, 5, 1), date(2025, 5, 1), (("05-01", "05-01"),)),
        # wraps across New Year
        (date(2025, 12, 20), date(2026, 1, 10), (("12-20", "12-31"), ("01-01", "01-10"))),
        (date(2025, 12, 31), date(2026, 1, 1), (("12-31", "12-31"), ("01-01", "01-01"))),
        # Feb 29 is included with Feb 28 (a Feb 29 date's anniversary off leap years)
        (date(2025, 2, 1), date(2025, 2, 28), (("02-01", "02-29"),)),
        (date(2025, 2, 28), date(2025, 2, 28), (("02-28", "02-29"),)),
        (date(2025, 2, 10), date(2025, 2, 27), (("02-10", "02-27"),)),
        (date(2025, 2, 20), date(2025, 3, 5), (("02-20", "03-05"),)),
        (date(2024, 2, 29), date(2024, 3, 5), (("02-29", "03-05"),)),
        (date(2025, 12, 1), date(2026, 2, 28), (("12-01", "12-31"), ("01-01", "02-29"))),
        # a year or more: everything
        (date(2025, 3, 1), date(2026, 3, 1), (("01-01", "12-31"),)),
    ],
)
def test_month_day_ranges(first: date, last: date, expected: tuple[tuple[str, str], ...]) -> None:
    assert month_day_ranges(first, last) == expected


def test_aep_in_range_selects_every_contact() -> None:
    assert prefilter_plan(DEFAULT_CONFIG, Horizon(date(2025, 9, 1))).every_contact
    plan = prefilter_plan(DEFAULT_CONFIG, Horizon(date(2025, 3, 1)))
    assert not plan.every_contact
    # birthday emails are 14 days before: ideal dates 2025-02-22..2025-03-31 mean
    # birthdays 2025-03-08..2025-04-14
    assert plan.birthday_ranges == (("03-08", "04-14"),)
    # effective-date emails 30 days before: 2025-03-24..2025-04-30
    assert plan.effective_date_ranges == (("03-24", "04-30"),)
