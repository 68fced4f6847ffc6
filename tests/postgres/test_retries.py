"""Issue 16: a transaction PostgreSQL fails because it lost to another (a deadlock, a
serialization failure) runs again, a bounded number of times, and says so in the log."""

from __future__ import annotations

import logging
import threading

import pytest
import sqlalchemy as sa

from streams.store.engine import open_store, run_with_retry


def test_a_deadlocked_transaction_runs_again_and_both_complete(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with open_store(pg_url) as store:
        with store.engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE pair (id int PRIMARY KEY, n int NOT NULL)"))
            conn.execute(sa.text("INSERT INTO pair VALUES (1, 0), (2, 0)"))
        both_hold_one = threading.Barrier(2, timeout=30)
        tries = {"a": 0, "b": 0}
        errors: list[BaseException] = []

        def crossing(name: str, first: int, second: int) -> None:
            def attempt() -> None:
                tries[name] += 1
                with store.engine.begin() as conn:
                    conn.execute(sa.text("UPDATE pair SET n = n + 1 WHERE id = :i"), {"i": first})
                    if tries[name] == 1:  # only the first attempts cross: the retry runs alone
                        both_hold_one.wait()
                    conn.execute(sa.text("UPDATE pair SET n = n + 1 WHERE id = :i"), {"i": second})

            try:
                run_with_retry(attempt, sleep=lambda _s: None)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        with caplog.at_level(logging.WARNING, logger="streams.store.engine"):
            threads = [
                threading.Thread(target=crossing, args=("a", 1, 2)),
                threading.Thread(target=crossing, args=("b", 2, 1)),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
        assert not errors, errors
        assert sorted(tries.values()) == [1, 2]  # PostgreSQL failed one side; it ran again
        with store.engine.connect() as conn:
            assert dict(conn.execute(sa.text("SELECT id, n FROM pair")).all()) == {1: 2, 2: 2}
        assert any("deadlock: transaction run again (attempt 2 of 8)" in r.getMessage() for r in caplog.records)
