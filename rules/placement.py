"""When an occurrence is in play for a sweep, and where it is placed (SPEC section 5).

In play as of ``T`` with lookahead ``H`` and lookback ``L``:
1. ``T <= S <= T + H``: placed on ``S``;
2. ``T - L <= S < T`` and the event is still ahead (or a post-window email):
   a catch-up, placed by ``catch_up.catch_up_date``.

Choice written down: a placement kept from an earlier sweep (SPEC "placement
is decided once") stays in play until its date passes, even when its ideal
date has meanwhile left the lookback: otherwise a catch-up spread over the
coming days would be deleted the day its ideal date left the lookback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from rules.catch_up import catch_up_date
from rules.occurrence import POST_WINDOW, Occurrence
from rules.records import quick_init
from rules.why import Explanation, Why


@dataclass(frozen=True)
class Horizon:
    """The as-of date ``T`` and the sweep's range ``[T, T + H]`` with lookback ``L``."""

    as_of: date
    lookahead_days: int = 30
    lookback_days: int = 7
    range_end: date = field(init=False, repr=False, compare=False)
    lookback_start: date = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Asked for on every decision: computed once.
        object.__setattr__(self, "range_end", self.as_of + timedelta(days=self.lookahead_days))
        object.__setattr__(self, "lookback_start", self.as_of - timedelta(days=self.lookback_days))

    def in_range(self, d: date) -> bool:
        return self.as_of <= d <= self.range_end


@quick_init
@dataclass(frozen=True)
class Placement:
    send_date: date
    catch_up: bool
    why: Explanation


def place(occ: Occurrence, horizon: Horizon, catch_up_spread_days: int) -> Placement | None:
    """The placement of an occurrence in play, or None when it is not in play."""
    s, t = occ.ideal_send_date, horizon.as_of
    if horizon.in_range(s):
        return Placement(s, False, Why("ideal send date {} is in the range {}..{}", s, t, horizon.range_end))
    if horizon.lookback_start <= s < t and (occ.event_date >= t or occ.email_type == POST_WINDOW):
        d = catch_up_date(occ.key, occ.event_date, t, catch_up_spread_days)
        return Placement(d, True, Why("ideal send date {} passed within the lookback: caught up on {}", s, d))
    return None


def place_forced(occ: Occurrence, horizon: Horizon, catch_up_spread_days: int) -> Placement:
    """Placement of a post-window email materialized beyond the range (SPEC section 6)."""
    placed = place(occ, horizon, catch_up_spread_days)
    if placed is not None:
        return placed
    if occ.ideal_send_date >= horizon.as_of:
        return Placement(occ.ideal_send_date, False, f"planned for {occ.ideal_send_date}, after its window")
    d = catch_up_date(occ.key, occ.event_date, horizon.as_of, catch_up_spread_days)
    return Placement(d, True, f"ideal send date {occ.ideal_send_date} passed: caught up on {d}")
