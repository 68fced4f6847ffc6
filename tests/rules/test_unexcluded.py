"""A contact with nothing stored whose emails meet no window is decided without the planner
(``rules.unexcluded``): exactly as ``schedule_contact`` decides it, and only then.  Emails on
days a year-round rule excludes are skipped for it; an email in a window leaves the
contact to the planner."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from hypothesis import event, given
from hypothesis import strategies as st

from rules.config import DEFAULT_CONFIG, Config
from rules.contact import Contact
from rules.contact_schedule import Decision, schedule_contact
from rules.exclusion_window import Exclusion, contact_windows
from rules.occurrence import POST_WINDOW
from rules.placement import Horizon
from rules.statuses import PRE_SCHEDULED, SKIPPED
from rules.unexcluded import exclusions_without_window, is_free_state, placements_in_view
from tests.rules.test_schedule_properties import PROPS, cases


def _fast_path(contact: Contact, config: Config, horizon: Horizon) -> tuple[bool, list[tuple[object, ...]]]:
    """Whether the sweep would take the path without the planner, and what it would decide:
    each email in view, its day, whether caught up, and the skip reason (None: it goes out)."""
    placed = placements_in_view(contact, config, horizon)
    windows = contact_windows(contact.state, contact.birth_date, contact.effective_date, config)
    exclusions: list[Exclusion | None] | None = [None] * len(placed)
    if not is_free_state(contact.state, config):
        exclusions = exclusions_without_window(placed, contact, windows, config, horizon)
    if exclusions is None:
        return False, []
    reasons = [e.reason if e is not None else None for e in exclusions]
    return True, [(occ, p.send_date, p.catch_up, r) for (occ, p), r in zip(placed, reasons, strict=True)]


@PROPS
@given(cases(), st.booleans())
def test_decides_what_the_planner_decides_exactly_when_no_window_meets_the_emails(
    case: tuple[Contact, Config, Horizon], phone: bool
) -> None:
    contact, config, horizon = case
    if phone:  # the SMS template is the contact's
        contact = replace(contact, phone_number="555-0100")
    plan = schedule_contact(contact, [], config, horizon)
    applies, decided = _fast_path(contact, config, horizon)
    assert plan.windows is not None

    def windowless(d: Decision) -> bool:
        """Newly placed, or skipped on a day only a year-round rule excludes."""
        if d.status == PRE_SCHEDULED:
            return d.newly_placed
        exclusion = plan.windows.exclusion_on(d.send_date)  # type: ignore[union-attr]
        return d.status == SKIPPED and exclusion is not None and exclusion.window is None

    # What the planner did without any window: no post-window email, and each decision windowless.
    plain = all(windowless(d) and d.occurrence.email_type != POST_WINDOW for d in plan.decisions)
    skipped = sum(1 for d in plan.decisions if d.status == SKIPPED)
    event(f"fast path: {applies}, {len(decided)} decided, {skipped} skipped")
    assert applies == plain
    if applies:
        assert decided == [(d.occurrence, d.send_date, d.catch_up, d.skip_reason) for d in plan.decisions]
        assert plan.deletes == () and plan.fixed_counted_dates == () and plan.not_written == ()


@PROPS
@given(cases())
def test_a_free_state_never_excludes(case: tuple[Contact, Config, Horizon]) -> None:
    contact, config, horizon = case
    if not is_free_state(contact.state, config):
        return
    windows = contact_windows(contact.state, contact.birth_date, contact.effective_date, config)
    placed = placements_in_view(contact, config, horizon)
    assert exclusions_without_window(placed, contact, windows, config, horizon) == [None] * len(placed)
    assert all(windows.exclusion_on(horizon.as_of + timedelta(days=n)) is None for n in range(0, 400, 7))


def test_the_default_states_without_rules_are_free_and_those_with_rules_are_not() -> None:
    assert is_free_state("TX", DEFAULT_CONFIG) and is_free_state("FL", DEFAULT_CONFIG)
    assert not is_free_state("NV", DEFAULT_CONFIG)  # a birthday window
    assert not is_free_state("NY", DEFAULT_CONFIG)  # year-round


def _born_just_after_the_aep_date(state: str) -> tuple[Contact, Horizon]:
    """A contact of ``state`` whose birthday is three days after the AEP date, seen on 09-01."""
    t = date(2026, 9, 1)
    aep = date(t.year, *DEFAULT_CONFIG.aep_dates[0])
    return Contact(1, "a@b.co", state, aep + timedelta(days=3) - timedelta(days=365 * 70), None), Horizon(t)


def test_an_aep_email_inside_a_birthday_window_is_left_to_the_planner() -> None:
    # Nevada's window covers the AEP date for a birthday a few days after it: the planner
    # skips the AEP email and plans its post-window email.
    contact, horizon = _born_just_after_the_aep_date("NV")
    applies, _ = _fast_path(contact, DEFAULT_CONFIG, horizon)
    assert not applies
    plan = schedule_contact(contact, [], DEFAULT_CONFIG, horizon)
    assert any(d.status != PRE_SCHEDULED for d in plan.decisions)


def test_a_year_round_contact_with_nothing_stored_is_skipped_without_the_planner() -> None:
    contact, horizon = _born_just_after_the_aep_date("NY")
    applies, decided = _fast_path(contact, DEFAULT_CONFIG, horizon)
    assert applies
    plan = schedule_contact(contact, [], DEFAULT_CONFIG, horizon)
    expected = [(d.occurrence.email_type, d.skip_reason) for d in plan.decisions]
    assert expected == [("aep", "NY year-round"), ("birthday", "NY year-round")]
    assert [(occ.email_type, reason) for occ, _, _, reason in decided] == expected  # type: ignore[attr-defined]
