"""SPEC section 7: two campaign emails for one contact on one day."""

from __future__ import annotations

from datetime import date

from rules.campaign import CAMPAIGN_CONFLICT_REASON, CampaignEmail, resolve_campaign_conflicts
from rules.contact_schedule import Decision
from rules.occurrence import Occurrence
from rules.statuses import PRE_SCHEDULED, SKIPPED

DAY = date(2025, 5, 1)


def email(
    key: str,
    priority: int,
    instance_id: int | None,
    send_date: date = DAY,
    status: str = PRE_SCHEDULED,
    contact_id: int = 42,
    is_campaign: bool = True,
) -> CampaignEmail:
    return CampaignEmail(key, contact_id, send_date, status, priority, instance_id, is_campaign)


def decision(
    email_type: str, key: str, priority: int, instance_id: int | None, status: str = PRE_SCHEDULED
) -> Decision:
    occ = Occurrence(
        key=key,
        contact_id=42,
        email_type=email_type,
        event_date=DAY,
        ideal_send_date=DAY,
        priority=priority,
        email_template=None,
        sms_template=None,
        campaign_instance_id=instance_id,
    )
    return Decision(occ, DAY, status, None, False, False, None, "test")


def test_reason_text() -> None:
    assert CAMPAIGN_CONFLICT_REASON == "campaign conflict"


def test_lower_priority_number_wins() -> None:
    skips = resolve_campaign_conflicts([email("a", 5, 1), email("b", 2, 9), email("c", 7, 3)])
    assert skips == {"a": "b", "c": "b"}


def test_equal_priority_lower_instance_id_wins() -> None:
    skips = resolve_campaign_conflicts([email("a", 5, 12), email("b", 5, 3)])
    assert skips == {"a": "b"}


def test_answer_does_not_depend_on_input_order() -> None:
    emails = [email("x", 5, 4), email("y", 5, 4), email("z", 6, 1)]
    assert resolve_campaign_conflicts(emails) == resolve_campaign_conflicts(emails[::-1])


def test_different_days_or_contacts_do_not_conflict() -> None:
    assert (
        resolve_campaign_conflicts([email("a", 5, 1), email("b", 2, 2, send_date=date(2025, 5, 2))])
        == {}
    )
    assert resolve_campaign_conflicts([email("a", 5, 1), email("b", 2, 2, contact_id=7)]) == {}


def test_non_campaign_and_skipped_emails_do_not_compete() -> None:
    skips = resolve_campaign_conflicts(
        [
            email("birthday", 1, None, is_campaign=False),
            email("excluded", 1, 1, status=SKIPPED),
            email("alone", 9, 2),
        ]
    )
    assert skips == {}


def test_email_held_by_sending_side_wins_and_is_never_skipped() -> None:
    skips = resolve_campaign_conflicts(
        [email("sent", 9, 8, status="scheduled"), email("new", 1, 1)]
    )
    assert skips == {"new": "sent"}


def test_contact_schedule_decisions_are_accepted_as_they_are() -> None:
    decisions = [
        decision("campaign_rate_increase", "42:campaign:2:2025-05-01", 4, 2),
        decision("campaign_welcome", "42:campaign:1:2025-05-01", 4, 1),
        decision("campaign_regulatory_notice", "42:campaign:3:2025-05-01", 1, 3, status=SKIPPED),
        # A follow-up inherits its parent's instance but is no campaign email.
        decision("followup_1_cold", "42:followup:42:campaign:0:2025-04-28", 0, 0),
        decision("birthday", "42:birthday:2025", 0, None),
    ]
    assert resolve_campaign_conflicts(decisions) == {
        "42:campaign:2:2025-05-01": "42:campaign:1:2025-05-01"
    }
