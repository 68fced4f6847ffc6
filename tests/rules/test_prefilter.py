"""The pure half of the sweep's pre-filter: month-day ranges of base dates."""

from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings

from rules.config import BIRTHDAY, DEFAULT_CONFIG, Config, config_from_mapping
from rules.contact import Contact
from rules.contact_schedule import schedule_contact
from rules.occurrence import POST_WINDOW
from rules.placement import Horizon
from rules.prefilter import PrefilterPlan, month_day_ranges, prefilter_plan
from tests.rules.test_schedule_properties import cases


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


# --- dated rules (issue 15): the plan takes every version's post-window dates -------------------

PROFILE = config_from_mapping({"state_rules": {"profile": "state-changes-2024-2026"}})[0]


def _md(d: date | None) -> str | None:
    return None if d is None else d.strftime("%m-%d")


def _plan_selects(plan: PrefilterPlan, contact: Contact) -> bool:
    """Whether any part of the plan (AEP, the yearly emails, a state's filter) selects the contact."""

    def within(md: str | None, ranges: tuple[tuple[str, str], ...]) -> bool:
        return md is not None and any(lo <= md <= hi for lo, hi in ranges)

    bmd, emd = _md(contact.birth_date), _md(contact.effective_date)
    return (
        plan.every_contact
        or within(bmd, plan.birthday_ranges)
        or within(emd, plan.effective_date_ranges)
        or any(
            contact.state in sf.states
            and (sf.every_contact or within(bmd if sf.kind == BIRTHDAY else emd, sf.ranges))
            for sf in plan.state_filters
        )
    )


def _check_days(config: Config, contacts: list[Contact], first: date, days: int, lookahead: int, lookback: int) -> int:
    """Every day: each contact with something in play (a decision) is selected; returns how many
    contact-days had one."""
    in_play = 0
    for k in range(days):
        horizon = Horizon(first + timedelta(days=k), lookahead_days=lookahead, lookback_days=lookback)
        plan = prefilter_plan(config, horizon)
        for c in contacts:
            decided = schedule_contact(c, [], config, horizon).decisions
            if decided:
                in_play += 1
                assert _plan_selects(plan, c), (horizon.as_of, c, [d.occurrence.key for d in decided])
    return in_play


PROFILE_STATES = ["VA", "IL", "UT", "WY", "IN", "OR", "LA", "NV", "CA", "MO"]
# birthdays and policy dates on the profile's change dates and month edges; birth years
# around Illinois's band (65 in 2025: 1960; 75 in 2025: 1950)
MONTH_DAYS = [(7, 1), (6, 20), (7, 10), (5, 7), (6, 4), (1, 1), (12, 31), (2, 29), (8, 1)]
BIRTH_YEARS = [1960, 1950, 1961, 1949]


def _profile_contacts() -> list[Contact]:
    out = []
    for i, state in enumerate(PROFILE_STATES):
        for j, (m, d) in enumerate(MONTH_DAYS):
            year = BIRTH_YEARS[(i + j) % len(BIRTH_YEARS)]
            birth = date(year - year % 4 if (m, d) == (2, 29) else year, m, d)
            policy = date(2012 if (m, d) == (2, 29) else 2011, m, d) if j % 2 else None
            out.append(Contact(id=100 * i + j + 1, email="pat@example.com", state=state,
                               birth_date=birth, effective_date=policy))
    return out


@pytest.mark.parametrize(("lookahead", "lookback"), [(0, 0), (30, 7)])
def test_the_profile_s_versions_never_lose_a_contact(lookahead: int, lookback: int) -> None:
    """Every day from 2024-12-01 to 2026-05-31 (the profile's changes: UT 2025-05-07,
    WY 2025-06-04, VA 2025-07-01, IN 2026-01-01), contacts born on those days and on month
    edges, in the profile's states: one with something in play is always selected."""
    in_play = _check_days(PROFILE, _profile_contacts(), date(2024, 12, 1), 547, lookahead, lookback)
    assert in_play > 300  # the scan meets emails, not just empty days


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_random_versions_never_lose_a_contact_day_after_day(case: tuple[Contact, Config, Horizon]) -> None:
    """A random config (dated versions, age bands, dated year-round rules), a contact and
    the 40 days from a date often near one of the config's rule changes."""
    contact, config, horizon = case
    _check_days(config, [contact], horizon.as_of, 40, horizon.lookahead_days, horizon.lookback_days)
