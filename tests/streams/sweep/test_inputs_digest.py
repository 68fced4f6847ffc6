"""The ledger's inputs digest, assembled part by part, is the digest of the one JSON list it
stands for: a ledger written before (one ``orjson.dumps`` of the list) stays valid, and no
change of a contact's inputs goes unseen."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson

from rules.contact import ContactRecord
from rules.followup import NO_BEHAVIOUR, Behaviour
from streams.store.behaviour import behaviour_since, fetch_behaviour
from streams.store.campaigns import CampaignTarget, fetch_targets
from streams.store.engine import open_store
from streams.store.schedules import StoredRow, fetch_contact_fields, fetch_rows_reported
from streams.sweep.chunks import _inputs_digest
from tests.legacy_db import add_contacts, make_legacy_db
from tests.sweeps import T, campaign_agency, crafted, execute_rows, sweep


def one_shot(record: ContactRecord, rows: list[StoredRow], targets: list[CampaignTarget], behaviour: Behaviour) -> str:
    read = [record, [tuple(r.values) for r in rows], list(targets), behaviour]
    return hashlib.blake2b(orjson.dumps(read, default=str), digest_size=12).hexdigest()


def test_the_digest_is_the_one_shot_digest_for_every_kind_of_input(tmp_path: Path) -> None:
    db = make_legacy_db(tmp_path / "agency.db")
    campaign_agency(db)
    add_contacts(db, [{"id": 6, "zip_code": "75201", "state": "TX", "birth_date": "1950-04-20"}])  # no target
    execute_rows(
        db,
        "INSERT INTO tracking_clicks (tracking_id, contact_id, clicked_at) VALUES (?, ?, ?)",
        [("a", 1, "2026-03-21 10:00:00")],
    )
    execute_rows(
        db,
        "INSERT INTO contact_events (contact_id, event_type, metadata, created_at) VALUES (?, ?, ?, ?)",
        [(3, "eligibility_answered", '{"main_questions_yes_count": 2}', "2026-03-31 12:00:00")],
    )
    sweep(db, T)  # rows for most contacts, as the next day's decision reads them
    with open_store(str(db)) as store, store.engine.connect() as conn:
        ids = [int(r[0]) for r in conn.exec_driver_sql("SELECT id FROM contacts ORDER BY id")]
        fields = fetch_contact_fields(conn, ids)
        rows, _ = fetch_rows_reported(conn, ids)
        targets, _ = fetch_targets(conn, ids, range(1, 100))
        behaviour = fetch_behaviour(conn, ids, behaviour_since(T))
    seen: set[str] = set()
    for f in fields:
        cid = f[0]
        record, mine, its_targets = ContactRecord(*f), rows[cid], targets.get(cid, [])
        its_behaviour = behaviour.get(cid, NO_BEHAVIOUR)
        assert _inputs_digest(record, mine, its_targets, its_behaviour) == one_shot(
            record, mine, its_targets, its_behaviour
        ), cid
        # An equal but distinct empty behaviour takes the general path: the same digest.
        assert _inputs_digest(record, mine, its_targets, Behaviour()) == one_shot(record, mine, its_targets, Behaviour())
        seen |= {"rows"} if mine else {"no rows"}
        seen |= {"targets"} if its_targets else {"no targets"}
        seen |= {"behaviour"} if its_behaviour is not NO_BEHAVIOUR else {"no behaviour"}
    assert seen == {"rows", "no rows", "targets", "no targets", "behaviour", "no behaviour"}


def test_a_changed_input_changes_the_digest(tmp_path: Path) -> None:
    db = make_legacy_db(tmp_path / "agency.db")
    crafted(db)
    with open_store(str(db)) as store, store.engine.connect() as conn:
        record = ContactRecord(*fetch_contact_fields(conn, [1])[0])
    base = _inputs_digest(record, [], [], NO_BEHAVIOUR)
    moved = ContactRecord(record.id, record.email, record.zip_code, record.state, "1950-04-21", record.effective_date)
    assert _inputs_digest(moved, [], [], NO_BEHAVIOUR) != base
    target = CampaignTarget(1, 11, None, "pending", None)
    assert _inputs_digest(record, [], [target], NO_BEHAVIOUR) != base
