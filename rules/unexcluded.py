"""A contact with nothing stored whose emails in view meet no window: decided without the
planner.

For a contact with no schedule row, no campaign target and no all-contacts campaign,
``schedule_contact`` has nothing to keep, adopt, block or resolve.  When, besides,
none of its birthday, effective-date or AEP emails in view is placed in a window of
its calendar and no window calls for a post-window email in view, every email in view
is placed as SPEC section 5 says (on its ideal date, or caught up) and is newly placed,
or, on a day a year-round rule excludes (SPEC section 6: no window, so no post-window
email), skipped for that rule; nothing else is decided.  That is most of an agency:
every such contact of a state without any window or year-round rule (a "free" state,
nothing to exclude there), every such contact of a year-round state, and most of the
others.  This module says so directly, so that the sweep decides them without the
planner's machinery; tests/rules/test_unexcluded.py checks, for random contacts, days
and configurations, that it gives ``schedule_contact``'s decisions, in its order.
"""

from __future__ import annotations

from rules.config import Config
from rules.contact import Contact
from rules.contact_schedule import yearly_in_view
from rules.exclusion_window import ContactWindows, Exclusion
from rules.occurrence import Occurrence
from rules.placement import Horizon, Placement, place
from rules.post_window import post_windows_around

Placed = list[tuple[Occurrence, Placement]]


def is_free_state(state: str | None, config: Config) -> bool:
    """Whether no date of ``state`` is ever excluded: no window rule, no year-round rule,
    whatever their dates."""
    return not config.rules_for_state(state) and not config.year_round_for(state)


def placements_in_view(contact: Contact, config: Config, horizon: Horizon) -> Placed:
    """The contact's birthday, effective-date and AEP emails in view, placed, in
    ``schedule_contact``'s order of decisions: by send date, then key."""
    spread = config.load_balancing.catch_up_spread_days
    placed = [
        (occ, p)
        for occ in yearly_in_view(contact, horizon, config, {})
        if (p := place(occ, horizon, spread)) is not None
    ]
    if len(placed) > 1:
        placed.sort(key=lambda op: (op[1].send_date, op[0].key))
    return placed


def exclusions_without_window(
    placed: Placed, contact: Contact, windows: ContactWindows, config: Config, horizon: Horizon
) -> list[Exclusion | None] | None:
    """The exclusion on each of ``placements_in_view``'s days (None: the email goes out), when
    they are the contact's whole schedule (it has nothing stored): none of them is in a
    window (a year-round rule's exclusion has none) and no window calls for a post-window
    email in view.  None when the planner must decide."""
    found = [windows.exclusion_on(p.send_date) for _, p in placed]
    if any(e is not None and e.window is not None for e in found):
        return None
    if post_windows_around(contact, windows, horizon, config):
        return None
    return found
