"""SPEC sections 5 and 9: placement is decided once, rows the scheduler does not own,
legacy rows, and the stale rows a sweep removes."""

from datetime import date, timedelta

import pytest

from rules.config import BIRTHDAY, DEFAULT_CONFIG, Config, WindowRule
from rules.contact import Contact
from rules.contact_schedule import ContactSchedule, Decision, ExistingRow, schedule_contact
from rules.placement import Horizon
from rules.statuses import PRE_SCHEDULED, SKIPPED

# TX contact (no windows) born 1950-06-10: birthday 2025 ideal S = 2025-05-27, E = 2025-06-10
CONTACT = Contact(1, "pat@example.com", "TX", date(1950, 6, 10), None)
KEY = "1:birthday:2025"
S = date(2025, 5, 27)
E = date(2025, 6, 10)


def run(
    rows: list[ExistingRow],
    as_of: date,
    contact: Contact = CONTACT,
    config: Config = DEFAULT_CONFIG,
    failed_runs: frozenset[str] = frozenset(),
) -> ContactSchedule:
    return schedule_contact(contact, rows, config, Horizon(as_of), failed_runs)


def decision(plan: ContactSchedule, key: str = KEY) -> Decision:
    found = [d for d in plan.decisions if d.occurrence.key == key]
    assert len(found) == 1, plan.decisions
    return found[0]


def row(
    id_: int = 10,
    send: date | None = date(2025, 5, 30),
    status: str = PRE_SCHEDULED,
    key: str | None = KEY,
    ideal: date | None = S,
    event_year: int | None = 2025,
    email_type: str = "birthday",
    run_id: str | None = "run-1",
) -> ExistingRow:
    return ExistingRow(id_, email_type, send, status, key, ideal, event_year, run_id)


# --- placement is decided once ----------------------------------------------------------------


def test_catch_up_placement_is_kept_the_next_days() -> None:
    # as of 2025-05-29 the ideal date passed: a fresh placement would be a catch-up
    t = date(2025, 5, 29)
    existing = row(send=date(2025, 6, 3))
    d = decision(run([existing], t))
    assert d.send_date == date(2025, 6, 3)
    assert d.kept and d.existing_row_id == 10
    # the same row one day later still does not move
    d = decision(run([existing], t + timedelta(days=1)))
    assert d.send_date == date(2025, 6, 3) and d.kept


def test_kept_placement_does_not_go_back_to_the_ideal_date() -> None:
    # a row moved by the daily cap to 2025-05-29 stays there though S is in the range
    d = decision(run([row(send=date(2025, 5, 29))], date(2025, 5, 20)))
    assert d.send_date == date(2025, 5, 29) and d.kept
    assert run([row(send=date(2025, 5, 29))], date(2025, 5, 20)).deletes == ()


def test_kept_placement_on_today_is_kept() -> None:
    d = decision(run([row(send=date(2025, 5, 29))], date(2025, 5, 29)))
    assert d.send_date == date(2025, 5, 29) and d.kept


def test_row_dated_before_t_is_final() -> None:
    # its ideal date is in the lookback and its event ahead: without the row it
    # would be caught up; with it, the decision made on 2025-05-28 stands
    t = date(2025, 5, 29)
    plan = run([row(send=date(2025, 5, 28))], t)
    assert plan.decisions == () and plan.deletes == ()
    (final,) = plan.not_written
    assert final.final and final.reason == "decided on 2025-05-28: pre-scheduled, final"


def test_row_with_another_ideal_date_is_placed_afresh() -> None:
    # the config changed (birthday email 14 days before instead of 20): new ideal date
    d = decision(run([row(send=date(2025, 5, 21), ideal=date(2025, 5, 21))], date(2025, 5, 20)))
    assert d.send_date == S and not d.kept and d.existing_row_id == 10


def test_row_without_recorded_ideal_date_is_placed_afresh() -> None:
    d = decision(run([row(send=date(2025, 5, 29), ideal=None)], date(2025, 5, 20)))
    assert d.send_date == S and not d.kept and d.existing_row_id == 10


def test_row_placed_by_a_failed_run_is_placed_afresh() -> None:
    existing = row(send=date(2025, 5, 29), run_id="run-crashed")
    d = decision(run([existing], date(2025, 5, 20), failed_runs=frozenset({"run-crashed"})))
    assert d.send_date == S and not d.kept
    d = decision(run([existing], date(2025, 5, 20), failed_runs=frozenset({"run-other"})))
    assert d.send_date == date(2025, 5, 29) and d.kept


def test_kept_placement_status_is_re_evaluated() -> None:
    # a TX birthday rule is added to the config: the kept date is now excluded
    config = Config(window_rules=(WindowRule("TX", BIRTHDAY, 0, 10, 30),))  # 2025-05-11..2025-06-20
    d = decision(run([row(send=date(2025, 5, 29))], date(2025, 5, 20), config=config))
    assert d.send_date == date(2025, 5, 29) and d.kept
    assert d.status == SKIPPED and d.skip_reason == "TX birthday window 2025-05-11..2025-06-20"
    # and a skipped row whose date is no longer excluded becomes pre-scheduled, same date
    d = decision(run([row(send=date(2025, 5, 29), status=SKIPPED)], date(2025, 5, 20)))
    assert d.send_date == date(2025, 5, 29) and d.status == PRE_SCHEDULED and d.skip_reason is None


# --- legacy rows without a key ------------------------------------------------------------------


def test_owned_legacy_row_is_adopted_and_placed_afresh() -> None:
    legacy = row(id_=9, send=date(2025, 5, 25), key=None, ideal=None, event_year=2025)
    plan = run([legacy], date(2025, 5, 20))
    d = decision(plan)
    assert d.existing_row_id == 9 and d.send_date == S and not d.kept
    assert 9 not in plan.deletes


def test_owned_legacy_row_of_another_year_is_not_adopted_and_is_removed() -> None:
    legacy = row(id_=9, send=date(2025, 5, 25), key=None, ideal=None, event_year=2019)
    plan = run([legacy], date(2025, 5, 20))
    d = decision(plan)
    assert d.existing_row_id is None
    assert plan.deletes == (9,)


@pytest.mark.parametrize(
    "status", ["sent", "SENT", "Delivered", "scheduled", "processing", "accepted"]
)
def test_legacy_sent_like_row_of_same_type_and_year_means_already_handled(status: str) -> None:
    legacy = row(
        id_=3,
        send=date(2025, 5, 20),
        status=status,
        key=None,
        ideal=None,
        event_year=2025,
        email_type="BIRTHDAY",
    )
    plan = run([legacy], date(2025, 5, 20))
    assert all(d.occurrence.key != KEY for d in plan.decisions)
    assert [n.occurrence.key for n in plan.not_written] == [KEY]
    assert plan.deletes == ()


def test_legacy_sent_row_of_another_year_does_not_stop_this_year() -> None:
    legacy = row(
        id_=3,
        send=date(2024, 5, 27),
        status="SENT",
        key=None,
        ideal=None,
        event_year=2024,
        email_type="BIRTHDAY",
    )
    d = decision(run([legacy], date(2025, 5, 20)))
    assert d.send_date == S and d.status == PRE_SCHEDULED


def test_legacy_failed_row_does_not_count_as_handled() -> None:
    legacy = row(
        id_=3,
        send=date(2025, 5, 27),
        status="FAILED",
        key=None,
        ideal=None,
        event_year=2025,
        email_type="BIRTHDAY",
    )
    d = decision(run([legacy], date(2025, 5, 20)))
    assert d.send_date == S


# CA born 1955-05-01: post-window email 2025-07-01 (key 1:post_window:2025-06-30),
# in play as of 2025-06-25
CA = Contact(1, "pat@example.com", "CA", date(1955, 5, 1), None)
PW_KEY = "1:post_window:2025-06-30"


@pytest.mark.parametrize(
    ("sent_on", "handled"),
    [
        (date(2025, 7, 1), True),
        (date(2025, 7, 31), True),  # 30 days after the ideal date
        (date(2025, 6, 1), True),  # 30 days before
        (date(2025, 8, 1), False),  # 31 days
        (date(2025, 5, 31), False),
    ],
)
def test_legacy_post_window_row_without_event_year_within_30_days(
    sent_on: date, handled: bool
) -> None:
    legacy = ExistingRow(4, "POST_WINDOW_BIRTHDAY", sent_on, "delivered", None, None, None)
    plan = run([legacy], date(2025, 6, 25), contact=CA)
    keys = {d.occurrence.key for d in plan.decisions}
    assert (PW_KEY not in keys) == handled
    assert ([n.occurrence.key for n in plan.not_written] == [PW_KEY]) == handled


# --- keyed rows in a status the scheduler does not own ----------------------------------------


@pytest.mark.parametrize(
    "status",
    [
        "sent",
        "scheduled",
        "processing",
        "delivered",
        "failed",
        "bounced",
        "SKIPPED",
        "Pre-Scheduled",
        "on-hold",
    ],
)
def test_keyed_row_in_non_owned_status_is_not_written(status: str) -> None:
    existing = row(id_=11, send=date(2025, 5, 27), status=status)
    plan = run([existing], date(2025, 5, 20))
    assert all(d.occurrence.key != KEY for d in plan.decisions)
    assert len(plan.not_written) == 1 and plan.not_written[0].occurrence.key == KEY
    assert status in plan.not_written[0].reason
    assert plan.deletes == ()


# --- stale owned rows ---------------------------------------------------------------------------


def test_unclaimed_owned_rows_in_range_are_deleted_others_stay() -> None:
    t = date(2025, 5, 20)  # range 2025-05-20..2025-06-19
    rows = [
        row(id_=1, send=date(2025, 5, 27)),  # claimed by the birthday email
        row(
            id_=2,
            send=date(2025, 6, 1),
            key="1:birthday:2019",
            ideal=date(2019, 5, 27),
            event_year=2019,
        ),
        row(
            id_=3, send=date(2025, 6, 19), key="1:aep:2019-09-15", status=SKIPPED, email_type="aep"
        ),
        row(
            id_=4, send=date(2025, 6, 20), key="1:aep:2018-09-15", email_type="aep"
        ),  # beyond range
        row(id_=5, send=date(2025, 5, 19), key="1:aep:2017-09-15", email_type="aep"),  # before T
        row(id_=6, send=date(2025, 6, 1), key="1:aep:2016-09-15", status="sent", email_type="aep"),
    ]
    plan = run(rows, t)
    assert sorted(plan.deletes) == [2, 3]
    assert decision(plan).existing_row_id == 1


def test_deterministic() -> None:
    rows = [row(id_=2, send=date(2025, 6, 1), key="1:birthday:2019", ideal=None, event_year=2019)]
    assert run(rows, date(2025, 5, 29)) == run(rows, date(2025, 5, 29))


def test_frequency_budget_counts_rows_that_stay() -> None:
    t = date(2025, 5, 20)
    rows = [
        row(id_=1, send=date(2025, 5, 29)),  # kept placement of the birthday email
        row(id_=2, send=date(2025, 5, 22), status="sent", key="1:aep:2024-09-15", email_type="aep"),
        row(
            id_=3, send=date(2025, 5, 23), status="failed", key="1:aep:2023-09-15", email_type="aep"
        ),
        row(id_=4, send=date(2025, 6, 1), key="1:birthday:2019", event_year=2019),  # deleted
        row(
            id_=5,
            send=date(2025, 5, 24),
            status="delivered",
            key="1:followup:x",
            email_type="followup_1_cold",
        ),  # follow-ups do not count
        row(id_=6, send=date(2025, 8, 1), key="1:post_window:2019-01-01", email_type="post_window"),
        row(
            id_=7, send=date(2025, 5, 25), status=SKIPPED, key="1:aep:2022-09-15", email_type="aep"
        ),
    ]
    plan = run(rows, t)
    assert plan.deletes == (4, 7)
    assert plan.fixed_counted_dates == (date(2025, 5, 22), date(2025, 5, 29), date(2025, 8, 1))


def test_new_placement_is_not_in_the_fixed_budget() -> None:
    plan = run([row(send=date(2025, 5, 29), ideal=None)], date(2025, 5, 20))
    d = decision(plan)
    assert d.newly_placed and d.send_date == S
    assert plan.fixed_counted_dates == ()


def test_sms_template_only_with_a_phone_number() -> None:
    with_phone = Contact(
        1, "pat@example.com", "TX", date(1950, 6, 10), None, phone_number="555-0100"
    )
    blank_phone = Contact(1, "pat@example.com", "TX", date(1950, 6, 10), None, phone_number="  ")
    occ = decision(run([], date(2025, 5, 20), contact=with_phone)).occurrence
    assert (occ.email_template, occ.sms_template) == ("birthday_standard_v1", "birthday_sms_v1")
    occ = decision(run([], date(2025, 5, 20), contact=blank_phone)).occurrence
    assert (occ.email_template, occ.sms_template) == ("birthday_standard_v1", None)
