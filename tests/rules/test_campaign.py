"""SPEC section 8 (campaigns): types, instances, targets and their occurrences."""

from __future__ import annotations

from datetime import date
from types import MappingProxyType

from rules.campaign import (
    CampaignInstance,
    CampaignTarget,
    blocking_campaign_dates,
    campaign_key,
    campaign_occurrences,
    instance_problems,
    merge_campaign_types,
)
from rules.config import DEFAULT_CONFIG, CampaignType
from rules.contact import Contact
from rules.occurrence import Occurrence
from tests.builders import (
    RATE_INCREASE,
    REGULATORY,
    campaign_types,
    instance,
    make_contact,
    target,
)

CONTACT = make_contact(birth=date(1950, 6, 1), email="a@b.com")
WITH_PHONE = make_contact(birth=date(1950, 6, 1), email="a@b.com", phone="555-0100")

TYPES = campaign_types(RATE_INCREASE, REGULATORY)


def occurrences(
    instances: list[CampaignInstance],
    targets: list[CampaignTarget],
    types: MappingProxyType[str, CampaignType] = TYPES,
    contact: Contact = CONTACT,
) -> tuple[list[Occurrence], list[str]]:
    return campaign_occurrences(contact, instances, targets, types, DEFAULT_CONFIG)


def test_two_rate_increase_instances_in_one_year_are_two_emails() -> None:
    q1 = instance(1, start=date(2025, 1, 1), end=date(2025, 3, 31))
    q2 = instance(2, start=date(2025, 4, 1), end=date(2025, 6, 30))
    occs, problems = occurrences(
        [q1, q2], [target(1, date(2025, 2, 15)), target(2, date(2025, 5, 15))]
    )
    assert problems == []
    assert [o.key for o in occs] == ["42:campaign:1:2025-02-15", "42:campaign:2:2025-05-15"]
    assert {o.event_date.year for o in occs} == {2025}
    q1_occ, q2_occ = occs
    assert q1_occ.email_type == q2_occ.email_type == "campaign_rate_increase"
    assert q1_occ.campaign_instance_id == 1 and q2_occ.campaign_instance_id == 2
    assert q1_occ.event_date == date(2025, 2, 15)
    assert q1_occ.ideal_send_date == date(2025, 2, 1)  # 14 days before the trigger
    assert q1_occ.priority == 4
    assert q1_occ.respects_windows


def test_key_is_contact_instance_and_trigger_date() -> None:
    assert campaign_key(42, 7, date(2025, 2, 15)) == "42:campaign:7:2025-02-15"


def test_one_instance_with_two_trigger_dates_is_two_emails() -> None:
    occs, _ = occurrences(
        [instance(1)], [target(1, date(2025, 2, 15)), target(1, date(2025, 8, 15))]
    )
    assert [o.key for o in occs] == ["42:campaign:1:2025-02-15", "42:campaign:1:2025-08-15"]


def test_regulatory_notice_does_not_respect_windows() -> None:
    occs, _ = occurrences(
        [instance(3, "regulatory_notice", email="notice_v1")], [target(3, date(2025, 5, 1))]
    )
    (occ,) = occs
    assert occ.email_type == "campaign_regulatory_notice"
    assert occ.respects_windows is False
    assert occ.priority == 1
    assert occ.ideal_send_date == occ.event_date == date(2025, 5, 1)  # days_before_event 0


def test_negative_days_before_event_sends_after_the_trigger() -> None:
    welcome = CampaignType("welcome", days_before_event=-7)
    occs, _ = occurrences(
        [instance(5, "welcome")],
        [target(5, date(2025, 3, 1))],
        MappingProxyType({"welcome": welcome}),
    )
    (occ,) = occs
    assert occ.event_date == date(2025, 3, 1)
    assert occ.ideal_send_date == date(2025, 3, 8)
    assert "7 days after" in occ.note


def test_active_dates_bound_the_ideal_send_date_inclusively() -> None:
    inst = instance(1, start=date(2025, 3, 1), end=date(2025, 3, 31))
    triggers = {
        date(2025, 3, 14): False,  # ideal 2025-02-28: before the start
        date(2025, 3, 15): True,  # ideal 2025-03-01: the start itself
        date(2025, 4, 14): True,  # ideal 2025-03-31: the end itself
        date(2025, 4, 15): False,  # ideal 2025-04-01: after the end
    }
    occs, _ = occurrences([inst], [target(1, t) for t in triggers])
    assert sorted(o.event_date for o in occs) == sorted(
        t for t, inside in triggers.items() if inside
    )


def test_missing_active_dates_are_open() -> None:
    open_end = instance(1, start=date(2025, 3, 1), end=None)
    open_start = instance(2, start=None, end=date(2025, 3, 31))
    occs, _ = occurrences(
        [open_end, open_start],
        [target(1, date(2030, 1, 1)), target(2, date(2000, 1, 1)), target(2, date(2025, 6, 1))],
    )
    assert [o.key for o in occs] == ["42:campaign:1:2030-01-01", "42:campaign:2:2000-01-01"]


def test_cancelled_targets_are_ignored_in_any_letter_case() -> None:
    occs, _ = occurrences(
        [instance(1)],
        [
            target(1, date(2025, 2, 1), "cancelled"),
            target(1, date(2025, 3, 1), "CANCELLED"),
            target(1, date(2025, 4, 1), "canceled"),
            target(1, date(2025, 5, 1), "scheduled"),
            target(1, date(2025, 6, 1), "skipped"),
        ],
    )
    assert [o.event_date for o in occs] == [date(2025, 5, 1), date(2025, 6, 1)]


def test_target_without_trigger_date_goes_out_on_the_start_date() -> None:
    occs, problems = occurrences([instance(1, start=date(2025, 3, 1))], [target(1, None)])
    (occ,) = occs
    assert problems == []
    assert occ.event_date == date(2025, 3, 15)  # start + days_before_event
    assert occ.ideal_send_date == date(2025, 3, 1)
    assert occ.key == "42:campaign:1:2025-03-15"


def test_target_without_trigger_and_start_is_reported_and_ignored() -> None:
    occs, problems = occurrences([instance(9, start=None)], [target(9, None)])
    assert occs == []
    (problem,) = problems
    assert "contact 42" in problem and "instance 9" in problem


def test_target_all_contacts_gives_the_default_to_contacts_without_a_row() -> None:
    everyone = CampaignType("annual_review", target_all_contacts=True, days_before_event=0)
    types = MappingProxyType({"annual_review": everyone})
    inst = instance(4, "annual_review", start=date(2025, 10, 1))
    occs, problems = occurrences([inst], [], types)
    assert problems == []
    assert [(o.key, o.ideal_send_date) for o in occs] == [
        ("42:campaign:4:2025-10-01", date(2025, 10, 1))
    ]
    # A row of its own replaces the default ...
    occs, _ = occurrences([inst], [target(4, date(2025, 11, 1))], types)
    assert [o.event_date for o in occs] == [date(2025, 11, 1)]
    # ... and a cancelled row of its own takes the contact out.
    occs, _ = occurrences([inst], [target(4, None, "cancelled")], types)
    assert occs == []
    # Another contact's row is not this contact's.
    occs, _ = occurrences([inst], [target(4, date(2025, 11, 1), contact_id=7)], types)
    assert [o.event_date for o in occs] == [date(2025, 10, 1)]


def test_target_all_without_start_date_is_reported_once_per_run_not_per_contact() -> None:
    everyone = CampaignType("annual_review", target_all_contacts=True)
    types = MappingProxyType({"annual_review": everyone})
    inst = instance(4, "annual_review", start=None)
    assert occurrences([inst], [], types) == ([], [])
    (problem,) = instance_problems([inst], types)
    assert "instance 4" in problem and "no start date" in problem


def test_inactive_or_unknown_type_gives_no_email() -> None:
    paused = MappingProxyType({"rate_increase": CampaignType("rate_increase", active=False)})
    assert occurrences([instance(1)], [target(1, date(2025, 2, 1))], paused) == ([], [])
    assert occurrences([instance(1, "nonexistent")], [target(1, date(2025, 2, 1))]) == ([], [])
    (problem,) = instance_problems([instance(1, "nonexistent")], TYPES)
    assert "unknown campaign type 'nonexistent'" in problem


def test_targets_of_unknown_instances_give_nothing() -> None:
    assert occurrences([instance(1)], [target(99, date(2025, 2, 1))]) == ([], [])


def test_templates_come_from_the_instance_and_sms_needs_a_phone() -> None:
    inst = instance(1)
    (without_phone,), _ = occurrences([inst], [target(1, date(2025, 2, 1))])
    assert (without_phone.email_template, without_phone.sms_template) == ("rate_increase_v1", None)
    (with_phone,), _ = occurrences([inst], [target(1, date(2025, 2, 1))], contact=WITH_PHONE)
    assert (with_phone.email_template, with_phone.sms_template) == (
        "rate_increase_v1",
        "rate_increase_sms_v1",
    )


def test_duplicate_targets_give_one_email() -> None:
    inst = instance(1, start=date(2025, 3, 1))
    occs, _ = occurrences([inst], [target(1, None), target(1, None), target(1, date(2025, 3, 15))])
    assert [o.key for o in occs] == ["42:campaign:1:2025-03-15"]


def test_merge_campaign_types_table_wins() -> None:
    from_config = {
        "rate_increase": CampaignType("rate_increase", priority=4),
        "welcome": CampaignType("welcome"),
    }
    from_table = [
        CampaignType("rate_increase", priority=2, respect_exclusion_windows=False),
        CampaignType("regulatory_notice", priority=1),
    ]
    merged = merge_campaign_types(from_config, from_table)
    assert list(merged) == ["rate_increase", "regulatory_notice", "welcome"]
    assert merged["rate_increase"] == from_table[0]
    assert merged["welcome"] == from_config["welcome"]


def test_only_campaigns_that_respect_windows_block() -> None:
    occs, _ = occurrences(
        [instance(1), instance(3, "regulatory_notice")],
        [target(1, date(2025, 5, 15)), target(3, date(2025, 5, 1))],
    )
    assert blocking_campaign_dates(occs, date(2025, 4, 1), date(2025, 6, 30)) == [
        ("campaign_rate_increase", date(2025, 5, 1))
    ]
    assert blocking_campaign_dates(occs, date(2025, 6, 1), date(2025, 6, 30)) == []
