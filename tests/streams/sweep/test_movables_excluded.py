"""The daily cap's exclusion test (``Movables.excluded_fn``) answers as the contact's own
calendar does, for any state, dates and rules (its shortcut: a state without any window
or year-round rule excludes no day)."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.config import Config, YearRoundRule
from rules.exclusion_window import contact_windows
from rules.zip_state import USPS_CODES
from streams.sweep.movables import _STATE_INDEX, Movables
from tests.rules.test_schedule_properties import random_configs

STATES = sorted(USPS_CODES)
dates = st.dates(date(1930, 1, 1), date(2030, 12, 31))


@st.composite
def configs(draw: st.DrawFn) -> Config:
    """Random rules, and sometimes a dated year-round rule in a state without windows."""
    config = draw(random_configs())
    if draw(st.booleans()):
        bare = [s for s in STATES if not config.rules_for_state(s) and not config.year_round_for(s)]
        state = draw(st.sampled_from(bare))
        start = draw(st.dates(date(2026, 1, 1), date(2027, 12, 31)))
        extra = YearRoundRule(state, start, start + timedelta(days=draw(st.integers(0, 60))))
        config = dataclasses.replace(config, year_round_rules=(*config.year_round_rules, extra))
    return config


@settings(max_examples=150, deadline=None)
@given(
    config=configs(),
    contacts=st.lists(
        st.tuples(st.sampled_from(STATES), st.none() | dates, st.none() | dates), min_size=1, max_size=6
    ),
    first=st.dates(date(2026, 1, 1), date(2027, 12, 1)),
)
def test_the_cap_excludes_the_days_the_contacts_calendar_excludes(
    config: Config, contacts: list[tuple[str, date | None, date | None]], first: date
) -> None:
    movables = Movables()
    for state, birth, effective in contacts:
        movables.state.append(_STATE_INDEX[state])
        movables.birth.append(birth.toordinal() if birth else 0)
        movables.effective.append(effective.toordinal() if effective else 0)
    excluded = movables.excluded_fn(config)
    for i, (state, birth, effective) in enumerate(contacts):
        windows = contact_windows(state, birth, effective, config)
        for day in (first + timedelta(days=k) for k in range(0, 70, 3)):
            assert excluded(i, day.toordinal()) == (windows.exclusion_on(day) is not None), (state, day)
