"""The per-contact path the stream agents take, against the sweep, on real SQLite files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path

from rules.config import DEFAULT_CONFIG, Config
from streams.store.campaigns import load_campaign_book
from streams.store.engine import open_store
from streams.store.epochs import Epoch
from streams.worker.redecide import sync_contact, sync_contacts
from synthetic.generate import generate_database
from tests.sweeps import checksum, sweep

T = date(2026, 3, 10)
DAY = Epoch(1, T, "baseline", None)  # the decision day of these tests


def no_balancing() -> Config:
    return replace(DEFAULT_CONFIG, load_balancing=replace(DEFAULT_CONFIG.load_balancing, enabled=False))


def sync_all(db: Path, config: Config, as_of: date) -> int:
    """Every contact through ``sync_contact``, one transaction each (as an agent would)."""
    store = open_store(str(db))
    changes = 0
    try:
        store.migrate()
        with store.engine.connect() as conn:
            ids = [int(r[0]) for r in conn.exec_driver_sql("SELECT id FROM contacts ORDER BY id")]
            book = load_campaign_book(conn, config).book
        for cid in ids:
            with store.engine.begin() as conn:
                changes += len(sync_contact(conn, config, book, cid, Epoch(1, as_of, "baseline", None)))
    finally:
        store.close()
    return changes


def test_agents_and_sweep_give_the_same_rows_without_load_balancing(tmp_path: Path) -> None:
    source = tmp_path / "agency.db"
    generate_database(
        str(source), 3000, seed=5, as_of=T, campaign_instances=6, followup_initials=400
    )
    by_sweep, by_agents = tmp_path / "sweep.db", tmp_path / "agents.db"
    by_sweep.write_bytes(source.read_bytes())
    by_agents.write_bytes(source.read_bytes())
    config = no_balancing()
    summary = sweep(by_sweep, T, config)
    assert summary.emails_scheduled > 500 and summary.skipped_by_frequency_limit >= 0
    assert any(t.startswith("followup_") for t in summary.per_type)
    assert any(t.startswith("campaign_") for t in summary.per_type)
    changes = sync_all(by_agents, config, T)
    assert changes == summary.rows_inserted
    assert checksum(by_agents) == checksum(by_sweep)
    # A second pass changes nothing, on both paths.
    assert sync_all(by_agents, config, T) == 0
    assert checksum(by_agents) == checksum(by_sweep)


def test_a_contact_no_longer_there_loses_its_owned_rows_and_keeps_its_history(
    generated_copy: Callable[..., Path],
) -> None:
    db = generated_copy(500)
    sweep(db, T)
    store = open_store(str(db))
    try:
        with store.engine.begin() as conn:
            cid = int(
                conn.exec_driver_sql(
                    "SELECT contact_id FROM email_schedules WHERE status = 'pre-scheduled' LIMIT 1"
                ).scalar_one()
            )
            before = conn.exec_driver_sql(
                "SELECT status, count(*) FROM email_schedules WHERE contact_id = ? GROUP BY 1", (cid,)
            ).fetchall()
            conn.exec_driver_sql("DELETE FROM contacts WHERE id = ?", (cid,))  # as a delete event does
            changes = sync_contacts(conn, DEFAULT_CONFIG, load_campaign_book(conn, DEFAULT_CONFIG).book, [cid], DAY)[cid]
            after = dict(
                conn.exec_driver_sql(
                    "SELECT status, count(*) FROM email_schedules WHERE contact_id = ? GROUP BY 1",
                    (cid,),
                ).fetchall()
            )
    finally:
        store.close()
    assert changes and all(c.change == "cancelled" for c in changes)
    assert "pre-scheduled" not in after
    history = {s: n for s, n in before if s not in ("pre-scheduled", "skipped")}
    assert {s: n for s, n in after.items() if s != "skipped"} == history
