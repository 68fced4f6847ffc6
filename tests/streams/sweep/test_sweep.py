"""The sweep on real SQLite databases: results, guarantees, interruptions."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from rules.config import DEFAULT_CONFIG
from rules.contact import validate_contact
from rules.exclusion_window import contact_windows
from streams.store.engine import open_store
from streams.store.schedules import contact_record
from streams.sweep import writes as sweep_writes
from streams.sweep.prefilter import count_valid_contacts
from tests.legacy_db import add_schedule_rows, dump
from tests.sweeps import OWNED, T, checksum, crafted, decisions, sweep


def test_crafted_agency_gets_the_rows_the_spec_says(legacy_db: Path) -> None:
    crafted(legacy_db)
    summary = sweep(legacy_db, T)
    rows = {
        r[0]: r[1:]
        for r in dump(
            legacy_db,
            "SELECT occurrence_key, scheduled_send_date, status, skip_reason FROM email_schedules",
        )
    }
    assert rows["1:birthday:2026"] == ("2026-04-06", "pre-scheduled", None)
    assert rows["2:birthday:2026"] == (
        "2026-04-06",
        "skipped",
        "CA birthday window 2026-01-20..2026-06-19",
    )
    # the post-window email of that window is planned, beyond the range
    assert rows["2:post_window:2026-06-19"] == ("2026-06-20", "pre-scheduled", None)
    assert rows["3:birthday:2026"] == ("2026-04-06", "skipped", "NY year-round")
    assert not any(k.startswith("4:") for k in rows)
    catch_up_date, status, _ = rows["5:birthday:2026"]
    assert status == "pre-scheduled" and T <= date.fromisoformat(catch_up_date) < date(2026, 4, 11)
    assert rows["6:effective_date:2026"] == (
        "2026-04-01",
        "skipped",
        "MO effective date window 2026-01-31..2026-06-03",
    )
    assert rows["7:birthday:2026"][1] == "pre-scheduled"
    assert summary.contacts_invalid == 1
    assert summary.invalid_examples[0]["contact_id"] == 4
    assert any("ZIP" in w for w in summary.warning_examples)


def test_history_in_other_statuses_is_untouched(legacy_db: Path) -> None:
    crafted(legacy_db)
    history = [
        {
            "contact_id": 1,
            "email_type": "BIRTHDAY",
            "scheduled_send_date": "2025-04-06",
            "status": "sent",
            "event_year": 2025,
        },
        {
            "contact_id": 1,
            "email_type": "POST_WINDOW_BIRTHDAY",
            "scheduled_send_date": "2025-07-01",
            "status": "delivered",
        },
        {
            "contact_id": 2,
            "email_type": "birthday",
            "scheduled_send_date": "2026-04-06",
            "status": "failed",
            "event_year": 2027,
        },
        {
            "contact_id": 5,
            "email_type": "aep",
            "scheduled_send_date": "2026-04-05",
            "status": "SKIPPED",
        },
        {
            "contact_id": 6,
            "email_type": "effective_date",
            "scheduled_send_date": "2026-04-10",
            "status": "bounced",
            "event_year": 2026,
        },
        {
            "contact_id": 7,
            "email_type": "weird_legacy",
            "scheduled_send_date": "2026-04-03",
            "status": "mystery",
        },
        {
            "contact_id": 4,
            "email_type": "birthday",
            "scheduled_send_date": "2026-04-02",
            "status": "processing",
            "event_year": 2026,
        },
    ]
    add_schedule_rows(legacy_db, history)
    open_store(str(legacy_db)).migrate()  # added columns are NULL on old rows; compare like for like
    before = dump(
        legacy_db, f"SELECT * FROM email_schedules WHERE status NOT IN {OWNED} ORDER BY id"
    )
    sweep(legacy_db, T)
    sweep(legacy_db, T + timedelta(days=1))
    after = dump(
        legacy_db, f"SELECT * FROM email_schedules WHERE status NOT IN {OWNED} ORDER BY id"
    )
    assert before == after and len(before) == len(history)
    # the legacy BIRTHDAY 2025 row does not stop the 2026 email; no duplicate of handled ones
    keys = [
        r[0]
        for r in dump(
            legacy_db, "SELECT occurrence_key FROM email_schedules WHERE occurrence_key IS NOT NULL"
        )
    ]
    assert "1:birthday:2026" in keys
    assert len(keys) == len(set(keys))


def test_legacy_sent_row_without_key_means_already_handled(legacy_db: Path) -> None:
    crafted(legacy_db)
    add_schedule_rows(
        legacy_db,
        [
            {
                "contact_id": 1,
                "email_type": "BIRTHDAY",
                "scheduled_send_date": "2026-04-06",
                "status": "sent",
                "event_year": 2026,
            }
        ],
    )
    sweep(legacy_db, T)
    assert dump(
        legacy_db,
        "SELECT count(*) FROM email_schedules WHERE contact_id = 1 AND status IN " + OWNED,
    ) == [(0,)]


def test_legacy_owned_row_is_adopted_not_duplicated(legacy_db: Path) -> None:
    crafted(legacy_db)
    add_schedule_rows(
        legacy_db,
        [
            {
                "contact_id": 1,
                "email_type": "birthday",
                "scheduled_send_date": "2026-04-09",
                "status": "pre-scheduled",
                "event_year": 2026,
            }
        ],
    )
    sweep(legacy_db, T)
    rows = dump(
        legacy_db,
        "SELECT id, occurrence_key, scheduled_send_date FROM email_schedules WHERE contact_id = 1",
    )
    assert rows == [(1, "1:birthday:2026", "2026-04-06")]


def test_same_day_twice_changes_nothing(generated_copy) -> None:  # type: ignore[no-untyped-def]
    db = generated_copy()
    first = sweep(db, date(2026, 3, 10))
    snapshot = dump(db, "SELECT * FROM email_schedules ORDER BY id")
    second = sweep(db, date(2026, 3, 10))
    assert first.rows_inserted > 100
    assert second.rows_inserted == second.rows_updated == second.rows_deleted == 0
    assert dump(db, "SELECT * FROM email_schedules ORDER BY id") == snapshot
    assert first.schedules_after_checksum == second.schedules_after_checksum


def test_next_day_moves_no_kept_placement(generated_copy) -> None:  # type: ignore[no-untyped-def]
    db = generated_copy()
    day1 = date(2026, 3, 10)
    sweep(db, day1)
    before = dict(
        dump(
            db,
            f"SELECT occurrence_key, scheduled_send_date FROM email_schedules WHERE status IN {OWNED} AND scheduled_send_date > ?",
            (day1.isoformat(),),
        )
    )
    sweep(db, day1 + timedelta(days=1))
    after = dict(
        dump(
            db,
            f"SELECT occurrence_key, scheduled_send_date FROM email_schedules WHERE status IN {OWNED}",
        )
    )
    moved = {k: (v, after.get(k)) for k, v in before.items() if after.get(k) != v}
    assert before and not moved


@pytest.mark.parametrize(
    "as_of",
    [
        date(2026, 3, 10),
        date(2026, 12, 20),
        date(2027, 2, 20),
        date(2026, 8, 20),
        date(2028, 2, 10),
    ],
)
def test_prefilter_and_full_scan_give_identical_rows(generated_copy, as_of: date) -> None:  # type: ignore[no-untyped-def]
    a, b = generated_copy(), generated_copy()
    sa = sweep(a, as_of)
    sb = sweep(b, as_of, full_scan=True)
    assert sb.contacts_processed == sb.contacts_scanned
    assert decisions(a) == decisions(b)
    assert sa.schedules_after_checksum == sb.schedules_after_checksum
    if as_of.month != 8:  # outside AEP season the pre-filter must actually filter
        assert sa.contacts_processed < sa.contacts_scanned / 2


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    # from the generated agency's sending history (2024-05 to 2025-12) on
    as_of=st.dates(date(2024, 6, 1), date(2029, 12, 31)),
    lookahead=st.integers(0, 45),
    lookback=st.integers(0, 14),
    gap=st.integers(1, 40),
)
# Found by this test: an email stored as sent at 2025-01-04 08:30, a time still to come at
# the sweep three days before, entered the follow-ups' 35 days unseen by the incremental run.
@example(as_of=date(2025, 1, 4), lookahead=0, lookback=0, gap=3)
def test_property_prefilter_equals_full_scan(
    generated_copy, as_of: date, lookahead: int, lookback: int, gap: int
) -> None:  # type: ignore[no-untyped-def]
    a, b = generated_copy(1500), generated_copy(1500)
    # a history of earlier sweeps makes owned rows the pre-filter must find
    for db in (a, b):
        sweep(db, as_of - timedelta(days=gap), lookahead_days=lookahead, lookback_days=lookback)
    sweep(a, as_of, lookahead_days=lookahead, lookback_days=lookback)
    sweep(b, as_of, lookahead_days=lookahead, lookback_days=lookback, full_scan=True)
    assert decisions(a) == decisions(b)


def _counted(db: Path) -> dict[int, list[tuple[date, str, str | None]]]:
    out: dict[int, list[tuple[date, str, str | None]]] = {}
    for cid, day, status, placed in dump(
        db,
        "SELECT contact_id, scheduled_send_date, status, placed_run_id FROM email_schedules "
        "WHERE (status = 'pre-scheduled' OR lower(status) IN ('scheduled','processing','sent','delivered','accepted')) "
        "AND lower(email_type) NOT LIKE 'followup%'",
    ):
        out.setdefault(cid, []).append((date.fromisoformat(day[:10]), status, placed))
    return out


def test_sweep_never_adds_a_row_that_breaks_the_frequency_limit(generated_copy) -> None:  # type: ignore[no-untyped-def]
    db = generated_copy()
    # Crowd some contacts with sending-side history right in the range.
    ids = [r[0] for r in dump(db, "SELECT id FROM contacts ORDER BY id LIMIT 300")]
    add_schedule_rows(
        db,
        [
            {
                "contact_id": cid,
                "email_type": "campaign_x",
                "scheduled_send_date": f"2026-03-{10 + cid % 15:02d}",
                "status": "scheduled",
            }
            for cid in ids
        ],
    )
    summary = sweep(db, date(2026, 8, 25))  # AEP season: every contact gets an email
    run = summary.run_id
    limit, period = 2, 14
    for rows in _counted(db).values():
        for day, status, placed in rows:
            if status != "pre-scheduled" or placed != run:
                continue
            for start in (day - timedelta(days=k) for k in range(period)):
                n = sum(1 for d, _, _ in rows if start <= d < start + timedelta(days=period))
                assert n <= limit, (day, rows)


def test_no_prescheduled_row_on_an_excluded_date(generated_copy) -> None:  # type: ignore[no-untyped-def]
    db = generated_copy()
    for as_of in (date(2026, 3, 10), date(2026, 8, 25)):
        sweep(db, as_of)
    store = open_store(str(db))
    with store.engine.connect() as conn:
        contacts = {
            int(r[0]): validate_contact(contact_record(tuple(r)))
            for r in conn.execute(
                text(
                    "SELECT id, email, zip_code, state, birth_date, effective_date, phone_number FROM contacts"
                )
            )
        }
        rows = conn.execute(
            text(
                "SELECT contact_id, scheduled_send_date FROM email_schedules WHERE status = 'pre-scheduled'"
            )
        ).all()
    store.close()
    assert rows
    for cid, day in rows:
        c = contacts[cid]
        w = contact_windows(c.state, c.birth_date, c.effective_date, DEFAULT_CONFIG)  # type: ignore[union-attr]
        assert w.exclusion_on(date.fromisoformat(day)) is None, (cid, day)


def test_daily_cap_counts_valid_contacts_like_the_rules(generated_copy) -> None:  # type: ignore[no-untyped-def]
    db = generated_copy()
    store = open_store(str(db))
    store.migrate()
    with store.engine.connect() as conn:
        sql_count = count_valid_contacts(conn)
        records = [
            contact_record(tuple(r))
            for r in conn.execute(
                text(
                    "SELECT id, email, zip_code, state, birth_date, effective_date, phone_number FROM contacts"
                )
            )
        ]
    store.close()
    python_count = sum(1 for r in records if not hasattr(validate_contact(r), "reasons"))
    assert sql_count == python_count
    assert 0 < sql_count < len(records)


def test_aep_season_is_balanced_under_the_daily_cap(generated_copy) -> None:  # type: ignore[no-untyped-def]
    db = generated_copy()
    summary = sweep(db, date(2026, 9, 10))
    assert summary.moved_by_daily_cap > 0
    per_day = dict(
        dump(
            db,
            "SELECT scheduled_send_date, count(*) FROM email_schedules WHERE status = 'pre-scheduled' AND placed_run_id = ? AND catchup_note LIKE 'moved by daily cap%' GROUP BY 1",
            (summary.run_id,),
        )
    )
    assert per_day
    for day, _ in per_day.items():
        total = dump(
            db,
            "SELECT count(*) FROM email_schedules WHERE scheduled_send_date = ? AND status = 'pre-scheduled'",
            (day,),
        )[0][0]
        assert total <= summary.daily_cap


# -- interruptions --------------------------------------------------------------


def test_failed_run_is_recorded_and_rerun_completes_the_job(
    generated_copy, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    reference, db = generated_copy(), generated_copy()
    as_of = date(2026, 8, 25)
    sweep(reference, as_of)

    calls = {"n": 0}
    real = sweep_writes.write_batch

    def failing(conn, batch, run_id):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk on fire")
        return real(conn, batch, run_id)

    monkeypatch.setattr(sweep_writes, "write_batch", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        sweep(db, as_of, chunk_size=200, batch_rows=500)
    status, error = dump(db, "SELECT status, error_message FROM scheduler_checkpoints")[0]
    assert status == "failed" and "disk on fire" in error
    partial = dump(db, "SELECT count(*) FROM email_schedules WHERE status IN " + OWNED)[0][0]
    assert partial > 0  # whole batches were written before the failure

    monkeypatch.setattr(sweep_writes, "write_batch", real)
    sweep(db, as_of)
    assert checksum(db) == checksum(reference)
    keys = [
        r[0]
        for r in dump(
            db, "SELECT occurrence_key FROM email_schedules WHERE occurrence_key IS NOT NULL"
        )
    ]
    assert len(keys) == len(set(keys))
