"""An independent, brute-force reading of SPEC sections 3, 4 and 6 for the property tests.

Written from the SPEC text, not from rules/: it reads only the config's data
(window rules and their versions, year-round rules, offsets, AEP dates) and recomputes
windows, exclusions, skip reasons, blocking and post-window dates the slow, obvious way.

Dated rules (SPEC section 4, issue 15): a window version applies to the years whose
anchor (per that version's anchor rule) lies in its period, for contacts whose age on
that anchor lies in its band (no birth date: in the band); a dated year-round rule
excludes the dates of its period.  A dated version's skip reason ends with
`` (rule <dates>[, ages <band>]; source: <citation>)`` (the source part only when the
rule cites one); an undated rule's reason has no suffix.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from rules.config import Config, WindowRule
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
    version: str = ""  # the rule version's dates and band as a reason names them; "" undated
    source: str = ""

    @property
    def label(self) -> str:
        """The skip reason a date in this window gets."""
        kind = "birthday" if self.kind == "birthday" else "effective date"
        base = f"{self.state} {kind} window {self.start}..{self.end}"
        return base + provenance(self.version, self.source)

    def __contains__(self, d: date) -> bool:
        return self.start <= d <= self.end


def _in_force(rule: WindowRule, d: date) -> bool:
    return (rule.effective_from is None or rule.effective_from <= d) and (
        rule.effective_until is None or d <= rule.effective_until
    )


def _anchor(rule: WindowRule, base: date, year: int) -> date:
    anchor = anniv(base, year)
    return date(anchor.year, anchor.month, 1) if rule.use_month_start else anchor


def windows_of_year(contact: Contact, config: Config, year: int) -> list[OWindow]:
    """SPEC 4: each version on its own anchor; where the versions of a kind disagree on the
    anchor (month start or not) and none is in force on its own, the one in force on the
    base date's anniversary gives the year's window (the code's documented choice)."""
    out = []
    rules = [r for r in config.window_rules if r.state == contact.state]
    for rule in rules:
        base = contact.birth_date if rule.kind == "birthday" else contact.effective_date
        if base is None:
            continue
        anchor = _anchor(rule, base, year)
        if not _in_force(rule, anchor):
            same_kind = [r for r in rules if r.kind == rule.kind]
            mixed = len({r.use_month_start for r in same_kind}) > 1
            if not (mixed and not any(_in_force(r, _anchor(r, base, year)) for r in same_kind)
                    and _in_force(rule, anniv(base, year))):
                continue
        if contact.birth_date is not None and (rule.min_age is not None or rule.max_age is not None):
            b = contact.birth_date
            # the age on the anchor, counted by the birthday as this oracle places it
            age = anchor.year - b.year - (1 if anchor < anniv(b, anchor.year) else 0)
            if (rule.min_age is not None and age < rule.min_age) or (
                rule.max_age is not None and age > rule.max_age
            ):
                continue
        start = anchor - timedelta(days=rule.days_before) - timedelta(days=rule.pre_window_days)
        end = anchor + timedelta(days=rule.days_after)
        version = version_text(rule.effective_from, rule.effective_until, rule.min_age, rule.max_age)
        out.append(OWindow(rule.state, rule.kind, year, start, end, version, rule.source))
    return out


def version_text(
    first: date | None, last: date | None, min_age: int | None, max_age: int | None
) -> str:
    """``rule 2024-01-01..2025-06-30``, ``rule from D``, ``rule until D``, each perhaps with
    ``, ages 65-75`` / ``, ages 65 and over`` / ``, ages 0-75``; a band alone is
    ``rule for ages 65-75``; "" for an undated rule."""
    if first is not None and last is not None:
        dates = f"rule {first.isoformat()}..{last.isoformat()}"
    elif first is not None:
        dates = f"rule from {first.isoformat()}"
    elif last is not None:
        dates = f"rule until {last.isoformat()}"
    else:
        dates = ""
    if min_age is None and max_age is None:
        return dates
    if max_age is None:
        band = f"ages {min_age} and over"
    else:
        band = f"ages {0 if min_age is None else min_age}-{max_age}"
    return f"{dates}, {band}" if dates else f"rule for {band}"


def provenance(version: str, source: str) -> str:
    """The suffix of a dated rule's skip reason: `` (version; source: ...)``, "" undated."""
    if not version:
        return ""
    return f" ({version}; source: {source})" if source else f" ({version})"


def year_round(contact: Contact, config: Config, d: date | None = None) -> bool:
    """Year-round on ``d``; without a date: on every date (an undated rule)."""
    for rule in config.year_round_rules:
        if rule.state != contact.state:
            continue
        if d is None:
            if rule.effective_from is None and rule.effective_until is None:
                return True
        elif (rule.effective_from is None or rule.effective_from <= d) and (
            rule.effective_until is None or d <= rule.effective_until
        ):
            return True
    return False


def year_round_reason(contact: Contact, config: Config, d: date) -> str | None:
    """The skip reason of a year-round rule in force on ``d`` (the first listed), else None."""
    for rule in config.year_round_rules:
        if rule.state != contact.state:
            continue
        first, last = rule.effective_from, rule.effective_until
        if (first is None or first <= d) and (last is None or d <= last):
            return f"{rule.state} year-round" + provenance(version_text(first, last, None, None), rule.source)
    return None


def windows_containing(contact: Contact, config: Config, d: date) -> list[OWindow]:
    return [
        w
        for y in (d.year - 1, d.year, d.year + 1)
        for w in windows_of_year(contact, config, y)
        if d in w
    ]


def excluded(contact: Contact, config: Config, d: date) -> bool:
    return year_round(contact, config, d) or bool(windows_containing(contact, config, d))


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
    """Every date the SPEC 6 chain may give (None: it runs out, or meets a date a dated
    year-round rule excludes: there is no "after" there), whichever window is taken when
    a date lies in several."""

    def walk(candidate: date, moves: int) -> set[date | None]:
        if year_round(contact, config, candidate):
            return {None}  # a year-round date has no "after": the chain ends without an email
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
