"""An independent, brute-force reading of SPEC sections 3, 4 and 6 for the property tests.

Written from the SPEC text, not from rules/: it reads only the config's data
(window rules, year-round states, offsets, AEP dates) and recomputes windows,
exclusions, blocking and post-window dates the slow, obvious way.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from rules.config import Config
from rules.contact import Contact

MAX_HOPS = 5


def anniv(d: date, year: int) -> date:
    if d.month == 2 and d.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, d.month, d.day)


@dataclass(frozen=True)
class OWindow:
    state: str
    kind: str  # "birthday" / "effective_date"
    year: int
    start: date
    end: date

    def __contains__(self, d: date) -> bool:
        return self.start <= d <= self.end


def windows_of_year(contact: Contact, config: Config, year: int) -> list[OWindow]:
    out = []
    for rule in config.window_rules:
        if rule.state != contact.state:
            continue
        base = contact.birth_date if rule.kind == "birthday" else contact.effective_date
        if base is None:
            continue
        anchor = anniv(base, year)
        if rule.use_month_start:
            anchor = date(anchor.year, anchor.month, 1)
        start = anchor - timedelta(days=rule.days_before) - timedelta(days=rule.pre_window_days)
        end = anchor + timedelta(days=rule.days_after)
        out.append(OWindow(rule.state, rule.kind, year, start, end))
    return out


def year_round(contact: Contact, config: Config) -> bool:
    return contact.state in config.year_round_states


def windows_containing(contact: Contact, config: Config, d: date) -> list[OWindow]:
    return [
        w
        for y in (d.year - 1, d.year, d.year + 1)
        for w in windows_of_year(contact, config, y)
        if d in w
    ]


def excluded(contact: Contact, config: Config, d: date) -> bool:
    return year_round(contact, config) or bool(windows_containing(contact, config, d))


def ideal_dates(contact: Contact, config: Config, first_year: int, last_year: int) -> list[date]:
    """Every ideal send date of the contact's birthday, ED and AEP emails of these years."""
    out = []
    for y in range(first_year, last_year + 1):
        b, e = contact.birth_date, contact.effective_date
        if b is not None and y > b.year:
            out.append(anniv(b, y) - timedelta(days=config.timing.birthday_days_before))
        if e is not None and y > e.year:
            out.append(anniv(e, y) - timedelta(days=config.timing.effective_date_days_before))
        out.extend(date(y, m, dd) for m, dd in config.aep_dates)
    return out


def blocks(contact: Contact, config: Config, w: OWindow) -> bool:
    return any(d in w for d in ideal_dates(contact, config, w.start.year - 2, w.end.year + 2))


def post_window_outcomes(contact: Contact, config: Config, w: OWindow) -> set[date | None]:
    """Every date the SPEC 6 chain may give (None: it runs out), whichever window is
    taken when a date lies in several."""

    def walk(candidate: date, moves: int) -> set[date | None]:
        inside = windows_containing(contact, config, candidate)
        if not inside:
            return {candidate}
        if moves == MAX_HOPS:
            return {None}
        out: set[date | None] = set()
        for other in inside:
            out |= walk(other.end + timedelta(days=1), moves + 1)
        return out

    return walk(w.end + timedelta(days=1), 0)


def next_anniversary(d: date, as_of: date) -> date:
    y = max(as_of.year, d.year + 1)
    while anniv(d, y) < as_of:
        y += 1
    return anniv(d, y)


def kind_label(kind: str) -> str:
    return "birthday" if kind == "birthday" else "effective date"
