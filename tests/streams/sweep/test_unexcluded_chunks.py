"""A chunk decided with the path that skips the planner (``rules.unexcluded``) gives what the
planner alone gives: the same movables in the same order, rows, counts, volumes, watched
contacts, warnings and ledger entries."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.config import Config
from rules.followup import Behaviour, Click
from rules.placement import Horizon
from streams.store.schedules import ContactFields
from streams.sweep.chunks import ChunkDecider, ChunkResult, DecideContext
from tests.rules.test_schedule_properties import configs

# Free states, states with windows, year-round states, and values that are no state.
STATES = st.sampled_from(["TX", "FL", "OH", "NV", "CA", "MO", "NY", "CT", "nv ", "", None, "XX"])


@st.composite
def raw_dates(draw: st.DrawFn, as_of: date) -> str | None:
    """Mostly anniversaries near the as-of date, in any year; sometimes junk or nothing."""
    how = draw(st.sampled_from(["near", "near", "near", "any", "junk", "none", "future"]))
    if how == "none":
        return None
    if how == "junk":
        return draw(st.sampled_from(["", "N/A", "2025-02-30", "05/01/1950", "9999-12-31"]))
    if how == "any":
        return draw(st.dates(date(1930, 1, 1), date(2030, 12, 31))).isoformat()
    near = as_of + timedelta(days=draw(st.integers(-20, 120)))
    if how == "future":  # a policy that starts this year or next: no anniversary yet
        year = as_of.year + draw(st.integers(0, 1))
    else:
        year = draw(st.integers(1935, 2025))
    if (near.month, near.day) == (2, 29):
        year -= year % 4
    return near.replace(year=year).isoformat()


@st.composite
def chunks(draw: st.DrawFn) -> tuple[Config, Horizon, list[ContactFields], dict[int, Behaviour]]:
    config = draw(configs)
    as_of = draw(st.dates(date(2025, 1, 1), date(2028, 12, 31)))
    if draw(st.booleans()):  # the AEP season
        month, day = config.aep_dates[0]
        as_of = date(as_of.year, month, day) - timedelta(days=draw(st.integers(0, 30)))
    horizon = Horizon(as_of, lookahead_days=draw(st.integers(0, 40)), lookback_days=draw(st.integers(0, 10)))
    contacts: list[ContactFields] = []
    behaviour: dict[int, Behaviour] = {}
    for cid in range(1, draw(st.integers(1, 12)) + 1):
        email = draw(st.sampled_from(["pat@example.com", "pat@example.com", "no-at-sign", None]))
        phone = draw(st.sampled_from([None, "", "555-0100"]))
        state = draw(STATES)
        birth, effective = draw(raw_dates(as_of)), draw(raw_dates(as_of))
        contacts.append((cid, email, None, state, birth, effective, phone))
        if draw(st.integers(0, 4)) == 0:  # a click: no row to follow up, but the ledger's due day
            behaviour[cid] = Behaviour(clicks=(Click(datetime.combine(as_of - timedelta(days=3), time(9)),),))
    return config, horizon, contacts, behaviour


def _decide(decider: ChunkDecider, contacts: list[ContactFields], behaviour: dict[int, Behaviour]) -> ChunkResult:
    return decider.decide_contacts(contacts, defaultdict(list), {}, behaviour)


@settings(max_examples=150, deadline=None)
@given(chunks())
def test_a_chunk_decided_without_the_planner_equals_the_planners(
    case: tuple[Config, Horizon, list[ContactFields], dict[int, Behaviour]],
) -> None:
    config, horizon, contacts, behaviour = case
    context = DecideContext(config, horizon, frozenset(), "run-1")
    fast = ChunkDecider(context)
    planner_only = ChunkDecider(context)
    planner_only.free_of_campaigns = False  # as with an all-contacts campaign: every contact planned
    assert _decide(fast, contacts, behaviour) == _decide(planner_only, contacts, behaviour)
