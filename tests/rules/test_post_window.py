"""SPEC section 6: post-window emails, their dates, hop chains and materialization."""

from datetime import date

import pytest

from rules.config import BIRTHDAY, DEFAULT_CONFIG, EFFECTIVE_DATE, Config, WindowRule
from rules.contact import Contact
from rules.contact_schedule import ContactSchedule, schedule_contact
from rules.exclusion_window import contact_windows
from rules.explain import explain_contact
from rules.placement import Horizon
from rules.post_window import post_window_date
from rules.statuses import PRE_SCHEDULED, SKIPPED

CA_BORN = date(1955, 5, 1)  # CA window 2025: 2025-01-31..2025-06-30


def plan(
    contact: Contact, as_of: date, config: Config = DEFAULT_CONFIG, lookahead: int = 30
) -> ContactSchedule:
    return schedule_contact(contact, [], config, Horizon(as_of, lookahead, 7))


def by_key(p: ContactSchedule) -> dict[str, object]:
    return {d.occurrence.key: d for d in p.decisions}


def test_skip_inside_window_materializes_post_window_beyond_range() -> None:
    p = plan(Contact(1, "a@b.com", "CA", CA_BORN, None), date(2025, 4, 10))  # range ..2025-05-10
    ds = by_key(p)
    bday = ds["1:birthday:2025"]
    assert bday.status == SKIPPED
    pw = ds["1:post_window:2025-06-30"]
    assert pw.occurrence.email_type == "post_window"
    assert pw.occurrence.ideal_send_date == date(2025, 7, 1)  # end + 1
    assert pw.send_date == date(2025, 7, 1)
    assert pw.status == PRE_SCHEDULED
    assert pw.occurrence.priority == 8


def test_post_window_in_play_by_rule_1_without_any_skip() -> None:
    p = plan(Contact(1, "a@b.com", "CA", CA_BORN, None), date(2025, 6, 25))
    pw = by_key(p)["1:post_window:2025-06-30"]
    assert pw.send_date == date(2025, 7, 1) and pw.status == PRE_SCHEDULED and not pw.catch_up


def test_post_window_catch_up_is_placed_today() -> None:
    p = plan(Contact(1, "a@b.com", "CA", CA_BORN, None), date(2025, 7, 5))  # S = T - 4
    pw = by_key(p)["1:post_window:2025-06-30"]
    assert pw.catch_up and pw.send_date == date(2025, 7, 5)


def test_post_window_out_of_lookback_not_in_play() -> None:
    p = plan(Contact(1, "a@b.com", "CA", CA_BORN, None), date(2025, 7, 9))  # S = T - 8
    assert "1:post_window:2025-06-30" not in by_key(p)


def test_window_blocking_nothing_has_no_post_window() -> None:
    # Born 2024-05-01: no 2024 birthday email exists (only Y > 2024), so the 2024
    # window (2024-02-01..2024-06-30) blocks nothing: no post-window email on 2024-07-01.
    p = plan(Contact(1, "a@b.com", "CA", date(2024, 5, 1), None), date(2024, 6, 20))
    assert all(d.occurrence.email_type != "post_window" for d in p.decisions)
    # the next year's window blocks the 2025 birthday email
    p = plan(Contact(1, "a@b.com", "CA", date(2024, 5, 1), None), date(2025, 6, 20))
    assert "1:post_window:2025-06-30" in by_key(p)


def test_aep_skipped_in_an_effective_date_window() -> None:
    # MO, effective 2010-10-11: window 2025-07-13..2025-11-13 holds AEP 2025-09-15 and
    # the ED email (ideal 2025-09-11); its post-window email is 2025-11-14.
    p = plan(Contact(1, "a@b.com", "MO", None, date(2010, 10, 11)), date(2025, 9, 1))
    ds = by_key(p)
    assert ds["1:aep:2025-09-15"].status == SKIPPED
    assert ds["1:aep:2025-09-15"].skip_reason.endswith("window 2025-07-13..2025-11-13")
    pw = ds["1:post_window:2025-11-13"]
    assert pw.send_date == date(2025, 11, 14)


def test_post_window_moves_past_another_window() -> None:
    # CA with an extra effective-date rule (0 before, 10 after, no pre-window):
    # birthday window 2025-01-31..2025-06-30; effective 2010-07-01 -> window
    # 2025-07-01..2025-07-11.  The day after the birthday window is excluded, so
    # the post-window email goes on the day after the effective-date window.
    config = Config(
        window_rules=(
            WindowRule("CA", BIRTHDAY, 30, 60, 60),
            WindowRule("CA", EFFECTIVE_DATE, 0, 10, 0),
        )
    )
    contact = Contact(1, "a@b.com", "CA", CA_BORN, date(2010, 7, 1))
    p = plan(contact, date(2025, 4, 10), config)
    ds = by_key(p)
    assert ds["1:birthday:2025"].status == SKIPPED
    pw = ds["1:post_window:2025-06-30"]
    assert pw.send_date == pw.occurrence.ideal_send_date == date(2025, 7, 12)
    assert pw.status == PRE_SCHEDULED
    # the effective-date window blocks nothing (ED email 2025-06-01, birthday 04-17, AEP 09-15)
    assert "1:post_window:2025-07-11" not in ds
    p = plan(contact, date(2025, 7, 5), config)
    assert "1:post_window:2025-07-11" not in by_key(p)


# A chain of windows, each one's day-after lying in exactly one other window:
#   KY birthday window (0 before, 60 after, pre 60), born 1950-01-01:
#       year Y: (Y-1)-11-02 .. Y-03-02   (in leap years .. Y-03-01)
#   KY effective-date window (60 before, 124 after, pre 60), effective 2000-07-01:
#       year Y: Y-03-03 .. Y-11-02
# In a non-leap year the birthday window's day after (03-03) opens the ED window;
# the ED window's day after (11-03) lies in the next birthday window.  In 2028 the
# birthday window ends 2028-03-01 and 2028-03-02 is free.
CHAIN_CONFIG = Config(
    window_rules=(
        WindowRule("KY", BIRTHDAY, 0, 60, 60),
        WindowRule("KY", EFFECTIVE_DATE, 60, 124, 60),
    )
)
CHAIN_CONTACT = Contact(5, "a@b.com", "KY", date(1950, 1, 1), date(2000, 7, 1))


def chain_window(kind_index: int, year: int):
    windows = contact_windows("KY", date(1950, 1, 1), date(2000, 7, 1), CHAIN_CONFIG)
    return windows, windows.window(kind_index, year)


@pytest.mark.parametrize(
    ("kind_index", "year", "start", "end", "hops"),
    [
        (0, 2028, date(2027, 11, 2), date(2028, 3, 1), 0),
        (0, 2027, date(2026, 11, 2), date(2027, 3, 2), 2),  # 03-03 (ED 2027), 11-03 (BD 2028)
        (1, 2026, date(2026, 3, 3), date(2026, 11, 2), 3),
        (0, 2026, date(2025, 11, 2), date(2026, 3, 2), 4),
        (1, 2025, date(2025, 3, 3), date(2025, 11, 2), 5),  # five moves: allowed
    ],
)
def test_post_window_chain_within_five_hops(
    kind_index: int, year: int, start: date, end: date, hops: int
) -> None:
    windows, w = chain_window(kind_index, year)
    assert (w.start, w.end) == (start, end)
    found = post_window_date(w, windows)
    assert found.send_date == date(2028, 3, 2)
    assert sum("moved to" in step for step in found.path) == hops
    assert windows.exclusion_on(date(2028, 3, 2)) is None


def test_post_window_chain_needing_a_sixth_hop_has_none() -> None:
    # The birthday window 2025 (ends 2025-03-02) needs six moves to reach 2028-03-02:
    # there is no post-window email, and the path says why.
    windows, w = chain_window(0, 2025)
    assert w.end == date(2025, 3, 2)
    found = post_window_date(w, windows)
    assert found.send_date is None
    assert "no post-window email" in found.path[-1]


def test_chain_post_window_emails_in_schedule_and_explain() -> None:
    # As of 2028-02-20 (range ..2028-03-21) the post-window day 2028-03-02 is in play:
    # the windows ending 2025-11-02 (5 moves), 2026-03-02, 2026-11-02, 2027-03-02,
    # 2027-11-02 and 2028-03-01 have one each; the window ending 2025-03-02 has none.
    p = plan(CHAIN_CONTACT, date(2028, 2, 20), CHAIN_CONFIG)
    pw = {d.occurrence.key: d for d in p.decisions if d.occurrence.email_type == "post_window"}
    assert set(pw) == {
        "5:post_window:2025-11-02",
        "5:post_window:2026-03-02",
        "5:post_window:2026-11-02",
        "5:post_window:2027-03-02",
        "5:post_window:2027-11-02",
        "5:post_window:2028-03-01",
    }
    assert all(d.send_date == date(2028, 3, 2) for d in pw.values())
    text = "\n".join(explain_contact(CHAIN_CONTACT, [], CHAIN_CONFIG, Horizon(date(2025, 1, 15))))
    line = next(ln for ln in text.splitlines() if "KY birthday window 2024-11-02..2025-03-02" in ln)
    assert "no post-window email" in line


def test_never_more_than_one_day_after_a_simple_window() -> None:
    # Default NV rule: post-window of the 2025 window (2024-12-31..2025-04-30) is 2025-05-01
    p = plan(Contact(3, "a@b.com", "NV", date(1950, 3, 20), None), date(2025, 4, 20))
    pw = by_key(p)["3:post_window:2025-04-30"]
    assert pw.send_date == date(2025, 5, 1)


def test_long_windows_post_window_date_far_from_its_window() -> None:
    # Windows of a year each (0 before, 364 after, no pre-window), born 1950-12-31:
    # window 2024 = 2024-12-31..2025-12-30 blocks the 2025 birthday email (ideal
    # 2025-12-17); its day after 2025-12-31 opens window 2025, then 2026-12-31 window
    # 2026, then 2027-12-31 window 2027 (..2028-12-29, 2028 is leap); 2028-12-30 is free.
    config = Config(window_rules=(WindowRule("KY", BIRTHDAY, 0, 364, 0),))
    contact = Contact(2, "a@b.com", "KY", date(1950, 12, 31), None)
    windows = contact_windows("KY", contact.birth_date, None, config)
    w2024 = windows.window(0, 2024)
    assert (w2024.start, w2024.end) == (date(2024, 12, 31), date(2025, 12, 30))
    assert post_window_date(w2024, windows).send_date == date(2028, 12, 30)


def test_long_windows_post_window_email_is_in_play() -> None:
    config = Config(window_rules=(WindowRule("KY", BIRTHDAY, 0, 364, 0),))
    contact = Contact(2, "a@b.com", "KY", date(1950, 12, 31), None)
    p = schedule_contact(contact, [], config, Horizon(date(2028, 12, 15)))
    keys = {d.occurrence.key for d in p.decisions}
    assert "2:post_window:2025-12-30" in keys  # window 2024, S = 2028-12-30 in the range


def test_post_window_respects_lookahead_exactly() -> None:
    contact = Contact(1, "a@b.com", "CA", CA_BORN, None)
    assert "1:post_window:2025-06-30" in by_key(plan(contact, date(2025, 6, 1), lookahead=30))
    assert "1:post_window:2025-06-30" not in by_key(plan(contact, date(2025, 5, 31), lookahead=30))


def test_post_window_after_window_start_is_skipped_day_materializes_once() -> None:
    # Birthday skipped and ED skipped in the same window: one post-window email
    p = plan(Contact(1, "a@b.com", "CA", CA_BORN, date(2010, 6, 10)), date(2025, 5, 1))
    ds = by_key(p)
    assert ds["1:effective_date:2025"].status == SKIPPED  # ideal 2025-05-11
    assert [k for k in ds if "post_window" in k] == ["1:post_window:2025-06-30"]
