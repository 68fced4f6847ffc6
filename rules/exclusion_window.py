"""State exclusion windows (SPEC section 4): the dates on which no marketing
email may reach a contact.

For a rule and a year ``Y``::

    anchor = anniversary(base_date, Y)         # birth or effective date
    anchor = first day of anchor's month       # only with use_month_start (NV)
    start  = anchor - days_before - pre_window
    end    = anchor + days_after               # both ends inclusive

A date ``d`` is excluded when it lies in the window of ``year(d) - 1``,
``year(d)`` or ``year(d) + 1`` (windows cross New Year), or when the state is
year-round.  Windows exist for every year, also before the base date's first
anniversary: they protect the contact, they are not emails.

Each window carries its rule's ``source`` (the statute it comes from) for
``explain`` and the golden snapshots; the skip reason (``label``) never names
it: skip reasons are stored in rows and part of the schedules checksum.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from rules.anniversary import anniversary, first_of_month
from rules.config import BIRTHDAY, Config, WindowRule, year_round_source

_KIND_LABEL = {BIRTHDAY: "birthday", "effective_date": "effective date"}
NO_SOURCE = "none given by the config"
NO_YEAR_ROUND_SOURCE = "none recorded: not a year-round state of the defaults"


@dataclass(frozen=True)
class Window:
    state: str
    kind: str
    year: int
    anchor: date
    start: date
    end: date
    source: str = ""  # the rule's citation; not part of the label (the skip reason)

    @property
    def label(self) -> str:
        """The skip reason, e.g. ``CA birthday window 2025-01-31..2025-06-30``."""
        return f"{self.state} {_KIND_LABEL[self.kind]} window {self.start}..{self.end}"

    @property
    def cited(self) -> str:
        """The window's source as people read it: the citation, or that the config gave none."""
        return self.source or NO_SOURCE

    def __contains__(self, d: object) -> bool:
        return isinstance(d, date) and self.start <= d <= self.end


@dataclass(frozen=True)
class Exclusion:
    """Why a date is excluded: a window, or a year-round state (window None)."""

    reason: str
    window: Window | None


def window_of_year(rule: WindowRule, base: date, year: int) -> Window:
    anchor = anniversary(base, year)
    if rule.use_month_start:
        anchor = first_of_month(anchor)
    return Window(
        state=rule.state,
        kind=rule.kind,
        year=year,
        anchor=anchor,
        start=anchor - timedelta(days=rule.days_before + rule.pre_window_days),
        end=anchor + timedelta(days=rule.days_after),
        source=rule.source,
    )


@dataclass(frozen=True)
class ContactWindows:
    """The exclusion calendar of one contact: its state's rules on its dates."""

    state: str
    year_round: bool
    rules: tuple[tuple[WindowRule, date], ...]  # each rule with its base date

    @property
    def year_round_cited(self) -> str:
        """The source of the state's year-round rule as people read it (only when year-round)."""
        return year_round_source(self.state) or NO_YEAR_ROUND_SOURCE

    def window(self, rule_index: int, year: int) -> Window:
        rule, base = self.rules[rule_index]
        return _cached_window(rule, rule.source, base, year)

    def windows_of_years(self, years: range) -> list[Window]:
        return [self.window(i, y) for i in range(len(self.rules)) for y in years]

    def exclusion_on(self, d: date) -> Exclusion | None:
        if self.year_round:
            return Exclusion(f"{self.state} year-round", None)
        for rule, base in self.rules:
            for year in (d.year - 1, d.year, d.year + 1):
                w = _cached_window(rule, rule.source, base, year)
                if w.start <= d <= w.end:
                    return Exclusion(w.label, w)
        return None


@lru_cache(maxsize=65536)
def _cached_window(rule: WindowRule, source: str, base: date, year: int) -> Window:
    """``window_of_year``, cached.  ``source`` is part of the key: rules that differ only in
    their source compare equal, but their windows name different sources."""
    return window_of_year(rule, base, year)


def contact_windows(
    state: str, birth_date: date | None, effective_date: date | None, config: Config
) -> ContactWindows:
    """The windows that apply to a contact in ``state`` with these dates.

    No birth date means no birthday window (likewise effective date); states
    without a rule have no windows.
    """
    return _contact_windows(state, birth_date, effective_date, config)


@lru_cache(maxsize=65536)
def _contact_windows(
    state: str, birth_date: date | None, effective_date: date | None, config: Config
) -> ContactWindows:
    bases = {BIRTHDAY: birth_date, "effective_date": effective_date}
    rules = tuple(
        (rule, base)
        for rule in config.rules_for_state(state)
        if (base := bases[rule.kind]) is not None
    )
    return ContactWindows(state, state in config.year_round_states, rules)
