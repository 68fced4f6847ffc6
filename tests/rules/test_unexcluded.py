"""A contact with nothing stored whose emails meet no window is decided without the planner
(``rules.unexcluded``): exactly as ``schedule_contact`` decides it, and only then."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from hypothesis import event, given
from hypothesis import strategies as st

from rules.config import DEFAULT_CONFIG, Config
from rules.contact import Contact
from rules.contact_schedule import schedule_contact
from rules.exclusion_window import contact_windows
from rules.occurrence import POST_WINDOW
from rules.placement import Horizon
from rules.statuses import PRE_SCHEDULED
from rules.unexcluded import is_free_state, meet_no_window, placements_in_view
from tests.rules.test_schedule_properties import PROPS, cases


def _fast_path(contact: Contact, config: Config, horizon: Horizon) -> tuple[bool, list[tuple[object, ...]]]:
    """Whether the sweep would take the path without the planner, and what it would place."""
    placed = placements_in_view(contact, config, horizon)
    windows = contact_windows(contact.state, contact.birth_date, contact.effective_date, config)
    applies = is_free_state(contact.state, config) or meet_no_window(placed, contact, windows, config, horizon)
    return applies, [(occ, p.send_date, p.catch_up) for occ, p in placed]


@PROPS
@given(cases(), st.booleans())
def test_places_what_the_planner_places_exactly_when_no_window_meets_them(
    case: tuple[Contact, Config, Horizon], phone: bool
) -> None:
    contact, config, horizon = case
    if phone:  # the SMS template is the contact's
        contact = replace(contact, phone_number="555-0100")
    plan = schedule_contact(contact, [], config, horizon)
    applies, placed = _fast_path(contact, config, horizon)
    # What the planner did without any window: every decision newly placed, none a post-window email.
    plain = all(
        d.status == PRE_SCHEDULED and d.newly_placed and d.occurrence.email_type != POST_WINDOW
        for d in plan.decisions
    )
    event(f"fast path: {applies}, {len(placed)} placed")
    assert applies == plain
    if applies:
        assert placed == [(d.occurrence, d.send_date, d.catch_up) for d in plan.decisions]
        assert plan.deletes == () and plan.fixed_counted_dates == () and plan.not_written == ()


@PROPS
@given(cases())
def test_a_free_state_never_excludes(case: tuple[Contact, Config, Horizon]) -> None:
    contact, config, horizon = case
    if not is_free_state(contact.state, config):
        return
    windows = contact_windows(contact.state, contact.birth_date, contact.effective_date, config)
    placed = placements_in_view(contact, config, horizon)
    assert meet_no_window(placed, contact, windows, config, horizon)
    assert all(windows.exclusion_on(horizon.as_of + timedelta(days=n)) is None for n in range(0, 400, 7))


def test_the_default_states_without_rules_are_free_and_those_with_rules_are_not() -> None:
    assert is_free_state("TX", DEFAULT_CONFIG) and is_free_state("FL", DEFAULT_CONFIG)
    assert not is_free_state("NV", DEFAULT_CONFIG)  # a birthday window
    assert not is_free_state("NY", DEFAULT_CONFIG)  # year-round


def test_an_aep_email_inside_a_birthday_window_is_left_to_the_planner() -> None:
    # Nevada's window covers the AEP date for a birthday a few days after it: the planner
    # skips the AEP email and plans its post-window email.
    t = date(2026, 9, 1)
    horizon = Horizon(t)
    aep = date(t.year, *DEFAULT_CONFIG.aep_dates[0])
    contact = Contact(1, "a@b.co", "NV", aep + timedelta(days=3) - timedelta(days=365 * 70), None)
    applies, _ = _fast_path(contact, DEFAULT_CONFIG, horizon)
    assert not applies
    plan = schedule_contact(contact, [], DEFAULT_CONFIG, horizon)
    assert any(d.status != PRE_SCHEDULED for d in plan.decisions)
