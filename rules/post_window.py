"""Post-window emails (SPEC section 6).

A window blocks when the ideal send date of any of the contact's occurrences
(birthday, effective date, AEP, of any year, or a campaign email that respects
windows) lies in it.  Campaign dates come from the caller (``campaign_dates``):
they are data of the contact's targets, not of its dates.  A blocking window
yields one ``post_window`` email the day after it ends; when that day is
itself excluded by another window, the day after that window is used, at
most 5 times (then there is none, and the reason is kept for ``explain``).
Year-round states have no post-window emails: there is no "after".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from rules.anniversary import anniversary
from rules.config import Config
from rules.contact import Contact
from rules.exclusion_window import ContactWindows, Window
from rules.occurrence import (
    POST_WINDOW,
    Occurrence,
    ideal_send_dates_between,
    occurrence_key,
    templates,
)
from rules.placement import Horizon

MAX_WINDOW_HOPS = 5


@dataclass(frozen=True)
class PostWindowDate:
    send_date: date | None
    path: tuple[str, ...]  # each hop, in plain words


def blocked_by(
    window: Window, contact: Contact, config: Config, campaigns: Sequence[Occurrence] = ()
) -> list[tuple[str, date]]:
    """The (type, ideal date) pairs that make ``window`` block; empty when it does not."""
    found = ideal_send_dates_between(contact, window.start, window.end, config)
    found.extend(
        (occ.email_type, occ.ideal_send_date)
        for occ in campaigns
        if occ.respects_windows and window.start <= occ.ideal_send_date <= window.end
    )
    return sorted(found, key=lambda pair: (pair[1], pair[0]))


def post_window_date(window: Window, windows: ContactWindows) -> PostWindowDate:
    """The day after ``window``, hopping over the windows that exclude it; kept by the calendar,
    which every contact sharing it asks again."""
    return windows.remembered(("post_window_date", window), lambda: _post_window_date(window, windows))


def _post_window_date(window: Window, windows: ContactWindows) -> PostWindowDate:
    candidate = window.end + timedelta(days=1)
    path: list[str] = [f"{window.label} ends {window.end}: day after is {candidate}"]
    for hop in range(MAX_WINDOW_HOPS + 1):
        exclusion = windows.exclusion_on(candidate)
        if exclusion is None:
            return PostWindowDate(candidate, tuple(path))
        if exclusion.window is None or hop == MAX_WINDOW_HOPS:
            path.append(f"{candidate} is excluded ({exclusion.reason}); no post-window email")
            return PostWindowDate(None, tuple(path))
        candidate = exclusion.window.end + timedelta(days=1)
        path.append(f"excluded by {exclusion.reason}: moved to {candidate}")
    raise AssertionError("unreachable")


def post_window_occurrence(
    window: Window,
    contact: Contact,
    windows: ContactWindows,
    config: Config,
    campaign_dates: Sequence[date] = (),
) -> Occurrence | None:
    """The post-window email of a window, or None when it does not block or has no date."""
    if windows.always_year_round or not blocks(window, contact, config, campaign_dates):
        return None
    found = post_window_date(window, windows)
    if found.send_date is None:
        return None
    email, sms = templates(contact, POST_WINDOW, config)
    return Occurrence(
        key=occurrence_key(contact.id, POST_WINDOW, window.end.isoformat()),
        contact_id=contact.id,
        email_type=POST_WINDOW,
        event_date=found.send_date,
        ideal_send_date=found.send_date,
        priority=config.priorities.post_window,
        email_template=email,
        sms_template=sms,
        window=window,
        note="; ".join(found.path),
    )


def blocks(
    window: Window, contact: Contact, config: Config, campaign_dates: Sequence[date] = ()
) -> bool:
    """Whether any ideal send date of the contact's occurrences lies in ``window``.

    The same question as ``blocked_by``, answered without building occurrences:
    the sweep asks it for every window of every contact it processes.
    ``campaign_dates``: ideal dates of the contact's window-respecting campaign emails.
    """
    start, end = window.start, window.end
    if any(start <= d <= end for d in campaign_dates):
        return True
    timing = config.timing
    for base, days_before in (
        (contact.birth_date, timing.birthday_days_before),
        (contact.effective_date, timing.effective_date_days_before),
    ):
        if base is None:
            continue
        shift = timedelta(days=days_before)
        for year in range(max(start.year - 1, base.year + 1), end.year + 2):
            if start <= anniversary(base, year) - shift <= end:
                return True
    for year in range(start.year, end.year + 1):
        for month, day in config.aep_dates:
            if start <= date(year, month, day) <= end:
                return True
    return False


def post_windows_around(
    contact: Contact,
    windows: ContactWindows,
    horizon: Horizon,
    config: Config,
    campaign_dates: Sequence[date] = (),
) -> list[Occurrence]:
    """Post-window emails whose send date lies in ``[T - L, T + H]``.

    A hop only ever moves the date later, so a window whose next day is after
    the range, or (unhopped) before the lookback, is ruled out before asking if
    it blocks.  Which years to look at: with one rule whose window is shorter
    than a year no hop is possible, so only windows ending just before the
    range count; otherwise up to five hops of the longest window reach back.
    """
    out: list[Occurrence] = []
    first, last = horizon.lookback_start, horizon.range_end
    for window in windows.remembered(
        ("post_window_candidates", first, last), lambda: _candidate_windows(windows, first, last)
    ):
        if not blocks(window, contact, config, campaign_dates):
            continue
        occ = post_window_occurrence(window, contact, windows, config, campaign_dates)
        if occ is not None and first <= occ.ideal_send_date <= last:
            out.append(occ)
    return out


def _candidate_windows(windows: ContactWindows, first: date, last: date) -> tuple[Window, ...]:
    """The calendar's windows whose post-window email may fall in ``[first, last]``, whatever
    the contact's dates (``post_windows_around``'s docstring says which)."""
    if windows.always_year_round or not windows.rules:
        return ()
    spans = [r.days_before + r.pre_window_days + r.days_after + 31 for r, _ in windows.rules]
    longest_after = max(r.days_after for r, _ in windows.rules)
    if len(spans) == 1 and spans[0] < 365:
        reach_back = longest_after + 1
    else:
        reach_back = longest_after + 1 + (MAX_WINDOW_HOPS + 1) * (max(spans) + 1)
    years = range((first - timedelta(days=reach_back)).year - 1, last.year + 2)
    found = []
    for window in windows.windows_of_years(years):
        day_after = window.end + timedelta(days=1)
        if day_after > last:
            continue
        if day_after < first and windows.exclusion_on(day_after) is None:
            continue
        found.append(window)
    return tuple(found)


def post_window_for_key(
    key: str,
    contact: Contact,
    windows: ContactWindows,
    config: Config,
    campaign_dates: Sequence[date] = (),
) -> Occurrence | None:
    """The post-window email a stored key (``{contact}:post_window:{window end}``) names.

    None when the contact has no window ending that day which blocks (its data
    changed: new birthday, new state, a campaign dropped) or when that window's
    post-window email has no date.
    """
    try:
        end = date.fromisoformat(key.rsplit(":", 1)[-1])
    except ValueError:
        return None
    for window in windows.windows_of_years(range(end.year - 1, end.year + 2)):
        if window.end != end:
            continue
        occ = post_window_occurrence(window, contact, windows, config, campaign_dates)
        if occ is not None and occ.key == key:
            return occ
    return None


def planned_post_window_holds(
    key: str,
    ideal_send_date: date | None,
    contact: Contact,
    windows: ContactWindows,
    config: Config,
    campaign_dates: Sequence[date] = (),
) -> bool:
    """Whether a stored post-window row is still the plan: its window blocks, with that ideal date.

    A contact's data changed can leave a planned email beyond the range that
    no longer follows any window.
    """
    occ = post_window_for_key(key, contact, windows, config, campaign_dates)
    return occ is not None and occ.ideal_send_date == ideal_send_date
