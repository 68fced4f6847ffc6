"""The kept schedule checksum (``streams.store.checksum.kept_checksum``) on PostgreSQL: the sum
kept from the triggers' changes equals the checksum read from every row
(``schedule_checksum``) after random writes, after a TRUNCATE (which fires no row trigger:
the count check finds it), and while another connection keeps writing.

Every test calls ``kept_checksum`` before the writes it is about (a first call computes the
sum from the rows and would hide a change the triggers missed).  The writes go through plain
psycopg connections, as another program writes."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from rules.statuses import OWNED_STATUSES
from streams.store.checksum import EMPTY_CHECKSUM, kept_checksum, schedule_checksum
from streams.store.engine import Store, open_store

LOGGER = "streams.store.checksum"
OWNED = sorted(OWNED_STATUSES)
STATUSES = [*OWNED, "sent", "scheduled", "Skipped"]
OWNED_SQL = "status IN ('pre-scheduled', 'skipped')"
COLUMNS = "occurrence_key, contact_id, email_type, scheduled_send_date, status, priority, email_template, event_year"
# Statements wait at most this long for a lock: a test that would hang fails instead.
TIMEOUTS = "-c lock_timeout=30000 -c statement_timeout=60000"


def plain_url(pg_url: str) -> str:
    return pg_url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    with open_store(pg_url) as s:
        s.migrate()
        yield s


@pytest.fixture
def raw(pg_url: str, store: Store) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(plain_url(pg_url), autocommit=True, options=TIMEOUTS) as conn:
        yield conn


def kept(store: Store) -> str:
    with store.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL lock_timeout = '30s'")
        return kept_checksum(conn)


def full(store: Store) -> str:
    with store.engine.connect() as conn:
        return schedule_checksum(conn)


def one(raw: psycopg.Connection[Any], sql: str) -> Any:
    found = raw.execute(sql).fetchone()
    assert found is not None
    return found[0]


def assert_kept_is_full(store: Store, raw: psycopg.Connection[Any]) -> str:
    value = kept(store)
    assert value == full(store)
    assert one(raw, "SELECT rows FROM mw_schedule_sum") == one(raw, f"SELECT count(*) FROM email_schedules WHERE {OWNED_SQL}")
    assert one(raw, "SELECT count(*) FROM mw_schedule_deltas") == 0
    return value


@contextmanager
def checksum_warnings() -> Iterator[list[logging.LogRecord]]:
    """What ``kept_checksum`` logs, from any thread."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.WARNING)
    logging.getLogger(LOGGER).addHandler(handler)
    try:
        yield records
    finally:
        logging.getLogger(LOGGER).removeHandler(handler)


def insert(raw: psycopg.Connection[Any], key: str | None, status: str, *, contact: int = 1,
           day: str = "2026-04-01", priority: int | None = 5, template: str | None = None) -> int:
    found = raw.execute(
        f"INSERT INTO email_schedules ({COLUMNS}) VALUES (%s, %s, 'birthday', %s, %s, %s, %s, 2026) RETURNING id",
        (key, contact, day, status, priority, template),
    ).fetchone()
    assert found is not None
    return int(found[0])


def random_write(raw: psycopg.Connection[Any], rng: random.Random, store: Store) -> None:
    """One write of another program (a clashing key fails and changes nothing)."""
    ids = [i for (i,) in raw.execute("SELECT id FROM email_schedules")]
    rid = rng.choice(ids) if ids else None
    key = rng.choice([None, *(f"k{i}" for i in range(10))])
    op = rng.randrange(10) if ids else 0
    try:
        if op <= 1:
            insert(raw, key, rng.choice(STATUSES), contact=rng.randint(1, 5),
                   priority=rng.choice([None, 1, 5, -3, 2**40]), template=rng.choice([None, "", "tpl", "ä"]))
        elif op == 2:  # owned <-> sent, ...
            raw.execute("UPDATE email_schedules SET status = %s WHERE id = %s", (rng.choice(STATUSES), rid))
        elif op == 3:  # no checksum column: no change, nothing appended
            before, pending = full(store), one(raw, "SELECT count(*) FROM mw_schedule_deltas")
            raw.execute(
                "UPDATE email_schedules SET metadata = %s, catchup_note = 'late', updated_at = 'later', "
                "placed_run_id = 'p' WHERE id = %s",
                (str(rng.random()), rid),
            )
            assert full(store) == before and one(raw, "SELECT count(*) FROM mw_schedule_deltas") == pending
        elif op == 4:
            column, value = rng.choice([
                ("scheduled_send_date", rng.choice(["2026-04-01", "2026-05-02", ""])),
                ("email_template", rng.choice([None, "tpl", "other"])),
                ("priority", rng.choice([None, 1, 5])),
                ("contact_id", rng.randint(1, 5)),
                ("occurrence_key", key),
                ("skip_reason", rng.choice([None, "window"])),
            ])  # fmt: skip
            raw.execute(f"UPDATE email_schedules SET {column} = %s WHERE id = %s", (value, rid))
        elif op == 5:
            raw.execute("DELETE FROM email_schedules WHERE id = %s", (rid,))
        elif op == 6:  # the sending side takes a contact's owned rows
            raw.execute(
                "UPDATE email_schedules SET status = 'sent' WHERE status = 'pre-scheduled' AND contact_id = %s",
                (rng.randint(1, 5),),
            )
        elif op == 7:
            raw.execute(
                f"INSERT INTO email_schedules ({COLUMNS}) VALUES (%s, 2, 'aep', '2026-09-15', %s, 3, NULL, 2026) "
                "ON CONFLICT (occurrence_key) DO UPDATE SET status = excluded.status, scheduled_send_date = '2026-09-16'",
                (key or "k0", rng.choice(STATUSES)),
            )
        elif op == 8:  # a transaction rolled back: its changes with it
            with raw.transaction(force_rollback=True):
                insert(raw, f"rolled-{rng.random()}", "pre-scheduled")
                raw.execute("DELETE FROM email_schedules WHERE id = %s", (rid,))
        else:
            raw.execute(f"DELETE FROM email_schedules WHERE contact_id = %s AND {OWNED_SQL}", (rng.randint(1, 5),))
    except psycopg.errors.UniqueViolation:
        pass


@pytest.mark.parametrize("seed", [1, 2])
def test_random_writes_keep_the_checksum_of_the_rows(store: Store, raw: psycopg.Connection[Any], seed: int) -> None:
    rng = random.Random(seed)
    insert(raw, "1|birthday|2026", "pre-scheduled")
    insert(raw, None, "skipped", contact=2)
    insert(raw, "3|birthday|2025", "sent", contact=3)
    assert_kept_is_full(store, raw)
    checks = 0
    with checksum_warnings() as warned:
        for _ in range(150):
            random_write(raw, rng, store)
            if rng.random() < 0.3:
                assert_kept_is_full(store, raw)
                checks += 1
        assert_kept_is_full(store, raw)
    assert warned == []  # every change seen by the triggers: kept from them, never recomputed
    assert checks > 20


def test_a_truncate_is_found_by_the_count(
    store: Store, raw: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    insert(raw, "1|birthday|2026", "pre-scheduled")
    insert(raw, "2|birthday|2026", "skipped", contact=2)
    before = assert_kept_is_full(store, raw)
    raw.execute("TRUNCATE email_schedules")  # fires no row trigger
    assert one(raw, "SELECT count(*) FROM mw_schedule_deltas") == 0
    insert(raw, "3|birthday|2026", "pre-scheduled", contact=3)  # seen: +1 on a sum still of two rows
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        after = assert_kept_is_full(store, raw)
    assert after != before and after != EMPTY_CHECKSUM
    assert one(raw, "SELECT rows FROM mw_schedule_sum") == 1
    [warning] = [r for r in caplog.records if r.name == LOGGER]
    assert "counts 3 owned rows, the table has 1" in warning.getMessage()


def test_kept_while_another_connection_writes(store: Store, pg_url: str, raw: psycopg.Connection[Any]) -> None:
    """A writer of short transactions and two keepers at once: each kept checksum, taken
    while the writer waits, equals the rows read in the same transaction."""
    for i in range(20):
        insert(raw, f"seed-{i}", OWNED[i % 2], contact=1 + i % 5)
    assert_kept_is_full(store, raw)
    stop = threading.Event()
    errors: list[BaseException] = []
    written = [0]
    kept_values: list[tuple[str, str]] = []

    def writer() -> None:
        rng = random.Random(9)
        mine: list[int] = []
        try:
            with psycopg.connect(plain_url(pg_url), autocommit=True, options=TIMEOUTS) as conn:
                while not stop.is_set() and written[0] < 5000:
                    with conn.transaction():
                        op = rng.randrange(4) if mine else 0
                        if op == 0:
                            mine.append(insert(conn, f"w-{written[0]}", rng.choice(STATUSES), contact=rng.randint(1, 5)))
                        elif op == 1:
                            conn.execute(
                                "UPDATE email_schedules SET scheduled_send_date = %s, priority = %s WHERE id = %s",
                                (f"2026-0{rng.randint(1, 9)}-15", rng.randint(1, 9), rng.choice(mine)),
                            )
                        elif op == 2:
                            conn.execute("UPDATE email_schedules SET status = %s WHERE id = %s", (rng.choice(STATUSES), rng.choice(mine)))
                        else:
                            conn.execute("DELETE FROM email_schedules WHERE id = %s", (mine.pop(rng.randrange(len(mine))),))
                        if rng.random() < 0.3:  # two statements in one transaction now and then
                            conn.execute(
                                "UPDATE email_schedules SET skip_reason = %s WHERE id = %s",
                                (rng.choice([None, "window"]), rng.choice(mine) if mine else -1),
                            )
                    written[0] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    def keeper(rounds: int) -> None:
        try:
            with open_store(pg_url) as own:
                for _ in range(rounds):
                    with own.engine.begin() as conn:
                        conn.exec_driver_sql("SET LOCAL lock_timeout = '30s'")
                        value = kept_checksum(conn)
                        # The writer waits for this transaction: the rows are those the sum is of.
                        kept_values.append((value, schedule_checksum(conn)))
                    time.sleep(0.005)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    with checksum_warnings() as warned:
        writing = threading.Thread(target=writer, name="writer", daemon=True)
        keepers = [threading.Thread(target=keeper, args=(25,), name=f"keeper-{k}", daemon=True) for k in range(2)]
        writing.start()
        time.sleep(0.05)
        for t in keepers:
            t.start()
        for t in keepers:
            t.join(timeout=120)
        stop.set()
        writing.join(timeout=60)
        assert not writing.is_alive() and not any(t.is_alive() for t in keepers), "a thread never ended"
        assert not errors, errors
        assert written[0] > 50  # the writer wrote between the keepers' turns
        assert len(kept_values) == 50 and all(k == f for k, f in kept_values)
        assert len({k for k, _ in kept_values}) > 5  # the schedule moved between them
        assert_kept_is_full(store, raw)
    assert warned == []  # no change missed, none counted twice


def test_a_sum_from_the_rows_read_with_a_helper_process(
    store: Store, raw: psycopg.Connection[Any], pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sum computed from the rows by this process and a helper (``streams.store.row_sums``,
    every row worth one here) is the checksum of the rows, on PostgreSQL too."""
    from streams.store import row_sums

    rng = random.Random(3)
    for i in range(300):
        insert(raw, f"h{i}", rng.choice(STATUSES), contact=rng.randint(1, 5), day=f"2026-04-{rng.randint(1, 28):02d}")
    monkeypatch.setattr(row_sums, "HELPER_FROM", 0)
    answers: list[tuple[int, int] | None] = []
    real = row_sums._Helper.result

    def recorded(self: Any) -> tuple[int, int] | None:
        answers.append(real(self))
        return answers[-1]

    monkeypatch.setattr(row_sums._Helper, "result", recorded)
    with store.engine.begin() as conn:
        value = kept_checksum(conn, 0, pg_url)  # no sum yet: read from the rows
    assert value == full(store) != EMPTY_CHECKSUM
    owned = one(raw, f"SELECT count(*) FROM email_schedules WHERE {OWNED_SQL}")
    assert len(answers) == 1 and answers[0] is not None and 0 < answers[0][1] < owned
