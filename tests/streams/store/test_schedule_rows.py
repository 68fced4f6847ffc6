"""Schedule rows by name: every way the sweep and the agents build one puts each value in
its own column, and a kept placement keeps where it came from."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from rules.contact import Contact, ContactRecord, validate_contact
from rules.contact_schedule import Decision, ExistingRow
from rules.occurrence import Occurrence
from rules.statuses import PRE_SCHEDULED
from streams.store.schedules import (
    DECISION_COLUMNS,
    ScheduleRow,
    StoredRow,
    decision_values,
    placed_values,
)
from streams.sweep.movables import Movables

CONTACT = 42
OCCURRENCE = Occurrence(
    key=f"{CONTACT}:birthday:2026",
    contact_id=CONTACT,
    email_type="birthday",
    event_date=date(2026, 4, 17),
    ideal_send_date=date(2026, 4, 3),
    priority=5,
    email_template="bday_tpl",
    sms_template="bday_sms",
    campaign_instance_id=None,
)
DECISION = Decision(
    occurrence=OCCURRENCE,
    send_date=date(2026, 4, 3),
    status=PRE_SCHEDULED,
    skip_reason=None,
    kept=False,
    catch_up=False,
    existing_row_id=None,
    why="ideal date",
)
EXPECTED = ScheduleRow(
    occurrence_key=f"{CONTACT}:birthday:2026",
    contact_id=CONTACT,
    email_type="birthday",
    scheduled_send_date="2026-04-03",
    scheduled_send_time="08:30:00",
    status=PRE_SCHEDULED,
    skip_reason=None,
    priority=5,
    campaign_instance_id=None,
    email_template="bday_tpl",
    sms_template="bday_sms",
    event_year=2026,
    event_month=4,
    event_day=17,
    catchup_note=None,
    metadata=None,
    ideal_send_date="2026-04-03",
    placed_run_id="sweep-2026-03-10-x",
)


def test_the_columns_are_the_fields() -> None:
    assert DECISION_COLUMNS == ScheduleRow._fields
    assert len(set(DECISION_COLUMNS)) == len(DECISION_COLUMNS)


def test_a_decision_row_puts_each_value_in_its_column() -> None:
    row = decision_values(DECISION, "08:30:00", "sweep-2026-03-10-x", None)
    assert row == EXPECTED
    assert row._asdict() == EXPECTED._asdict()


def test_a_kept_placement_keeps_its_note_and_run() -> None:
    stored_values = EXPECTED._replace(catchup_note="catch-up: earlier", placed_run_id="sweep-old")
    existing = ExistingRow(
        id=7, email_type="birthday", send_date=date(2026, 4, 3), status=PRE_SCHEDULED,
        occurrence_key=OCCURRENCE.key, ideal_send_date=date(2026, 4, 3), event_year=2026,
        placed_run_id="sweep-old",
    )  # fmt: skip
    kept = replace(DECISION, kept=True, existing_row_id=7)
    row = placed_values(kept, StoredRow(existing, stored_values), "08:30:00", "sweep-new")
    assert row == stored_values
    assert placed_values(DECISION, None, "08:30:00", "sweep-new").placed_run_id == "sweep-new"


def test_a_newly_placed_email_is_written_as_its_decision_would_be() -> None:
    contact = validate_contact(ContactRecord(CONTACT, "a@b.example", "94103", "CA", "1950-04-17", None))
    assert isinstance(contact, Contact)
    movables = Movables()
    i = movables.add(contact, DECISION, None)
    row = movables.row(i, "08:30:00", "sweep-2026-03-10-x", PRE_SCHEDULED, None)
    assert row == EXPECTED
    assert movables.key(i) == OCCURRENCE.key
