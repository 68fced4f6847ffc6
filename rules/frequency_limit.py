"""Frequency limit (SPEC section 7): at most ``max_per_period`` non-follow-up
emails to a contact in any ``period_days`` consecutive days.

Rows already in the database (sending side, kept placements) are fixed: they
count but never change, and history already over the limit stays as it is.
Newly placed emails are accepted most important first (lower priority number,
then earlier date, then key); one that would break the limit in some window
is skipped.  So the emails skipped are the lowest priority ones, ties going
to the later date, and no newly written row ever breaks the limit.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

FREQUENCY_LIMIT_REASON = "frequency limit"


@dataclass(frozen=True)
class NewEmail:
    ref: Hashable  # the caller's handle for the email
    send_date: date
    priority: int
    key: str


def _fits(accepted: list[date], d: date, limit: int, period: int) -> bool:
    # Every window [s, s + period - 1] that contains d must have room for one more.
    for offset in range(period):
        start = d - timedelta(days=period - 1 - offset)
        end = start + timedelta(days=period - 1)
        if bisect_right(accepted, end) - bisect_left(accepted, start) + 1 > limit:
            return False
    return True


def frequency_skips(
    fixed_dates: Sequence[date], new: Sequence[NewEmail], limit: int, period_days: int
) -> list[NewEmail]:
    """The new emails to skip so that none of them breaks the limit."""
    accepted = sorted(fixed_dates)
    skipped: list[NewEmail] = []
    for email in sorted(new, key=lambda e: (e.priority, e.send_date, e.key)):
        if _fits(accepted, email.send_date, limit, period_days):
            insort(accepted, email.send_date)
        else:
            skipped.append(email)
    return skipped


def could_break(fixed_dates: Sequence[date], new_count: int, earliest_new: date, limit: int, period_days: int) -> bool:
    """Whether the limit can bind at all: a cheap test that lets a sweep skip most contacts.

    New emails are never placed before ``earliest_new``; a fixed row more than a
    period before it shares no window with any of them.
    """
    horizon = earliest_new - timedelta(days=period_days - 1)
    near = sum(1 for d in fixed_dates if d >= horizon)
    return near + new_count > limit
