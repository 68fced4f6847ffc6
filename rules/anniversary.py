"""Calendar arithmetic for yearly events (SPEC section 3)."""

from __future__ import annotations

import calendar
import re
from datetime import date

from rules.zip_state import BLANKS

_ISO_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[ T].*)?", re.DOTALL)


def parse_iso_date(raw: str | None) -> date | None:
    """The date of an ISO ``YYYY-MM-DD`` field (a time part is ignored).

    Returns None for a missing, blank or unparseable value (e.g. 2025-02-30);
    callers report the unparseable ones.
    """
    if raw is None:
        return None
    text = raw.strip(BLANKS)
    if len(text) == 10 and text[4] == "-" and text[7] == "-" and text.isascii():
        # The common case, read without the pattern (a contact has two of these).
        year, month, day = text[:4], text[5:7], text[8:]
        if year.isdigit() and month.isdigit() and day.isdigit():
            return _date_of(year, month, day)
    return by_the_pattern(text)


def by_the_pattern(text: str) -> date | None:
    """``parse_iso_date`` of a stripped value by its pattern alone (what its common case
    must agree with)."""
    m = _ISO_RE.fullmatch(text)
    return None if m is None else _date_of(m.group(1), m.group(2), m.group(3))


def _date_of(year: str, month: str, day: str) -> date | None:
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def anniversary(d: date, year: int) -> date:
    """``d``'s month and day in ``year``; February 29 becomes February 28 off leap years."""
    if d.month == 2 and d.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return d.replace(year=year)


# Next anniversaries of dates of earlier years, by (as-of date, month, day): they depend on
# nothing else, and a sweep asks for two per contact (0.8 µs each, 0.2 µs kept).
_NEXT: dict[tuple[date, int, int], date] = {}
_NEXT_KEPT = 50_000


def next_anniversary(d: date, as_of: date) -> date:
    """The earliest ``anniversary(d, Y) >= as_of`` with ``Y > year(d)``.

    A date in the future (a policy that has not started) has no anniversary
    before its first full year: the first one is ``anniversary(d, year(d) + 1)``.
    """
    if d.year < as_of.year:
        key = (as_of, d.month, d.day)
        found = _NEXT.get(key)
        if found is None:
            if len(_NEXT) >= _NEXT_KEPT:
                _NEXT.clear()
            found = _NEXT[key] = _next_anniversary(d, as_of)
        return found
    return _next_anniversary(d, as_of)


def _next_anniversary(d: date, as_of: date) -> date:
    year = max(as_of.year, d.year + 1)
    candidate = anniversary(d, year)
    if candidate < as_of:
        candidate = anniversary(d, year + 1)
    return candidate


def age_on(birth: date, d: date) -> int:
    """The age reached on ``d``: one more on each anniversary of ``birth`` (February 29
    births on February 28 off leap years, as ``anniversary`` places the birthday)."""
    return d.year - birth.year - (1 if d < anniversary(birth, d.year) else 0)


def first_of_month(d: date) -> date:
    return d.replace(day=1)
