"""One read of a batch's behaviour serves every use of it (``streams.store.behaviour.BehaviourRead``):
each use gets what its own read (``fetch_behaviour_as_of``) would have given, stored times
of every shape included, and a use it was not read for is refused."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.store.behaviour import BehaviourRead, fetch_behaviour_as_of
from streams.store.engine import new_agency_database, open_store
from streams.worker.engagement import _utc

DAY = date(2026, 3, 10)

# Stored times as the agents, the agency's own software and a careless import write them:
# around the bounds the as-of dates below give (``behaviour_since``: 36 days before).
stored_times = st.one_of(
    st.builds(
        lambda days, seconds, shape: shape(datetime(2026, 1, 20) + timedelta(days=days, seconds=seconds)),
        st.integers(0, 60),
        st.integers(0, 86399),
        st.sampled_from((
            lambda t: t.isoformat(" ", "seconds"),
            lambda t: t.isoformat() + "Z",
            lambda t: t.isoformat() + "+02:00",
            lambda t: t.date().isoformat(),
        )),
    ),
    st.sampled_from(("", "not a time", "2026-02-30 10:00:00", "1890-01-01 00:00:00")),
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new_agency_database(tmp_path_factory.mktemp("behaviour") / "agency.db")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    clicks=st.lists(st.tuples(st.integers(1, 6), stored_times), max_size=25),
    answers=st.lists(st.tuples(st.integers(1, 6), stored_times), max_size=15),
    earliest=st.dictionaries(st.integers(1, 8), st.integers(0, 20), min_size=1),
    later=st.lists(st.integers(0, 20), min_size=1, max_size=3),
)
def test_each_use_gets_what_its_own_read_gives(
    template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    clicks: list[tuple[int, str]],
    answers: list[tuple[int, str]],
    earliest: dict[int, int],
    later: list[int],
) -> None:
    db = tmp_path_factory.mktemp("read") / "agency.db"
    db.write_bytes(template.read_bytes())
    con = sqlite3.connect(db)
    con.executemany("INSERT INTO tracking_clicks (tracking_id, contact_id, clicked_at) VALUES ('t', ?, ?)", clicks)
    con.executemany(
        "INSERT INTO contact_events (contact_id, event_type, metadata, created_at) "
        "VALUES (?, 'eligibility_answered', '{}', ?)",
        answers,
    )
    con.commit()
    con.close()
    store = open_store(str(db))
    try:
        with store.engine.connect() as conn:
            read = BehaviourRead(conn, {cid: DAY - timedelta(days=d) for cid, d in earliest.items()})
            for shift in later:  # uses at the earliest date or later, as the batch makes them
                use = {cid: DAY - timedelta(days=max(0, d - shift)) for cid, d in earliest.items()}
                assert read.as_of(use) == fetch_behaviour_as_of(conn, use)
            too_early = {cid: DAY - timedelta(days=d + 1) for cid, d in earliest.items()}
            with pytest.raises(ValueError, match="was not read"):
                read.as_of(too_early)
            with pytest.raises(ValueError, match="was not read"):
                read.as_of({99: DAY})
    finally:
        store.close()


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)))
def test_an_engagement_time_read_back_is_written_as_its_utc_twin(moment: datetime) -> None:
    # Times read back are naive UTC (parse_stored_datetime): written as the same instant in UTC.
    assert _utc(moment) == _utc(moment.replace(tzinfo=UTC))
    assert _utc(moment).endswith("Z") and datetime.fromisoformat(_utc(moment)[:-1]) == moment
