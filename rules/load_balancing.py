"""Load balancing across contacts (SPEC section 7): effective-date smoothing
and the daily cap.  Only the sweep runs these; stream agents place new rows
on their ideal or catch-up dates.

The inputs are columnar (``NewPlacements``) because an AEP sweep balances
millions of emails: a few arrays of machine integers, not an object each.
Dates are proleptic ordinals (``date.toordinal()``).

A move never puts an email before ``T``, on or after its event (AEP
excepted), or on an excluded date; an email that cannot move stays.  The
exclusion test is the caller's (``excluded(i, day)``): it knows the contact.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from fractions import Fraction

from rules.config import LoadBalancing

FLAG_CATCH_UP = 1
FLAG_EFFECTIVE_DATE = 2
FLAG_AEP = 4
FLAG_KEPT = 8  # a kept placement, here only for the frequency limit: never moves

# SPEC 7: the daily cap moves an email at most this many days later.
CAP_MAX_SHIFT_DAYS = 7

MOVED_NONE = 0
MOVED_SMOOTHING = 1
MOVED_DAILY_CAP = 2

Excluded = Callable[[int, int], bool]


@dataclass
class NewPlacements:
    """Newly placed emails of a sweep, one index per email, in arrays."""

    dates: array[int] = field(default_factory=lambda: array("i"))  # current placement (mutated by moves)
    ideal: array[int] = field(default_factory=lambda: array("i"))
    events: array[int] = field(default_factory=lambda: array("i"))
    priority: array[int] = field(default_factory=lambda: array("h"))
    hashes: array[int] = field(default_factory=lambda: array("I"))
    flags: array[int] = field(default_factory=lambda: array("B"))
    moved: array[int] = field(default_factory=lambda: array("B"))

    def add(self, day: int, ideal: int, event: int, priority: int, h: int, flags: int) -> int:
        self.dates.append(day)
        self.ideal.append(ideal)
        self.events.append(event)
        self.priority.append(priority)
        self.hashes.append(h)
        self.flags.append(flags)
        self.moved.append(MOVED_NONE)
        return len(self.dates) - 1

    def __len__(self) -> int:
        return len(self.dates)


def _exact(fraction: float) -> Fraction:
    # Config percentages are decimal literals: 0.07 must mean 7/100, not the
    # binary float just above it (100 * 0.07 would ceil to 8).
    return Fraction(repr(fraction))


def daily_cap(valid_contacts: int, lb: LoadBalancing) -> int:
    return math.ceil(valid_contacts * _exact(lb.daily_send_percentage_cap))


def ed_daily_limit(cap: int, lb: LoadBalancing) -> int:
    return min(lb.ed_daily_soft_limit, math.ceil(_exact(lb.ed_soft_limit_percentage) * cap))


def _may_move(p: NewPlacements, i: int, day: int, as_of: int, excluded: Excluded) -> bool:
    if day < as_of:
        return False
    if not p.flags[i] & FLAG_AEP and day >= p.events[i]:
        return False
    return not excluded(i, day)


def smooth_effective_dates(
    p: NewPlacements,
    ed_volume: MutableMapping[int, int],
    volume: MutableMapping[int, int],
    limit: int,
    window_days: int,
    as_of: int,
    excluded: Excluded,
) -> int:
    """Spread newly placed effective-date emails of overfull days; returns how many moved.

    A day is overfull when it holds more effective-date emails (fixed and new)
    than ``limit``; each newly placed one of that day moves once, to
    ``S + (h mod (2w + 1)) - w``.  Which days are overfull is decided before
    any move, so the result does not depend on processing order.
    """
    overfull = {day for day, n in ed_volume.items() if n > limit}
    moved = 0
    span = 2 * window_days + 1
    for i in range(len(p)):
        day = p.dates[i]
        if p.flags[i] & (FLAG_EFFECTIVE_DATE | FLAG_KEPT) != FLAG_EFFECTIVE_DATE or day not in overfull:
            continue
        target = p.ideal[i] + p.hashes[i] % span - window_days
        if target == day or not _may_move(p, i, target, as_of, excluded):
            continue
        p.dates[i] = target
        p.moved[i] = MOVED_SMOOTHING
        volume[day] -= 1
        volume[target] = volume.get(target, 0) + 1
        moved += 1
    return moved


def cap_order(p: NewPlacements, candidates: array[int]) -> Iterator[int]:
    """``candidates`` (ascending indices) by priority number, then hash, both descending;
    equal ones in index order.

    Sorting them all at once took a key tuple per candidate (about 100 bytes each): with
    the 3.4 million AEP emails of a 3M agency's season on one day, the sweep's main process
    peaked at 648 MB, 330 MB since.  Buckets by priority and the hash's top byte are each a
    small sort, taken in the same order.
    """
    # Not a generator itself: ``candidates`` is let go once bucketed, not held until the
    # last candidate is taken.
    buckets: dict[int, array[int]] = {}
    for i in candidates:
        bucket = p.priority[i] << 8 | p.hashes[i] >> 24
        found = buckets.get(bucket)
        if found is None:
            found = buckets[bucket] = array("I")
        found.append(i)
    return _by_bucket(p, buckets)


def _by_bucket(p: NewPlacements, buckets: dict[int, array[int]]) -> Iterator[int]:
    for bucket in sorted(buckets, reverse=True):
        # Stable: equal hashes keep their ascending indices, as one sort of them all did.
        yield from sorted(buckets.pop(bucket), key=p.hashes.__getitem__, reverse=True)


def apply_daily_cap(
    p: NewPlacements,
    volume: MutableMapping[int, int],
    cap: int,
    overage_threshold: float,
    as_of: int,
    excluded: Excluded,
    max_shift_days: int = CAP_MAX_SHIFT_DAYS,
) -> int:
    """Move newly placed emails off days over ``cap * overage_threshold``; returns how many moved.

    Days are handled in date order.  On an over-full day the newly placed
    emails move lowest priority first (larger number; tie: larger hash) to
    the next day, at most ``max_shift_days`` later, whose volume is below the
    cap, until the day is down to the cap.  A day that receives emails stops
    at the cap, so it never becomes over-full itself.
    """
    threshold = cap * overage_threshold
    over_days = sorted(day for day, n in volume.items() if n > threshold)
    if not over_days:
        return 0
    wanted = set(over_days)
    # Indices in machine integers: in an AEP season one day holds millions of candidates.
    by_day: dict[int, array[int]] = {day: array("I") for day in over_days}
    for i in range(len(p)):
        if p.dates[i] in wanted and not p.flags[i] & FLAG_KEPT:
            by_day[p.dates[i]].append(i)
    moved = 0
    for day in over_days:
        # The later days with room; only a move into one of them changes that list (it
        # empties no other), so it is made again only when a day fills up.
        targets = [day + k for k in range(1, max_shift_days + 1) if volume.get(day + k, 0) < cap]
        for i in cap_order(p, by_day.pop(day)):
            if volume[day] <= cap:
                break
            if not targets:
                break  # every later day is full: nothing on this day can move
            for target in targets:
                if _may_move(p, i, target, as_of, excluded):
                    p.dates[i] = target
                    p.moved[i] = MOVED_DAILY_CAP
                    volume[day] -= 1
                    volume[target] = volume.get(target, 0) + 1
                    moved += 1
                    if volume[target] >= cap:
                        targets = [t for t in targets if volume.get(t, 0) < cap]
                    break
    return moved
