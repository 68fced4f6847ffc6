"""The volume each day already has, which balancing starts from (``streams.sweep.balance.day_volumes``):
rows dated from ``T`` on that count toward a day's volume (``pre-scheduled`` exactly, or a
sending-side status in any case), follow-ups left out whatever their case, effective-date
rows counted again on their own, legacy text that is no date skipped."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from streams.store.engine import new_agency_database, open_store
from streams.sweep.balance import day_volumes
from tests.legacy_db import add_contacts, add_schedule_rows

T = date(2026, 3, 10)


def row(day: str, status: str, email_type: str = "birthday") -> dict[str, object]:
    return {"contact_id": 1, "email_type": email_type, "scheduled_send_date": day, "status": status}


def test_day_volumes_count_what_occupies_a_day(tmp_path: Path) -> None:
    db = new_agency_database(tmp_path / "agency.db")
    add_contacts(db, [{"id": 1, "first_name": "Pat", "last_name": "Doe", "email": "p@example.com"}])
    add_schedule_rows(
        db,
        [
            row("2026-03-09", "pre-scheduled"),  # before T
            row("2026-03-10", "pre-scheduled"),
            row("2026-03-10", "pre-scheduled", "EFFECTIVE_DATE"),
            row("2026-03-10", "SENT", "effective_date"),
            row("2026-03-10", "Pre-Scheduled"),  # not the scheduler's exact status: not counted
            row("2026-03-10", "skipped"),
            row("2026-03-10", "failed"),
            row("2026-03-11", "pre-scheduled", "followup_1_cold"),
            row("2026-03-11", "Delivered", "FOLLOWUP_2_CLICKED_NO_HQ"),
            row("2026-03-11", "accepted", "campaign_rate_increase"),
            row("2026-03-11 08:30:00", "processing"),  # a legacy date with a time
            row("2026-13-45", "pre-scheduled"),  # not a date
        ],
    )
    store = open_store(str(db), read_only=True)
    try:
        with store.engine.connect() as conn:
            volume, ed_volume = day_volumes(conn, T)
    finally:
        store.close()
    d10, d11 = date(2026, 3, 10).toordinal(), date(2026, 3, 11).toordinal()
    assert volume == {d10: 3, d11: 2}
    assert ed_volume == {d10: 2}
