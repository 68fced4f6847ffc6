"""Property tests of load balancing (smoothing, daily cap) and the frequency limit (SPEC 7)."""

from __future__ import annotations

import random
from array import array
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

from hypothesis import event, given, settings
from hypothesis import strategies as st

from rules.frequency_limit import NewEmail, frequency_skips
from rules.load_balancing import (
    FLAG_AEP,
    FLAG_CATCH_UP,
    FLAG_EFFECTIVE_DATE,
    MOVED_DAILY_CAP,
    MOVED_NONE,
    MOVED_SMOOTHING,
    NewPlacements,
    apply_daily_cap,
    cap_order,
    smooth_effective_dates,
)

PROPS = settings(max_examples=200, deadline=None)
T = date(2025, 6, 1).toordinal()


@dataclass
class Case:
    p: NewPlacements
    fixed: Counter[int]  # rows already in the database, per day
    fixed_ed: Counter[int]
    banned: frozenset[tuple[int, int]]  # (email, day) pairs excluded for that email's contact
    cap: int

    def excluded(self, i: int, day: int) -> bool:
        return (i, day) in self.banned

    def volume(self) -> dict[int, int]:
        v = Counter(self.fixed)
        v.update(self.p.dates)
        return dict(v)

    def ed_volume(self) -> dict[int, int]:
        v = Counter(self.fixed_ed)
        v.update(
            d for d, f in zip(self.p.dates, self.p.flags, strict=True) if f & FLAG_EFFECTIVE_DATE
        )
        return dict(v)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Random new placements, fixed volumes and exclusions.  The bulk comes from a
    hypothesis-controlled Random (fast to draw, replayed exactly on failure)."""
    rnd = draw(st.randoms(use_true_random=False))
    p = NewPlacements()
    n = draw(st.integers(1, 60))
    for _ in range(n):
        kind = rnd.choice(["birthday", "ed", "ed", "aep", "post_window"])
        catch_up = rnd.random() < 0.3
        day = T + rnd.randint(0, 12)
        ideal = day - rnd.randint(1, 7) if catch_up else day
        if kind == "aep":
            event, flags, prio = ideal, FLAG_AEP, 3
        elif kind == "post_window":
            event, flags, prio = ideal, 0, 8
            day = T if catch_up else day
        else:
            event = max(day + 1, ideal + rnd.randint(1, 30))
            flags, prio = (FLAG_EFFECTIVE_DATE, 5) if kind == "ed" else (0, 5)
        if catch_up:
            flags |= FLAG_CATCH_UP
        prio = rnd.choice([prio, prio, 1, 10])
        p.add(day, ideal, event, prio, rnd.randint(0, 2**32 - 1), flags)
    fixed = Counter({T + k: rnd.randint(0, 12) for k in range(20)})
    fixed_ed = Counter({d: rnd.randint(0, c) for d, c in fixed.items()})
    banned = frozenset(
        (rnd.randrange(n), rnd.randint(T - 3, T + 22)) for _ in range(rnd.randint(0, 4 * n))
    )
    return Case(p, fixed, fixed_ed, banned, cap=draw(st.integers(0, 15)))


def check_move(case: Case, i: int, before: int) -> None:
    p = case.p
    day = p.dates[i]
    assert day >= T, "moved before T"
    if not p.flags[i] & FLAG_AEP:
        assert day < p.events[i], "moved on or after its event"
    assert not case.excluded(i, day), "moved onto an excluded day"
    assert day != before


@PROPS
@given(cases(), st.integers(0, 6), st.integers(0, 3))
def test_smoothing(case: Case, limit: int, w: int) -> None:
    p = case.p
    before = list(p.dates)
    ed_volume = case.ed_volume()
    overfull = {d for d, n in ed_volume.items() if n > limit}
    volume = case.volume()
    moved = smooth_effective_dates(p, dict(ed_volume), volume, limit, w, T, case.excluded)
    event(f"smoothing moved {'none' if moved == 0 else 'some'}")
    assert moved == sum(1 for m in p.moved if m != MOVED_NONE)
    assert volume == case.volume()  # the volumes it keeps are the real ones
    for i in range(len(p)):
        target = p.ideal[i] + p.hashes[i] % (2 * w + 1) - w
        if p.moved[i] == MOVED_NONE:
            assert p.dates[i] == before[i]
            # an ED email of an overfull day whose target is allowed must have moved
            if p.flags[i] & FLAG_EFFECTIVE_DATE and before[i] in overfull and target != before[i]:
                blocked = (
                    target < T
                    or (not p.flags[i] & FLAG_AEP and target >= p.events[i])
                    or case.excluded(i, target)
                )
                assert blocked, i
            continue
        assert p.moved[i] == MOVED_SMOOTHING
        assert p.flags[i] & FLAG_EFFECTIVE_DATE, "smoothing moved a non-ED email"
        assert before[i] in overfull
        assert p.dates[i] == target
        check_move(case, i, before[i])


@PROPS
@given(cases(), st.sampled_from([1.0, 1.2, 1.5]))
def test_daily_cap(case: Case, overage: float) -> None:
    p = case.p
    before = list(p.dates)
    start_volume = case.volume()
    over = {d for d, n in start_volume.items() if n > case.cap * overage}
    volume = dict(start_volume)
    moved = apply_daily_cap(p, volume, case.cap, overage, T, case.excluded)
    event(f"daily cap moved {'none' if moved == 0 else 'some'}")
    final = case.volume()
    assert {d: n for d, n in volume.items() if n} == {d: n for d, n in final.items() if n}
    assert moved == sum(1 for m in p.moved if m == MOVED_DAILY_CAP)
    received = set()
    for i in range(len(p)):
        if p.moved[i] == MOVED_NONE:
            assert p.dates[i] == before[i]
            continue
        assert before[i] in over, "moved an email off a day that was not over"
        assert 1 <= p.dates[i] - before[i] <= 7
        check_move(case, i, before[i])
        received.add(p.dates[i])
    for day in received:
        assert final[day] <= case.cap, "a day that received emails is over the cap"
    for day in over:
        # an over day was brought down to the cap, unless what is left could not move
        if final.get(day, 0) > case.cap:
            for i in range(len(p)):
                if p.dates[i] != day:
                    continue
                for k in range(1, 8):
                    target = day + k
                    if final.get(target, 0) < case.cap:
                        allowed = (
                            target >= T
                            and not case.excluded(i, target)
                            and (bool(p.flags[i] & FLAG_AEP) or target < p.events[i])
                        )
                        assert not allowed, (i, day, target)
        else:
            assert final.get(day, 0) == case.cap  # moves stop as soon as the day is at the cap


@settings(max_examples=60, deadline=None)
@given(cases(), st.sampled_from([1.0, 1.2]))
def test_daily_cap_is_deterministic(case: Case, overage: float) -> None:
    import copy

    other = copy.deepcopy(case.p)
    v1, v2 = case.volume(), case.volume()
    apply_daily_cap(case.p, v1, case.cap, overage, T, case.excluded)
    apply_daily_cap(other, v2, case.cap, overage, T, case.excluded)
    assert list(case.p.dates) == list(other.dates) and v1 == v2


# --- frequency limit ------------------------------------------------------------------------------

D0 = date(2025, 3, 1)


@st.composite
def frequency_cases(draw: st.DrawFn) -> tuple[list[date], list[NewEmail], int, int]:
    fixed = [D0 + timedelta(days=draw(st.integers(0, 40))) for _ in range(draw(st.integers(0, 6)))]
    new = [
        NewEmail(
            ref=i,
            send_date=D0 + timedelta(days=draw(st.integers(0, 40))),
            priority=draw(st.sampled_from([1, 3, 5, 8, 10])),
            key=f"1:email:{i}",
        )
        for i in range(draw(st.integers(0, 10)))
    ]
    return fixed, new, draw(st.integers(1, 3)), draw(st.integers(1, 14))


def worst_window(dates: list[date], around: date, period: int) -> int:
    """The largest count of ``dates`` in a ``period``-day window containing ``around``."""
    best = 0
    for offset in range(period):
        start = around - timedelta(days=offset)
        end = start + timedelta(days=period - 1)
        best = max(best, sum(1 for d in dates if start <= d <= end))
    return best


@PROPS
@given(frequency_cases())
def test_frequency_limit(case: tuple[list[date], list[NewEmail], int, int]) -> None:
    fixed, new, limit, period = case
    skipped = frequency_skips(fixed, new, limit, period)
    skipped_refs = [e.ref for e in skipped]
    assert len(set(skipped_refs)) == len(skipped_refs)
    assert set(skipped_refs) <= {e.ref for e in new}
    accepted = [e for e in new if e.ref not in set(skipped_refs)]
    kept = fixed + [e.send_date for e in accepted]
    # no accepted email lies in a window over the limit
    for e in accepted:
        assert worst_window(kept, e.send_date, period) <= limit, e
    # minimal: each skipped email would break the limit with the fixed rows and the
    # accepted emails at least as important (lower priority number; tie: earlier date)
    for e in skipped:
        ahead = [
            a.send_date for a in accepted if (a.priority, a.send_date) <= (e.priority, e.send_date)
        ]
        assert worst_window(fixed + ahead + [e.send_date], e.send_date, period) > limit, e
    # the order the emails come in does not matter
    again = frequency_skips(list(reversed(fixed)), list(reversed(new)), limit, period)
    assert {e.ref for e in again} == set(skipped_refs)


@PROPS
@given(
    st.lists(
        st.tuples(
            st.sampled_from([-2, 0, 1, 3, 5, 8, 10, 300]),
            # few distinct hashes, so ties and shared top bytes are common
            st.sampled_from([0, 1, 2**24 - 1, 2**24, 2**31, 2**32 - 2, 2**32 - 1]) | st.integers(0, 2**32 - 1),
        ),
        max_size=80,
    ),
    st.randoms(use_true_random=False),
)
def test_cap_order_is_one_sort_by_priority_then_hash(emails: list[tuple[int, int]], rnd: random.Random) -> None:
    """The daily cap moves a day's emails lowest priority first (larger number), then larger
    hash, equal ones in index order: the bucketed order is that of one stable sort."""
    p = NewPlacements()
    for priority, h in emails:
        p.add(T, T, T + 1, priority, h, 0)
    candidates = sorted(rnd.sample(range(len(p)), rnd.randint(0, len(p))))
    expected = sorted(candidates, key=lambda i: (p.priority[i], p.hashes[i]), reverse=True)
    assert list(cap_order(p, array("I", candidates))) == expected
