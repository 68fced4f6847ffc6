"""SPEC section 8 (follow-ups): initial emails, behaviour, types, keys and placement."""

from __future__ import annotations

import json
from datetime import date, datetime, time

import pytest

from rules.config import DEFAULT_CONFIG, CampaignType, Config, Timing
from rules.followup import (
    FOLLOWUP_CLICKED,
    FOLLOWUP_COLD,
    FOLLOWUP_CONDITIONS,
    FOLLOWUP_HEALTHY,
    Click,
    EmailRow,
    HealthAnswer,
    InitialEmail,
    already_has_followup,
    existing_followup,
    followup_key,
    followup_metadata,
    followup_occurrence,
    followup_type,
    health_answer_outcome,
    health_answer_problems,
    initial_email,
    initial_emails,
    is_initial_email,
    place_followup,
    upgrade,
)
from tests.builders import (
    FOLLOWED_UP_TYPES,
    SENT_AT,
    T,
    answer,
    campaign_types,
    make_contact,
)

TYPES = campaign_types(
    CampaignType("rate_increase", priority=4),
    CampaignType("regulatory_notice", enable_followups=False),
)
CONTACT = make_contact(birth=date(1950, 6, 1), email="a@b.com")
WITH_PHONE = make_contact(birth=date(1950, 6, 1), email="a@b.com", phone="555-0100")

INITIAL = InitialEmail(
    row_id=100,
    key="42:birthday:2025",
    contact_id=42,
    email_type="birthday",
    status="sent",
    send_at=SENT_AT,
    priority=5,
    campaign_instance_id=None,
    event_date=date(2025, 6, 1),
)
LEGACY_INITIAL = InitialEmail(
    row_id=7,
    key=None,
    contact_id=42,
    email_type="BIRTHDAY",
    status="SENT",
    send_at=datetime(2025, 6, 5),
    priority=5,
)


def row(
    email_type: str = "birthday",
    status: str = "sent",
    sent: date | None = date(2025, 6, 5),
    *,
    id: int = 100,
    actual: datetime | None = None,
    key: str | None = "42:birthday:2025",
    metadata: str | None = None,
    priority: int | None = 5,
    contact_id: int = 42,
) -> EmailRow:
    return EmailRow(
        id=id,
        contact_id=contact_id,
        email_type=email_type,
        status=status,
        scheduled_send_date=sent,
        actual_send_datetime=actual,
        occurrence_key=key,
        priority=priority,
        metadata=metadata,
    )


# --- initial emails -----------------------------------------------------------


@pytest.mark.parametrize("email_type", FOLLOWED_UP_TYPES)
def test_types_that_get_followups(email_type: str) -> None:
    assert is_initial_email(row(email_type), TYPES, T)


@pytest.mark.parametrize(
    "email_type", ["campaign_regulatory_notice", "campaign_unknown", "followup_1_cold", "other"]
)
def test_types_that_get_no_followup(email_type: str) -> None:
    assert not is_initial_email(row(email_type), TYPES, T)


@pytest.mark.parametrize(
    ("status", "initial"),
    [
        ("sent", True),
        ("delivered", True),
        ("DELIVERED", True),
        ("Sent", True),
        ("scheduled", False),
        ("pre-scheduled", False),
        ("failed", False),
        ("bounced", False),
    ],
)
def test_only_sent_or_delivered_rows(status: str, initial: bool) -> None:
    assert is_initial_email(row(status=status), TYPES, T) is initial


def test_send_date_within_the_last_35_days_including_today() -> None:
    assert is_initial_email(row(sent=date(2025, 5, 6)), TYPES, T)  # T - 35
    assert not is_initial_email(row(sent=date(2025, 5, 5)), TYPES, T)  # T - 36
    assert is_initial_email(row(sent=T), TYPES, T)
    assert not is_initial_email(row(sent=date(2025, 6, 11)), TYPES, T)
    assert not is_initial_email(row(sent=None), TYPES, T)


def test_actual_send_datetime_wins_over_scheduled_date() -> None:
    late = row(sent=date(2025, 5, 1), actual=datetime(2025, 5, 20, 9, 0))
    assert is_initial_email(late, TYPES, T)
    initial = initial_email(late, TYPES, DEFAULT_CONFIG, T)
    assert initial is not None and initial.send_at == datetime(2025, 5, 20, 9, 0)


def test_without_actual_time_the_scheduled_send_time_or_midnight() -> None:
    assert row().send_at == datetime(2025, 6, 5, 0, 0)
    timed = EmailRow(1, 42, "aep", "sent", date(2025, 6, 5), scheduled_send_time=time(8, 30))
    assert timed.send_at == datetime(2025, 6, 5, 8, 30)


def test_legacy_row_without_priority_takes_the_configured_one() -> None:
    initial = initial_email(row("AEP", key=None, priority=None), TYPES, DEFAULT_CONFIG, T)
    assert initial is not None and initial.priority == 3 and initial.key is None
    campaign = initial_email(row("campaign_rate_increase", priority=None), TYPES, DEFAULT_CONFIG, T)
    assert campaign is not None and campaign.priority == 4


def test_initial_emails_of_a_contact_oldest_first() -> None:
    rows = [
        row("aep", sent=date(2025, 6, 8), id=2, key="42:aep:2025-06-08"),
        row(id=1),
        row("followup_1_cold", status="sent", id=3, key=None),
        row("birthday", status="pre-scheduled", id=4),
    ]
    assert [i.row_id for i in initial_emails(rows, TYPES, DEFAULT_CONFIG, T)] == [1, 2]


# --- behaviour -----------------------------------------------------------------


def test_cold_without_behaviour() -> None:
    kind, evidence = followup_type(SENT_AT, [], [])
    assert kind == FOLLOWUP_COLD
    assert evidence["clicks"] == 0 and evidence["health_answers"] == 0


def test_clicked_without_health_answers() -> None:
    kind, evidence = followup_type(
        SENT_AT, [Click(datetime(2025, 6, 7, 10)), Click(datetime(2025, 6, 6, 10))], []
    )
    assert kind == FOLLOWUP_CLICKED
    assert evidence["clicks"] == 2
    assert evidence["decided_at"] == "2025-06-06T10:00:00"  # the earliest click


def test_answered_without_condition() -> None:
    answers = [
        answer(datetime(2025, 6, 6), has_medical_conditions=False, main_questions_yes_count=0)
    ]
    kind, evidence = followup_type(SENT_AT, [Click(datetime(2025, 6, 6))], answers)
    assert kind == FOLLOWUP_HEALTHY
    assert evidence["health_answers"] == 1 and evidence["health_answers_with_condition"] == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"has_medical_conditions": True, "main_questions_yes_count": 0},
        {"has_medical_conditions": False, "main_questions_yes_count": 2},
        {"main_questions_yes_count": 1},
        {"has_medical_conditions": True},
    ],
)
def test_answered_with_condition(fields: dict[str, object]) -> None:
    answers = [
        answer(datetime(2025, 6, 6), has_medical_conditions=False, main_questions_yes_count=0),
        answer(datetime(2025, 6, 8, 12), **fields),
    ]
    kind, evidence = followup_type(SENT_AT, [], answers)
    assert kind == FOLLOWUP_CONDITIONS
    assert evidence["decided_at"] == "2025-06-08T12:00:00"
    assert evidence["health_answers"] == 2


def test_behaviour_before_the_initial_email_does_not_count() -> None:
    before = datetime(2025, 6, 5, 8, 30)  # one minute before SENT_AT
    kind, evidence = followup_type(
        SENT_AT, [Click(before)], [answer(before, has_medical_conditions=True)]
    )
    assert kind == FOLLOWUP_COLD and evidence["clicks"] == 0
    # At the send time itself it counts.
    kind, _ = followup_type(SENT_AT, [Click(SENT_AT)], [])
    assert kind == FOLLOWUP_CLICKED


@pytest.mark.parametrize("metadata", ["{not json", "[1, 2]", '"yes"', "", None, "null"])
def test_malformed_health_metadata_is_an_answer_without_condition_and_reported(
    metadata: str | None,
) -> None:
    has_condition, problem = health_answer_outcome(metadata)
    assert has_condition is False and problem is not None
    kind, _ = followup_type(
        SENT_AT, [Click(datetime(2025, 6, 6))], [HealthAnswer(datetime(2025, 6, 6), metadata)]
    )
    assert kind == FOLLOWUP_HEALTHY
    (reported,) = health_answer_problems(
        42, SENT_AT, [HealthAnswer(datetime(2025, 6, 6), metadata)]
    )
    assert reported.startswith("contact 42:")


def test_fields_of_the_wrong_kind_are_reported() -> None:
    assert health_answer_outcome('{"main_questions_yes_count": "3"}')[1] is not None
    assert health_answer_outcome('{"has_medical_conditions": "yes"}')[1] is not None
    assert health_answer_outcome(
        '{"answers_count": 7, "main_questions_yes_count": 0, "has_medical_conditions": false}'
    ) == (False, None)


def test_problems_only_for_answers_that_count() -> None:
    assert health_answer_problems(42, SENT_AT, [HealthAnswer(datetime(2025, 6, 1), "{bad")]) == []


def test_upgrade_never_downgrades() -> None:
    assert upgrade(FOLLOWUP_COLD, FOLLOWUP_CLICKED) == FOLLOWUP_CLICKED
    assert upgrade(FOLLOWUP_CLICKED, FOLLOWUP_CONDITIONS) == FOLLOWUP_CONDITIONS
    assert upgrade(FOLLOWUP_CONDITIONS, FOLLOWUP_HEALTHY) == FOLLOWUP_CONDITIONS
    assert upgrade(FOLLOWUP_HEALTHY, FOLLOWUP_COLD) == FOLLOWUP_HEALTHY
    assert upgrade(FOLLOWUP_HEALTHY, FOLLOWUP_HEALTHY) == FOLLOWUP_HEALTHY
    assert upgrade("followup_legacy", FOLLOWUP_COLD) == FOLLOWUP_COLD


# --- keys and existing follow-ups ------------------------------------------------


def test_followup_key_names_the_initial_key_or_legacy_row() -> None:
    assert followup_key(42, INITIAL) == "42:followup:42:birthday:2025"
    assert followup_key(42, LEGACY_INITIAL) == "42:followup:row7"


def followup_row(
    *,
    id: int = 500,
    key: str | None = None,
    metadata: str | None = None,
    sent: date = date(2025, 6, 7),
    status: str = "sent",
    contact_id: int = 42,
    email_type: str = "followup_1_cold",
) -> EmailRow:
    return row(email_type, status, sent, id=id, key=key, metadata=metadata, contact_id=contact_id)


def test_followup_named_by_metadata_key() -> None:
    meta = followup_metadata(INITIAL, FOLLOWUP_COLD, {"clicks": 0})
    named = followup_row(key="somewhere-else", metadata=meta, sent=date(2025, 9, 1))
    assert already_has_followup(INITIAL, [named])
    other = followup_row(key="x", metadata=json.dumps({"initial_key": "42:aep:2025-09-15"}))
    assert not already_has_followup(INITIAL, [other])


def test_followup_named_by_legacy_row_id() -> None:
    meta = json.dumps({"initial_row_id": 7})
    assert already_has_followup(
        LEGACY_INITIAL, [followup_row(key="k", metadata=meta, sent=date(2026, 1, 1))]
    )
    assert not already_has_followup(
        LEGACY_INITIAL, [followup_row(key="k", metadata=json.dumps({"initial_row_id": 8}))]
    )


def test_followup_found_by_its_own_key() -> None:
    own = followup_row(key="42:followup:42:birthday:2025", status="pre-scheduled")
    assert existing_followup(INITIAL, [own]) == own


def test_legacy_followup_within_35_days_after_the_send_date() -> None:
    assert already_has_followup(INITIAL, [followup_row(sent=date(2025, 6, 5))])
    assert already_has_followup(INITIAL, [followup_row(sent=date(2025, 7, 10))])  # + 35
    assert not already_has_followup(INITIAL, [followup_row(sent=date(2025, 7, 11))])  # + 36
    assert not already_has_followup(INITIAL, [followup_row(sent=date(2025, 6, 4))])  # before
    assert not already_has_followup(INITIAL, [followup_row(contact_id=7)])
    assert not already_has_followup(INITIAL, [followup_row(email_type="birthday")])
    assert already_has_followup(
        INITIAL, [followup_row(email_type="FOLLOWUP_COLD", status="skipped")]
    )


def test_a_followup_that_names_another_initial_is_not_a_legacy_match() -> None:
    for other in (
        followup_row(key="42:followup:42:aep:2025-06-01"),
        followup_row(metadata=json.dumps({"initial_key": "42:aep:2025-06-01"})),
    ):
        assert not already_has_followup(INITIAL, [other])


def test_malformed_followup_metadata_is_legacy() -> None:
    assert already_has_followup(INITIAL, [followup_row(metadata="{broken")])


# --- the follow-up occurrence ------------------------------------------------------


def test_followup_occurrence() -> None:
    _, evidence = followup_type(SENT_AT, [Click(datetime(2025, 6, 6))], [])
    occ = followup_occurrence(CONTACT, INITIAL, FOLLOWUP_CLICKED, evidence, DEFAULT_CONFIG, T)
    assert occ.key == "42:followup:42:birthday:2025"
    assert occ.email_type == FOLLOWUP_CLICKED and occ.is_followup
    assert occ.ideal_send_date == date(2025, 6, 7)  # send date + 2
    assert occ.event_date == date(2025, 6, 1)  # the parent's
    assert occ.priority == 5 and occ.campaign_instance_id is None
    assert occ.respects_windows
    assert (occ.email_template, occ.sms_template) == ("followup_clicked_v1", None)


def test_followup_inherits_campaign_instance_and_priority() -> None:
    parent = InitialEmail(
        5,
        "42:campaign:3:2025-06-05",
        42,
        "campaign_rate_increase",
        "delivered",
        SENT_AT,
        4,
        campaign_instance_id=3,
        event_date=None,
    )
    occ = followup_occurrence(WITH_PHONE, parent, FOLLOWUP_COLD, {}, DEFAULT_CONFIG, T)
    assert occ.priority == 4 and occ.campaign_instance_id == 3
    assert occ.event_date == occ.ideal_send_date  # parent's event date unknown
    assert (occ.email_template, occ.sms_template) == ("followup_cold_v1", "followup_cold_sms_v1")


def test_followup_days_after_is_config() -> None:
    config = Config(timing=Timing(followup_days_after=5))
    occ = followup_occurrence(CONTACT, INITIAL, FOLLOWUP_COLD, {}, config, T)
    assert occ.ideal_send_date == date(2025, 6, 10)


def test_followup_occurrence_does_not_depend_on_as_of() -> None:
    a = followup_occurrence(CONTACT, INITIAL, FOLLOWUP_COLD, {}, DEFAULT_CONFIG, date(2025, 6, 5))
    b = followup_occurrence(CONTACT, INITIAL, FOLLOWUP_COLD, {}, DEFAULT_CONFIG, date(2025, 7, 9))
    assert a == b


def test_followup_occurrence_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        followup_occurrence(CONTACT, INITIAL, FOLLOWUP_COLD, {}, DEFAULT_CONFIG, date(2025, 6, 4))
    with pytest.raises(ValueError):
        followup_occurrence(CONTACT, INITIAL, "birthday", {}, DEFAULT_CONFIG, T)


def test_placement_ideal_date_or_tomorrow_once_passed() -> None:
    occ = followup_occurrence(CONTACT, INITIAL, FOLLOWUP_COLD, {}, DEFAULT_CONFIG, date(2025, 6, 5))
    assert place_followup(occ, date(2025, 6, 5)).send_date == date(2025, 6, 7)
    assert place_followup(occ, date(2025, 6, 7)).send_date == date(2025, 6, 7)
    late = place_followup(occ, date(2025, 6, 10))
    assert late.send_date == date(2025, 6, 11) and "tomorrow" in late.why


def test_metadata_is_deterministic_json_naming_the_initial_and_the_behaviour() -> None:
    clicks = [Click(datetime(2025, 6, 6, 9)), Click(datetime(2025, 6, 7, 9))]
    kind, evidence = followup_type(SENT_AT, clicks, [])
    text = followup_metadata(INITIAL, kind, evidence)
    assert text == followup_metadata(INITIAL, kind, followup_type(SENT_AT, clicks[::-1], [])[1])
    data = json.loads(text)
    assert data["initial_key"] == "42:birthday:2025"
    assert data["initial_row_id"] == 100
    assert data["initial_type"] == "birthday"
    assert data["followup_type"] == FOLLOWUP_CLICKED
    assert data["behaviour"]["clicks"] == 2
    assert data["behaviour"]["decided_at"] == "2025-06-06T09:00:00"
    assert list(json.loads(text)) == sorted(data)
