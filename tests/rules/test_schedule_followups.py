"""SPEC sections 5, 8 and 9, follow-ups through ``schedule_contact``: which follow-up a
contact gets after an initial email, when, and what a sweep does with follow-up rows
already stored (the pure follow-up functions are tested in test_followup.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, time, timedelta

import pytest

from rules.campaign import CampaignBook, CampaignInstance, CampaignTarget
from rules.config import DEFAULT_CONFIG, CampaignType, Config
from rules.contact import Contact
from rules.contact_schedule import ContactSchedule, Decision, ExistingRow
from rules.followup import (
    FOLLOWUP_CLICKED,
    FOLLOWUP_COLD,
    FOLLOWUP_CONDITIONS,
    FOLLOWUP_HEALTHY,
    NO_BEHAVIOUR,
    Behaviour,
    Click,
    HealthAnswer,
)
from rules.statuses import PRE_SCHEDULED, SKIPPED
from tests.builders import (
    FU_KEY,
    INITIAL_KEY,
    PLAN_NEWS,
    RATE_INCREASE,
    REGULATORY,
    SENT_AT,
    TX,
    TX_PHONE,
    T,
    answer,
    as_stored,
    campaign_types,
    followup_row,
    initial_row,
    make_contact,
    schedule_on,
    target,
)

# The initial email (``initial_row()``): a birthday email sent on 2025-06-05 at 08:31 (its
# event 2025-06-19); T = 2025-06-10.
# The contact: TX (tests.builders) has no windows; no dates of its own, so the only emails
# are follow-ups.

# sent through windows (a notice) but followed up: its follow-up respects the windows
PLAN_CHANGE = CampaignType("plan_change", respect_exclusion_windows=False, priority=3)
TYPES = campaign_types(RATE_INCREASE, REGULATORY, PLAN_CHANGE, PLAN_NEWS)


def run(
    rows: Sequence[ExistingRow],
    as_of: date = T,
    behaviour: Behaviour = NO_BEHAVIOUR,
    contact: Contact = TX,
    instances: Sequence[CampaignInstance] = (),
    targets: Sequence[CampaignTarget] = (),
    config: Config = DEFAULT_CONFIG,
) -> ContactSchedule:
    return schedule_on(
        as_of,
        contact,
        rows,
        campaigns=CampaignBook(TYPES, tuple(instances)),
        targets=targets,
        behaviour=behaviour,
        config=config,
    )


def followups(plan: ContactSchedule) -> list[Decision]:
    return [d for d in plan.decisions if d.occurrence.is_followup]


def the_followup(plan: ContactSchedule) -> Decision:
    found = followups(plan)
    assert len(found) == 1, plan.decisions
    return found[0]


def meta(d: Decision) -> dict[str, object]:
    assert d.occurrence.metadata is not None
    data = json.loads(d.occurrence.metadata)
    assert isinstance(data, dict)
    return data


AFTER = datetime(2025, 6, 6, 10, 0)


# --- the type the contact's behaviour earns -------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "kind", "template"),
    [
        (Behaviour(), FOLLOWUP_COLD, "followup_cold_v1"),
        (Behaviour(clicks=(Click(AFTER),)), FOLLOWUP_CLICKED, "followup_clicked_v1"),
        (
            Behaviour(
                clicks=(Click(AFTER),),
                answers=(answer(AFTER, has_medical_conditions=False, main_questions_yes_count=0),),
            ),
            FOLLOWUP_HEALTHY,
            "followup_healthy_v1",
        ),
        (
            Behaviour(answers=(answer(AFTER, has_medical_conditions=True),)),
            FOLLOWUP_CONDITIONS,
            "followup_conditions_v1",
        ),
        (
            Behaviour(
                answers=(
                    answer(AFTER, has_medical_conditions=False, main_questions_yes_count=0),
                    answer(AFTER + timedelta(days=1), main_questions_yes_count=2),
                )
            ),
            FOLLOWUP_CONDITIONS,
            "followup_conditions_v1",
        ),
    ],
)
def test_type_from_behaviour(behaviour: Behaviour, kind: str, template: str) -> None:
    plan = run([initial_row()], behaviour=behaviour)
    d = the_followup(plan)
    assert d.occurrence.email_type == kind
    assert d.occurrence.email_template == template
    assert (d.occurrence.key, d.send_date, d.status) == (FU_KEY, date(2025, 6, 11), PRE_SCHEDULED)
    assert meta(d)["followup_type"] == kind
    assert plan.warnings == ()


@pytest.mark.parametrize("metadata", ["{not json", "[1, 2]", None])
def test_malformed_answer_metadata_counts_as_no_condition_and_is_reported(
    metadata: str | None,
) -> None:
    plan = run([initial_row()], behaviour=Behaviour(answers=(HealthAnswer(AFTER, metadata),)))
    assert the_followup(plan).occurrence.email_type == FOLLOWUP_HEALTHY
    assert len(plan.warnings) == 1
    assert plan.warnings[0].startswith("contact 42:") and "without a condition" in plan.warnings[0]


def test_malformed_answer_before_the_initial_is_not_reported() -> None:
    early = HealthAnswer(datetime(2025, 6, 1), "{not json")
    plan = run([initial_row()], behaviour=Behaviour(answers=(early,)))
    assert the_followup(plan).occurrence.email_type == FOLLOWUP_COLD
    assert plan.warnings == ()


def test_behaviour_before_the_initial_send_time_does_not_count() -> None:
    a_minute_before = SENT_AT - timedelta(minutes=1)
    behaviour = Behaviour(
        clicks=(Click(a_minute_before),),
        answers=(answer(datetime(2025, 6, 4, 12), has_medical_conditions=True),),
    )
    d = the_followup(run([initial_row()], behaviour=behaviour))
    assert d.occurrence.email_type == FOLLOWUP_COLD
    assert meta(d)["behaviour"] == {
        "clicks": 0,
        "health_answers": 0,
        "health_answers_with_condition": 0,
        "decided_by": "no click or health answer since the initial email",
    }
    # a click at the send time itself counts
    d = the_followup(run([initial_row()], behaviour=Behaviour(clicks=(Click(SENT_AT),))))
    assert d.occurrence.email_type == FOLLOWUP_CLICKED


def test_without_actual_send_time_the_scheduled_send_time_is_the_initial_moment() -> None:
    legacy = replace(initial_row(), actual_send_at=None)  # scheduled 2025-06-05 at 08:30
    before = Behaviour(clicks=(Click(datetime(2025, 6, 5, 8, 29)),))
    at = Behaviour(clicks=(Click(datetime(2025, 6, 5, 8, 30)),))
    assert the_followup(run([legacy], behaviour=before)).occurrence.email_type == FOLLOWUP_COLD
    assert the_followup(run([legacy], behaviour=at)).occurrence.email_type == FOLLOWUP_CLICKED


# --- when it goes out ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent_on", "ideal", "placed"),
    [
        (date(2025, 6, 10), date(2025, 6, 12), date(2025, 6, 12)),  # sent today: in 2 days
        (date(2025, 6, 8), date(2025, 6, 10), date(2025, 6, 10)),  # ideal is today: today
        (date(2025, 6, 7), date(2025, 6, 9), date(2025, 6, 11)),  # ideal passed: tomorrow
        (date(2025, 5, 6), date(2025, 5, 8), date(2025, 6, 11)),  # T - 35: tomorrow
    ],
)
def test_ideal_is_send_plus_two_or_tomorrow_once_passed(
    sent_on: date, ideal: date, placed: date
) -> None:
    sent_at = datetime.combine(sent_on, time(8, 31))
    d = the_followup(run([initial_row(sent_at=sent_at)]))
    assert d.occurrence.ideal_send_date == ideal
    assert d.send_date == placed and d.status == PRE_SCHEDULED


def test_initial_older_than_35_days_gets_none() -> None:
    plan = run([initial_row(sent_at=datetime(2025, 5, 5, 8, 31))])  # T - 36
    assert followups(plan) == [] and plan.not_written == ()


@pytest.mark.parametrize("status", ["scheduled", "pre-scheduled", "failed", "bounced", "skipped"])
def test_only_sent_or_delivered_initials_get_one(status: str) -> None:
    assert followups(run([initial_row(status=status)])) == []
    assert len(followups(run([initial_row(status="DELIVERED")]))) == 1


def test_initial_dated_after_t_gets_none() -> None:
    assert followups(run([initial_row(sent_at=datetime(2025, 6, 11, 8, 31))])) == []


# --- key, metadata, inheritance ----------------------------------------------------------------


def test_key_and_metadata_name_the_initial_and_the_behaviour() -> None:
    behaviour = Behaviour(clicks=(Click(datetime(2025, 6, 7, 9)), Click(AFTER)))
    d = the_followup(run([initial_row()], behaviour=behaviour))
    assert d.occurrence.key == FU_KEY
    data = meta(d)
    assert data["initial_key"] == INITIAL_KEY
    assert data["initial_type"] == "birthday"
    assert data["initial_row_id"] == 100
    assert data["followup_type"] == FOLLOWUP_CLICKED
    assert data["behaviour"] == {
        "clicks": 2,
        "health_answers": 0,
        "health_answers_with_condition": 0,
        "decided_by": "click",
        "decided_at": "2025-06-06T10:00:00",
    }
    assert d.occurrence.event_date == date(2025, 6, 19)  # the parent's


def test_legacy_initial_without_key_is_named_by_its_row_id() -> None:
    legacy = initial_row(7, email_type="BIRTHDAY", status="SENT", key=None, priority=None)
    d = the_followup(run([legacy]))
    assert d.occurrence.key == "42:followup:row7"
    data = meta(d)
    assert data["initial_key"] is None and data["initial_row_id"] == 7
    assert data["initial_type"] == "birthday"
    assert d.occurrence.priority == 5  # the configured birthday priority


def test_legacy_post_window_initial_takes_post_window_priority() -> None:
    legacy = initial_row(8, email_type="POST_WINDOW_BIRTHDAY", key=None, priority=None)
    d = the_followup(run([legacy]))
    assert d.occurrence.key == "42:followup:row8" and d.occurrence.priority == 8
    assert meta(d)["initial_type"] == "post_window"


def test_priority_and_campaign_instance_are_inherited() -> None:
    parent = initial_row(
        101,
        email_type="campaign_rate_increase",
        status="delivered",
        key="42:campaign:3:2025-06-19",
        priority=4,
        instance_id=3,
    )
    d = the_followup(run([parent], contact=TX_PHONE))
    assert d.occurrence.key == "42:followup:42:campaign:3:2025-06-19"
    assert (d.occurrence.priority, d.occurrence.campaign_instance_id) == (4, 3)
    assert (d.occurrence.email_template, d.occurrence.sms_template) == (
        "followup_cold_v1",
        "followup_cold_sms_v1",
    )
    assert meta(d)["initial_type"] == "campaign_rate_increase"


def test_campaign_of_a_type_without_followups_gets_none() -> None:
    notice = initial_row(
        102,
        email_type="campaign_regulatory_notice",
        key="42:campaign:4:2025-06-05",
        priority=1,
        instance_id=4,
    )
    plan = run([notice])
    assert followups(plan) == [] and plan.not_written == ()


def test_two_initials_get_two_followups() -> None:
    rows = [
        initial_row(),
        initial_row(
            101,
            datetime(2025, 6, 9, 9),
            email_type="campaign_rate_increase",
            key="42:campaign:3:2025-06-23",
            priority=4,
            instance_id=3,
        ),
    ]
    got = sorted((d.occurrence.key, d.send_date) for d in followups(run(rows)))
    assert got == [
        ("42:followup:42:birthday:2025", date(2025, 6, 11)),
        ("42:followup:42:campaign:3:2025-06-23", date(2025, 6, 11)),
    ]


def test_followup_of_a_campaign_takes_no_part_in_campaign_conflicts() -> None:
    parent = initial_row(
        101,
        email_type="campaign_rate_increase",
        key="42:campaign:3:2025-06-19",
        priority=4,
        instance_id=3,
    )
    news = CampaignInstance(5, "plan_news", "news", "news_v1", None, None, None)
    plan = run([parent], instances=[news], targets=[target(5, date(2025, 6, 11))])
    got = {d.occurrence.key: (d.send_date, d.status) for d in plan.decisions}
    assert got == {
        "42:campaign:5:2025-06-11": (date(2025, 6, 11), PRE_SCHEDULED),
        "42:followup:42:campaign:3:2025-06-19": (date(2025, 6, 11), PRE_SCHEDULED),
    }


# --- exclusion windows ------------------------------------------------------------------------


def test_followup_in_an_exclusion_window_is_skipped_without_post_window() -> None:
    # CA born 1955-08-01: birthday window 2025-05-03..2025-09-30; a notice that ignores
    # windows went out on 2025-06-05, its follow-up does not
    ca = make_contact("CA", date(1955, 8, 1))
    notice = initial_row(
        103,
        email_type="campaign_plan_change",
        key="42:campaign:6:2025-06-05",
        priority=3,
        instance_id=6,
        event_date=date(2025, 6, 5),
    )
    plan = run([notice], contact=ca)
    d = the_followup(plan)
    assert (d.send_date, d.status, d.skip_reason) == (
        date(2025, 6, 11),
        SKIPPED,
        "CA birthday window 2025-05-03..2025-09-30",
    )
    # a skip of any other email here would materialize the post-window email of 2025-10-01
    assert [x.occurrence.key for x in plan.decisions] == ["42:followup:42:campaign:6:2025-06-05"]


def test_followup_in_a_year_round_state_is_skipped() -> None:
    ny = make_contact("NY")
    d = the_followup(run([initial_row()], contact=ny))
    assert (d.status, d.skip_reason) == (SKIPPED, "NY year-round")


# --- follow-up rows already stored ----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "send"),
    [
        ("sent", date(2025, 6, 7)),
        ("Delivered", date(2025, 6, 7)),
        ("scheduled", date(2025, 6, 11)),
        ("processing", T),
        ("failed", date(2025, 6, 7)),
    ],
)
def test_followup_row_held_by_the_sending_side_never_changes(status: str, send: date) -> None:
    held = followup_row(status=status, send=send)
    behaviour = Behaviour(answers=(answer(AFTER, has_medical_conditions=True),))
    plan = run([initial_row(), held], behaviour=behaviour)
    assert followups(plan) == []
    assert [n.occurrence.key for n in plan.not_written] == [FU_KEY]
    assert plan.deletes == ()
    assert all(d.existing_row_id != 200 for d in plan.decisions)


@pytest.mark.parametrize("as_of", [T, T + timedelta(days=1)])
def test_decided_followup_fed_back_gives_the_same_single_followup(as_of: date) -> None:
    first = the_followup(run([initial_row()]))
    assert first.send_date == date(2025, 6, 11) and not first.kept
    stored = as_stored(first, 200)
    plan = run([initial_row(), stored], as_of=as_of)
    again = the_followup(plan)
    assert (again.occurrence.key, again.send_date, again.status) == (
        FU_KEY,
        date(2025, 6, 11),
        PRE_SCHEDULED,
    )
    assert again.kept and again.existing_row_id == 200
    assert plan.deletes == ()


def test_fed_back_followup_of_an_initial_sent_today_stays_put_over_the_days() -> None:
    sent_today = initial_row(sent_at=datetime(2025, 6, 10, 8, 31))
    first = the_followup(run([sent_today]))
    assert first.send_date == date(2025, 6, 12)
    rows = [sent_today, as_stored(first, 200)]
    for day in range(3):
        d = the_followup(run(rows, as_of=T + timedelta(days=day)))
        assert (d.send_date, d.existing_row_id) == (date(2025, 6, 12), 200)


def test_pending_followup_is_upgraded_in_place_by_a_new_click() -> None:
    pending = followup_row(email_type=FOLLOWUP_COLD)
    plan = run([initial_row(), pending], behaviour=Behaviour(clicks=(Click(AFTER),)))
    d = the_followup(plan)
    assert (d.occurrence.key, d.existing_row_id, d.occurrence.email_type) == (
        FU_KEY,
        200,
        FOLLOWUP_CLICKED,
    )
    assert d.send_date == date(2025, 6, 11) and d.kept
    assert d.occurrence.email_template == "followup_clicked_v1"
    assert meta(d)["followup_type"] == FOLLOWUP_CLICKED
    assert plan.deletes == ()


def test_pending_followup_is_never_downgraded() -> None:
    pending = followup_row(email_type=FOLLOWUP_HEALTHY)
    plan = run([initial_row(), pending], behaviour=Behaviour(clicks=(Click(AFTER),)))
    d = the_followup(plan)
    assert (d.occurrence.email_type, d.existing_row_id, d.send_date) == (
        FOLLOWUP_HEALTHY,
        200,
        date(2025, 6, 11),
    )
    assert d.occurrence.email_template == "followup_healthy_v1"
    # nothing at all since the initial: still healthy, not cold
    assert the_followup(run([initial_row(), pending])).occurrence.email_type == FOLLOWUP_HEALTHY


def test_pending_followup_of_an_initial_sent_35_days_ago_survives_the_next_sweep() -> None:
    old = initial_row(sent_at=datetime(2025, 5, 6, 8, 31))  # T - 35
    first = the_followup(run([old]))
    assert first.send_date == date(2025, 6, 11)
    tomorrow = T + timedelta(days=1)
    plan = run([old, as_stored(first, 200)], as_of=tomorrow)
    d = the_followup(plan)
    assert (d.send_date, d.status, d.existing_row_id, d.kept) == (
        date(2025, 6, 11),
        PRE_SCHEDULED,
        200,
        True,
    )
    assert plan.deletes == ()
    # and it is upgraded by a click that day
    clicked = run(
        [old, as_stored(first, 200)],
        as_of=tomorrow,
        behaviour=Behaviour(clicks=(Click(datetime(2025, 6, 10, 20)),)),
    )
    assert the_followup(clicked).occurrence.email_type == FOLLOWUP_CLICKED


def test_followups_take_no_part_in_balancing_nor_frequency_limit() -> None:
    fresh = the_followup(run([initial_row()]))
    assert not fresh.newly_placed and not fresh.frequency_candidate
    plan = run([initial_row(), as_stored(fresh, 200)])
    kept = the_followup(plan)
    assert kept.kept and not kept.frequency_candidate
    # a kept follow-up does not use up the contact's frequency budget
    assert date(2025, 6, 11) not in plan.fixed_counted_dates


def test_owned_followup_row_skipped_by_the_frequency_limit_is_not_rechecked() -> None:
    # a follow-up never takes part in the frequency limit, whatever a row says
    stored = replace(followup_row(), status=SKIPPED, skip_reason="frequency limit")
    d = the_followup(run([initial_row(), stored]))
    assert d.existing_row_id == 200 and d.status == PRE_SCHEDULED
    assert not d.frequency_candidate


@pytest.mark.parametrize(
    ("status", "email_type"),
    [("sent", "FOLLOWUP_COLD"), ("delivered", "followup_2_clicked_no_hq")],
)
def test_legacy_followup_row_held_by_the_sending_side_is_the_initials_followup(
    status: str, email_type: str
) -> None:
    legacy = followup_row(
        50, email_type=email_type, status=status, send=date(2025, 6, 7), key=None, ideal=None
    )
    plan = run([initial_row(), legacy], behaviour=Behaviour(clicks=(Click(AFTER),)))
    assert followups(plan) == []
    assert [n.occurrence.key for n in plan.not_written] == [FU_KEY]
    assert plan.deletes == ()


def test_owned_legacy_followup_row_is_adopted_not_duplicated() -> None:
    legacy = followup_row(50, send=date(2025, 6, 12), key=None, ideal=None)
    plan = run([initial_row(), legacy])
    d = the_followup(plan)
    assert (d.occurrence.key, d.existing_row_id) == (FU_KEY, 50)
    assert plan.deletes == ()


def test_legacy_followup_row_dated_36_days_after_is_another_initials() -> None:
    # 2025-07-11 is 36 days after the send date: not this initial's follow-up
    legacy = followup_row(50, send=date(2025, 7, 11), key=None, ideal=None, status="sent")
    plan = run([initial_row(), legacy])
    d = the_followup(plan)
    assert d.existing_row_id is None and d.occurrence.key == FU_KEY


@pytest.mark.parametrize(
    ("status", "send"), [("sent", date(2025, 6, 7)), (PRE_SCHEDULED, date(2025, 6, 12))]
)
def test_one_legacy_followup_within_35_days_of_two_initials_answers_both(
    status: str, send: date
) -> None:
    # SPEC section 8: an initial already has a follow-up when, for legacy rows without
    # metadata, "any follow-up row of the same contact dated within 35 days after its send
    # date" exists. The legacy row 50 lies within 35 days after both initials (AEP sent
    # 2025-06-01, birthday sent 2025-06-05), so neither gets a new follow-up.
    aep = initial_row(100, datetime(2025, 6, 1, 8, 31), email_type="aep", key="42:aep:2025-06-01")
    birthday = initial_row(101)
    legacy = followup_row(50, send=send, status=status, key=None, ideal=None)
    plan = run([aep, birthday, legacy])
    fresh = [d for d in followups(plan) if d.existing_row_id is None]
    assert fresh == [], [(d.occurrence.key, d.send_date) for d in fresh]
    assert len(followups(plan)) <= 1
