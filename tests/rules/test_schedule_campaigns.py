"""SPEC sections 5-9, campaigns through ``schedule_contact``: what a sweep decides for a
contact's campaign targets (the pure campaign functions are tested in test_campaign.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from types import MappingProxyType

import pytest

from rules.campaign import (
    CAMPAIGN_CONFLICT_REASON,
    CampaignBook,
    CampaignInstance,
    CampaignTarget,
    campaign_key,
)
from rules.config import BIRTHDAY, DEFAULT_CONFIG, CampaignType, Config, WindowRule
from rules.contact import Contact, ContactRecord, validate_contact
from rules.contact_schedule import ContactSchedule, Decision, ExistingRow, schedule_contact
from rules.placement import Horizon
from rules.statuses import PRE_SCHEDULED, SKIPPED
from tests.builders import (
    PAUSED,
    PLAN_NEWS,
    RATE_INCREASE,
    REGULATORY,
    TX,
    TX_PHONE,
    WELCOME,
    campaign_types,
    instance,
    make_contact,
    schedule_on,
    target,
)

# TX (tests.builders) has no windows; no birth or effective date: only campaign emails (AEP
# 2025-09-15 is outside every range used below unless said so).
NY = make_contact("NY", date(1950, 6, 1))
# CA born 1955-05-01: birthday window 2025-01-31..2025-06-30 (SPEC section 4 example).
CA = make_contact("CA", date(1955, 5, 1))

ANNUAL_REVIEW = CampaignType("annual_review", target_all_contacts=True, priority=7)
ALL_TYPES = (RATE_INCREASE, REGULATORY, WELCOME, PLAN_NEWS, ANNUAL_REVIEW, PAUSED)


def book(*instances: CampaignInstance, types: Sequence[CampaignType] = ALL_TYPES) -> CampaignBook:
    return CampaignBook(campaign_types(*types), tuple(instances))


def run(
    as_of: date,
    instances: Sequence[CampaignInstance],
    targets: Sequence[CampaignTarget],
    contact: Contact = TX,
    rows: Sequence[ExistingRow] = (),
    config: Config = DEFAULT_CONFIG,
) -> ContactSchedule:
    return schedule_on(
        as_of, contact, rows, campaigns=book(*instances), targets=targets, config=config
    )


def campaign_decisions(plan: ContactSchedule) -> list[Decision]:
    return [d for d in plan.decisions if d.occurrence.email_type.startswith("campaign_")]


def decision(plan: ContactSchedule, key: str) -> Decision:
    found = [d for d in plan.decisions if d.occurrence.key == key]
    assert len(found) == 1, plan.decisions
    return found[0]


# --- two instances of one type in one year ---------------------------------------------------


def test_rate_increase_q1_and_q2_instances_are_both_scheduled() -> None:
    q1 = instance(1, start=date(2025, 1, 1), end=date(2025, 3, 31))
    q2 = instance(2, start=date(2025, 4, 1), end=date(2025, 6, 30))
    # 14 days before their triggers: 2025-03-27 (Q1) and 2025-04-06 (Q2), both in range
    plan = run(
        date(2025, 3, 20), [q1, q2], [target(1, date(2025, 4, 10)), target(2, date(2025, 4, 20))]
    )
    got = [
        (
            d.occurrence.key,
            d.send_date,
            d.status,
            d.occurrence.campaign_instance_id,
            d.occurrence.email_type,
            d.occurrence.event_date.year,
        )
        for d in campaign_decisions(plan)
    ]
    assert got == [
        (
            "42:campaign:1:2025-04-10",
            date(2025, 3, 27),
            PRE_SCHEDULED,
            1,
            "campaign_rate_increase",
            2025,
        ),
        (
            "42:campaign:2:2025-04-20",
            date(2025, 4, 6),
            PRE_SCHEDULED,
            2,
            "campaign_rate_increase",
            2025,
        ),
    ]
    assert all(d.occurrence.priority == 4 for d in campaign_decisions(plan))
    assert plan.deletes == () and plan.not_written == ()


# --- exclusion windows --------------------------------------------------------------------------


def test_regulatory_notice_goes_out_in_a_year_round_state_other_campaign_is_skipped() -> None:
    t = date(2025, 3, 20)
    notice = instance(3, "regulatory_notice", email="notice_v1", sms=None)
    news = instance(5, "plan_news", email="news_v1", sms=None)
    day = date(2025, 3, 25)
    plan = run(t, [notice, news], [target(3, day), target(5, day)], contact=NY)
    got = {
        d.occurrence.key: (d.send_date, d.status, d.skip_reason) for d in campaign_decisions(plan)
    }
    assert got == {
        campaign_key(42, 3, day): (day, PRE_SCHEDULED, None),
        campaign_key(42, 5, day): (day, SKIPPED, "NY year-round"),
    }
    # a year-round state has no "after": no post-window email
    assert not any(d.occurrence.email_type == "post_window" for d in plan.decisions)


def test_regulatory_notice_goes_out_in_a_birthday_window_without_post_window() -> None:
    notice = instance(3, "regulatory_notice", email="notice_v1", sms=None)
    # T = 2025-05-10: range 2025-05-10..2025-06-09; the CA window 2025-01-31..2025-06-30
    plan = run(date(2025, 5, 10), [notice], [target(3, date(2025, 5, 20))], contact=CA)
    d = decision(plan, "42:campaign:3:2025-05-20")
    assert (d.send_date, d.status, d.skip_reason) == (date(2025, 5, 20), PRE_SCHEDULED, None)
    # the window blocks anyway (birthday 2025 ideal 2025-04-17 is in it), but the
    # post-window email 2025-07-01 is beyond the range and no skip materializes it
    assert [x.occurrence.key for x in plan.decisions] == ["42:campaign:3:2025-05-20"]


def test_window_respecting_campaign_in_ca_birthday_window_is_skipped_with_post_window() -> None:
    news = instance(5, "plan_news", email="news_v1", sms=None)
    plan = run(date(2025, 5, 10), [news], [target(5, date(2025, 5, 20))], contact=CA)
    d = decision(plan, "42:campaign:5:2025-05-20")
    assert (d.send_date, d.status, d.skip_reason) == (
        date(2025, 5, 20),
        SKIPPED,
        "CA birthday window 2025-01-31..2025-06-30",
    )
    # the skip materializes the window's post-window email, though it is beyond the range
    pw = decision(plan, "42:post_window:2025-06-30")
    assert (pw.send_date, pw.status, pw.occurrence.email_type) == (
        date(2025, 7, 1),
        PRE_SCHEDULED,
        "post_window",
    )


# CA rule without pre-window: the window is [birthday, birthday + 30]. The birthday email
# (14 days before) is never inside, and AEP (09-15) neither: only a campaign can make it block.
SHORT_CA = Config(window_rules=(WindowRule("CA", BIRTHDAY, 0, 30, 0),))


def test_window_that_only_a_campaign_makes_block_yields_a_post_window_email() -> None:
    news = instance(5, "plan_news", email="news_v1", sms=None)
    t = date(2025, 5, 10)  # window 2025-05-01..2025-05-31
    plan = run(t, [news], [target(5, date(2025, 5, 20))], contact=CA, config=SHORT_CA)
    d = decision(plan, "42:campaign:5:2025-05-20")
    assert d.status == SKIPPED and d.skip_reason == "CA birthday window 2025-05-01..2025-05-31"
    pw = decision(plan, "42:post_window:2025-05-31")
    assert (pw.send_date, pw.status) == (date(2025, 6, 1), PRE_SCHEDULED)
    # without the campaign the window does not block: no post-window email
    plain = run(t, [], [], contact=CA, config=SHORT_CA)
    assert not any(x.occurrence.email_type == "post_window" for x in plain.decisions)
    # a regulatory notice in the window does not make it block either
    notice = instance(3, "regulatory_notice", email="notice_v1", sms=None)
    plan = run(t, [notice], [target(3, date(2025, 5, 20))], contact=CA, config=SHORT_CA)
    assert decision(plan, "42:campaign:3:2025-05-20").status == PRE_SCHEDULED
    assert not any(x.occurrence.email_type == "post_window" for x in plan.decisions)


def test_post_window_of_a_campaign_only_window_is_in_play_after_the_window() -> None:
    # the window blocks because of the campaign: its post-window email is in play in a
    # sweep whose range holds 2025-06-01, with no skip in this sweep
    news = instance(5, "plan_news", email="news_v1", sms=None)
    plan = run(
        date(2025, 5, 28), [news], [target(5, date(2025, 5, 20))], contact=CA, config=SHORT_CA
    )
    pw = decision(plan, "42:post_window:2025-05-31")
    assert (pw.send_date, pw.status) == (date(2025, 6, 1), PRE_SCHEDULED)


# --- campaign conflicts ----------------------------------------------------------------------


def test_campaign_conflict_lower_priority_number_wins() -> None:
    day = date(2025, 3, 25)
    rate = instance(1)  # priority 4, trigger 14 days after the send day
    news = instance(5, "plan_news", email="news_v1", sms=None)  # priority 2
    plan = run(
        date(2025, 3, 20), [rate, news], [target(1, day + timedelta(days=14)), target(5, day)]
    )
    got = {d.occurrence.key: (d.send_date, d.status, d.skip_reason) for d in plan.decisions}
    assert got == {
        "42:campaign:1:2025-04-08": (day, SKIPPED, CAMPAIGN_CONFLICT_REASON),
        "42:campaign:5:2025-03-25": (day, PRE_SCHEDULED, None),
    }


def test_campaign_conflict_tie_lower_instance_id_wins() -> None:
    day = date(2025, 3, 25)
    trigger = day + timedelta(days=14)
    plan = run(
        date(2025, 3, 20), [instance(7), instance(3)], [target(7, trigger), target(3, trigger)]
    )
    got = {d.occurrence.key: (d.status, d.skip_reason) for d in plan.decisions}
    assert got == {
        "42:campaign:3:2025-04-08": (PRE_SCHEDULED, None),
        "42:campaign:7:2025-04-08": (SKIPPED, CAMPAIGN_CONFLICT_REASON),
    }


def test_campaigns_on_different_days_do_not_conflict() -> None:
    news = instance(5, "plan_news", email="news_v1", sms=None)
    plan = run(
        date(2025, 3, 20),
        [instance(1), news],
        [target(1, date(2025, 4, 9)), target(5, date(2025, 3, 25))],
    )
    assert {d.status for d in plan.decisions} == {PRE_SCHEDULED}
    assert len(plan.decisions) == 2


@pytest.mark.parametrize(
    ("status", "offset"), [("sent", 0), ("Delivered", 0), ("scheduled", 5), ("processing", 0)]
)
def test_campaign_row_held_by_the_sending_side_beats_a_pre_scheduled_one(
    status: str, offset: int
) -> None:
    t = date(2025, 3, 20)
    day = t + timedelta(days=offset)
    # instance 9 of the least important kind (priority 10) is already with the sending side
    held = ExistingRow(
        77,
        "campaign_promo",
        day,
        status,
        occurrence_key=f"42:campaign:9:{day.isoformat()}",
        ideal_send_date=day,
        priority=10,
        campaign_instance_id=9,
    )
    notice = instance(3, "regulatory_notice", email="notice_v1", sms=None)  # priority 1
    plan = run(t, [notice], [target(3, day)], rows=[held])
    d = decision(plan, campaign_key(42, 3, day))
    assert (d.send_date, d.status, d.skip_reason) == (day, SKIPPED, CAMPAIGN_CONFLICT_REASON)
    assert plan.deletes == ()
    assert all(x.existing_row_id != 77 for x in plan.decisions)
    # the same notice without the held row goes out
    alone = decision(run(t, [notice], [target(3, day)]), campaign_key(42, 3, day))
    assert alone.status == PRE_SCHEDULED


def test_failed_campaign_row_on_the_day_does_not_compete() -> None:
    t = date(2025, 3, 20)
    failed = ExistingRow(
        77, "campaign_promo", t, "failed", "42:campaign:9:2025-03-20", t, priority=10
    )
    notice = instance(3, "regulatory_notice", email="notice_v1", sms=None)
    d = decision(run(t, [notice], [target(3, t)], rows=[failed]), campaign_key(42, 3, t))
    assert d.status == PRE_SCHEDULED


# --- trigger dates -----------------------------------------------------------------------------


def test_negative_days_before_event_sends_after_the_trigger() -> None:
    welcome = instance(4, "welcome", email="welcome_v1", sms=None)
    # the trigger (2025-03-01) has passed as of 2025-03-05; the email is due 7 days after it
    plan = run(date(2025, 3, 5), [welcome], [target(4, date(2025, 3, 1))])
    d = decision(plan, "42:campaign:4:2025-03-01")
    assert d.occurrence.event_date == date(2025, 3, 1)
    assert d.send_date == date(2025, 3, 8) and d.status == PRE_SCHEDULED
    assert not d.catch_up


def test_target_without_trigger_date_goes_out_on_the_start_date() -> None:
    inst = instance(1, start=date(2025, 3, 1), end=date(2025, 3, 31))
    plan = run(date(2025, 2, 20), [inst], [target(1, None)])
    (d,) = campaign_decisions(plan)
    assert d.send_date == date(2025, 3, 1)
    assert d.occurrence.key == "42:campaign:1:2025-03-15"  # start + 14 days before event
    assert d.occurrence.event_date == date(2025, 3, 15)
    assert plan.warnings == ()


def test_target_without_trigger_date_nor_start_is_reported_and_ignored() -> None:
    plan = run(date(2025, 2, 20), [instance(9)], [target(9, None)])
    assert plan.decisions == ()
    assert any("instance 9" in w and "contact 42" in w for w in plan.warnings)


@pytest.mark.parametrize("status", ["cancelled", "CANCELLED", " Canceled "])
def test_cancelled_target_gives_nothing(status: str) -> None:
    plan = run(date(2025, 3, 20), [instance(1)], [target(1, date(2025, 4, 10), status)])
    assert plan.decisions == () and plan.not_written == ()


def test_inactive_type_gives_nothing() -> None:
    paused = instance(6, "paused_promo", email="promo_v1", sms=None)
    plan = run(date(2025, 3, 20), [paused], [target(6, date(2025, 3, 25))])
    assert plan.decisions == ()


def test_ideal_date_outside_the_instance_dates_gives_nothing() -> None:
    inst = instance(1, start=date(2025, 3, 25), end=date(2025, 4, 5))
    t = date(2025, 3, 20)  # range 2025-03-20..2025-04-19: every ideal date below is in it
    before = run(t, [inst], [target(1, date(2025, 4, 7))])  # ideal 2025-03-24
    after = run(t, [inst], [target(1, date(2025, 4, 20))])  # ideal 2025-04-06
    assert before.decisions == () and after.decisions == ()
    first = run(t, [inst], [target(1, date(2025, 4, 8))])  # ideal 2025-03-25: the start
    last = run(t, [inst], [target(1, date(2025, 4, 19))])  # ideal 2025-04-05: the end
    assert [d.send_date for d in first.decisions] == [date(2025, 3, 25)]
    assert [d.send_date for d in last.decisions] == [date(2025, 4, 5)]


def test_target_all_contacts_type_gives_every_valid_contact_the_default() -> None:
    review = instance(8, "annual_review", start=date(2025, 10, 1), email="review_v1", sms=None)
    records = [
        ContactRecord(1, "a@example.com", "75201", None, None, None),
        ContactRecord(2, "b@example.com", "10001", None, None, None),  # NY: year-round
        ContactRecord(3, "c@example.com", "78701", None, "1950-12-01", None),
        ContactRecord(4, "no-at-sign", "75201", None, None, None),  # invalid
    ]
    t = date(2025, 9, 25)
    got = {}
    for record in records:
        contact = validate_contact(record)
        plan = schedule_contact(
            contact, [], DEFAULT_CONFIG, Horizon(t), campaigns=book(review), targets=()
        )
        got[record.id] = [
            (d.occurrence.key, d.send_date, d.status, d.skip_reason)
            for d in campaign_decisions(plan)
        ]
    assert got == {
        1: [("1:campaign:8:2025-10-01", date(2025, 10, 1), PRE_SCHEDULED, None)],
        2: [("2:campaign:8:2025-10-01", date(2025, 10, 1), SKIPPED, "NY year-round")],
        3: [("3:campaign:8:2025-10-01", date(2025, 10, 1), PRE_SCHEDULED, None)],
        4: [],
    }


def test_target_all_contacts_own_target_row_replaces_the_default() -> None:
    review = instance(8, "annual_review", start=date(2025, 10, 1), email="review_v1", sms=None)
    t = date(2025, 9, 25)
    own = run(t, [review], [target(8, date(2025, 10, 6))])
    assert [d.occurrence.key for d in own.decisions] == ["42:campaign:8:2025-10-06"]
    cancelled = run(t, [review], [target(8, None, "cancelled")])
    assert cancelled.decisions == ()


# --- templates -------------------------------------------------------------------------------


def test_templates_come_from_the_instance_sms_only_with_a_phone() -> None:
    t = date(2025, 3, 20)
    targets = [target(1, date(2025, 4, 10))]
    (no_phone,) = run(t, [instance(1)], targets).decisions
    (phone,) = run(t, [instance(1)], targets, contact=TX_PHONE).decisions
    assert (no_phone.occurrence.email_template, no_phone.occurrence.sms_template) == (
        "rate_increase_v1",
        None,
    )
    assert (phone.occurrence.email_template, phone.occurrence.sms_template) == (
        "rate_increase_v1",
        "rate_increase_sms_v1",
    )


def test_instance_without_templates_falls_back_to_the_config() -> None:
    config = Config(
        email_templates=MappingProxyType({"campaign_rate_increase": "ri_default_v1"}),
        sms_templates=MappingProxyType({"campaign_rate_increase": "ri_default_sms_v1"}),
    )
    bare = instance(1, email=None, sms=None)
    (d,) = run(
        date(2025, 3, 20), [bare], [target(1, date(2025, 4, 10))], contact=TX_PHONE, config=config
    ).decisions
    assert (d.occurrence.email_template, d.occurrence.sms_template) == (
        "ri_default_v1",
        "ri_default_sms_v1",
    )


# --- rows of targets that went away -----------------------------------------------------------


def test_pre_scheduled_row_of_a_cancelled_target_is_deleted() -> None:
    t = date(2025, 3, 20)
    key = "42:campaign:1:2025-04-10"
    pending = ExistingRow(
        31,
        "campaign_rate_increase",
        date(2025, 3, 27),
        PRE_SCHEDULED,
        occurrence_key=key,
        ideal_send_date=date(2025, 3, 27),
        event_year=2025,
        placed_run_id="run-1",
        priority=4,
        campaign_instance_id=1,
    )
    # while the target stands, the row is kept
    kept = run(t, [instance(1)], [target(1, date(2025, 4, 10))], rows=[pending])
    d = decision(kept, key)
    assert d.existing_row_id == 31 and d.kept and kept.deletes == ()
    # once cancelled, it is removed
    plan = run(t, [instance(1)], [target(1, date(2025, 4, 10), "cancelled")], rows=[pending])
    assert plan.deletes == (31,)
    assert plan.decisions == ()


def test_row_of_a_cancelled_target_held_by_the_sending_side_stays() -> None:
    t = date(2025, 3, 20)
    held = ExistingRow(
        31,
        "campaign_rate_increase",
        date(2025, 3, 27),
        "scheduled",
        occurrence_key="42:campaign:1:2025-04-10",
        ideal_send_date=date(2025, 3, 27),
        priority=4,
        campaign_instance_id=1,
    )
    plan = run(t, [instance(1)], [target(1, date(2025, 4, 10), "cancelled")], rows=[held])
    assert plan.deletes == () and plan.decisions == ()


def test_pre_scheduled_row_of_a_paused_type_is_deleted() -> None:
    t = date(2025, 3, 20)
    pending = ExistingRow(
        32,
        "campaign_paused_promo",
        date(2025, 3, 25),
        PRE_SCHEDULED,
        occurrence_key="42:campaign:6:2025-03-25",
        ideal_send_date=date(2025, 3, 25),
        campaign_instance_id=6,
    )
    paused = instance(6, "paused_promo", email="promo_v1", sms=None)
    plan = run(t, [paused], [target(6, date(2025, 3, 25))], rows=[pending])
    assert plan.deletes == (32,) and plan.decisions == ()
