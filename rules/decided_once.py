"""A placement is decided once (SPEC section 5): kept, claimed until its date, then final.

Three rules about the rows earlier sweeps (or agents) wrote, used by every
per-contact decision (``contact_schedule``), so the sweep, the agents,
replay and ``explain`` all follow them:

1. **Kept.** An owned row of the occurrence's key, dated ``>= T``, recording
   the same ideal send date, keeps its date: catch-ups, smoothing and cap
   moves do not wander from day to day.  Only its status is decided again.
   (A row placed by a run that never completed is placed afresh, so a rerun
   gives what the uninterrupted run would have.)
2. **Claimed until its date.** Such a row stays claimed by its occurrence
   until its own date has passed, even when the occurrence has left play
   (an AEP email the daily cap moved to September 16..22 is still sent on
   its day, although after September 15 ``E < T``; a post-window email
   caught up after its ideal date leaves the lookback).  It is released only
   when the occurrence no longer exists for the contact's current data: a
   changed base date gives another ideal date, a cancelled campaign target
   or a dropped instance gives no occurrence, an invalid or deleted contact
   gets none at all.  ``claimed_occurrences`` finds the occurrences such
   rows still stand for.
3. **Final.** An owned row dated before ``T`` is history: no decision
   re-places, moves or deletes it, and its occurrence is not in play again.
   A window skip is answered by the post-window email only, never by a
   catch-up of the skipped email as well; a frequency-limit or conflict skip
   is not retried.  Catch-ups are for occurrences no row has decided.

Choices written down here (the SPEC is silent on them):
- Rule 2 reaches only dates the rules can have placed: a birthday,
  effective-date or campaign row awaiting its date lies before its event, so
  its occurrence is in view anyway; an AEP or post-window row is claimed
  while its date is at most ``max(lookback, CAP_MAX_SHIFT_DAYS)`` days after
  its ideal date (a cap move, a catch-up).  A row dated later than that was
  never placed by these rules (a bad import, a hand edit) and is released.
- A legacy owned row (no key) that the legacy match gives to an occurrence
  is final in the same way once its date has passed.
- A final row keeps counting for the frequency limit as it is (a past
  ``pre-scheduled`` row counts, a past skip does not).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Protocol

from rules.config import Config
from rules.contact import Contact
from rules.exclusion_window import ContactWindows
from rules.load_balancing import CAP_MAX_SHIFT_DAYS
from rules.occurrence import AEP, POST_WINDOW, Occurrence, aep_occurrence
from rules.placement import Horizon, Placement
from rules.post_window import post_window_for_key
from rules.statuses import is_owned


class DecidedRow(Protocol):
    """What these rules read of a stored schedule row."""

    @property
    def status(self) -> str: ...
    @property
    def send_date(self) -> date | None: ...
    @property
    def occurrence_key(self) -> str | None: ...
    @property
    def ideal_send_date(self) -> date | None: ...
    @property
    def placed_run_id(self) -> str | None: ...
    @property
    def skip_reason(self) -> str | None: ...


def kept_placement(
    occ: Occurrence, row: DecidedRow | None, as_of: date, failed_runs: frozenset[str]
) -> Placement | None:
    """Rule 1: the placement an earlier decision made for ``occ``, when it is kept."""
    if (
        row is not None
        and row.occurrence_key == occ.key
        and is_owned(row.status)
        and row.send_date is not None
        and row.send_date >= as_of
        and row.ideal_send_date == occ.ideal_send_date
        and row.placed_run_id not in failed_runs
    ):
        return Placement(
            row.send_date,
            row.send_date != occ.ideal_send_date,
            f"placement {row.send_date} kept from an earlier sweep until its date",
        )
    return None


def final_decision(row: DecidedRow | None, as_of: date) -> str | None:
    """Rule 3: why the occurrence of an owned row dated before ``T`` is not decided again."""
    if row is None or not is_owned(row.status) or row.send_date is None or row.send_date >= as_of:
        return None
    why = f"; skip reason: {row.skip_reason}" if row.skip_reason else ""
    return f"decided on {row.send_date}: {row.status}, final{why}"


def awaits_its_date(row: DecidedRow, horizon: Horizon) -> bool:
    """An owned keyed row dated ``>= T``: rule 2 may still claim it."""
    return (
        row.occurrence_key is not None
        and is_owned(row.status)
        and row.send_date is not None
        and row.send_date >= horizon.as_of
    )


def claimed_occurrences(
    contact: Contact,
    rows: Iterable[DecidedRow],
    horizon: Horizon,
    config: Config,
    windows: ContactWindows,
    campaign_dates: Sequence[date] = (),
    known_keys: frozenset[str] | set[str] = frozenset(),
) -> list[Occurrence]:
    """Rule 2: the AEP and post-window occurrences that rows awaiting their date stand for.

    Only occurrences that still exist for the contact's current data are
    returned (whether the row is kept is then ``kept_placement``'s question:
    the same key with another ideal date is placed afresh).  Birthday,
    effective-date and campaign rows awaiting their date lie before their
    event, which keeps their occurrence in view; follow-ups have rules of
    their own.
    """
    late = timedelta(days=max(horizon.lookback_days, CAP_MAX_SHIFT_DAYS))
    out: list[Occurrence] = []
    for row in rows:
        key = row.occurrence_key
        if key is None or key in known_keys or not awaits_its_date(row, horizon):
            continue
        occ = occurrence_for_key(contact, key, config, windows, campaign_dates)
        if occ is not None and row.send_date is not None and row.send_date <= occ.ideal_send_date + late:
            out.append(occ)
    return out


def occurrence_for_key(
    contact: Contact,
    key: str,
    config: Config,
    windows: ContactWindows,
    campaign_dates: Sequence[date] = (),
) -> Occurrence | None:
    """The AEP or post-window occurrence a key names, if the contact still has it."""
    parts = key.split(":", 2)
    if len(parts) != 3 or parts[0] != str(contact.id):
        return None
    kind, part = parts[1], parts[2]
    if kind == AEP:
        try:
            event = date.fromisoformat(part)
        except ValueError:
            return None
        if (event.month, event.day) not in config.aep_dates:
            return None
        return aep_occurrence(contact, event, config)
    if kind == POST_WINDOW:
        return post_window_for_key(key, contact, windows, config, campaign_dates)
    return None


__all__ = [
    "DecidedRow",
    "awaits_its_date",
    "claimed_occurrences",
    "final_decision",
    "kept_placement",
    "occurrence_for_key",
]
