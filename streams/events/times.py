"""Dates and times in topic values: strict parsing, RFC 3339 writing, the Central date.

Choices written down here (SPEC and ARCHITECTURE are silent on them):

- Every date and date-time in an input event lies in the years 1900-2999:
  outside them a value is a typo, and the yearly arithmetic of the rules
  (next anniversary, T + lookahead) cannot run on year 9999.
- A date is a real ``YYYY-MM-DD`` date: ``2025-02-30``, ``1958-7-14`` or a
  time part is refused.
- Date-times follow RFC 3339 strictly: an offset or ``Z`` is required (a
  naive time has no instant), ``t``/``z`` may be lower case, ``-00:00`` is
  UTC, fractions beyond microseconds are truncated, a leap second (``:60``)
  is refused (Python cannot represent it).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Final
from zoneinfo import ZoneInfo

from rules.bounds import FIRST_DATE, LAST_DATE

CENTRAL: Final = ZoneInfo("America/Chicago")
# Event dates within the dates the scheduler decides about (rules.bounds).
FIRST_YEAR: Final = FIRST_DATE.year
LAST_YEAR: Final = LAST_DATE.year

_DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATETIME_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
_DATETIME_EXAMPLE = "2026-04-01T09:30:00-05:00"


def _in_years(year: int, text: str) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"{text!r} lies outside the years {FIRST_YEAR}-{LAST_YEAR}")


def parse_date(text: str) -> date:
    """A strict ``YYYY-MM-DD`` date; ``ValueError`` says why not (without the field)."""
    m = _DATE_RE.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)")
    try:
        value = date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise ValueError(f"{text!r} is not a real date") from None
    _in_years(value.year, text)
    return value


def parse_datetime(text: str) -> datetime:
    """A strict RFC 3339 date-time with an offset, as an aware ``datetime``."""
    m = _DATETIME_RE.fullmatch(text)
    if m is None:
        raise ValueError(
            f"{text!r} is not an RFC 3339 date-time with an offset (e.g. {_DATETIME_EXAMPLE!r})"
        )
    if m[8] is not None:
        tz = UTC
    else:
        hours, minutes = int(m[10]), int(m[11])
        if hours > 23 or minutes > 59:
            raise ValueError(f"{text!r} has an impossible offset")
        sign = -1 if m[9] == "-" else 1
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    if m[6] == "60":
        raise ValueError(f"{text!r} is a leap second, which is not supported")
    micro = int((m[7] or "").ljust(6, "0")[:6])
    try:
        value = datetime(
            int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]), micro, tzinfo=tz
        )
    except ValueError:
        raise ValueError(f"{text!r} is not a real date-time") from None
    _in_years(value.year, text)
    return value


def format_datetime(dt: datetime) -> str:
    """An aware ``datetime`` as RFC 3339 (``isoformat``, which ``parse_datetime`` reads back).

    RFC 3339 offsets are whole minutes: a time whose zone had an offset with
    seconds (local mean time before 1900-1940s) is written in UTC instead.
    """
    offset = dt.utcoffset()
    if offset is None:
        raise ValueError(f"{dt!r} is naive: an event time needs an offset")
    if offset % timedelta(minutes=1):
        dt = dt.astimezone(UTC)
    return dt.isoformat()


def today_central() -> date:
    """Today's date in America/Chicago: the default ``T`` (SPEC 1)."""
    return datetime.now(CENTRAL).date()


def occurred_at_central_date(dt: datetime) -> date:
    """The America/Chicago calendar date of an event time: the ``T`` of a decision (SPEC 1)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{dt!r} is naive: an event time needs an offset")
    return dt.astimezone(CENTRAL).date()


def optional_date(text: str | None) -> date | None:
    """``parse_date``, with ``null`` for a date not known."""
    return None if text is None else parse_date(text)


def iso_date(d: date | None) -> str | None:
    """A date as a topic value writes it, ``None`` as ``null``."""
    return None if d is None else d.isoformat()
