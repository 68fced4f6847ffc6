"""SPEC section 7: at most 2 non-follow-up emails per contact in any 14 consecutive days."""

from datetime import date, timedelta

from rules.frequency_limit import NewEmail, frequency_skips

D0 = date(2025, 3, 1)


def day(n: int) -> date:
    return D0 + timedelta(days=n)


def refs(emails: list[NewEmail]) -> set[object]:
    return {e.ref for e in emails}


def test_within_limit_nothing_skipped() -> None:
    new = [NewEmail("a", day(0), 5, "k:a"), NewEmail("b", day(13), 5, "k:b")]
    assert frequency_skips([], new, 2, 14) == []


def test_lowest_priority_is_skipped_first() -> None:
    new = [
        NewEmail("post", day(2), 8, "1:post_window:x"),
        NewEmail("aep", day(5), 3, "1:aep:x"),
        NewEmail("bday", day(9), 5, "1:birthday:x"),
    ]
    assert refs(frequency_skips([], new, 2, 14)) == {"post"}


def test_priority_tie_skips_the_later_date() -> None:
    new = [
        NewEmail("late", day(10), 5, "1:a"),
        NewEmail("early", day(0), 5, "1:z"),
        NewEmail("mid", day(4), 5, "1:m"),
    ]
    assert refs(frequency_skips([], new, 2, 14)) == {"late"}


def test_fixed_rows_count_and_never_move() -> None:
    # one sent row 2025-03-01: only one more email fits around it
    new = [NewEmail("a", day(3), 5, "1:a"), NewEmail("b", day(6), 3, "1:b")]
    assert refs(frequency_skips([day(0)], new, 2, 14)) == {"a"}


def test_history_over_the_limit_stays_and_blocks_new_emails_nearby() -> None:
    fixed = [day(0), day(1), day(2)]  # already over: left as it is
    new = [NewEmail("near", day(5), 1, "1:near"), NewEmail("far", day(16), 1, "1:far")]
    # day 16 shares no 14-day window with days 0..2 (16 - 13 = 3)
    assert refs(frequency_skips(fixed, new, 2, 14)) == {"near"}


def test_fourteen_day_window_boundaries() -> None:
    fixed = [day(0), day(1)]
    # day 14: window 1..14 holds day 1 and day 14 -> fits; window 0..13 does not contain it
    assert frequency_skips(fixed, [NewEmail("x", day(14), 5, "1:x")], 2, 14) == []
    # day 13: window 0..13 would hold three
    assert refs(frequency_skips(fixed, [NewEmail("x", day(13), 5, "1:x")], 2, 14)) == {"x"}
    # before the fixed rows, same rule: day -12 shares window -12..1 with both
    assert refs(frequency_skips(fixed, [NewEmail("x", day(-12), 5, "1:x")], 2, 14)) == {"x"}
    assert frequency_skips(fixed, [NewEmail("x", day(-13), 5, "1:x")], 2, 14) == []


def test_skipping_keeps_as_many_as_fit() -> None:
    # limit 1: the important email on day 0 stays; day 10 (priority 5) breaks it,
    # day 20 (priority 8) does not once day 10 is skipped
    new = [
        NewEmail("a", day(0), 1, "1:a"),
        NewEmail("b", day(10), 5, "1:b"),
        NewEmail("c", day(20), 8, "1:c"),
    ]
    assert refs(frequency_skips([], new, 1, 14)) == {"b"}


def test_config_limit_and_period() -> None:
    new = [NewEmail(i, day(i * 3), 5, f"1:{i}") for i in range(5)]  # days 0,3,6,9,12
    # any 7 days hold at most three of them: a limit of 3 skips none
    assert frequency_skips([], new, 3, 7) == []
    # limit 2: days 0 and 3 fill window 0..6, so day 6 goes; then 9 (with 3) and 12 (with 9) fit
    assert refs(frequency_skips([], new, 2, 7)) == {2}
    # period 14, limit 2: 0 and 3 fill 0..13, so 6, 9 and 12 all go
    assert refs(frequency_skips([], new, 2, 14)) == {2, 3, 4}
