"""The valid contacts a sweep counts (the daily cap's base), day after day: a run that
builds on the last one counts them from the kept invalid contacts and the marked ones
(``streams.sweep.valid_contacts``), and must find what a count of every contact finds."""

from __future__ import annotations

import random
import sqlite3
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.sweep.prefilter import count_valid_contacts, invalid_contact_ids
from streams.sweep.side_reads import SideReads
from tests.legacy_db import dump
from tests.sweeps import read, sweep


def _counted(db: Path) -> tuple[int, list[int]]:
    return read(db, count_valid_contacts), read(db, invalid_contact_ids)


def _kept(db: Path) -> list[int]:
    return sorted(int(r[0]) for r in dump(db, "SELECT contact_id FROM mw_invalid_contacts"))


def _edit(db: Path, rng: random.Random) -> None:
    """Contacts made invalid, valid again, moved, deleted and added, as an agency's
    software would (the triggers mark them)."""
    con = sqlite3.connect(db)
    ids = [r[0] for r in con.execute("SELECT id FROM contacts ORDER BY id")]
    for cid in rng.sample(ids, 6):
        con.execute("UPDATE contacts SET email = 'no email ' || id WHERE id = ?", (cid,))
    for cid in rng.sample(ids, 6):
        con.execute("UPDATE contacts SET email = 'fixed' || id || '@example.com' WHERE id = ?", (cid,))
    for cid in rng.sample(ids, 4):
        con.execute("UPDATE contacts SET state = ?, zip_code = ? WHERE id = ?", (rng.choice(["", "XX", "tx "]), rng.choice([None, "00000", "75201"]), cid))
    for cid in rng.sample(ids, 3):
        con.execute("DELETE FROM contacts WHERE id = ?", (cid,))
    for _ in range(3):
        con.execute(
            "INSERT INTO contacts (first_name, last_name, email, state, birth_date) VALUES ('N', 'C', ?, ?, '1955-05-05')",
            (rng.choice([f"new{rng.random()}@example.com", f"broken{rng.random()}"]), rng.choice(["CA", None])),
        )
    con.commit()
    con.close()


def test_daily_runs_count_the_valid_contacts_a_full_count_finds(generated_copy: Any) -> None:
    db = generated_copy()
    rng = random.Random(3)
    first = sweep(db, date(2026, 3, 10))
    valid, invalid = _counted(db)
    assert not first.incremental and first.valid_contacts == valid and _kept(db) == invalid != []
    for day in range(1, 8):
        _edit(db, rng)
        valid, invalid = _counted(db)
        s = sweep(db, date(2026, 3, 10) + timedelta(days=day))
        assert s.incremental, s.prefilter
        assert s.valid_contacts == valid, f"day {day}"
        assert _kept(db) == invalid


def test_a_contact_written_while_a_run_reads_is_looked_at_by_the_next(
    generated_copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written after the run read the marks and the contacts: the run does not see it and
    leaves its mark, so the next run looks at it again."""
    db = generated_copy()
    sweep(db, date(2026, 3, 10))
    valid_id = next(cid for (cid,) in dump(db, "SELECT id FROM contacts ORDER BY id") if cid not in _kept(db))
    start = SideReads.start

    def write_then_start(store: Any, find_invalid: bool, contacts: int) -> SideReads:
        con = sqlite3.connect(db)
        con.execute("UPDATE contacts SET email = 'gone' WHERE id = ?", (valid_id,))
        con.commit()
        con.close()
        monkeypatch.setattr(SideReads, "start", start)  # once
        return start(store, find_invalid, contacts)

    monkeypatch.setattr(SideReads, "start", write_then_start)
    during = sweep(db, date(2026, 3, 11))
    assert during.incremental and valid_id not in _kept(db)  # it read before the write
    assert dump(db, "SELECT count(*) FROM mw_changed WHERE contact_id = ?", (valid_id,))[0][0] > 0
    after = sweep(db, date(2026, 3, 12))
    assert after.incremental and valid_id in _kept(db)
    assert after.valid_contacts == _counted(db)[0] == during.valid_contacts - 1


def test_a_partial_run_keeps_nothing(generated_copy: Any) -> None:
    db = generated_copy()
    sweep(db, date(2026, 3, 10))
    kept = _kept(db)
    con = sqlite3.connect(db)
    con.execute("UPDATE contacts SET email = 'gone' WHERE id = 1")
    con.commit()
    con.close()
    partial = sweep(db, date(2026, 3, 10), contact_ids=[1])
    assert partial.valid_contacts == _counted(db)[0]
    assert _kept(db) == kept  # the next whole run looks at contact 1 (still marked)
    nxt = sweep(db, date(2026, 3, 11))
    assert nxt.incremental and 1 in _kept(db) and nxt.valid_contacts == _counted(db)[0]
