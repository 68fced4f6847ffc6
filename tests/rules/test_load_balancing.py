"""SPEC section 7: effective-date smoothing and the daily cap."""

from datetime import date

import pytest

from rules.config import LoadBalancing
from rules.load_balancing import (
    FLAG_AEP,
    FLAG_CATCH_UP,
    FLAG_EFFECTIVE_DATE,
    MOVED_DAILY_CAP,
    MOVED_NONE,
    MOVED_SMOOTHING,
    NewPlacements,
    apply_daily_cap,
    daily_cap,
    ed_daily_limit,
    smooth_effective_dates,
)

T = date(2025, 6, 1).toordinal()
FAR = T + 400


def never(i: int, day: int) -> bool:
    return False


# --- the caps ---------------------------------------------------------------------------------


def test_daily_cap_and_ed_limit() -> None:
    lb = LoadBalancing()
    assert daily_cap(1000, lb) == 70
    assert daily_cap(1001, lb) == 71  # ceil(70.07)
    assert daily_cap(1, lb) == 1
    assert daily_cap(0, lb) == 0
    assert ed_daily_limit(70, lb) == 15  # min(15, ceil(21))
    assert ed_daily_limit(20, lb) == 6  # min(15, ceil(6))
    assert ed_daily_limit(11, lb) == 4  # ceil(3.3)
    assert ed_daily_limit(0, lb) == 0


@pytest.mark.parametrize(("contacts", "cap"), [(100, 7), (200, 14), (10_000, 700), (300, 21)])
def test_daily_cap_exact_for_round_counts(contacts: int, cap: int) -> None:
    assert daily_cap(contacts, LoadBalancing()) == cap


def test_ed_limit_exact_for_round_counts() -> None:
    lb = LoadBalancing(ed_soft_limit_percentage=0.07, ed_daily_soft_limit=100)
    assert ed_daily_limit(100, lb) == 7


# --- effective-date smoothing -----------------------------------------------------------------


def test_smoothing_moves_new_ed_emails_of_an_overfull_day_by_hash() -> None:
    d = T + 10
    p = NewPlacements()
    # S = d for each: target = S + (h mod 5) - 2
    a = p.add(d, d, d + 30, 5, 0, FLAG_EFFECTIVE_DATE)  # -> d - 2
    b = p.add(d, d, d + 30, 5, 1, FLAG_EFFECTIVE_DATE)  # -> d - 1
    c = p.add(d, d, d + 30, 5, 2, FLAG_EFFECTIVE_DATE)  # -> d (stays)
    e = p.add(d, d, d + 30, 5, 8, FLAG_EFFECTIVE_DATE)  # 8 mod 5 = 3 -> d + 1
    f = p.add(d, d, d + 30, 5, 9, FLAG_EFFECTIVE_DATE)  # -> d + 2
    other = p.add(d, d, d + 30, 5, 0, 0)  # a birthday email: never smoothed
    ed_volume = {d: 6}  # one fixed ED row plus the five new ones
    volume = {d: 9}
    moved = smooth_effective_dates(p, ed_volume, volume, 3, 2, T, never)
    assert moved == 4
    assert [p.dates[i] - d for i in (a, b, c, e, f)] == [-2, -1, 0, 1, 2]
    assert [p.moved[i] for i in (a, b, c, e, f)] == [MOVED_SMOOTHING] * 2 + [MOVED_NONE] + [
        MOVED_SMOOTHING
    ] * 2
    assert p.dates[other] == d and p.moved[other] == MOVED_NONE
    assert volume == {d: 5, d - 2: 1, d - 1: 1, d + 1: 1, d + 2: 1}


def test_smoothing_leaves_days_at_or_under_the_limit() -> None:
    d = T + 10
    p = NewPlacements()
    i = p.add(d, d, d + 30, 5, 0, FLAG_EFFECTIVE_DATE)
    assert smooth_effective_dates(p, {d: 3}, {d: 3}, 3, 2, T, never) == 0
    assert p.dates[i] == d


def test_smoothing_never_before_t_nor_on_or_after_event_nor_excluded() -> None:
    p = NewPlacements()
    before_t = p.add(T, T, T + 30, 5, 0, FLAG_EFFECTIVE_DATE)  # target T - 2
    # a catch-up on T + 1 whose ideal date passed: target from S = T - 3 is before T
    caught_up = p.add(T + 1, T - 3, T + 20, 5, 4, FLAG_EFFECTIVE_DATE | FLAG_CATCH_UP)
    d = T + 10
    at_event = p.add(d, d, d + 1, 5, 3, FLAG_EFFECTIVE_DATE)  # target d + 1 == event
    excluded = p.add(d, d, d + 30, 5, 4, FLAG_EFFECTIVE_DATE)  # target d + 2 excluded
    free = p.add(d, d, d + 30, 5, 0, FLAG_EFFECTIVE_DATE)  # target d - 2

    def excl(i: int, day: int) -> bool:
        return i == excluded and day == d + 2

    volume = {T: 10, T + 1: 10, d: 10}
    moved = smooth_effective_dates(p, {T: 9, T + 1: 9, d: 9}, volume, 2, 2, T, excl)
    assert moved == 1
    assert p.dates[before_t] == T
    assert p.dates[caught_up] == T + 1
    assert p.dates[at_event] == d
    assert p.dates[excluded] == d
    assert p.dates[free] == d - 2


# --- daily cap ----------------------------------------------------------------------------------


def test_daily_cap_moves_lowest_priority_first_to_next_day_below_cap() -> None:
    d = T + 5
    p = NewPlacements()
    ids = {
        "p3a": p.add(d, d, FAR, 3, 50, 0),
        "p3b": p.add(d, d, FAR, 3, 60, 0),
        "p5_low": p.add(d, d, FAR, 5, 10, 0),
        "p5_mid": p.add(d, d, FAR, 5, 20, 0),
        "p5_high": p.add(d, d, FAR, 5, 30, 0),
        "p8_low": p.add(d, d, FAR, 8, 1, 0),
        "p8_high": p.add(d, d, FAR, 8, 2, 0),
        "p10": p.add(d, d, FAR, 10, 0, 0),
    }
    # day d: 7 fixed + 8 new = 15 > 10 * 1.2; d+1 is at the cap; d+2 at 8, d+3 at 9, d+4 empty
    volume = {d: 15, d + 1: 10, d + 2: 8, d + 3: 9}
    moved = apply_daily_cap(p, volume, 10, 1.2, T, never)
    assert moved == 5
    where = {name: p.dates[i] - d for name, i in ids.items()}
    assert where == {
        "p10": 2,
        "p8_high": 2,
        "p8_low": 3,
        "p5_high": 4,
        "p5_mid": 4,
        "p5_low": 0,
        "p3a": 0,
        "p3b": 0,
    }
    assert all(
        p.moved[ids[n]] == MOVED_DAILY_CAP
        for n in ("p10", "p8_high", "p8_low", "p5_high", "p5_mid")
    )
    assert volume == {d: 10, d + 1: 10, d + 2: 10, d + 3: 10, d + 4: 2}


def test_day_within_threshold_is_left_alone() -> None:
    d = T + 5
    p = NewPlacements()
    for h in range(12):
        p.add(d, d, FAR, 5, h, 0)
    volume = {d: 12}  # 12 <= 10 * 1.2
    assert apply_daily_cap(p, volume, 10, 1.2, T, never) == 0
    assert set(p.dates) == {d}


def test_daily_cap_respects_event_aep_and_exclusions() -> None:
    d = T + 5
    p = NewPlacements()
    bday = p.add(d, d, d + 1, 8, 9, 0)  # event tomorrow: cannot move
    aep = p.add(d, d, d, 8, 8, FLAG_AEP)  # AEP: may go after its event date
    blocked = p.add(d, d, FAR, 8, 7, 0)  # every later day excluded for this contact
    hop = p.add(d, d, FAR, 8, 6, 0)  # d+1 excluded for it: goes to d+2
    stays = p.add(d, d, FAR, 1, 0, 0)

    def excl(i: int, day: int) -> bool:
        return i == blocked or (i == hop and day == d + 1)

    volume = {d: 5}  # cap 3: over 3.6, two must go
    moved = apply_daily_cap(p, volume, 3, 1.2, T, excl)
    assert moved == 2
    assert p.dates[bday] == d
    assert p.dates[aep] == d + 1
    assert p.dates[blocked] == d
    assert p.dates[hop] == d + 2
    assert p.dates[stays] == d
    assert volume[d] == 3


def test_daily_cap_looks_at_most_seven_days_ahead() -> None:
    d = T + 5
    p = NewPlacements()
    i = p.add(d, d, FAR, 8, 0, 0)
    volume = {d: 20, **{d + k: 10 for k in range(1, 8)}}
    assert apply_daily_cap(p, volume, 10, 1.2, T, never) == 0
    assert p.dates[i] == d
    volume[d + 7] = 9
    assert apply_daily_cap(p, volume, 10, 1.2, T, never) == 1
    assert p.dates[i] == d + 7


def test_daily_cap_tie_moves_larger_hash_first() -> None:
    d = T + 5
    p = NewPlacements()
    small = p.add(d, d, FAR, 5, 100, 0)
    large = p.add(d, d, FAR, 5, 4_000_000_000, 0)
    volume = {d: 3}
    assert apply_daily_cap(p, volume, 2, 1.2, T, never) == 1
    assert p.dates[large] == d + 1 and p.dates[small] == d
