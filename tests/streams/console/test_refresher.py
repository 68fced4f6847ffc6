"""The dashboard's count, made in the background: one count however many ask, a change in
the database shown by the next count, a new day counted before it is shown."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection

import streams.console.refresher as refresher_module
from streams.console.refresher import DashboardRefresher
from streams.store.engine import open_store
from tests.streams.console.console_app import console
from tests.sweeps import sweep

GEN_DAY = date(2026, 3, 10)  # the generated agencies' day


@pytest.fixture
def generated(generated_copy: Callable[..., Path]) -> Path:
    db = generated_copy(1000)
    sweep(db, GEN_DAY)
    return db


def add_birthday_emails(db: Path, day: date, n: int) -> None:
    """Rows another process (a sweep, the worker) writes while the console runs."""
    con = sqlite3.connect(db)
    con.executemany(
        "INSERT INTO email_schedules (contact_id, email_type, scheduled_send_date, status, occurrence_key) "
        "VALUES (1, 'birthday', ?, 'pre-scheduled', ?)",
        [(day.isoformat(), f"test-added-{i}") for i in range(n)],
    )
    con.commit()
    con.close()


def total_on(data: dict[str, Any], day: date) -> int:
    return next(int(d["total"]) for d in data["days"] if d["date"] == day.isoformat())


def test_many_requests_at_once_cost_one_count(generated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[date] = []
    real = refresher_module.dashboard_data

    def counted(conn: Connection, today: date) -> dict[str, Any]:
        calls.append(today)
        return real(conn, today)

    monkeypatch.setattr(refresher_module, "dashboard_data", counted)

    async def go() -> list[dict[str, Any]]:
        with open_store(str(generated), read_only=True) as store:
            refresher = DashboardRefresher(store, lambda: GEN_DAY)
            return await asyncio.gather(*(refresher.current() for _ in range(25)))

    answers = asyncio.run(go())
    assert calls == [GEN_DAY]
    assert all(a is answers[0] for a in answers)
    assert sum(d["total"] for d in answers[0]["days"]) > 0


def test_a_change_in_the_database_shows_after_the_next_background_count(generated: Path) -> None:
    day = GEN_DAY + timedelta(days=5)

    async def go() -> tuple[int, int, int]:
        with open_store(str(generated), read_only=True) as store:
            refresher = DashboardRefresher(store, lambda: GEN_DAY, refresh_s=0.05)
            refresher.start()
            try:
                before = total_on(await refresher.current(), day)
                add_birthday_emails(generated, day, 7)
                # The loop counts again on its own; give it up to 20 s on a loaded machine.
                for _ in range(400):
                    seen = total_on(await refresher.current(), day)
                    if seen != before:
                        break
                    await asyncio.sleep(0.05)
                return before, seen, total_on(await refresher.refresh(), day)
            finally:
                await refresher.stop()

    before, seen, fresh = asyncio.run(go())
    assert seen == before + 7
    assert fresh == before + 7


def test_a_new_day_is_counted_before_it_is_shown(generated: Path) -> None:
    today = [GEN_DAY]

    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        with open_store(str(generated), read_only=True) as store:
            refresher = DashboardRefresher(store, lambda: today[0], refresh_s=3600)
            first = await refresher.current()
            today[0] = GEN_DAY + timedelta(days=1)
            return first, await refresher.current()

    first, second = asyncio.run(go())
    assert first["today"] == GEN_DAY.isoformat() and first["days"][0]["date"] == GEN_DAY.isoformat()
    assert second["today"] == (GEN_DAY + timedelta(days=1)).isoformat()
    assert second["days"][0]["date"] == (GEN_DAY + timedelta(days=1)).isoformat()


def test_the_page_and_metrics_show_the_same_count_and_when_it_was_made(generated: Path) -> None:
    with console(generated, GEN_DAY) as client:
        data = client.get("/api/dashboard").json()
        page = client.get("/").text
        text = client.get("/metrics").text
    assert f'<span id="counted-at">{data["counted_at"]}</span>' in page
    for d in data["days"][:10]:
        for email_type, n in d["by_type"].items():
            assert f'mailwindow_emails_scheduled{{day="{d["date"]}",email_type="{email_type}"}} {float(n)}' in text
