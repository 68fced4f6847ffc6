"""What the rules can compute with: the documented ranges every way in is checked against.

A value outside them is refused where it enters (a config key, a flag, a CSV
line, an event) with one line naming the place, or, when it is stored data the
sending side or another program owns, it makes that one row or contact
unusable (reported), never the run.  Inside them no rule can overflow: date
arithmetic stays centuries away from Python's year 1 and year 9999.

- **Dates** the scheduler decides about (as-of dates, campaign and trigger
  dates, stored send dates, event years): ``FIRST_DATE``..``LAST_DATE``.
  Contacts' birth and effective dates have their own, narrower range
  (``rules.contact``: outside it a date is treated as missing).
- **Horizons**: lookahead at most ``MAX_LOOKAHEAD_DAYS``, lookback at most
  ``MAX_LOOKBACK_DAYS``: a sweep decides at most a year ahead.
- **Ids** (contacts, instances, rows): ``1..MAX_ID``, the 64-bit integers
  SQLite and PostgreSQL store.
- **Text shown back** in errors, reports and summaries: ``excerpt``, at most
  ``EXCERPT_CHARS`` characters of any value, with its full length said.
"""

from __future__ import annotations

from datetime import date

FIRST_DATE = date(1900, 1, 1)
LAST_DATE = date(2999, 12, 31)
MAX_LOOKAHEAD_DAYS = 366
MAX_LOOKBACK_DAYS = 366
MAX_ID = 2**63 - 1
EXCERPT_CHARS = 80


def date_in_range(d: date) -> bool:
    return FIRST_DATE <= d <= LAST_DATE


def year_in_range(year: int) -> bool:
    return FIRST_DATE.year <= year <= LAST_DATE.year


def id_in_range(n: int) -> bool:
    return 1 <= n <= MAX_ID


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters, saying how long it really was.

    For messages that quote a bad value: a 20 MB value must not become a 20 MB
    error line, nor a 31 MB report.
    """
    shown = repr(value)
    if len(shown) <= limit:
        return shown
    unit = "characters" if isinstance(value, str) else "bytes" if isinstance(value, bytes) else "characters shown"
    size = len(value) if isinstance(value, (str, bytes)) else len(shown)
    return f"{shown[: max(1, limit - 1)]}… ({size:,} {unit})"


def shown(value: object, limit: int = EXCERPT_CHARS) -> str:
    """A value as people read it in a line of text: as it is when short, else an excerpt."""
    text = str(value)
    return text if len(text) <= limit and text.isprintable() else excerpt(value, limit)
