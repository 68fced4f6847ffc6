"""Reading and writing ``email_schedules`` rows for the rules (the store side of a decision).

One place knows the columns a decision writes, how a decision becomes those
values, and how to write a batch of them: the sweep and the stream agents
both go through here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, bindparam, text

from rules.anniversary import parse_iso_date
from rules.contact import ContactRecord
from rules.contact_schedule import Decision, ExistingRow
from rules.statuses import OWNED_STATUSES

# The columns a decision writes, in this order everywhere (comparison, insert, update).
DECISION_COLUMNS: tuple[str, ...] = (
    "contact_id",
    "email_type",
    "scheduled_send_date",
    "scheduled_send_time",
    "status",
    "skip_reason",
    "event_year",
    "event_month",
    "event_day",
    "catchup_note",
    "priority",
    "campaign_instance_id",
    "email_template",
    "sms_template",
    "metadata",
    "occurrence_key",
    "ideal_send_date",
    "placed_run_id",
)
RowValues = tuple[object, ...]

_OWNED_SQL = "('" + "', '".join(sorted(OWNED_STATUSES)) + "')"  # constants, not user values

CONTACT_COLUMNS = "id, email, zip_code, state, birth_date, effective_date, phone_number"


@dataclass(frozen=True)
class StoredRow:
    existing: ExistingRow
    values: RowValues  # DECISION_COLUMNS as stored


def row_values(
    *,
    contact_id: int,
    email_type: str,
    send_date: date,
    send_time: str,
    status: str,
    skip_reason: str | None,
    event_date: date,
    catchup_note: str | None,
    priority: int,
    campaign_instance_id: int | None,
    email_template: str | None,
    sms_template: str | None,
    metadata: str | None,
    key: str,
    ideal_send_date: date,
    placed_run_id: str | None,
) -> RowValues:
    return (
        contact_id,
        email_type,
        send_date.isoformat(),
        send_time,
        status,
        skip_reason,
        event_date.year,
        event_date.month,
        event_date.day,
        catchup_note,
        priority,
        campaign_instance_id,
        email_template,
        sms_template,
        metadata,
        key,
        ideal_send_date.isoformat(),
        placed_run_id,
    )


def decision_values(
    d: Decision, send_time: str, placed_run_id: str | None, catchup_note: str | None
) -> RowValues:
    occ = d.occurrence
    return row_values(
        contact_id=occ.contact_id,
        email_type=occ.email_type,
        send_date=d.send_date,
        send_time=send_time,
        status=d.status,
        skip_reason=d.skip_reason,
        event_date=occ.event_date,
        catchup_note=catchup_note,
        priority=occ.priority,
        campaign_instance_id=occ.campaign_instance_id,
        email_template=occ.email_template,
        sms_template=occ.sms_template,
        metadata=None,
        key=occ.key,
        ideal_send_date=occ.ideal_send_date,
        placed_run_id=placed_run_id,
    )


def _to_int(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        return None


_ROW_SELECT = "SELECT id, " + ", ".join(DECISION_COLUMNS) + " FROM email_schedules"


def _stored_row(r: Sequence[object]) -> StoredRow:
    values = tuple(r[1:])
    by_name = dict(zip(DECISION_COLUMNS, values, strict=True))
    existing = ExistingRow(
        id=int(r[0]),  # type: ignore[call-overload]
        email_type=str(by_name["email_type"]),
        send_date=parse_iso_date(_text(by_name["scheduled_send_date"])),
        status=str(by_name["status"]),
        occurrence_key=_text(by_name["occurrence_key"]),
        ideal_send_date=parse_iso_date(_text(by_name["ideal_send_date"])),
        event_year=_to_int(by_name["event_year"]),
        placed_run_id=_text(by_name["placed_run_id"]),
    )
    return StoredRow(existing, values)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def fetch_rows(conn: Connection, contact_ids: Sequence[int]) -> dict[int, list[StoredRow]]:
    """Every schedule row of these contacts, grouped by contact."""
    out: dict[int, list[StoredRow]] = {cid: [] for cid in contact_ids}
    if not contact_ids:
        return out
    stmt = text(_ROW_SELECT + " WHERE contact_id IN :ids ORDER BY id").bindparams(
        bindparam("ids", expanding=True)
    )
    for r in conn.execute(stmt, {"ids": list(contact_ids)}):
        row = _stored_row(tuple(r))
        out.setdefault(int(r[1]), []).append(row)
    return out


def fetch_contacts(conn: Connection, contact_ids: Sequence[int]) -> list[ContactRecord]:
    if not contact_ids:
        return []
    stmt = text(f"SELECT {CONTACT_COLUMNS} FROM contacts WHERE id IN :ids ORDER BY id").bindparams(
        bindparam("ids", expanding=True)
    )
    return [contact_record(tuple(r)) for r in conn.execute(stmt, {"ids": list(contact_ids)})]


def contact_record(r: Sequence[object]) -> ContactRecord:
    return ContactRecord(
        id=int(r[0]),  # type: ignore[call-overload]
        email=_text(r[1]),
        zip_code=_text(r[2]),
        state=_text(r[3]),
        birth_date=_text(r[4]),
        effective_date=_text(r[5]),
        phone_number=_text(r[6]),
    )


@dataclass
class WriteBatch:
    """Row writes collected for one transaction."""

    inserts: list[RowValues]
    updates: list[tuple[int, RowValues]]
    deletes: list[int]

    @classmethod
    def empty(cls) -> WriteBatch:
        return cls([], [], [])

    def __len__(self) -> int:
        return len(self.inserts) + len(self.updates) + len(self.deletes)


_INSERT_SQL = text(
    "INSERT INTO email_schedules ("
    + ", ".join(DECISION_COLUMNS)
    + ", scheduler_run_id) VALUES ("
    + ", ".join(f":{c}" for c in DECISION_COLUMNS)
    + ", :scheduler_run_id) ON CONFLICT (occurrence_key) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in DECISION_COLUMNS if c != "occurrence_key")
    + ", scheduler_run_id = excluded.scheduler_run_id"
    + f" WHERE email_schedules.status IN {_OWNED_SQL}"
)
_UPDATE_SQL = text(
    "UPDATE email_schedules SET "
    + ", ".join(f"{c} = :{c}" for c in DECISION_COLUMNS)
    + ", scheduler_run_id = :scheduler_run_id"
    + f" WHERE id = :row_id AND status IN {_OWNED_SQL}"
)
_DELETE_SQL = text(f"DELETE FROM email_schedules WHERE id = :row_id AND status IN {_OWNED_SQL}")


def write_batch(conn: Connection, batch: WriteBatch, run_id: str) -> None:
    """Apply a batch; rows that meanwhile left the owned statuses are left alone."""
    if batch.inserts:
        conn.execute(
            _INSERT_SQL,
            [dict(zip(DECISION_COLUMNS, v, strict=True), scheduler_run_id=run_id) for v in batch.inserts],
        )
    if batch.updates:
        conn.execute(
            _UPDATE_SQL,
            [
                dict(zip(DECISION_COLUMNS, v, strict=True), scheduler_run_id=run_id, row_id=row_id)
                for row_id, v in batch.updates
            ],
        )
    if batch.deletes:
        conn.execute(_DELETE_SQL, [{"row_id": i} for i in batch.deletes])


def stage_write(
    batch: WriteBatch, values: RowValues, existing: StoredRow | None
) -> str:
    """Add a row's values to a batch unless the stored row already holds them.

    Returns 'inserted', 'updated' or 'unchanged'.
    """
    if existing is None:
        batch.inserts.append(values)
        return "inserted"
    if existing.values == values:
        return "unchanged"
    batch.updates.append((existing.existing.id, values))
    return "updated"


def rows_by_id(rows: Iterable[StoredRow]) -> dict[int, StoredRow]:
    return {r.existing.id: r for r in rows}
