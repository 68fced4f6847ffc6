"""Reading and writing ``email_schedules`` rows for the rules (the store side of a decision).

One place knows the columns a decision writes, how a decision becomes those
values, and how to write a batch of them: the sweep and the stream agents
both go through here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from rules.anniversary import parse_iso_date
from rules.contact import ContactRecord
from rules.contact_schedule import Decision, ExistingRow, catchup_note
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
    """``row_values`` of a decision (built directly: the sweep calls this per row)."""
    occ = d.occurrence
    event = occ.event_date
    return (
        occ.contact_id,
        occ.email_type,
        d.send_date.isoformat(),
        send_time,
        d.status,
        d.skip_reason,
        event.year,
        event.month,
        event.day,
        catchup_note,
        occ.priority,
        occ.campaign_instance_id,
        occ.email_template,
        occ.sms_template,
        occ.metadata,
        occ.key,
        occ.ideal_send_date.isoformat(),
        placed_run_id,
    )


def placed_values(
    d: Decision, stored: StoredRow | None, send_time: str, run_id: str
) -> RowValues:
    """A decision's row values: a kept placement keeps the run that placed it and its note."""
    if d.kept and stored is not None:
        placed_run = stored.existing.placed_run_id
        note = stored.values[_COL["catchup_note"] - 1]
    else:
        placed_run, note = run_id, catchup_note(d)
    return decision_values(d, send_time, placed_run, note)  # type: ignore[arg-type]


def _to_int(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        return None


# The decision columns, then what only the sending side writes.
_ROW_SELECT = "SELECT id, " + ", ".join(DECISION_COLUMNS) + ", actual_send_datetime FROM email_schedules"
_ACTUAL_SEND = len(DECISION_COLUMNS) + 1
_COL = {name: i + 1 for i, name in enumerate(DECISION_COLUMNS)}  # position in a fetched row
_EMAIL_TYPE = _COL["email_type"]
_SEND_DATE = _COL["scheduled_send_date"]
_STATUS = _COL["status"]
_KEY = _COL["occurrence_key"]
_IDEAL = _COL["ideal_send_date"]
_EVENT_YEAR = _COL["event_year"]
_PLACED_RUN = _COL["placed_run_id"]
_SKIP_REASON = _COL["skip_reason"]
_SEND_TIME = _COL["scheduled_send_time"]
_PRIORITY = _COL["priority"]
_INSTANCE = _COL["campaign_instance_id"]
_EVENT_MONTH = _COL["event_month"]
_EVENT_DAY = _COL["event_day"]
_METADATA = _COL["metadata"]

# The dates of stored rows are a few hundred distinct texts: each is parsed once.
_stored_date = lru_cache(maxsize=4096)(parse_iso_date)


def placeholder(conn: Connection) -> str:
    """The driver's positional marker: the hot paths bind tuples at the DBAPI level."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


@lru_cache(maxsize=1024)
def _stored_time(raw: str | None) -> time | None:
    if raw is None:
        return None
    try:
        return time.fromisoformat(raw.strip())
    except ValueError:
        return None


@lru_cache(maxsize=8192)
def parse_stored_datetime(raw: str | None) -> datetime | None:
    """A stored datetime text as a naive datetime; None when missing or unreadable.

    Stored datetimes (``actual_send_datetime``, ``clicked_at``, ``created_at``)
    are compared as written.  One with a UTC offset is converted to UTC and the
    offset dropped, since SQLite's ``CURRENT_TIMESTAMP`` (the default of
    ``clicked_at`` and ``created_at``) is UTC without an offset.
    """
    if raw is None:
        return None
    value = str(raw).strip()
    if not value:
        return None
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        day = parse_iso_date(value)
        return datetime.combine(day, datetime.min.time()) if day is not None else None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _event_date(year: int | None, month: object, day: object) -> date | None:
    m, d = _to_int(month), _to_int(day)
    if year is None or m is None or d is None:
        return None
    try:
        return date(year, m, d)
    except ValueError:
        return None


def _stored_row(r: Sequence[object]) -> StoredRow:
    event_year = _to_int(r[_EVENT_YEAR])
    existing = ExistingRow(
        id=int(r[0]),  # type: ignore[call-overload]
        email_type=str(r[_EMAIL_TYPE]),
        send_date=_stored_date(_text(r[_SEND_DATE])),
        status=str(r[_STATUS]),
        occurrence_key=_text(r[_KEY]),
        ideal_send_date=_stored_date(_text(r[_IDEAL])),
        event_year=event_year,
        placed_run_id=_text(r[_PLACED_RUN]),
        skip_reason=_text(r[_SKIP_REASON]),
        send_time=_stored_time(_text(r[_SEND_TIME])),
        actual_send_at=parse_stored_datetime(_text(r[_ACTUAL_SEND])),
        priority=_to_int(r[_PRIORITY]),
        campaign_instance_id=_to_int(r[_INSTANCE]),
        event_date=_event_date(event_year, r[_EVENT_MONTH], r[_EVENT_DAY]),
        metadata=_text(r[_METADATA]),
    )
    return StoredRow(existing, tuple(r[1:_ACTUAL_SEND]))


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def fetch_rows(conn: Connection, contact_ids: Sequence[int]) -> dict[int, list[StoredRow]]:
    """Every schedule row of these contacts, grouped by contact."""
    out: dict[int, list[StoredRow]] = {cid: [] for cid in contact_ids}
    if not contact_ids:
        return out
    marks = ", ".join(placeholder(conn) for _ in contact_ids)
    sql = f"{_ROW_SELECT} WHERE contact_id IN ({marks}) ORDER BY id"
    for r in conn.exec_driver_sql(sql, tuple(contact_ids)).fetchall():  # one fetch, not one per row
        out.setdefault(int(r[1]), []).append(_stored_row(r))
    return out


ContactFields = tuple[int, str | None, str | None, str | None, str | None, str | None, str | None]


def fetch_contact_fields(conn: Connection, contact_ids: Sequence[int]) -> list[ContactFields]:
    """The contacts' fields as ``ContactRecord`` takes them, in id order."""
    if not contact_ids:
        return []
    marks = ", ".join(placeholder(conn) for _ in contact_ids)
    sql = f"SELECT {CONTACT_COLUMNS} FROM contacts WHERE id IN ({marks}) ORDER BY id"
    return [contact_fields(r) for r in conn.exec_driver_sql(sql, tuple(contact_ids)).fetchall()]


def fetch_contacts(conn: Connection, contact_ids: Sequence[int]) -> list[ContactRecord]:
    return [ContactRecord(*f) for f in fetch_contact_fields(conn, contact_ids)]


def contact_fields(r: Sequence[object]) -> ContactFields:
    """id, email, zip_code, state, birth_date, effective_date, phone_number: raw text."""
    return (int(r[0]), _text(r[1]), _text(r[2]), _text(r[3]), _text(r[4]), _text(r[5]), _text(r[6]))  # type: ignore[call-overload]


def contact_record(r: Sequence[object]) -> ContactRecord:
    return ContactRecord(*contact_fields(r))


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


def _insert_sql(ph: str, upsert: bool = True) -> str:
    updates = ", ".join(f"{c} = excluded.{c}" for c in DECISION_COLUMNS if c != "occurrence_key")
    insert = (
        f"INSERT INTO email_schedules ({', '.join(DECISION_COLUMNS)}, scheduler_run_id) "
        f"VALUES ({', '.join(ph for _ in range(len(DECISION_COLUMNS) + 1))})"
    )
    if not upsert:
        return insert
    return (
        f"{insert} ON CONFLICT (occurrence_key) DO UPDATE SET {updates}, "
        f"scheduler_run_id = excluded.scheduler_run_id "
        f"WHERE email_schedules.status IN {_OWNED_SQL}"
    )


def _update_sql(ph: str) -> str:
    sets = ", ".join(f"{c} = {ph}" for c in DECISION_COLUMNS)
    return (
        f"UPDATE email_schedules SET {sets}, scheduler_run_id = {ph} "
        f"WHERE id = {ph} AND status IN {_OWNED_SQL}"
    )


def write_batch(conn: Connection, batch: WriteBatch, run_id: str) -> None:
    """Apply a batch; rows that meanwhile left the owned statuses are left alone.

    Upserts by occurrence key, so a row another writer (a stream agent) created
    meanwhile is updated rather than duplicated, and only while it is owned.
    """
    write_batches(conn, [(batch, run_id)])


def write_batches(conn: Connection, batches: Sequence[tuple[WriteBatch, str]]) -> None:
    """``write_batch`` for several batches, each with its writer's run id, in one pass."""
    ph = placeholder(conn)
    inserts = [(*v, run_id) for batch, run_id in batches for v in batch.inserts]
    updates = [(*v, run_id, row_id) for batch, run_id in batches for row_id, v in batch.updates]
    deletes = [(i,) for batch, _ in batches for i in batch.deletes]
    if inserts:
        try:
            # Plain inserts cost half an upsert; the keys were free when read.
            with conn.begin_nested():
                conn.exec_driver_sql(_insert_sql(ph, upsert=False), inserts)
        except IntegrityError:
            # Another writer (a stream agent) created some of these keys meanwhile.
            conn.exec_driver_sql(_insert_sql(ph), inserts)
    if updates:
        conn.exec_driver_sql(_update_sql(ph), updates)
    if deletes:
        conn.exec_driver_sql(
            f"DELETE FROM email_schedules WHERE id = {ph} AND status IN {_OWNED_SQL}", deletes
        )


def stage_write(
    batch: WriteBatch, values: RowValues, existing: StoredRow | None
) -> str:
    """Add a row's values to a batch unless the stored row already holds them.

    Returns 'inserted', 'updated' or 'unchanged'.
    """
    if existing is None:
        return stage_values(batch, values, 0, None)
    return stage_values(batch, values, existing.existing.id, existing.values)


def stage_values(batch: WriteBatch, values: RowValues, row_id: int, stored: RowValues | None) -> str:
    """``stage_write`` given the stored row's id and values (``stored`` None: no stored row)."""
    if stored is None:
        batch.inserts.append(values)
        return "inserted"
    if stored == values:
        return "unchanged"
    batch.updates.append((row_id, values))
    return "updated"


def rows_by_id(rows: Iterable[StoredRow]) -> dict[int, StoredRow]:
    return {r.existing.id: r for r in rows}
