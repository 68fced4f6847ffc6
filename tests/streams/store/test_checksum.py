"""The schedule checksum: decisions in, digest out; nothing else counts."""

from __future__ import annotations

import hashlib
import re
import shutil
import sqlite3
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest

import streams.store.checksum as checksum_module
from streams.store.checksum import (
    CHECKSUM_COLUMNS,
    EMPTY_CHECKSUM,
    key_order_checksum,
    schedule_checksum,
)
from streams.store.engine import Store, open_store

LEGACY_DDL = resources.files("streams").joinpath("sql/legacy_schema.sql").read_text("utf-8")

# Checksum columns, then columns the checksum must ignore.
COLUMNS = (*CHECKSUM_COLUMNS, "scheduler_run_id", "created_at", "updated_at", "metadata")

OWNED: list[tuple[Any, ...]] = [
    ("1|birthday|2026", 1, "birthday", "2026-04-17", "08:30:00", "pre-scheduled", None, 5,
     None, None, None, 2026, 5, 1),
    ("2|birthday|2026", 2, "birthday", "2026-03-20", "08:30:00", "skipped",
     "CA birthday window 2026-01-31..2026-06-30", 5, None, None, None, 2026, 4, 3),
    ("2|7|2026-04-03", 2, "campaign_rate_increase", "2026-03-20", "08:30:00", "pre-scheduled",
     None, 1, 7, "rate_tpl", "rate_sms", 2026, 4, 3),
    ("3|post_window|2026-06-30", 3, "post_window", "2026-07-01", "08:30:00", "pre-scheduled",
     None, 8, None, None, None, 2026, 7, 1),
    # Legacy owned rows without a key: ordered by the other columns.
    (None, 4, "BIRTHDAY", "2026-03-15", "08:30:00", "pre-scheduled", None, 10, None, None,
     None, None, None, None),
    (None, 4, "BIRTHDAY", "2026-03-15", "08:30:00", "skipped", "NY year-round", 10, None,
     None, None, None, None, None),
]  # fmt: skip
NOT_OWNED: list[tuple[Any, ...]] = [
    ("1|birthday|2025", 1, "birthday", "2025-04-17", "08:30:00", "sent", None, 5, None, None,
     None, 2025, 5, 1),
    ("5|aep|2026-09-15", 5, "aep", "2026-09-15", "08:30:00", "scheduled", None, 3, None, None,
     None, 2026, 9, 15),
    (None, 6, "birthday", "2026-03-21", "08:30:00", "Skipped", None, 5, None, None, None,
     2026, 4, 4),
]  # fmt: skip


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty legacy database (migrating once is the slow part)."""
    path = tmp_path_factory.mktemp("checksum") / "template.db"
    con = sqlite3.connect(path)
    con.executescript(LEGACY_DDL)
    con.close()
    with open_store(str(path)) as store:
        store.migrate()
    return path


@pytest.fixture
def new_store(template: Path, tmp_path: Path) -> Iterator[Any]:
    opened: list[Store] = []

    def make(name: str) -> Store:
        path = tmp_path / f"{name}.db"
        shutil.copyfile(template, path)
        store = open_store(str(path))
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def insert(store: Store, decisions: list[tuple[Any, ...]], run: str, stamp: str) -> None:
    placeholders = ", ".join("?" * len(COLUMNS))
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            f"INSERT INTO email_schedules ({', '.join(COLUMNS)}) VALUES ({placeholders})",
            [(*d, run, stamp, stamp, f'{{"run": "{run}"}}') for d in decisions],
        )


def checksum(store: Store) -> str:
    with store.engine.connect() as conn:
        return schedule_checksum(conn)


def key_order(store: Store) -> str:
    with store.engine.connect() as conn:
        return key_order_checksum(conn)


def rowsum(rows: list[tuple[Any, ...]]) -> str:
    """The checksum by its definition, computed here on its own: each row an orjson list
    hashed to 2048 bits with SHAKE-256 (a little-endian number), the numbers added modulo
    2**2048, and the SHA-256 of the sum's 256 little-endian bytes."""
    total = 0
    for row in rows:
        total += int.from_bytes(hashlib.shake_256(orjson.dumps(list(row))).digest(256), "little")
    total %= 2**2048
    return "rowsum:" + hashlib.sha256(total.to_bytes(256, "little")).hexdigest()


def in_key_order(rows: list[tuple[Any, ...]]) -> str:
    """The earlier digest, computed here on its own: SHA-256 over the rows' orjson lists,
    sorted by every column with NULLs first (the key first, so rows without one lead)."""
    expected = hashlib.sha256()
    for row in sorted(rows, key=lambda row: tuple((v is not None, v or 0) for v in row)):
        expected.update(orjson.dumps(list(row)))
    return f"sha256:{expected.hexdigest()}"


def execute(store: Store, sql: str, *params: Any) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql(sql, params)


def test_same_decisions_give_the_same_checksum(new_store: Any) -> None:
    a, b = new_store("a"), new_store("b")
    insert(a, OWNED + NOT_OWNED, "run-1", "2026-03-10 03:30:00")
    # Other order, other ids (a gap), other run ids, timestamps and metadata.
    execute(b, "INSERT INTO sqlite_sequence (name, seq) VALUES ('email_schedules', 1000)")
    insert(b, list(reversed(NOT_OWNED[:1])), "run-9", "2030-01-01 00:00:00")
    insert(b, list(reversed(OWNED)), "run-7", "2026-03-11 04:00:00")
    insert(b, NOT_OWNED[1:], "run-8", "2026-03-12 05:00:00")
    execute(b, "UPDATE email_schedules SET placed_run_id = 'x', ideal_send_date = '2026-01-01'")
    ids_a = sqlite3.connect(a.path).execute("SELECT min(id) FROM email_schedules").fetchone()
    ids_b = sqlite3.connect(b.path).execute("SELECT min(id) FROM email_schedules").fetchone()
    assert ids_a != ids_b
    assert checksum(a) == checksum(b)


def test_checksum_format_and_empty_table(new_store: Any) -> None:
    empty = new_store("empty")
    # No owned rows: the SHA-256 of a zero sum (256 zero bytes).
    no_rows = f"rowsum:{hashlib.sha256(bytes(256)).hexdigest()}"
    assert EMPTY_CHECKSUM == no_rows
    assert checksum(empty) == no_rows
    assert key_order(empty) == f"sha256:{hashlib.sha256().hexdigest()}"
    insert(empty, NOT_OWNED, "run-1", "2026-03-10 03:30:00")
    assert checksum(empty) == no_rows
    assert key_order(empty) == f"sha256:{hashlib.sha256().hexdigest()}"
    insert(empty, OWNED[:1], "run-1", "2026-03-10 03:30:00")
    assert re.fullmatch(r"rowsum:[0-9a-f]{64}", checksum(empty)) and checksum(empty) != no_rows


def test_checksum_is_the_sum_of_the_rows_hashes(new_store: Any) -> None:
    store = new_store("one")
    insert(store, OWNED + NOT_OWNED, "run-1", "2026-03-10 03:30:00")
    assert checksum(store) == rowsum(OWNED)
    # Order independent by definition: any order of the rows gives it.
    assert rowsum(list(reversed(OWNED))) == rowsum(OWNED)


def test_key_order_checksum_is_the_digest_of_the_rows_in_key_order(new_store: Any) -> None:
    store = new_store("one")
    insert(store, OWNED + NOT_OWNED, "run-1", "2026-03-10 03:30:00")
    assert key_order(store) == in_key_order(OWNED)
    # The two digests differ in more than their prefix.
    assert key_order(store).split(":")[1] != checksum(store).split(":")[1]


def test_the_digested_columns_and_their_order_never_change() -> None:
    # Derived from ScheduleRow: reordering its fields must not move a live database's checksum.
    assert CHECKSUM_COLUMNS == (
        "occurrence_key", "contact_id", "email_type", "scheduled_send_date", "scheduled_send_time",
        "status", "skip_reason", "priority", "campaign_instance_id", "email_template",
        "sms_template", "event_year", "event_month", "event_day",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("status", "skipped"),
        ("scheduled_send_date", "2026-04-18"),
        ("skip_reason", "frequency limit"),
        ("scheduled_send_time", "09:00:00"),
        ("priority", 4),
        ("email_type", "effective_date"),
        ("event_year", 2027),
        ("occurrence_key", "1|birthday|2027"),
        ("campaign_instance_id", 8),
        ("email_template", "other_tpl"),
        ("sms_template", "other_sms"),
        ("contact_id", 11),
        ("event_month", 6),
        ("event_day", 2),
    ],
)
def test_changing_an_owned_decision_changes_the_checksum(
    new_store: Any, column: str, value: Any
) -> None:
    store = new_store("one")
    insert(store, OWNED + NOT_OWNED, "run-1", "2026-03-10 03:30:00")
    before = checksum(store)
    execute(
        store,
        f"UPDATE email_schedules SET {column} = ? WHERE occurrence_key = ?",
        value,
        "1|birthday|2026",
    )
    assert checksum(store) != before


def test_a_row_leaving_the_owned_statuses_changes_the_checksum(new_store: Any) -> None:
    store = new_store("one")
    insert(store, OWNED, "run-1", "2026-03-10 03:30:00")
    before = checksum(store)
    execute(
        store,
        "UPDATE email_schedules SET status = 'sent' WHERE occurrence_key = ?",
        "2|7|2026-04-03",
    )
    assert checksum(store) != before


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE email_schedules SET scheduled_send_date = '2025-05-01' WHERE status = 'sent'",
        "UPDATE email_schedules SET status = 'delivered' WHERE status = 'sent'",
        "UPDATE email_schedules SET skip_reason = 'x' WHERE status = 'Skipped'",
        "DELETE FROM email_schedules WHERE status = 'scheduled'",
        (
            "UPDATE email_schedules SET scheduler_run_id = 'run-2', metadata = '{}',"
            " created_at = 'now', updated_at = 'later', placed_run_id = 'p', batch_id = 'b',"
            " actual_send_datetime = 'x', catchup_note = 'y', ideal_send_date = '2026-01-01'"
        ),
    ],
)
def test_non_decisions_leave_the_checksum_alone(new_store: Any, sql: str) -> None:
    store = new_store("one")
    insert(store, OWNED + NOT_OWNED, "run-1", "2026-03-10 03:30:00")
    before = checksum(store)
    execute(store, sql)
    assert checksum(store) == before


def test_small_fetches_give_the_same_digest(
    new_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = new_store("one")
    insert(store, OWNED + NOT_OWNED, "run-1", "2026-03-10 03:30:00")
    whole, ordered = checksum(store), key_order(store)
    monkeypatch.setattr(checksum_module, "FETCH_ROWS", 2)
    assert checksum(store) == whole == rowsum(OWNED)
    assert key_order(store) == ordered == in_key_order(OWNED)


def test_unmigrated_database_has_the_checksum_it_will_have_migrated(tmp_path: Path) -> None:
    path = tmp_path / "legacy.db"
    con = sqlite3.connect(path)
    con.executescript(LEGACY_DDL)
    legacy_rows = [row[1:] for row in OWNED if row[0] is None]
    con.executemany(
        f"INSERT INTO email_schedules ({', '.join(CHECKSUM_COLUMNS[1:])})"
        f" VALUES ({', '.join('?' * (len(CHECKSUM_COLUMNS) - 1))})",
        legacy_rows,
    )
    con.commit()
    con.close()
    with open_store(str(path)) as store:
        before, ordered = checksum(store), key_order(store)
        store.migrate()
        assert checksum(store) == before
        assert key_order(store) == ordered
        # The missing occurrence_key reads as NULL.
        assert before == rowsum([(None, *row) for row in legacy_rows]) != EMPTY_CHECKSUM
        assert ordered == in_key_order([(None, *row) for row in legacy_rows])


@pytest.mark.parametrize("key_index", [True, False])
def test_key_order_read_equals_a_sort_of_every_column(new_store: Any, key_index: bool) -> None:
    """The key-order digest walks the key index (or sorts without it): the same bytes as
    sorting every column, NULL keys first, whatever the insertion order and the keys' case
    and digits.  The row-sum checksum does not depend on the index."""
    import random

    rng = random.Random(7)
    rows: list[tuple[Any, ...]] = []
    for i in range(400):
        key = None if i % 37 == 0 else rng.choice(["", "a", "A", "b", "Z", "10", "9", "ä"]) + f"|{i}"
        rows.append(
            (key, rng.randint(1, 50), rng.choice(["birthday", "BIRTHDAY", "aep"]), f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
             "08:30:00", rng.choice(["pre-scheduled", "skipped"]), rng.choice([None, "window"]), rng.randint(1, 10),
             None, None, None, rng.choice([None, 2026]), None, None)
        )  # fmt: skip
    rng.shuffle(rows)
    store = new_store("many")
    insert(store, rows + NOT_OWNED, "run-1", "2026-03-10 03:30:00")
    if not key_index:
        execute(store, f"DROP INDEX {checksum_module.KEY_INDEX}")
    assert key_order(store) == in_key_order(rows)
    assert checksum(store) == rowsum(rows)
