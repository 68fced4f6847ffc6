"""Properties of follow-ups (SPEC section 8): types only ever rise, one follow-up per initial."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.config import DEFAULT_CONFIG
from rules.followup import (
    FOLLOWUP_TYPES,
    Click,
    EmailRow,
    HealthAnswer,
    InitialEmail,
    existing_followup,
    followup_key,
    followup_metadata,
    followup_occurrence,
    followup_rank,
    followup_type,
    place_followup,
    upgrade,
)
from tests.builders import health_metadata, make_contact

PROPS = settings(max_examples=200, deadline=None)
SENT_AT = datetime(2025, 6, 5, 8, 30)
CONTACT = make_contact(email="a@b.com")

times = st.datetimes(datetime(2025, 5, 1), datetime(2025, 7, 31))
metadata = st.one_of(st.none(), st.text(max_size=20), health_metadata(max_yes_count=5))
clicks = st.lists(st.builds(Click, times), max_size=5)
answers = st.lists(st.builds(HealthAnswer, times, metadata), max_size=5)
behaviour = st.one_of(st.builds(Click, times), st.builds(HealthAnswer, times, metadata))
followup_types = st.sampled_from(FOLLOWUP_TYPES + ("followup_legacy",))


@PROPS
@given(clicks, answers, behaviour)
def test_more_behaviour_never_lowers_the_type(
    some_clicks: list[Click], some_answers: list[HealthAnswer], more: Click | HealthAnswer
) -> None:
    before, _ = followup_type(SENT_AT, some_clicks, some_answers)
    if isinstance(more, Click):
        after, _ = followup_type(SENT_AT, [*some_clicks, more], some_answers)
    else:
        after, _ = followup_type(SENT_AT, some_clicks, [*some_answers, more])
    assert followup_rank(after) >= followup_rank(before)


@PROPS
@given(clicks, answers)
def test_type_and_evidence_do_not_depend_on_order(
    some_clicks: list[Click], some_answers: list[HealthAnswer]
) -> None:
    assert followup_type(SENT_AT, some_clicks, some_answers) == followup_type(
        SENT_AT, some_clicks[::-1], some_answers[::-1]
    )


@PROPS
@given(clicks, answers)
def test_behaviour_before_the_send_time_changes_nothing(
    some_clicks: list[Click], some_answers: list[HealthAnswer]
) -> None:
    counted_clicks = [c for c in some_clicks if c.at >= SENT_AT]
    counted_answers = [a for a in some_answers if a.at >= SENT_AT]
    assert followup_type(SENT_AT, some_clicks, some_answers) == followup_type(
        SENT_AT, counted_clicks, counted_answers
    )


@PROPS
@given(followup_types, followup_types, followup_types)
def test_upgrade_is_monotone_and_idempotent(a: str, b: str, c: str) -> None:
    up = upgrade(a, b)
    assert up in (a, b)
    assert followup_rank(up) >= followup_rank(a) and followup_rank(up) >= followup_rank(b)
    assert upgrade(up, b) == up
    assert upgrade(a, a) == a
    # Applying two upgrades in either order ends at the same rank.
    assert followup_rank(upgrade(upgrade(a, b), c)) == followup_rank(upgrade(upgrade(a, c), b))


initials = st.builds(
    InitialEmail,
    row_id=st.integers(1, 10_000),
    key=st.one_of(
        st.none(),
        st.sampled_from(["42:birthday:2025", "42:aep:2025-06-01", "42:campaign:3:2025-06-05"]),
    ),
    contact_id=st.just(42),
    email_type=st.sampled_from(["birthday", "aep", "campaign_rate_increase"]),
    status=st.just("sent"),
    send_at=st.datetimes(datetime(2025, 5, 1), datetime(2025, 6, 30)),
    priority=st.integers(1, 10),
)


@PROPS
@given(initials, st.lists(st.tuples(clicks, answers), min_size=1, max_size=6))
def test_daily_sweeps_make_at_most_one_followup_per_initial(
    initial: InitialEmail, days: list[tuple[list[Click], list[HealthAnswer]]]
) -> None:
    """A sweep a day, with behaviour arriving in between: one key, one row, never lower."""
    rows: dict[str, EmailRow] = {}
    seen_keys: set[str] = set()
    current_rank = 0
    all_clicks: list[Click] = []
    all_answers: list[HealthAnswer] = []
    for offset, (new_clicks, new_answers) in enumerate(days):
        as_of = initial.send_date + timedelta(days=offset)
        all_clicks += new_clicks
        all_answers += new_answers
        kind, evidence = followup_type(initial.send_at, all_clicks, all_answers)
        found = existing_followup(initial, rows.values())
        if found is not None:
            assert found.occurrence_key is not None
            kind = upgrade(found.email_type, kind)
        occ = followup_occurrence(CONTACT, initial, kind, evidence, DEFAULT_CONFIG, as_of)
        assert occ.key == followup_key(42, initial)
        assert found is None or found.occurrence_key == occ.key
        placed = place_followup(occ, as_of).send_date
        assert placed >= as_of and placed >= occ.ideal_send_date
        rows[occ.key] = EmailRow(
            id=1_000_000,
            contact_id=42,
            email_type=kind,
            status="pre-scheduled",
            scheduled_send_date=placed,
            occurrence_key=occ.key,
            metadata=followup_metadata(initial, kind, evidence),
        )
        seen_keys.add(occ.key)
        assert followup_rank(kind) >= current_rank
        current_rank = followup_rank(kind)
    assert len(seen_keys) == 1 and len(rows) == 1


@PROPS
@given(initials, initials)
def test_different_initials_have_different_followup_keys(a: InitialEmail, b: InitialEmail) -> None:
    same_initial = (a.key is not None and a.key == b.key) or (
        a.key is None and b.key is None and a.row_id == b.row_id
    )
    assert (followup_key(42, a) == followup_key(42, b)) == same_initial
