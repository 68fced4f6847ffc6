"""SPEC section 5: occurrences (event, ideal send date, priority, key) and when they are in play."""

import os
import subprocess
import sys
from datetime import date, timedelta

import pytest

from rules.catch_up import catch_up_date, stable_hash
from rules.config import DEFAULT_CONFIG, Config, LoadBalancing, Timing, config_from_mapping
from rules.contact import Contact
from rules.contact_schedule import Decision, schedule_contact
from rules.occurrence import Occurrence, next_aep_occurrences, next_yearly_occurrence
from rules.placement import Horizon, place
from rules.statuses import PRE_SCHEDULED

D = timedelta(days=1)


def tx(birth: date | None = None, effective: date | None = None, cid: int = 1) -> Contact:
    """A contact in a state without windows: nothing is ever skipped."""
    return Contact(cid, "pat@example.com", "TX", birth, effective)


def decisions(
    contact: Contact, horizon: Horizon, config: Config = DEFAULT_CONFIG
) -> dict[str, Decision]:
    return {
        d.occurrence.email_type: d for d in schedule_contact(contact, [], config, horizon).decisions
    }


def test_birthday_occurrence() -> None:
    d = decisions(tx(date(1950, 6, 10)), Horizon(date(2025, 5, 20)))["birthday"]
    occ = d.occurrence
    assert occ.key == "1:birthday:2025"
    assert occ.event_date == date(2025, 6, 10)
    assert occ.ideal_send_date == date(2025, 5, 27)  # E - 14
    assert occ.priority == 5
    assert (d.send_date, d.status, d.catch_up) == (date(2025, 5, 27), PRE_SCHEDULED, False)


def test_effective_date_occurrence() -> None:
    d = decisions(tx(effective=date(2015, 7, 1)), Horizon(date(2025, 6, 1)))["effective_date"]
    occ = d.occurrence
    assert occ.key == "1:effective_date:2025"
    assert occ.event_date == date(2025, 7, 1)
    assert occ.ideal_send_date == date(2025, 6, 1)  # E - 30
    assert occ.priority == 5
    assert d.send_date == date(2025, 6, 1)


def test_aep_occurrence() -> None:
    d = decisions(tx(), Horizon(date(2025, 9, 1)))["aep"]
    occ = d.occurrence
    assert occ.key == "1:aep:2025-09-15"
    assert occ.event_date == occ.ideal_send_date == date(2025, 9, 15)
    assert occ.priority == 3
    assert d.send_date == date(2025, 9, 15)


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (date(2025, 1, 1), date(2025, 9, 15)),
        (date(2025, 9, 15), date(2025, 9, 15)),  # on the day: not passed yet
        (date(2025, 9, 16), date(2026, 9, 15)),  # passed: next year
    ],
)
def test_aep_of_this_year_or_next_once_passed(as_of: date, expected: date) -> None:
    occs = next_aep_occurrences(tx(), as_of, DEFAULT_CONFIG)
    assert [o.event_date for o in occs] == [expected]


def test_aep_date_comes_from_config() -> None:
    config, _ = config_from_mapping({"aep_config": {"default_dates": [{"month": 10, "day": 1}]}})
    d = decisions(tx(), Horizon(date(2025, 9, 20)), config)["aep"]
    assert d.occurrence.key == "1:aep:2025-10-01" and d.send_date == date(2025, 10, 1)


def test_offsets_and_priorities_come_from_config() -> None:
    config, _ = config_from_mapping(
        {
            "timing_constants": {"birthday_email_days_before": 7, "effective_date_days_before": 10},
            "priorities": {"birthday": 2, "effective_date": 4},
        }
    )
    ds = decisions(tx(date(1950, 6, 10), date(2015, 6, 12)), Horizon(date(2025, 5, 25)), config)
    assert ds["birthday"].occurrence.ideal_send_date == date(2025, 6, 3)
    assert ds["birthday"].occurrence.priority == 2
    assert ds["effective_date"].occurrence.ideal_send_date == date(2025, 6, 2)
    assert ds["effective_date"].occurrence.priority == 4


def test_feb_29_birthday_email_in_a_non_leap_year() -> None:
    d = decisions(tx(date(1952, 2, 29)), Horizon(date(2025, 2, 10)))["birthday"]
    assert d.occurrence.key == "1:birthday:2025"
    assert d.occurrence.event_date == date(2025, 2, 28)
    assert d.send_date == date(2025, 2, 14)


def test_feb_29_birthday_email_in_a_leap_year() -> None:
    d = decisions(tx(date(1952, 2, 29)), Horizon(date(2028, 2, 10)))["birthday"]
    assert d.occurrence.event_date == date(2028, 2, 29)
    assert d.send_date == date(2028, 2, 15)


def test_no_anniversary_email_before_the_first_anniversary() -> None:
    # The policy starts 2025-06-20: its first anniversary is 2026-06-20.  As of
    # 2025-05-25 the "2025 email" (ideal 2025-05-21) must not exist, not even as a catch-up.
    ds = decisions(tx(effective=date(2025, 6, 20)), Horizon(date(2025, 5, 25)))
    assert "effective_date" not in ds
    occ = next_yearly_occurrence(
        tx(effective=date(2025, 6, 20)), "effective_date", date(2025, 5, 25), DEFAULT_CONFIG
    )
    assert occ is not None and occ.event_date == date(2026, 6, 20)
    # a contact born in the future likewise
    assert "birthday" not in decisions(tx(date(2025, 6, 1)), Horizon(date(2025, 5, 20)))


def test_no_birth_date_no_birthday_email() -> None:
    assert set(decisions(tx(), Horizon(date(2025, 5, 20)))) == set()


# --- in play: SPEC 5 rules 1 and 2, exact boundaries ------------------------------------------
# TX contact born 1950-06-10: S = 2025-05-27, E = 2025-06-10.  H = 30, L = 7.

S = date(2025, 5, 27)
E = date(2025, 6, 10)


def birthday_decision(
    as_of: date, config: Config = DEFAULT_CONFIG, lookback: int = 7
) -> Decision | None:
    ds = decisions(tx(date(1950, 6, 10)), Horizon(as_of, 30, lookback), config)
    return ds.get("birthday")


def test_rule_1_s_equals_t() -> None:
    d = birthday_decision(S)
    assert d is not None and d.send_date == S and not d.catch_up


def test_rule_1_s_equals_t_plus_h() -> None:
    d = birthday_decision(S - 30 * D)
    assert d is not None and d.send_date == S and not d.catch_up


def test_beyond_t_plus_h_not_in_play() -> None:
    assert birthday_decision(S - 31 * D) is None


def test_rule_2_s_equals_t_minus_l_is_a_catch_up() -> None:
    t = S + 7 * D
    d = birthday_decision(t)
    assert d is not None and d.catch_up
    k = max(1, min(7, (E - t).days))  # E - T = 7
    assert k == 7
    assert d.send_date == t + timedelta(days=stable_hash("1:birthday:2025") % k)
    assert t <= d.send_date < E


def test_rule_2_s_before_t_minus_l_not_in_play() -> None:
    assert birthday_decision(S + 8 * D) is None


def test_event_passed_no_catch_up() -> None:
    # birthday 3 days before: S = 2025-06-07, E = 2025-06-10; as of 2025-06-11 S is in the
    # lookback but the event has passed -> no email (next year's is not in play either)
    config = Config(timing=Timing(birthday_days_before=3))
    assert birthday_decision(date(2025, 6, 11), config) is None
    # one day earlier the event is today (E >= T): a catch-up placed today (k = 1)
    d = birthday_decision(date(2025, 6, 10), config)
    assert d is not None and d.catch_up and d.send_date == date(2025, 6, 10)


def test_place_rejects_past_event() -> None:
    occ = Occurrence(
        "9:birthday:2025", 9, "birthday", date(2025, 6, 10), date(2025, 6, 7), 5, None, None
    )
    assert place(occ, Horizon(date(2025, 6, 11)), 7) is None
    placed = place(occ, Horizon(date(2025, 6, 9)), 7)
    assert (
        placed is not None
        and placed.catch_up
        and date(2025, 6, 9) <= placed.send_date < date(2025, 6, 10)
    )


@pytest.mark.parametrize(("lookback", "days_late"), [(14, 10), (14, 12), (14, 13), (10, 9)])
def test_catch_up_spread_k_is_bounded_by_days_to_event(lookback: int, days_late: int) -> None:
    t = S + timedelta(days=days_late)
    d = birthday_decision(t, lookback=lookback)
    assert d is not None and d.catch_up
    k = max(1, min(7, (E - t).days))
    assert d.send_date == t + timedelta(days=stable_hash("1:birthday:2025") % k)
    assert t <= d.send_date < E


def test_catch_up_spread_days_from_config() -> None:
    config = Config(load_balancing=LoadBalancing(catch_up_spread_days=3))
    t = S + 2 * D  # E - T = 12, k = min(3, 12) = 3
    d = birthday_decision(t, config)
    assert d is not None
    assert d.send_date == t + timedelta(days=stable_hash("1:birthday:2025") % 3)


def test_catch_ups_are_stable_across_calls_and_spread() -> None:
    t = S + 3 * D
    first = [
        decisions(tx(date(1950, 6, 10), cid=i), Horizon(t))["birthday"].send_date
        for i in range(1, 60)
    ]
    again = [
        decisions(tx(date(1950, 6, 10), cid=i), Horizon(t))["birthday"].send_date
        for i in range(1, 60)
    ]
    assert first == again
    assert all(t <= d < E for d in first)
    assert len(set(first)) > 1  # a backlog does not land on one day


def test_catch_up_never_on_or_after_event() -> None:
    t = date(2025, 1, 1)
    for gap in range(1, 12):
        event = t + timedelta(days=gap)
        for n in range(200):
            d = catch_up_date(f"{n}:birthday:2025", event, t, 7)
            assert t <= d < event
            assert (d - t).days == stable_hash(f"{n}:birthday:2025") % max(1, min(7, gap))


def test_stable_hash_is_not_pythons_hash() -> None:
    keys = ["42:birthday:2026", "7:aep:2025-09-15", "1:post_window:2025-06-30"]
    here = [stable_hash(k) for k in keys]
    code = (
        "import sys; from rules.catch_up import stable_hash; "
        f"print([stable_hash(k) for k in {keys!r}]); print(hash({keys[0]!r}))"
    )
    outs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        outs.append(run.stdout.splitlines())
    assert outs[0][0] == outs[1][0] == str(here)
    assert outs[0][1] != outs[1][1]  # Python's hash() does differ between these processes
    assert all(0 <= h < 2**32 for h in here)
