"""The database shell on real SQLite files: opening, migrating, retrying."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from rules.anniversary import parse_iso_date
from rules.zip_state import BLANKS, zip_states
from streams.store.dialects import month_day_sql
from streams.store.engine import Store, StoreError, is_disk_full, open_store, run_with_retry
from streams.store.tables import (
    LEGACY_UNIQUE_INDEX,
    OWN_INDEXES,
    OWN_TABLES,
    RETIRED_INDEXES,
    STOOD_IN_FOR,
)
from tests.schema_facts import sqlite_schema

LEGACY_DDL = resources.files("streams").joinpath("sql/legacy_schema.sql").read_text("utf-8")


def create_legacy_database(path: Path, ddl: str = LEGACY_DDL) -> None:
    con = sqlite3.connect(path)
    con.executescript(ddl)
    con.close()


def fill_legacy_history(path: Path) -> None:
    """Contacts and history as an agency database holds them, in many statuses."""
    con = sqlite3.connect(path)
    con.executescript(
        """
        INSERT INTO contacts (id, first_name, last_name, email, effective_date, birth_date,
                              state, zip_code, phone_number, created_at, updated_at)
        VALUES (1, 'Ann', 'Lee', 'ann@example.com', '2010-07-01', '1955-05-01', 'CA', '90210',
                NULL, '2020-01-01 10:00:00', '2020-01-01 10:00:00'),
               (2, 'Bob', 'Ray', 'bob@example.com', NULL, '1960-02-29 00:00:00', ' ny ',
                '10001-1234', '5125550100', '2021-03-04 05:06:07', '2021-03-04 05:06:07'),
               (3, 'Cy', 'Do', 'no-at-sign3', 'junk', '', NULL, '', NULL,
                '2022-01-01 00:00:00', '2022-01-01 00:00:00');
        INSERT INTO email_schedules (contact_id, email_type, scheduled_send_date,
            scheduled_send_time, status, skip_reason, created_at, updated_at, batch_id,
            event_year, event_month, event_day, catchup_note, actual_send_datetime, priority,
            campaign_instance_id, email_template, sms_template, scheduler_run_id, metadata)
        VALUES
            (1, 'birthday', '2025-04-17', '08:30:00', 'sent', NULL, '2025-04-01 03:30:00',
             '2025-04-17 08:31:00', 'b1', 2025, 5, 1, NULL, '2025-04-17 08:31:00', 5, NULL,
             'birthday_email', NULL, 'run-a', NULL),
            (1, 'BIRTHDAY', '2024-04-17', '08:30:00', 'sent', NULL, '2024-04-01 03:30:00',
             '2024-04-01 03:30:00', NULL, NULL, NULL, NULL, NULL, NULL, 10, NULL, NULL, NULL,
             NULL, NULL),
            (1, 'POST_WINDOW_BIRTHDAY', '2024-07-01', '08:30:00', 'sent', NULL,
             '2024-06-01 03:30:00', '2024-06-01 03:30:00', NULL, NULL, NULL, NULL, NULL, NULL,
             10, NULL, NULL, NULL, NULL, '{"legacy": true}'),
            (1, 'effective_date', '2025-06-01', '08:30:00', 'delivered', NULL,
             '2025-05-01 03:30:00', '2025-06-01 08:40:00', NULL, 2025, 7, 1, NULL,
             '2025-06-01 08:40:00', 5, NULL, NULL, NULL, 'run-a', NULL),
            (2, 'aep', '2025-09-15', '08:30:00', 'failed', NULL, '2025-09-01 03:30:00',
             '2025-09-15 08:30:00', NULL, 2025, 9, 15, NULL, NULL, 3, NULL, NULL, NULL,
             'run-b', NULL),
            (2, 'birthday', '2026-02-14', '08:30:00', 'bounced', NULL, '2026-01-01 03:30:00',
             '2026-02-14 08:30:00', NULL, 2026, 2, 28, NULL, NULL, 5, NULL, NULL, NULL,
             'run-b', NULL),
            (2, 'campaign_rate_increase', '2026-03-20', '08:30:00', 'scheduled', NULL,
             '2026-03-01 03:30:00', '2026-03-01 03:30:00', NULL, 2026, 4, 3, NULL, NULL, 1,
             7, 'rate_tpl', 'rate_sms', 'run-c', '{"x": 1}'),
            (2, 'followup_1_cold', '2026-03-12', '08:30:00', 'processing', NULL,
             '2026-03-10 03:30:00', '2026-03-10 03:30:00', NULL, NULL, NULL, NULL, 'late',
             NULL, 5, NULL, NULL, NULL, 'run-c', NULL),
            (3, 'effective_date', '2026-04-01', '08:30:00', 'pre-scheduled', NULL,
             '2026-03-01 03:30:00', '2026-03-01 03:30:00', NULL, 2026, 5, 1, NULL, NULL, 5,
             NULL, NULL, NULL, 'run-c', NULL),
            (3, 'birthday', '2026-04-17', '08:30:00', 'skipped',
             'CA birthday window 2026-01-31..2026-06-30', '2026-03-01 03:30:00',
             '2026-03-01 03:30:00', NULL, 2026, 5, 1, NULL, NULL, 5, NULL, NULL, NULL,
             'run-c', NULL),
            (3, 'aep', '2026-09-15', '08:30:00', 'accepted', NULL, '2026-03-01 03:30:00',
             '2026-03-01 03:30:00', NULL, 2026, 9, 15, NULL, NULL, 3, NULL, NULL, NULL, NULL,
             NULL),
            (3, 'Birthday', '2023-04-17', '08:30', 'SENT', NULL, 'x', 'y', NULL, NULL, NULL,
             NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        INSERT INTO deleted_contacts (original_contact_id, email, deleted_at)
            VALUES (9, 'gone@example.com', '2024-01-01 00:00:00');
        INSERT INTO campaign_types (name, priority) VALUES ('rate_increase', 1);
        INSERT INTO campaign_instances (id, campaign_type, instance_name, active_start_date)
            VALUES (7, 'rate_increase', 'spring', '2026-03-01');
        INSERT INTO contact_campaigns (contact_id, campaign_instance_id, trigger_date)
            VALUES (2, 7, '2026-04-03');
        INSERT INTO campaign_change_log (campaign_instance_id, field_changed, old_value,
                                         new_value) VALUES (7, 'active_end_date', NULL, 'x');
        INSERT INTO tracking_clicks (tracking_id, contact_id) VALUES ('t1', 2);
        INSERT INTO contact_events (contact_id, event_type, metadata)
            VALUES (2, 'eligibility_answered', '{"has_medical_conditions": true}');
        INSERT INTO scheduler_checkpoints (run_timestamp, scheduler_run_id, contacts_checksum,
                                           status) VALUES ('2026-03-01', 'run-c', 'abc', 'completed');
        CREATE TABLE leads (id INTEGER PRIMARY KEY, note TEXT);
        INSERT INTO leads VALUES (1, 'an agency table the scheduler does not know');
        """
    )
    con.commit()
    con.close()


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, with the SQLite type of every value."""
    con = sqlite3.connect(path)
    tables = [
        r[0]
        for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    ]
    result: dict[str, list[tuple[Any, ...]]] = {}
    for table in tables:
        rows = con.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
        result[table] = [tuple((type(v).__name__, v) for v in row) for row in rows]
    con.close()
    return result


def schema(path: Path) -> dict[str, str | None]:
    con = sqlite3.connect(path)
    rows = con.execute("SELECT name, sql FROM sqlite_master").fetchall()
    con.close()
    return dict(rows)


@pytest.fixture
def legacy_path(tmp_path: Path) -> Path:
    path = tmp_path / "agency.db"
    create_legacy_database(path)
    fill_legacy_history(path)
    return path


@pytest.fixture
def store(legacy_path: Path) -> Iterator[Store]:
    opened = open_store(str(legacy_path))
    yield opened
    opened.close()


def test_migrate_keeps_every_existing_row_byte_identical(legacy_path: Path) -> None:
    before = dump(legacy_path)
    with open_store(str(legacy_path)) as store:
        assert store.migrate()
    after = dump(legacy_path)

    for table, rows in before.items():
        width = len(rows[0]) if rows else 0
        assert [row[:width] for row in after[table]] == rows, table
        # Columns added by the migration are empty on existing rows.
        assert all(all(v == ("NoneType", None) for v in row[width:]) for row in after[table])
    assert len(before["email_schedules"]) == 12
    # Only our own tables are new: the ZIP reference and the agents' (empty) bookkeeping.
    assert set(after) - set(before) == {"mw_zip_states", *(t.name for t in OWN_TABLES)}
    assert all(not after[t.name] for t in OWN_TABLES)


def test_migrate_twice_changes_nothing_the_second_time(legacy_path: Path) -> None:
    with open_store(str(legacy_path)) as store:
        first = store.migrate()
        schema_once, rows_once = schema(legacy_path), dump(legacy_path)
        assert store.migrate() == []
    with open_store(str(legacy_path)) as store:
        assert store.migrate() == []
    assert "created index mw_email_schedules_key" in first
    assert "added column email_schedules.occurrence_key TEXT" in first
    assert schema(legacy_path) == schema_once
    assert dump(legacy_path) == rows_once


def test_migrate_drops_the_indexes_an_earlier_version_made_and_no_other(legacy_path: Path) -> None:
    with open_store(str(legacy_path)) as store:
        store.migrate()
    con = sqlite3.connect(legacy_path)
    # As an earlier version left a database (its date index), beside one of the agency's own.
    con.execute("CREATE INDEX mw_email_schedules_date ON email_schedules (scheduled_send_date, status)")
    con.execute("CREATE INDEX agency_own_date ON email_schedules (scheduled_send_date)")
    con.commit()
    con.close()
    with open_store(str(legacy_path)) as store:
        assert store.migrate() == ["dropped index mw_email_schedules_date (no longer needed)"]
        assert store.migrate() == []
    indexes = {r[0] for r in sqlite3.connect(legacy_path).execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "mw_email_schedules_date" not in indexes and "agency_own_date" in indexes
    assert set(RETIRED_INDEXES).isdisjoint(indexes)


def test_migrate_adds_columns_and_indexes(store: Store, legacy_path: Path) -> None:
    store.migrate()
    con = sqlite3.connect(legacy_path)
    columns = {r[1] for r in con.execute("PRAGMA table_info(email_schedules)")}
    checkpoint_columns = {r[1] for r in con.execute("PRAGMA table_info(scheduler_checkpoints)")}
    indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    con.close()
    assert {"occurrence_key", "ideal_send_date", "placed_run_id"} <= columns
    assert {"as_of", "contacts_scanned", "contacts_invalid", "pid", "host"} <= checkpoint_columns
    assert {"heartbeat_at", "summary"} <= checkpoint_columns
    # The agency's idx_schedules_lookup serves a contact's rows: no second index for them.
    assert {i.name for i in OWN_INDEXES} - set(STOOD_IN_FOR) <= indexes
    assert "mw_email_schedules_contact" not in indexes
    assert LEGACY_UNIQUE_INDEX not in indexes
    # The legacy indexes other than the unique one stay.
    assert {"idx_email_schedules_status", "idx_schedules_lookup", "idx_contacts_state"} <= indexes


def test_the_contact_index_is_ours_when_the_agency_lacks_its_lookup_index(legacy_path: Path) -> None:
    """An agency database without idx_schedules_lookup (or with an index of that name on
    other columns) gets mw_email_schedules_contact; one with it loses ours, which an
    earlier version created, and every read of a contact's rows uses an index either way."""
    con = sqlite3.connect(legacy_path)
    con.execute("DROP INDEX idx_schedules_lookup")
    con.execute("CREATE INDEX idx_schedules_lookup ON email_schedules (email_type)")
    con.commit()
    con.close()
    with open_store(str(legacy_path)) as store:
        assert "created index mw_email_schedules_contact" in store.migrate()
    con = sqlite3.connect(legacy_path)
    plan = " ".join(
        str(r[-1]) for r in con.execute("EXPLAIN QUERY PLAN SELECT * FROM email_schedules WHERE contact_id IN (1, 2)")
    )
    assert "mw_email_schedules_contact" in plan, plan
    # The agency's index restored as the legacy schema has it: ours goes.
    con.execute("DROP INDEX idx_schedules_lookup")
    con.execute("CREATE INDEX idx_schedules_lookup ON email_schedules (contact_id, email_type, scheduled_send_date)")
    con.commit()
    con.close()
    with open_store(str(legacy_path)) as store:
        done = store.migrate()
        assert done == ["dropped index mw_email_schedules_contact (the agency's idx_schedules_lookup serves its reads)"]
        assert store.migrate() == []
    con = sqlite3.connect(legacy_path)
    plan = " ".join(
        str(r[-1]) for r in con.execute("EXPLAIN QUERY PLAN SELECT * FROM email_schedules WHERE contact_id IN (1, 2)")
    )
    con.close()
    assert "idx_schedules_lookup" in plan, plan


def test_migrate_adds_columns_older_databases_lack(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    ddl = re.sub(r"\n\s*(scheduler_run_id|metadata)\s+TEXT,[^\n]*", "", LEGACY_DDL, count=2)
    assert ddl != LEGACY_DDL
    create_legacy_database(path, ddl)
    with open_store(str(path)) as store:
        done = store.migrate()
    assert "added column email_schedules.scheduler_run_id TEXT" in done
    assert "added column email_schedules.metadata TEXT" in done


def test_legacy_unique_index_is_replaced_by_the_key_index(store: Store) -> None:
    insert = sa.text(
        "INSERT INTO email_schedules (contact_id, email_type, scheduled_send_date, status,"
        " event_year, occurrence_key) VALUES (1, 'campaign_x', :date, 'pre-scheduled', 2026, :key)"
    )
    add_key_column = "ALTER TABLE email_schedules ADD COLUMN occurrence_key TEXT"
    # The legacy index refuses a second campaign_x email of 2026 for contact 1 ...
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.exec_driver_sql(add_key_column)
        conn.execute(insert, {"date": "2026-04-01", "key": "1|7|2026-04-15"})
        conn.execute(insert, {"date": "2026-05-01", "key": "1|8|2026-05-15"})

    store.migrate()
    # ... the migrated database takes both (two instances), keyed apart.
    with store.engine.begin() as conn:
        conn.execute(insert, {"date": "2026-04-01", "key": "1|7|2026-04-15"})
        conn.execute(insert, {"date": "2026-05-01", "key": "1|8|2026-05-15"})
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(insert, {"date": "2026-06-01", "key": "1|8|2026-05-15"})
    with store.engine.connect() as conn:
        count = conn.execute(
            sa.text("SELECT count(*) FROM email_schedules WHERE email_type = 'campaign_x'")
        ).scalar_one()
    assert count == 2


def test_migrate_creates_missing_tables_as_agencies_have_them(tmp_path: Path) -> None:
    path = tmp_path / "contacts_only.db"
    create_legacy_database(path)
    con = sqlite3.connect(path)
    for (table,) in con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('contacts', 'sqlite_sequence')"
    ).fetchall():
        con.execute(f"DROP TABLE {table}")
    con.commit()
    con.close()
    reference = tmp_path / "reference.db"
    create_legacy_database(reference)

    with open_store(str(path)) as store:
        done = store.migrate()
    assert "created table email_schedules" in done
    assert "created trigger update_email_schedules_updated_at on email_schedules" in done
    assert not any(LEGACY_UNIQUE_INDEX in line for line in done)
    with open_store(str(reference)) as store:
        store.migrate()
    # Created from streams.store.tables, then migrated: the same schema (columns,
    # types, defaults, keys, indexes, trigger) as a complete legacy database after
    # its migration; only the layout of the CREATE statements' text differs.
    assert sqlite_schema(path) == sqlite_schema(reference)


def test_contacts_table_missing_is_refused_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE email_schedules (id INTEGER PRIMARY KEY)")
    con.close()
    with open_store(str(path)) as store, pytest.raises(StoreError) as err:
        store.migrate()
    assert str(err.value) == f"{path} has no 'contacts' table: not an agency database"
    assert schema(path) == {
        "email_schedules": "CREATE TABLE email_schedules (id INTEGER PRIMARY KEY)"
    }


def test_contacts_without_the_fields_the_rules_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "thin.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT)")
    con.close()
    with open_store(str(path)) as store, pytest.raises(StoreError, match="birth_date") as err:
        store.migrate()
    assert str(path) in str(err.value)


def test_missing_file_is_refused_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nope.db"
    with pytest.raises(StoreError) as err:
        open_store(str(path))
    assert str(err.value) == f"database not found: {path}"
    with pytest.raises(StoreError, match="database not found"):
        open_store(f"sqlite:///{path}")
    assert not path.exists()


def test_create_makes_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with open_store(str(path), create=True) as store:
        assert store.is_sqlite
        with pytest.raises(StoreError, match="no 'contacts' table"):
            store.migrate()
    assert path.exists()


@pytest.mark.parametrize("kind", ["directory", "text file"])
def test_what_is_not_a_database_is_refused_naming_it(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "thing"
    if kind == "directory":
        path.mkdir()
    else:
        path.write_text("name,email\nann,ann@example.com\n")
    with pytest.raises(StoreError) as err:
        open_store(str(path))
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_connections_are_configured(store: Store) -> None:
    store.migrate()  # WAL comes with the migration, once the file is recognised (issue 11)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 0
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_deleting_a_contact_keeps_its_sent_history(store: Store) -> None:
    # With foreign keys on, the legacy ON DELETE CASCADE would wipe the history.
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM contacts WHERE id = :id"), {"id": 1})
    with store.engine.connect() as conn:
        kept = conn.execute(
            sa.text("SELECT count(*) FROM email_schedules WHERE contact_id = :id"), {"id": 1}
        ).scalar_one()
    assert kept == 4


def test_a_failed_transaction_block_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM email_schedules"))
        raise RuntimeError("stop")
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM email_schedules")).scalar_one() == 12


def test_zip_state_reference_table_is_filled_and_refilled(store: Store) -> None:
    store.migrate()
    dataset = zip_states()
    with store.engine.begin() as conn:
        rows = dict(conn.execute(sa.text("SELECT zip5, state FROM mw_zip_states")).all())
        assert rows == dict(dataset)
        conn.execute(sa.text("DELETE FROM mw_zip_states WHERE zip5 LIKE :p"), {"p": "9%"})
    assert store.migrate() == [f"filled mw_zip_states with {len(dataset)} ZIP codes"]
    with store.engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM mw_zip_states")).scalar_one()
    assert count == len(dataset)


def test_month_day_sql_is_the_trimmed_month_day() -> None:
    expr = month_day_sql("birth_date")
    assert expr == ("substr(trim(birth_date, ' ' || char(9) || char(10) || char(13)), 6, 5)")
    trim_set = {" "} | {chr(int(n)) for n in re.findall(r"char\((\d+)\)", expr)}
    assert trim_set == set(BLANKS)
    with pytest.raises(ValueError):
        month_day_sql("birth_date); DROP TABLE contacts; --")


@pytest.mark.parametrize(
    "raw",
    ["1955-05-01", " 1955-05-01 00:00:00", "\t1960-02-29\r\n", "2024-12-31T10:00:00"],
)
def test_month_day_sql_agrees_with_the_rules(raw: str) -> None:
    con = sqlite3.connect(":memory:")
    sql_md = con.execute(f"SELECT {month_day_sql('d')} FROM (SELECT ? AS d)", (raw,)).fetchone()[0]
    parsed = parse_iso_date(raw)
    assert parsed is not None
    assert sql_md == f"{parsed.month:02d}-{parsed.day:02d}"


@pytest.mark.parametrize(
    ("column", "index"),
    [("birth_date", "mw_contacts_birth_md"), ("effective_date", "mw_contacts_effective_md")],
)
def test_month_day_filter_uses_the_expression_index(store: Store, column: str, index: str) -> None:
    store.migrate()
    query = (
        f"EXPLAIN QUERY PLAN SELECT id FROM contacts"
        f" WHERE {month_day_sql(column)} BETWEEN :start AND :end"
    )
    with store.engine.connect() as conn:
        plan = conn.execute(sa.text(query), {"start": "05-01", "end": "05-31"}).all()
    details = " ".join(str(row[-1]) for row in plan)
    assert f"INDEX {index}" in details, details


def test_month_day_filter_through_an_alias_uses_the_index(store: Store) -> None:
    store.migrate()
    query = (
        "EXPLAIN QUERY PLAN SELECT c.id FROM contacts AS c"
        f" WHERE {month_day_sql('c.birth_date')} BETWEEN :start AND :end"
    )
    with store.engine.connect() as conn:
        plan = conn.execute(sa.text(query), {"start": "12-20", "end": "12-31"}).all()
    assert "INDEX mw_contacts_birth_md" in " ".join(str(row[-1]) for row in plan)


def test_concurrent_migrations_apply_once(legacy_path: Path) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            with open_store(str(legacy_path)) as store:
                results.append(store.migrate())
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(bool(r) for r in results) == [False, True]


# run_with_retry ---------------------------------------------------------------


def insert_contact(store: Store, email: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO contacts (first_name, last_name, email) VALUES ('Ed', 'Ko', :email)"
            ),
            {"email": email},
        )


def test_retry_lands_the_write_once_a_real_lock_is_released(legacy_path: Path) -> None:
    store = open_store(str(legacy_path), busy_timeout_ms=20)
    holder = sqlite3.connect(legacy_path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the database
    first_failure = threading.Event()

    def release_later() -> None:
        first_failure.wait(timeout=30)
        time.sleep(0.1)
        holder.execute("COMMIT")

    releaser = threading.Thread(target=release_later)
    releaser.start()
    calls = 0

    def write() -> None:
        nonlocal calls
        calls += 1
        insert_contact(store, "late@example.com")

    def sleep(seconds: float) -> None:
        first_failure.set()
        time.sleep(seconds)

    try:
        run_with_retry(write, attempts=100, first_delay=0.01, sleep=sleep)
    finally:
        first_failure.set()
        releaser.join()
        holder.close()
    assert calls >= 2  # the first attempt met the lock
    with store.engine.connect() as conn:
        landed = conn.execute(
            sa.text("SELECT count(*) FROM contacts WHERE email = :e"), {"e": "late@example.com"}
        ).scalar_one()
    store.close()
    assert landed == 1


def test_retry_gives_up_after_the_attempts(legacy_path: Path) -> None:
    store = open_store(str(legacy_path), busy_timeout_ms=10)
    holder = sqlite3.connect(legacy_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    delays: list[float] = []
    calls = 0

    def write() -> None:
        nonlocal calls
        calls += 1
        insert_contact(store, "never@example.com")

    try:
        with pytest.raises(OperationalError, match="locked"):
            run_with_retry(write, attempts=4, first_delay=0.5, sleep=delays.append)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        store.close()
    assert calls == 4
    assert delays == [0.5, 1.0, 2.0]


def test_retry_backoff_is_capped() -> None:
    delays: list[float] = []

    def always_locked() -> None:
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))

    with pytest.raises(OperationalError):
        run_with_retry(always_locked, attempts=8, first_delay=0.5, sleep=delays.append)
    assert len(delays) == 7
    assert max(delays) == 2.0
    assert delays == sorted(delays)


def test_retry_does_not_repeat_other_database_errors(store: Store) -> None:
    calls = 0
    delays: list[float] = []

    def broken() -> None:
        nonlocal calls
        calls += 1
        with store.engine.begin() as conn:
            conn.execute(sa.text("SELECT * FROM no_such_table"))

    with pytest.raises(OperationalError, match="no such table"):
        run_with_retry(broken, attempts=5, sleep=delays.append)
    assert calls == 1
    assert delays == []


# issue 11: errors kept, reading never writes -------------------------------------


def test_retry_keeps_the_error_a_lost_savepoint_masks(store: Store) -> None:
    store.migrate()
    with store.engine.connect() as conn:
        limit = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one()) + 2

    def full_disk(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count={limit:d}")

    sa.event.listen(store.engine, "connect", full_disk)
    store.engine.dispose()
    rows = [(9, "birthday", "2026-05-01", "pre-scheduled", f"key-{i}", "x" * 200) for i in range(2000)]
    delays: list[float] = []

    def write() -> None:
        # A full disk rolls the whole transaction back, the savepoint with it.
        with store.engine.begin() as conn, conn.begin_nested():
            conn.exec_driver_sql(
                "INSERT INTO email_schedules (contact_id, email_type, scheduled_send_date, status,"
                " occurrence_key, catchup_note) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

    with pytest.raises(OperationalError) as err:
        run_with_retry(write, sleep=delays.append)
    assert "database or disk is full" in str(err.value)
    assert "savepoint" not in str(err.value)
    assert is_disk_full(err.value)
    assert delays == []  # not a lock: not tried again


def test_read_only_connections_set_nothing_that_writes(legacy_path: Path) -> None:
    with open_store(str(legacy_path), read_only=True, busy_timeout_ms=1234) as store:
        assert store.read_only
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
            assert conn.exec_driver_sql("PRAGMA query_only").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 0
    with pytest.raises(StoreError, match="read-only"):
        open_store(str(legacy_path.with_name("new.db")), create=True, read_only=True)
    assert not legacy_path.with_name("new.db").exists()


def test_a_read_only_path_with_uri_characters_opens(tmp_path: Path) -> None:
    odd = tmp_path / "agency 100%?#1.db"
    create_legacy_database(odd)
    with open_store(str(odd), read_only=True) as store, store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM contacts")).scalar_one() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [odd.name]
