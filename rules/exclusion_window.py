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

Dated rules (issue 15): a state's rule of one kind may have several versions, each in
force from ``effective_from`` to ``effective_until`` and perhaps only for an age band.
The window of year ``Y`` is the one of the version in force on its anchor (each version
is tested against its own anchor, which differs only with ``use_month_start``: when two
versions at a change disagree on the anchor, a contact may have both windows that year,
the safer reading; and when neither is in force on its own anchor, the version in force
on the base date's anniversary itself gives the year's window, so a change of anchor
rule never leaves a year without one), and only when the contact's age on the anchor
(``rules.anniversary.age_on``) is in the band; an unknown age (no birth date, for an
effective-date rule with a band) counts as in the band, again the safer reading.  A
dated year-round rule excludes every date from its ``effective_from`` to its
``effective_until``.

Each window carries its rule's ``source`` (the statute it comes from) for ``explain``
and the golden snapshots.  The skip reason (``label``) of an undated rule never names
it: skip reasons are stored in rows and part of the schedules checksum, so an agency
whose config has no dated rule keeps every stored reason.  A dated version's label
names the version and its source: a regulator asks which rule was in force.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property, lru_cache
from typing import Any, TypeVar, cast

from rules.anniversary import age_on, anniversary, first_of_month
from rules.config import BIRTHDAY, Config, WindowRule, YearRoundRule

_KIND_LABEL = {BIRTHDAY: "birthday", "effective_date": "effective date"}
NO_SOURCE = "none given by the config"
NO_YEAR_ROUND_SOURCE = "none recorded: not a year-round state of the defaults"

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Window:
    state: str
    kind: str
    year: int
    anchor: date
    start: date
    end: date
    source: str = ""  # the rule's citation; in the label only for a dated version
    version: str = ""  # the rule version's dates and age band ("" for an undated rule)

    @cached_property
    def label(self) -> str:
        """The skip reason, e.g. ``CA birthday window 2025-01-31..2025-06-30``, or for a dated
        version ``VA birthday window 2025-07-05..2025-09-02 (rule from 2025-07-01; source: ...)``.
        Kept once made: windows are cached (``_cached_window``) and shared by the contacts
        born on the same day, and every skip in one asks for it."""
        base = self.dates_label
        return f"{base} ({provenance(self.version, self.source)})" if self.version else base

    @property
    def dates_label(self) -> str:
        """``VA birthday window 2025-07-05..2025-09-02``: the label without the rule's provenance."""
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


def provenance(version: str, source: str) -> str:
    """``rule from 2025-07-01; source: ...``: which version of a rule applied, and its citation."""
    return f"{version}; source: {source}" if source else version


def anchor_of(rule: WindowRule, base: date, year: int) -> date:
    """The anchor of ``rule``'s window of ``year``: the anniversary, or its month's first day."""
    day = anniversary(base, year)
    return first_of_month(day) if rule.use_month_start else day


def window_of_year(
    rule: WindowRule, base: date, year: int, birth_date: date | None = None, *, on_anniversary: bool = False
) -> Window | None:
    """The window of ``year``, or None when the rule's version is not in force on its anchor
    (``on_anniversary``: on the base date's anniversary instead, the gap-filling choice of the
    module docstring) or the contact's age on the anchor lies outside its band."""
    anchor = anchor_of(rule, base, year)
    if not rule.in_force_on(anniversary(base, year) if on_anniversary else anchor):
        return None
    if not rule.covers_age(None if birth_date is None else age_on(birth_date, anchor)):
        return None
    return Window(
        state=rule.state,
        kind=rule.kind,
        year=year,
        anchor=anchor,
        start=anchor - timedelta(days=rule.days_before + rule.pre_window_days),
        end=anchor + timedelta(days=rule.days_after),
        source=rule.source,
        version=rule.version,
    )


# Answers one calendar keeps, at most: it serves many contacts for a run, and a stream worker
# for days on end, so it forgets them all when full rather than grow.
_KEPT_ANSWERS = 4096


@dataclass(frozen=True)
class ContactWindows:
    """The exclusion calendar of one contact: its state's rules on its dates.

    One calendar serves every contact of its state whose dates agree on what the rules
    read (``contact_windows``): thousands of contacts at an agency's scale.  So it keeps
    its windows and its answers once found.
    """

    state: str
    year_round_rules: tuple[YearRoundRule, ...]  # the state's, dated or not
    rules: tuple[tuple[WindowRule, date], ...]  # each rule version with its base date
    birth_date: date | None = None  # for the age bands
    _windows: dict[tuple[int, int], Window | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _exclusions: dict[date, Exclusion | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _kept: dict[Hashable, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @cached_property
    def always_year_round(self) -> bool:
        """Every date of every year is excluded: no window matters, no post-window email."""
        return any(not r.dated for r in self.year_round_rules)

    def remembered(self, key: Hashable, compute: Callable[[], T]) -> T:
        """What ``compute`` gives, kept under ``key`` for the next contact of this calendar.

        For other rules' answers that depend on the calendar alone (and on ``key``):
        ``rules.post_window`` keeps each window's post-window date here.
        """
        try:
            return cast(T, self._kept[key])
        except KeyError:
            pass
        return _keep(self._kept, key, compute())

    def year_round_on(self, d: date) -> YearRoundRule | None:
        for rule in self.year_round_rules:
            if rule.in_force_on(d):
                return rule
        return None

    @staticmethod
    def cited(rule: YearRoundRule) -> str:
        """A year-round rule's source as people read it."""
        return rule.source or NO_YEAR_ROUND_SOURCE

    def window(self, rule_index: int, year: int) -> Window | None:
        key = (rule_index, year)
        try:
            return self._windows[key]
        except KeyError:
            pass
        rule, base = self.rules[rule_index]
        birth = self.birth_date if rule.banded else None
        found = _cached_window(rule, rule.source, base.month, base.day, year, birth)
        if found is None and rule.dated and self._no_version_on_its_anchor(rule, year):
            found = _cached_window(rule, rule.source, base.month, base.day, year, birth, True)
        return _keep(self._windows, key, found)

    def _no_version_on_its_anchor(self, rule: WindowRule, year: int) -> bool:
        """Whether no version of ``rule``'s kind is in force on its own anchor in ``year`` while
        the versions disagree on the anchor (a change of ``use_month_start``)."""
        versions = [(r, b) for r, b in self.rules if r.kind == rule.kind]
        if len({r.use_month_start for r, _ in versions}) < 2:
            return False
        return not any(other.in_force_on(anchor_of(other, base, year)) for other, base in versions)

    def windows_of_years(self, years: range) -> list[Window]:
        return [
            w for i in range(len(self.rules)) for y in years if (w := self.window(i, y)) is not None
        ]

    def exclusion_on(self, d: date) -> Exclusion | None:
        try:
            return self._exclusions[d]
        except KeyError:
            pass
        return _keep(self._exclusions, d, self._exclusion_on(d))

    def _exclusion_on(self, d: date) -> Exclusion | None:
        year_round = self.year_round_on(d)
        if year_round is not None:
            return Exclusion(year_round_reason(year_round), None)
        for i in range(len(self.rules)):
            for year in (d.year - 1, d.year, d.year + 1):
                w = self.window(i, year)
                if w is not None and w.start <= d <= w.end:
                    return Exclusion(w.label, w)
        return None


def _keep(answers: dict[K, T], key: K, value: T) -> T:
    """``value`` kept in one of a calendar's dicts, which forgets all when full."""
    if len(answers) >= _KEPT_ANSWERS:
        answers.clear()
    answers[key] = value
    return value


def year_round_reason(rule: YearRoundRule) -> str:
    """``NY year-round``; a dated rule names its version and source."""
    base = f"{rule.state} year-round"
    return f"{base} ({provenance(rule.version, rule.source)})" if rule.dated else base


# A leap year, so that February 29 is a date: ``anniversary`` reads only month and day.
_ANY_LEAP_YEAR = 2000


@lru_cache(maxsize=65536)
def _cached_window(
    rule: WindowRule,
    source: str,
    month: int,
    day: int,
    year: int,
    birth_date: date | None,
    on_anniversary: bool = False,
) -> Window | None:
    """``window_of_year``, cached.  ``source`` is part of the key: rules that differ only in
    their source compare equal, but their windows name different sources.  A window reads
    its base date's month and day only (``anniversary``), so contacts born on the same day
    of any year share an entry; ``birth_date`` is None for a rule without an age band."""
    return window_of_year(rule, date(_ANY_LEAP_YEAR, month, day), year, birth_date, on_anniversary=on_anniversary)


def contact_windows(
    state: str, birth_date: date | None, effective_date: date | None, config: Config
) -> ContactWindows:
    """The windows that apply to a contact in ``state`` with these dates.

    No birth date means no birthday window (likewise effective date); states
    without a rule have no windows.

    The calendar depends only on what the state's rules read: the month and day of
    the base dates their windows surround (``_cached_window``), and the exact birth
    date only when a rule has an age band.  Contacts that agree on those share one
    calendar: at most a few thousand of them for an agency of millions.
    """
    reads_birth, reads_effective, banded = _what_rules_read(state, config)
    return _contact_windows(
        state,
        _of_any_year(birth_date) if reads_birth else None,
        _of_any_year(effective_date) if reads_effective else None,
        birth_date if banded else None,
        config,
    )


def _of_any_year(d: date | None) -> date | None:
    return None if d is None else date(_ANY_LEAP_YEAR, d.month, d.day)


@lru_cache(maxsize=1024)
def _what_rules_read(state: str, config: Config) -> tuple[bool, bool, bool]:
    """Whether the state's rules read the birth date, the effective date, an age."""
    rules = config.rules_for_state(state)
    return (
        any(r.kind == BIRTHDAY for r in rules),
        any(r.kind != BIRTHDAY for r in rules),
        any(r.banded for r in rules),
    )


@lru_cache(maxsize=65536)
def _contact_windows(
    state: str, birth_base: date | None, effective_base: date | None, band_birth: date | None, config: Config
) -> ContactWindows:
    bases = {BIRTHDAY: birth_base, "effective_date": effective_base}
    rules = tuple(
        (rule, base)
        for rule in config.rules_for_state(state)
        if (base := bases[rule.kind]) is not None
    )
    return ContactWindows(state, config.year_round_for(state), rules, band_birth)
