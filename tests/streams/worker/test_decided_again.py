"""A contact decided again whose decision reproduces its rows is left alone
(``streams.worker.redecide._first_round``): the same database as writing it all again,
without the writes.

The long way (put the rows back to the decision day's, write the decision again) is
what the agents did before; it is forced here by making every comparison fail.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.config import DEFAULT_CONFIG
from streams.store.engine import open_store
from streams.store.epochs import start_epoch
from streams.worker import redecide
from streams.worker.batch import BatchProcessor, Message
from synthetic.generate import generate_database
from tests.event_logs import DAY0, EventLog, agency_template, event_logs, run_live
from tests.sweeps import sweep

STAMPS = ("id", "created_at", "updated_at")


def rows(db: Path) -> Counter[tuple[object, ...]]:
    """Every schedule row, every column but the id and the two stamps, in any order.

    A follow-up's metadata names its initial email's row by id: the row it names
    stands in for the id (which rows are written again, and so get new ids, is what
    differs between the two ways; the long way's ids also differ with the batching).
    """
    con = sqlite3.connect(db)
    try:
        cur = con.execute("SELECT * FROM email_schedules")
        names = [d[0] for d in cur.description]
        found = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()
    keys = {r["id"]: r["occurrence_key"] for r in found}
    for r in found:
        if r["metadata"] and "initial_row_id" in (meta := orjson.loads(r["metadata"])):
            meta["initial_row_id"] = keys.get(meta["initial_row_id"], "no such row")
            r["metadata"] = meta
    return Counter(
        tuple(orjson.dumps(v, option=orjson.OPT_SORT_KEYS) if isinstance(v, dict) else v
              for n, v in r.items() if n not in STAMPS)
        for r in found
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return agency_template(tmp_path_factory.mktemp("template") / "agency.db")


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve contacts swept on the decision day: the events' contacts 1-4 have rows from
    before the stream (sent initials, pending follow-ups a click upgrades, a campaign)."""
    db = tmp_path_factory.mktemp("swept") / "agency.db"
    generate_database(str(db), 12, seed=3, as_of=DAY0, followup_initials=12, campaign_instances=2,
                      campaign_share=0.5)
    sweep(db, DAY0)
    return db


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(log=event_logs(), seed=st.integers(0, 10**6), from_swept=st.booleans())
def test_leaving_reproduced_rows_alone_gives_the_database_the_long_way_gives(
    template: Path, swept: Path, tmp_path_factory: pytest.TempPathFactory, log: EventLog, seed: int,
    from_swept: bool,
) -> None:
    if from_swept:
        template = swept
    work = tmp_path_factory.mktemp("again")
    (work / "short").mkdir()
    (work / "long").mkdir()
    short = run_live(template, work / "short", log, seed)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(redecide, "_same_rows", lambda *_: False)
        long = run_live(template, work / "long", log, seed)
    assert short.checksum == long.checksum
    assert rows(work / "short" / f"live-{seed}.db") == rows(work / "long" / f"live-{seed}.db")


def click(cid: int, n: int, at: datetime) -> Message:
    value = {"event_id": f"click-{cid}-{n}", "occurred_at": at.isoformat().replace("+00:00", "Z"),
             "contact_id": cid, "tracking_id": f"t{n}"}
    return Message("clicks", 0, n, str(cid).encode(), orjson.dumps(value))


def upsert(cid: int, at: datetime) -> Message:
    value = {"event_id": f"contact-{cid}", "occurred_at": at.isoformat().replace("+00:00", "Z"),
             "op": "upsert", "contact_id": cid,
             "contact": {"email": f"c{cid}@example.com", "zip_code": "75201", "state": "TX",
                         "birth_date": "1950-03-25", "effective_date": "2015-04-02"}}
    return Message("contacts", 0, cid, str(cid).encode(), orjson.dumps(value))


def stored(db: Path) -> list[tuple[object, ...]]:
    """The schedule rows' ids, keys and creation times: a row written again is a new row."""
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT id, occurrence_key, created_at FROM email_schedules ORDER BY id").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("long_way", [False, True])
def test_a_click_that_changes_no_decision_writes_no_schedule_row(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, long_way: bool
) -> None:
    db = tmp_path / "agency.db"
    shutil.copyfile(template, db)
    store = open_store(str(db))
    try:
        with store.engine.begin() as conn:
            start_epoch(conn, DAY0, "baseline")
        processor = BatchProcessor(store, DEFAULT_CONFIG)
        at = datetime(DAY0.year, DAY0.month, DAY0.day, 15, tzinfo=UTC)
        placed = processor.process([upsert(7, at)])
        assert [c["email_type"] for _, c in placed.changes]  # its yearly emails, placed
        before = stored(db)
        if long_way:
            monkeypatch.setattr(redecide, "_same_rows", lambda *_: False)
        # No email of this contact has been sent: a click can upgrade no follow-up.
        clicked = processor.process([click(7, 1, at + timedelta(minutes=5))])
    finally:
        store.close()
    assert clicked.applied == 1 and clicked.changes == []
    assert clicked.engagement[7]["clicks"] == [(at + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")]
    after = stored(db)
    assert len(after) == len(before) == 2  # birthday and policy anniversary
    if long_way:  # the rows deleted and written again, as new rows
        assert {r[0] for r in after}.isdisjoint(r[0] for r in before)
    else:
        assert after == before


def test_a_second_click_rewrites_only_the_follow_ups_evidence(swept: Path, tmp_path: Path) -> None:
    """Contact 2's cold follow-up of its AEP email: the first click upgrades it, the second
    changes only the behaviour counted in its metadata, which is written too."""
    db = tmp_path / "agency.db"
    shutil.copyfile(swept, db)
    store = open_store(str(db))
    at = datetime(DAY0.year, DAY0.month, DAY0.day, 15, tzinfo=UTC)
    try:
        with store.engine.begin() as conn:
            start_epoch(conn, DAY0, "baseline")
        processor = BatchProcessor(store, DEFAULT_CONFIG)
        first = processor.process([click(2, 1, at)])
        second = processor.process([click(2, 2, at + timedelta(minutes=1))])
    finally:
        store.close()
    assert [c["email_type"] for _, c in first.changes] == ["followup_2_clicked_no_hq"]
    assert second.changes == []  # the same email: nothing to announce
    con = sqlite3.connect(db)
    try:
        (metadata,) = con.execute(
            "SELECT metadata FROM email_schedules WHERE contact_id = 2 AND email_type LIKE 'followup%'"
        ).fetchone()
    finally:
        con.close()
    assert orjson.loads(metadata)["behaviour"]["clicks"] == 2
