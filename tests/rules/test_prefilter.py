"""The pure half of the sweep's pre-filter: month-day ranges of base dates."""

from datetime import date, timedelta

import pytest

from rules.config import DEFAULT_CONFIG
from rules.contact import Contact
from rules.contact_schedule import schedule_contact
from rules.occurrence import POST_WINDOW
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


def _nv_post_window_in_play(birth: date, horizon: Horizon) -> bool:
    plan = schedule_contact(Contact(id=1, email="pat@example.com", state="NV", birth_date=birth, effective_date=None), [], DEFAULT_CONFIG, horizon)
    return any(d.occurrence.email_type == POST_WINDOW for d in plan.decisions)


def _nv_selected(birth: date, horizon: Horizon) -> bool:
    """Selected by Nevada's post-window filter."""
    md = birth.strftime("%m-%d")
    plan = prefilter_plan(DEFAULT_CONFIG, horizon)
    return any("NV" in sf.states and any(lo <= md <= hi for lo, hi in sf.ranges) for sf in plan.state_filters)


def _selected(birth: date, horizon: Horizon) -> bool:
    """Selected by any part of the plan (AEP, the birthday email itself, Nevada's filter)."""
    md = birth.strftime("%m-%d")
    plan = prefilter_plan(DEFAULT_CONFIG, horizon)
    in_birthday_ranges = any(lo <= md <= hi for lo, hi in plan.birthday_ranges)
    return plan.every_contact or in_birthday_ranges or _nv_selected(birth, horizon)


@pytest.mark.parametrize("lookahead", [0, 1, 30])
def test_nevada_s_month_long_window_is_selected_on_the_days_it_enters_and_only_then(lookahead: int) -> None:
    """Nevada's window starts on the first of the birth month, so a post-window email's date
    depends on the month only: the pre-filter takes a birth month exactly when its date
    is in play (every day of two years, births on each month's edges and Feb 29), and
    not a month of contacts on every other day (what the day's slice once read)."""
    births = [date(1950, m, 1) for m in range(1, 13)] + [date(1950, m, 28) for m in range(1, 13)]
    births += [date(1952, 2, 29), date(1950, 1, 31), date(1950, 12, 31)]
    day, selected_days = date(2027, 1, 1), 0
    while day < date(2029, 1, 1):
        horizon = Horizon(day, lookahead_days=lookahead, lookback_days=0)
        for birth in births:
            if _nv_post_window_in_play(birth, horizon):
                assert _selected(birth, horizon), (birth, day)
        selected_days += any(_nv_selected(b, horizon) for b in births)
        day += timedelta(days=1)
    if lookahead == 0:
        assert selected_days == 24  # a day a month, two years
