"""Which contacts a sweep must look at (SPEC section 9): the pure half of the
pre-filter.  ``streams/sweep/prefilter.py`` turns this plan into indexed SQL.

A contact must be processed when one of its occurrences is in play or it owns
a row dated in the range (that half is a plain SQL range query).  Occurrences
are in play when their ideal date lies in ``[T - L, T + H]``, and the ideal
date is a fixed offset from the month-day of a base date, so the plan is a
set of month-day ranges ('MM-DD'..'MM-DD') per base date:

- birthday / effective date: ``E = S + days_before``;
- post-window emails: ``S = anchor + days_after + 1`` for the states with a
  rule, when no other window can push that date (one rule, a window shorter
  than ten months); otherwise every contact of that state is processed;
- AEP in play: every contact.

The plan may select more contacts than needed, never fewer: processing a
contact with nothing in play changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from rules.config import BIRTHDAY, EFFECTIVE_DATE, Config, WindowRule
from rules.placement import Horizon

MonthDayRange = tuple[str, str]  # inclusive, within one calendar year


@dataclass(frozen=True)
class StateFilter:
    states: frozenset[str]
    kind: str  # which base date the month-day ranges apply to
    ranges: tuple[MonthDayRange, ...]  # empty with every_contact
    every_contact: bool = False


@dataclass(frozen=True)
class PrefilterPlan:
    every_contact: bool
    why: str
    birthday_ranges: tuple[MonthDayRange, ...] = ()
    effective_date_ranges: tuple[MonthDayRange, ...] = ()
    state_filters: tuple[StateFilter, ...] = ()


def month_day_ranges(first: date, last: date) -> tuple[MonthDayRange, ...]:
    """The month-days of the dates in ``[first, last]``, as ranges within a year.

    February 29 is added wherever February 28 is included: a Feb 29 date's
    anniversary falls on Feb 28 in other years.
    """
    if (last - first).days >= 365:
        return (("01-01", "12-31"),)
    a, b = first.strftime("%m-%d"), last.strftime("%m-%d")
    ranges = [(a, b)] if a <= b else [(a, "12-31"), ("01-01", b)]
    out = []
    for lo, hi in ranges:
        if lo <= "02-28" <= hi and hi < "02-29":
            hi = "02-29"
        out.append((lo, hi))
    return tuple(out)


def _months_starting_in(lo: date, hi: date) -> tuple[MonthDayRange, ...]:
    """The base dates whose anchor, the first of their month, lies in ``[lo, hi]``: whole
    months, and none when no month starts there (a day's slice mostly: Nevada's window
    once took a month of contacts every day)."""
    ranges: list[MonthDayRange] = []
    month = lo if lo.day == 1 else _next_month(lo)
    for _ in range(12):  # twelve months hold every month-day
        if month > hi:
            break
        nxt = _next_month(month)
        ranges.extend(month_day_ranges(month, nxt - timedelta(days=1)))
        month = nxt
    return tuple(ranges)


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _window_span(days_before: int, pre_window: int, days_after: int, month_start: bool) -> int:
    return days_before + pre_window + days_after + (31 if month_start else 0)


def _may_hop(versions: list[WindowRule]) -> bool:
    """Whether a post-window date of the state may be pushed by another of its windows.

    Versions of one kind are never in force on one anchor (bar a change of anchor rule),
    so one year's window meets only the next year's, of whatever version: they cannot
    overlap when the longest reach after an anchor plus the longest reach before one
    stays well inside a year (the bound a single rule has always had).  Two kinds may
    always push.  A dated year-round rule never pushes: a post-window date it excludes
    has no email at all.
    """
    if len({r.kind for r in versions}) > 1:
        return True
    after = max(r.days_after for r in versions)
    before = max(r.days_before + r.pre_window_days for r in versions)
    month_start = any(r.use_month_start for r in versions)
    return _window_span(before, 0, after, month_start) >= 300


def prefilter_plan(config: Config, horizon: Horizon) -> PrefilterPlan:
    t, first, last = horizon.as_of, horizon.lookback_start, horizon.range_end
    for month, day in config.aep_dates:
        for year in (t.year, t.year + 1):
            if t <= date(year, month, day) <= last:
                return PrefilterPlan(True, f"AEP {date(year, month, day)} is in play: every contact")

    def shifted(days: int) -> tuple[MonthDayRange, ...]:
        return month_day_ranges(first + timedelta(days=days), last + timedelta(days=days))

    state_filters: list[StateFilter] = []
    by_state: dict[str, list[WindowRule]] = {}
    for rule in config.window_rules:
        if not config.always_year_round(rule.state):
            by_state.setdefault(rule.state, []).append(rule)
    shapes: dict[tuple[str, int, bool], set[str]] = {}
    hopping: set[str] = set()  # states whose post-window dates may hop: take every contact
    for state, rules in by_state.items():
        if _may_hop(rules):
            hopping.add(state)
            continue
        for rule in rules:  # each version's post-window dates (a version may not apply: more, never fewer)
            shapes.setdefault((rule.kind, rule.days_after, rule.use_month_start), set()).add(state)
    if hopping:
        state_filters.append(StateFilter(frozenset(hopping), BIRTHDAY, (), every_contact=True))
    for shape, states in sorted(shapes.items(), key=lambda kv: sorted(kv[1])):
        kind, days_after, month_start = shape
        # post-window date = anchor + days_after + 1, so anchor lies in this span
        lo = first - timedelta(days=days_after + 1)
        hi = last - timedelta(days=days_after + 1)
        if month_start:
            ranges = _months_starting_in(lo, hi)
            if ranges:
                state_filters.append(StateFilter(frozenset(states), kind, ranges))
            continue
        state_filters.append(StateFilter(frozenset(states), kind, month_day_ranges(lo, hi)))
    return PrefilterPlan(
        every_contact=False,
        why="month-day ranges of the base dates",
        birthday_ranges=shifted(config.timing.birthday_days_before),
        effective_date_ranges=shifted(config.timing.effective_date_days_before),
        state_filters=tuple(state_filters),
    )


__all__ = ["EFFECTIVE_DATE", "PrefilterPlan", "StateFilter", "month_day_ranges", "prefilter_plan"]
