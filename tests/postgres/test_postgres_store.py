"""The store on PostgreSQL gives what it gives on SQLite: the same schedule checksum and
the same dead letters for the same events, the same sweep, an idempotent migration."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from rules.config import DEFAULT_CONFIG
from streams.store.checksum import schedule_checksum
from streams.store.engine import Store, open_store
from streams.store.epochs import current_epoch, start_epoch
from streams.store.tables import AGENCY_TABLES
from streams.sweep import side_reads
from streams.sweep.run import run_sweep
from streams.sweep.summary import SweepOptions
from streams.worker.batch import BatchProcessor, Message
from synthetic.generate import generate_database
from synthetic.sample_events import mixed_events
from tests.builders import rate_increase_q2_events
from tests.legacy_db import make_legacy_db
from tests.schema_facts import postgres_schema
from tests.sweeps import summary_counts

ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 3, 10)


def checksum(store: Store) -> str:
    with store.engine.connect() as conn:
        return schedule_checksum(conn)


def stream(store: Store, messages: list[Message], batch: int) -> tuple[list[Any], list[Any]]:
    """Every batch through the agents' step: (dead letters, announced changes), deciding as of AS_OF."""
    with store.engine.begin() as conn:
        if current_epoch(conn) is None:
            start_epoch(conn, AS_OF, "baseline")
    processor = BatchProcessor(store, DEFAULT_CONFIG)
    dead: list[Any] = []
    changes: list[Any] = []
    for start in range(0, len(messages), batch):
        result = processor.process(messages[start : start + batch])
        dead.extend(result.deadletters)
        changes.extend(result.changes)
    return dead, changes


def test_a_mixed_stream_gives_the_same_schedule_and_dead_letters(
    pg_url: str, tmp_path: Path
) -> None:
    events = list(mixed_events(3000, seed=5, malformed_share=0.01))
    messages = [Message(e.topic, 0, i, e.key, e.value) for i, e in enumerate(events)]
    outcomes = []
    for target in (str(make_legacy_db(tmp_path / "a.db")), pg_url):
        with open_store(target) as store:
            store.migrate()
            dead, changes = stream(store, messages, 250)
            outcomes.append((checksum(store), dead, changes))
    (sqlite_sum, sqlite_dead, sqlite_changes), (pg_sum, pg_dead, pg_changes) = outcomes
    assert sqlite_dead and pg_dead == sqlite_dead
    assert sorted(d["offset"] for d in pg_dead) == [i for i, e in enumerate(events) if e.malformed]
    assert pg_changes == sqlite_changes
    assert pg_sum == sqlite_sum


def copy_agency_rows(source: Path, store: Store) -> None:
    """Every legacy table's rows from an SQLite file into a migrated PostgreSQL database."""
    tables = [t.name for t in AGENCY_TABLES]
    con = sqlite3.connect(source)
    try:
        with store.engine.begin() as conn:
            for table in tables:
                cursor = con.execute(f"SELECT * FROM {table}")  # names from our DDL
                columns = [d[0] for d in cursor.description]
                rows = [dict(zip(columns, r, strict=True)) for r in cursor]
                if rows:
                    target = sa.table(table, *(sa.column(c) for c in columns))
                    conn.execute(sa.insert(target), rows)
                if "id" in columns:
                    # Rows came with their ids: new rows must be numbered after them.
                    conn.execute(
                        sa.text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"coalesce(max(id), 0) + 1, false) FROM {table}"
                        )
                    )
    finally:
        con.close()


@pytest.mark.parametrize("side_process", [False, True])
def test_a_sweep_gives_the_same_schedule_as_on_sqlite(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side_process: bool
) -> None:
    """Also with the checksum before and the invalid contacts read in a side process (as
    for agencies of 20,000 contacts and more), from PostgreSQL's repeatable-read snapshot."""
    if side_process:
        monkeypatch.setattr(side_reads, "SIDE_PROCESS_FROM", 0)
    source = tmp_path / "agency.db"
    generate_database(str(source), 2500, seed=7, as_of=AS_OF, campaign_instances=2, followup_initials=50)
    with open_store(pg_url) as pg, open_store(str(source)) as lite:
        pg.migrate()
        copy_agency_rows(source, pg)
        lite.migrate()
        assert checksum(pg) == checksum(lite)  # the copy itself reads back alike
        results = []
        for store in (lite, pg):
            first = run_sweep(store, DEFAULT_CONFIG, SweepOptions(as_of=AS_OF, workers=1))
            # The next day in worker processes: each opens the database again.
            options = SweepOptions(as_of=date(2026, 3, 11), workers=2, chunk_size=300)
            second = run_sweep(store, DEFAULT_CONFIG, options)
            results.append((first, second, checksum(store)))
    (lite_first, lite_second, lite_sum), (pg_first, pg_second, pg_sum) = results
    assert lite_first.rows_inserted > 0
    assert summary_counts(pg_first) == summary_counts(lite_first)
    assert summary_counts(pg_second) == summary_counts(lite_second)
    assert pg_second.schedules_after_checksum == pg_sum == lite_sum
    assert pg_second.schedules_before_checksum == pg_first.schedules_after_checksum
    assert 0 < pg_second.valid_contacts == lite_second.valid_contacts < pg_second.contacts_scanned


def test_a_first_sweep_with_its_indexes_built_after_and_its_sum_read_by_two_processes(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first sweep that drops two indexes before its writes and builds them after
    (``streams.sweep.deferred_indexes``), whose new rows a forked process makes
    (``streams.sweep.row_maker``), and whose checksum after is read by this process and a
    helper (``streams.store.row_sums``), gives SQLite's rows, and the indexes are back."""
    import streams.store.checksum as checksum_module
    from streams.store import row_sums
    from streams.sweep.deferred_indexes import DEFERRABLE

    monkeypatch.setattr(row_sums, "HELPER_FROM", 0)
    monkeypatch.setattr(checksum_module, "REBUILD_FROM", 0)
    source = tmp_path / "agency.db"
    generate_database(str(source), 2500, seed=5, as_of=AS_OF)
    options = SweepOptions(as_of=AS_OF, workers=1, defer_indexes_from=1, make_rows_apart_from=1)
    with open_store(pg_url) as pg, open_store(str(source)) as lite:
        pg.migrate()
        copy_agency_rows(source, pg)
        lite.migrate()
        before = schema(pg)["email_schedules"]
        lite_first = run_sweep(lite, DEFAULT_CONFIG, SweepOptions(as_of=AS_OF, workers=1))
        pg_first = run_sweep(pg, DEFAULT_CONFIG, options)
        assert sorted(pg_first.indexes_built_after_writes) == sorted(DEFERRABLE)
        assert summary_counts(pg_first) == summary_counts(lite_first) | {
            "indexes_built_after_writes": pg_first.indexes_built_after_writes
        }
        assert pg_first.schedules_after_checksum == checksum(pg) == checksum(lite)
        assert schema(pg)["email_schedules"] == before


def schema(store: Store) -> dict[str, object]:
    inspector = sa.inspect(store.engine)
    return {
        table: (
            sorted((c["name"], str(c["type"])) for c in inspector.get_columns(table)),
            sorted(i["name"] for i in inspector.get_indexes(table)),
        )
        for table in inspector.get_table_names()
    }


def test_migrating_twice_changes_nothing_and_adds_only_what_is_missing(pg_url: str) -> None:
    with open_store(pg_url) as store:
        done = store.migrate()
        assert "created table contacts" in done and "created index mw_contacts_birth_md" in done
        before = schema(store)
        assert store.migrate() == []
        assert schema(store) == before
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX mw_contacts_birth_md")
            conn.exec_driver_sql("DROP TABLE mw_parked_events")
            conn.exec_driver_sql("ALTER TABLE email_schedules DROP COLUMN placed_run_id")
            conn.exec_driver_sql(
                "CREATE UNIQUE INDEX idx_email_schedules_unique_event"
                " ON email_schedules(contact_id, email_type, event_year)"
            )
        assert sorted(store.migrate()) == sorted(
            [
                "added column email_schedules.placed_run_id TEXT",
                "created table mw_parked_events",
                "created index mw_contacts_birth_md",
                "created index mw_parked_events_contact",
                "dropped legacy unique index idx_email_schedules_unique_event"
                " (contact_id, email_type, event_year): replaced by mw_email_schedules_key",
            ]
        )
        assert schema(store) == before
        assert store.migrate() == []


def test_migrating_an_empty_database_gives_the_schema_it_always_gave(pg_url: str) -> None:
    """The DDL is now compiled from streams.store.tables; the database is what the regex
    conversion of the legacy DDL made before (tests/data/postgres_schema.json): text as
    TEXT COLLATE "C", 0/1 integers for booleans, identity ids, no foreign keys, the
    BEFORE UPDATE trigger stamping updated_at."""
    expected = orjson.loads((ROOT / "tests" / "data" / "postgres_schema.json").read_bytes())
    with open_store(pg_url) as store:
        assert store.migrate() == expected["migrate"]
        with store.engine.connect() as conn:
            found = postgres_schema(conn)
    for what, rows in found.items():
        assert rows == expected[what], what


def test_the_cli_sweeps_a_postgresql_database(pg_url: str) -> None:
    with open_store(pg_url) as store:
        store.migrate()
        stream(store, [Message(e.topic, 0, i, e.key, e.value) for i, e in enumerate(mixed_events(600, seed=2))], 200)
    proc = subprocess.run(
        [sys.executable, "-m", "streams.cli", "sweep", "--db", pg_url, "--as-of", "2026-03-10"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "as of 2026-03-10: completed" in proc.stdout
    assert "contacts:" in proc.stdout and "emails:" in proc.stdout


def campaign_and_delete_events() -> list[Message]:
    at = "2026-03-10T10:00:00-05:00"

    def contact(cid: int, birth: str) -> dict[str, object]:
        return {
            "event_id": f"c{cid}", "occurred_at": at, "op": "upsert", "contact_id": cid,
            "contact": {"email": f"c{cid}@example.com", "zip_code": "75201", "state": "TX",
                        "birth_date": birth, "effective_date": None},
        }

    campaigns = [
        *rate_increase_q2_events(at),
        {"event_id": "a3", "occurred_at": at, "op": "targets", "instance_id": 3,
         "targets": [{"contact_id": 7, "trigger_date": "2026-03-30"}, {"contact_id": 8, "trigger_date": None}]},
        {"event_id": "a4", "occurred_at": at, "op": "targets", "instance_id": 3,  # again: an update
         "targets": [{"contact_id": 8, "trigger_date": None, "status": "pending"}]},
    ]
    later = dict(campaigns[1], event_id="a5", occurred_at="2026-03-11T10:00:00Z")
    later["instance"] = dict(campaigns[1]["instance"], active_start_date="2026-03-20")  # type: ignore[arg-type]
    delete = {"event_id": "d8", "occurred_at": "2026-03-12T10:00:00Z", "op": "delete", "contact_id": 8}
    return [
        Message("contacts", 0, 0, b"7", orjson.dumps(contact(7, "1950-12-01"))),
        Message("contacts", 0, 1, b"8", orjson.dumps(contact(8, "1950-03-24"))),
        *(Message("campaigns", 0, i, b"3", orjson.dumps(v)) for i, v in enumerate(campaigns)),
        Message("campaigns", 0, 9, b"3", orjson.dumps(later)),
        Message("contacts", 0, 2, b"8", orjson.dumps(delete)),
    ]


def test_campaign_events_and_a_deletion_give_the_same_rows(pg_url: str, tmp_path: Path) -> None:
    read_back = (
        "SELECT field_changed, old_value, new_value, changed_by, changed_at,"
        " requires_rescheduling FROM campaign_change_log ORDER BY id",
        "SELECT contact_id, campaign_instance_id, trigger_date, status FROM contact_campaigns ORDER BY id",
        "SELECT original_contact_id, email, birth_date, deleted_at FROM deleted_contacts",
        "SELECT contact_id, email_type, status FROM email_schedules ORDER BY occurrence_key",
    )
    outcomes = []
    for target in (str(make_legacy_db(tmp_path / "a.db")), pg_url):
        with open_store(target) as store:
            store.migrate()
            dead, changes = stream(store, campaign_and_delete_events(), 1)
            with store.engine.connect() as conn:
                rows = [[tuple(r) for r in conn.execute(sa.text(sql))] for sql in read_back]
            outcomes.append((dead, changes, rows, checksum(store)))
    assert outcomes[0][0] == []
    assert outcomes[0][1] and outcomes[0][2][2]  # something scheduled, contact 8 kept for billing
    assert outcomes[1] == outcomes[0]


def test_campaign_admin_commands_work_alike(pg_url: str, tmp_path: Path) -> None:
    from streams.admin import campaigns as admin

    csv_path = tmp_path / "targets.csv"
    csv_path.write_text("1,2026-04-15\n2,\n", encoding="utf-8")
    outcomes = []
    for target in (str(make_legacy_db(tmp_path / "a.db")), pg_url):
        with open_store(target) as store:
            store.migrate()
            stream(store, [m for m in campaign_and_delete_events() if m.topic_kind == "contacts"][:2], 1)
            with store.engine.begin() as conn:  # contacts 1 and 2, by the agents' own write
                for cid in (1, 2):
                    conn.execute(
                        sa.text(
                            "INSERT INTO contacts (id, first_name, last_name, email, zip_code, state,"
                            " birth_date) VALUES (:id, 'Pat', 'Doe', :e, '75201', 'TX', '1950-05-05')"
                        ),
                        {"id": cid, "e": f"p{cid}@example.com"},
                    )
            admin.set_campaign_type(store, DEFAULT_CONFIG, "promo", {"days_before_event": 7})
            new = admin.create_instance(
                store, DEFAULT_CONFIG, "promo", "spring", start=date(2026, 3, 1), end=date(2026, 5, 31)
            )
            first = admin.import_targets(store, new.id, csv_path)
            again = admin.import_targets(store, new.id, csv_path)  # NULL trigger date matches NULL
            dates = admin.change_dates(store, new.id, {"active_end_date": date(2026, 4, 30)}, "ops")
            summary = run_sweep(store, DEFAULT_CONFIG, SweepOptions(as_of=AS_OF, workers=1))
            with store.engine.connect() as conn:
                pending = conn.execute(
                    sa.text("SELECT count(*) FROM campaign_change_log WHERE requires_rescheduling = 1")
                ).scalar_one()
            listing = admin.list_campaigns(store, DEFAULT_CONFIG)
            outcomes.append(
                (
                    new.id,
                    (first.imported, first.unchanged, again.imported, again.unchanged),
                    [(c.field, c.old, c.new) for c in dates.changes],
                    len(dates.log_ids),
                    summary_counts(summary)["campaign_targets_updated"],
                    pending,
                    [(i.id, n) for i, n in listing.instances],
                    checksum(store),
                )
            )
    assert outcomes[0][1] == (2, 0, 0, 2)
    assert outcomes[0][5] == 0  # the sweep took the logged change into account
    assert outcomes[1] == outcomes[0]


def test_an_instance_made_after_the_agents_made_one_gets_a_new_id(pg_url: str) -> None:
    """The agents create instances with the id the event gives; an instance created afterwards
    with ``mailwindow campaign instance`` must not be handed that id again."""
    from streams.admin import campaigns as admin

    with open_store(pg_url) as store:
        store.migrate()
        stream(store, [m for m in campaign_and_delete_events() if m.topic_kind == "campaigns"][:2], 1)
        new = admin.create_instance(
            store, DEFAULT_CONFIG, "rate_increase", "Q3", start=date(2026, 7, 1), end=date(2026, 9, 30)
        )
        assert new.id == 4
        with store.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(sa.text("SELECT id FROM campaign_instances ORDER BY id"))]
        assert ids == [3, 4]


def test_a_baseline_of_a_postgresql_database_replays_to_its_checksum(pg_url: str, tmp_path: Path) -> None:
    """The audit baseline of a PostgreSQL deployment: its snapshot (an SQLite file copied in
    one repeatable-read transaction) has the live checksum, and replay from it with the
    events recorded after it gives the live database's checksum."""
    from streams.events.codec import parse_event
    from streams.events.model import BaselineRecord
    from streams.worker.baseline import record_baseline
    from streams.worker.replay import AuditLog, Recorded, replay_log

    events = [Message(e.topic, 0, i, e.key, e.value) for i, e in enumerate(mixed_events(800, seed=9))]
    with open_store(pg_url) as store:
        store.migrate()
        stream(store, events[:400], 100)
        baseline = record_baseline(store, DEFAULT_CONFIG, AS_OF, tmp_path / "snapshots")
        assert baseline.record["schedules_checksum"] == checksum(store)
        stream(store, events[400:], 100)
        live = checksum(store)
    record = parse_event("baselines", orjson.dumps(baseline.record))
    assert isinstance(record, BaselineRecord) and record.offsets == {
        t: {0: max(m.offset for m in events[:400] if m.topic_kind == t) + 1}
        for t in {m.topic_kind for m in events[:400]}
    }
    audit = AuditLog(
        inputs=[Recorded(m.topic_kind, m.partition, m.offset, m.key, m.value) for m in events],
        baselines=[record],
    )
    assert replay_log(audit, str(tmp_path / "replayed.db")) == live


def test_a_dry_run_of_a_postgresql_database_writes_nothing_and_lists_what_the_sweep_does(
    pg_url: str, tmp_path: Path
) -> None:
    """``sweep --dry-run`` on PostgreSQL (issue 15): the database copied in one repeatable-read
    read, opened read-only; its checksum and checkpoints unchanged; the changes listed are
    those the real sweep then makes on it."""
    from rules.config import config_from_mapping
    from streams.sweep.preview import preview_sweep
    from tests.sweeps import changed_rules, listed_changes, owned_rows, schedule_changes

    source = tmp_path / "agency.db"
    generate_database(str(source), 2500, seed=7, as_of=AS_OF)
    config, _ = config_from_mapping(changed_rules())
    nxt = date(2026, 3, 11)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with open_store(pg_url) as pg:
        pg.migrate()
        copy_agency_rows(source, pg)
        run_sweep(pg, DEFAULT_CONFIG, SweepOptions(as_of=AS_OF, workers=1))
        stored = checksum(pg)
        with pg.engine.connect() as conn:
            runs = conn.exec_driver_sql("SELECT count(*) FROM scheduler_checkpoints").scalar_one()
            before = owned_rows(conn)
        with open_store(pg_url, read_only=True) as reader, preview_sweep(
            reader, config, SweepOptions(as_of=nxt), scratch=scratch
        ) as preview:
            changes = list(preview.changes())
            previewed = preview.summary
        assert list(scratch.iterdir()) == []
        assert checksum(pg) == stored
        with pg.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM scheduler_checkpoints").scalar_one() == runs
        real = run_sweep(pg, config, SweepOptions(as_of=nxt))
        with pg.engine.connect() as conn:
            made = schedule_changes(before, owned_rows(conn))
    assert {c["change"] for c in changes} >= {"created", "skipped", "unskipped"}
    assert listed_changes(changes) == made
    assert summary_counts(previewed) == summary_counts(real)
    assert previewed.schedules_after_checksum == real.schedules_after_checksum
