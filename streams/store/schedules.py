"""Reading and writing ``email_schedules`` rows for the rules (the store side of a decision).

One place knows the columns a decision writes, how a decision becomes those
values, and how to write a batch of them: the sweep and the stream agents
both go through here.

Stored values another program (or an older version) wrote are read at the
edge of ``rules.bounds`` (issue 11: one bad value never stops a run).
Choices written down here (the SPEC is silent on them):

- A stored ``scheduled_send_date`` or ``ideal_send_date`` outside
  ``FIRST_DATE..LAST_DATE`` is unknown (None) for that row: a row without a
  send date is what a legacy row without a date already is (it lies in no
  range and matches no occurrence by date; an owned one is deleted by no
  decision and counts for no frequency limit); without an ideal date an owned
  row is never "kept".  An ``event_year`` outside the range is unknown, and
  the row is then matched by its send date like a legacy row without a year;
  ``event_month``/``event_day`` that do not make a date with it leave the
  event date unknown.  An ``actual_send_datetime`` (or a click or answer time,
  ``parse_stored_datetime``) outside the range is unknown.  Each is reported
  as a warning naming the table, the row id and the value (``excerpt``);
  values that merely cannot be read stay unknown without a warning, as before.
  The row's stored values (``StoredRow.values``) are kept as stored, so an
  owned row holding such a value is rewritten when its occurrence is decided.
- A contact id is usable when it is stored as an integer in ``1..MAX_ID``
  (``contact_id_of``).  Text (even digits: the legacy ``INTEGER PRIMARY KEY``
  cannot hold text, so text means another program wrote the table), a float,
  NULL or a number outside the range is not: such a contact is never read as
  a contact (``streams.sweep.prefilter`` leaves it out and reports it).
- Reading an unmigrated database (read-only ``explain``): a column a table
  lacks reads as NULL, a table that is missing has no rows
  (``select_list``).  The column lists are inspected once per engine and
  kept only when complete: columns are only ever added (a migration), so a
  complete list never goes stale, while an incomplete one would outlive a
  migration made through the same engine.  The sweep and the agents run on
  migrated databases, so their reads inspect once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import NamedTuple, TypeVar
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from rules.anniversary import parse_iso_date
from rules.bounds import (
    FIRST_DATE,
    LAST_DATE,
    MAX_ID,
    date_in_range,
    excerpt,
    id_in_range,
    year_in_range,
)
from rules.contact import ContactRecord
from rules.contact_schedule import Decision, ExistingRow, catchup_note
from rules.statuses import OWNED_STATUSES
from streams.store.bulk import driver_rows, insert_rows, journals_in_memory


class ScheduleRow(NamedTuple):
    """The columns a decision writes to an ``email_schedules`` row, by name.

    The fields are the column names and their order is the order of every
    INSERT and UPDATE.  What the email is comes first, in the order the
    schedule checksum digests and sorts it (``streams.store.checksum``: the key
    first); how it came to be placed and its metadata follow, and the checksum
    leaves them out.
    A stored row's values (``StoredRow.values``) are as another program may
    have written them: the types are those a decision writes.
    """

    occurrence_key: str
    contact_id: int
    email_type: str
    scheduled_send_date: str  # ISO date
    scheduled_send_time: str
    status: str
    skip_reason: str | None
    priority: int
    campaign_instance_id: int | None
    email_template: str | None
    sms_template: str | None
    event_year: int
    event_month: int
    event_day: int
    # How it came to be placed, and its metadata: not digested.
    catchup_note: str | None
    metadata: str | None
    ideal_send_date: str  # ISO date
    placed_run_id: str | None


DECISION_COLUMNS: tuple[str, ...] = ScheduleRow._fields
# What a checksum leaves out of a row: how it came to be placed (its catch-up
# note, ideal date and placing run) and its metadata.
NOT_DIGESTED = frozenset({"catchup_note", "metadata", "ideal_send_date", "placed_run_id"})
# The decision columns that say what the email is (SPEC section 9), in digest order: the
# key first (``ScheduleRow`` keeps them in this order; reordering them changes every checksum).
CHECKSUM_COLUMNS: tuple[str, ...] = tuple(c for c in DECISION_COLUMNS if c not in NOT_DIGESTED)

OWNED_SQL = "('" + "', '".join(sorted(OWNED_STATUSES)) + "')"  # constants, not user values

# The contact fields the rules read (SPEC section 2), in ``ContactRecord``'s order.
CONTACT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ContactRecord))
CONTACT_COLUMNS = ", ".join(CONTACT_FIELDS)


@dataclass(frozen=True)
class StoredRow:
    existing: ExistingRow  # as the rules read it
    values: ScheduleRow  # as stored: a decision's row equal to it needs no write


def decision_values(
    d: Decision, send_time: str, placed_run_id: str | None, catchup_note: str | None
) -> ScheduleRow:
    """The row a decision writes (in field order, since the sweep builds one per decision)."""
    occ = d.occurrence
    event = occ.event_date
    return ScheduleRow._make(
        (
            occ.key,
            occ.contact_id,
            occ.email_type,
            d.send_date.isoformat(),
            send_time,
            d.status,
            d.skip_reason,
            occ.priority,
            occ.campaign_instance_id,
            occ.email_template,
            occ.sms_template,
            event.year,
            event.month,
            event.day,
            catchup_note,
            occ.metadata,
            occ.ideal_send_date.isoformat(),
            placed_run_id,
        )
    )


def placed_values(
    d: Decision, stored: StoredRow | None, send_time: str, run_id: str
) -> ScheduleRow:
    """A decision's row: a kept placement keeps the run that placed it and its note."""
    if d.kept and stored is not None:
        placed_run, note = stored.existing.placed_run_id, stored.values.catchup_note
    else:
        placed_run, note = run_id, catchup_note(d)
    return decision_values(d, send_time, placed_run, note)


def _to_int(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:  # not a whole number, or more digits than int() reads
        return None


def contact_id_of(value: object) -> int | None:
    """A stored contact id as the rules key on it, or None when it is not usable.

    Usable: stored as an integer, in ``1..MAX_ID``.  Not usable: text, a float,
    NULL, or an integer outside the range (module docstring).
    """
    if isinstance(value, int) and not isinstance(value, bool) and id_in_range(value):
        return value
    return None


def unusable_id_reason(value: object) -> str:
    """Why a stored contact id is not usable, quoting it through ``excerpt``."""
    return f"id {excerpt(value)} is not a whole number in 1..{MAX_ID}: the contact is skipped"


# --- columns a table may lack (module docstring) ----------------------------------

# Per engine, the (table, columns) found complete: asked again, they are not inspected.
_COMPLETE: WeakKeyDictionary[Engine, set[tuple[str, tuple[str, ...]]]] = WeakKeyDictionary()


def select_list(
    conn: Connection, table: str, columns: Sequence[str], required: Sequence[str] = ()
) -> str | None:
    """``columns`` as a SELECT list, those the table lacks read as NULL.

    None when the table is missing or lacks one of ``required`` (the columns a
    query filters or groups by): then it has nothing to read.
    """
    wanted = tuple(columns)
    complete = _COMPLETE.setdefault(conn.engine, set())
    if (table, wanted) in complete:
        return ", ".join(wanted)
    inspector = sa.inspect(conn)
    if not inspector.has_table(table):
        return None
    present = {c["name"] for c in inspector.get_columns(table)}
    if not present.issuperset(required):
        return None
    if present.issuperset(wanted):
        complete.add((table, wanted))
    return ", ".join(c if c in present else f"NULL AS {c}" for c in wanted)


# The row id, the decision columns, then what only the sending side writes.
_ROW_COLUMNS: tuple[str, ...] = ("id", *DECISION_COLUMNS, "actual_send_datetime")
_ACTUAL_SEND = len(_ROW_COLUMNS) - 1

# The dates of stored rows are a few hundred distinct texts: each is parsed once.
_stored_date = lru_cache(maxsize=4096)(parse_iso_date)
_DATE_RANGE = f"{FIRST_DATE}..{LAST_DATE}"
_YEAR_RANGE = f"{FIRST_DATE.year}..{LAST_DATE.year}"


def placeholder(conn: Connection) -> str:
    """The driver's positional marker: the hot paths bind tuples at the DBAPI level."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


_V = TypeVar("_V")
IN_LIST_SIZE = 500  # values per IN (...) list: far below SQLite's variable limit


def in_lists(conn: Connection, values: Sequence[_V]) -> Iterator[tuple[tuple[_V, ...], str]]:
    """The values in parts of at most ``IN_LIST_SIZE``, each with the markers of its
    ``IN (...)`` list, for reads bound at the DBAPI level (they run once per batch)."""
    for start in range(0, len(values), IN_LIST_SIZE):
        part = tuple(values[start : start + IN_LIST_SIZE])
        yield part, ", ".join(placeholder(conn) for _ in part)


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
    """A stored datetime text as a naive datetime; None when missing, unreadable or out of range.

    Stored datetimes (``actual_send_datetime``, ``clicked_at``, ``created_at``)
    are compared as written.  One with a UTC offset is converted to UTC and the
    offset dropped, since SQLite's ``CURRENT_TIMESTAMP`` (the default of
    ``clicked_at`` and ``created_at``) is UTC without an offset.  One whose
    date lies outside ``FIRST_DATE..LAST_DATE`` is unknown (``rules.bounds``).
    """
    if raw is None:
        return None
    value = str(raw).strip()
    if not value:
        return None
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    parsed: datetime | None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        day = parse_iso_date(value)
        parsed = datetime.combine(day, datetime.min.time()) if day is not None else None
    else:
        if parsed.tzinfo is not None:
            try:
                parsed = parsed.astimezone(UTC).replace(tzinfo=None)
            except OverflowError:  # year 1 or 9999 moved past Python's dates
                return None
    return parsed if parsed is not None and date_in_range(parsed.date()) else None


def _unknown(
    problems: list[str] | None, row_id: object, v: ScheduleRow, column: str, value: object, what: str
) -> None:
    """Report a stored value treated as unknown."""
    if problems is not None:
        problems.append(
            f"contact {excerpt(v.contact_id)}: email_schedules row {row_id}: "
            f"{column} {excerpt(value)} {what}: treated as unknown"
        )


def _bounded_day(
    problems: list[str] | None, row_id: object, v: ScheduleRow, column: str, stored: object
) -> date | None:
    raw = _text(stored)
    day = _stored_date(raw)
    if day is not None and not FIRST_DATE <= day <= LAST_DATE:
        _unknown(problems, row_id, v, column, raw, f"is outside {_DATE_RANGE}")
        return None
    return day


def _event_year(problems: list[str] | None, row_id: object, v: ScheduleRow) -> int | None:
    year = _to_int(v.event_year)
    if year is not None and not year_in_range(year):
        _unknown(problems, row_id, v, "event_year", v.event_year, f"is outside {_YEAR_RANGE}")
        return None
    return year


def _event_date(
    problems: list[str] | None, row_id: object, v: ScheduleRow, year: int | None
) -> date | None:
    month, day = _to_int(v.event_month), _to_int(v.event_day)
    if year is None or month is None or day is None:
        return None
    if 1 <= month <= 12 and 1 <= day <= 31:  # else date() may overflow, not just refuse
        try:
            return date(year, month, day)
        except ValueError:
            pass
    _unknown(problems, row_id, v, "event_month/event_day", (month, day), f"do not make a date in {year}")
    return None


def _actual_send_at(
    problems: list[str] | None, row_id: object, v: ScheduleRow, stored: object
) -> datetime | None:
    raw = _text(stored)
    parsed = parse_stored_datetime(raw)
    if parsed is None and raw is not None:  # unreadable, or out of range: only the latter is said
        day = parse_iso_date(raw)
        if day is not None and not date_in_range(day):
            _unknown(problems, row_id, v, "actual_send_datetime", raw, f"is outside {_DATE_RANGE}")
    return parsed


def _stored_row(r: Sequence[object], problems: list[str] | None = None) -> StoredRow:
    """A fetched row (``_ROW_COLUMNS``) as the rules read it, and its values as stored."""
    row_id, v = r[0], ScheduleRow._make(r[1:_ACTUAL_SEND])
    event_year = _event_year(problems, row_id, v)
    existing = ExistingRow(
        id=int(row_id),  # type: ignore[call-overload]
        email_type=str(v.email_type),
        send_date=_bounded_day(problems, row_id, v, "scheduled_send_date", v.scheduled_send_date),
        status=str(v.status),
        occurrence_key=_text(v.occurrence_key),
        ideal_send_date=_bounded_day(problems, row_id, v, "ideal_send_date", v.ideal_send_date),
        event_year=event_year,
        placed_run_id=_text(v.placed_run_id),
        skip_reason=_text(v.skip_reason),
        send_time=_stored_time(_text(v.scheduled_send_time)),
        actual_send_at=_actual_send_at(problems, row_id, v, r[_ACTUAL_SEND]),
        priority=_to_int(v.priority),
        campaign_instance_id=_to_int(v.campaign_instance_id),
        event_date=_event_date(problems, row_id, v, event_year),
        metadata=_text(v.metadata),
    )
    return StoredRow(existing, v)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def stored_row_of(row: Mapping[str, object]) -> StoredRow:
    """A row held as a mapping of its columns (``streams.store.epochs``) as ``fetch_rows`` reads it."""
    return _stored_row(tuple(row.get(c) for c in _ROW_COLUMNS))


def fetch_rows(conn: Connection, contact_ids: Sequence[int]) -> dict[int, list[StoredRow]]:
    """Every schedule row of these contacts, grouped by contact."""
    return fetch_rows_reported(conn, contact_ids)[0]


def fetch_rows_reported(
    conn: Connection, contact_ids: Sequence[int]
) -> tuple[dict[int, list[StoredRow]], list[str]]:
    """``fetch_rows``, and a warning for each stored value treated as unknown (module docstring)."""
    out: dict[int, list[StoredRow]] = {cid: [] for cid in contact_ids}
    problems: list[str] = []
    if not contact_ids:
        return out, problems
    columns = select_list(conn, "email_schedules", _ROW_COLUMNS, required=("id", "contact_id"))
    if columns is None:
        return out, problems
    marks = ", ".join(placeholder(conn) for _ in contact_ids)
    sql = f"SELECT {columns} FROM email_schedules WHERE contact_id IN ({marks}) ORDER BY id"
    for r in driver_rows(conn, sql, contact_ids):
        # Matched by IN (integers): the stored contact_id equals one of them.
        row = _stored_row(r, problems)
        out.setdefault(int(row.values.contact_id), []).append(row)
    return out, problems


ContactFields = tuple[int, str | None, str | None, str | None, str | None, str | None, str | None]


def fetch_contact_fields(conn: Connection, contact_ids: Sequence[int]) -> list[ContactFields]:
    """The contacts' fields as ``ContactRecord`` takes them, in id order.

    A row whose stored id only compares equal to one asked for (a float
    ``105.0``) is not the contact ``105``: it is left out (``contact_id_of``).
    """
    if not contact_ids:
        return []
    marks = ", ".join(placeholder(conn) for _ in contact_ids)
    sql = f"SELECT {CONTACT_COLUMNS} FROM contacts WHERE id IN ({marks}) ORDER BY id"
    rows = driver_rows(conn, sql, contact_ids)
    return [contact_fields(r) for r in rows if contact_id_of(r[0]) is not None]


def fetch_contacts(conn: Connection, contact_ids: Sequence[int]) -> list[ContactRecord]:
    return [ContactRecord(*f) for f in fetch_contact_fields(conn, contact_ids)]


def contact_fields(r: Sequence[object]) -> ContactFields:
    """id, email, zip_code, state, birth_date, effective_date, phone_number: raw text.

    ValueError when the id is not usable (``contact_id_of``): such a row is no contact.
    """
    cid = contact_id_of(r[0])
    if cid is None:
        raise ValueError(f"contacts row {unusable_id_reason(r[0])}")
    return (cid, _text(r[1]), _text(r[2]), _text(r[3]), _text(r[4]), _text(r[5]), _text(r[6]))


def contact_record(r: Sequence[object]) -> ContactRecord:
    return ContactRecord(*contact_fields(r))


@dataclass
class WriteBatch:
    """Row writes collected for one transaction."""

    inserts: list[ScheduleRow]
    updates: list[tuple[int, ScheduleRow]]
    deletes: list[int]

    @classmethod
    def empty(cls) -> WriteBatch:
        return cls([], [], [])

    def __len__(self) -> int:
        return len(self.inserts) + len(self.updates) + len(self.deletes)

    def extend(self, other: WriteBatch) -> None:
        """``other``'s writes after these."""
        self.inserts.extend(other.inserts)
        self.updates.extend(other.updates)
        self.deletes.extend(other.deletes)


def _insert_head(upsert: bool) -> tuple[str, str]:
    """The insert's head and its upsert tail (``streams.store.bulk.insert_rows``)."""
    head = f"INSERT INTO email_schedules ({', '.join(DECISION_COLUMNS)}, scheduler_run_id)"
    if not upsert:
        return head, ""
    updates = ", ".join(f"{c} = excluded.{c}" for c in DECISION_COLUMNS if c != "occurrence_key")
    return head, (
        f" ON CONFLICT (occurrence_key) DO UPDATE SET {updates}, "
        f"scheduler_run_id = excluded.scheduler_run_id "
        f"WHERE email_schedules.status IN {OWNED_SQL}"
    )


def _update_sql(ph: str) -> str:
    sets = ", ".join(f"{c} = {ph}" for c in DECISION_COLUMNS)
    return (
        f"UPDATE email_schedules SET {sets}, scheduler_run_id = {ph} "
        f"WHERE id = {ph} AND status IN {OWNED_SQL}"
    )


def write_batch(conn: Connection, batch: WriteBatch, run_id: str) -> bool:
    """Apply a batch; rows that meanwhile left the owned statuses are left alone.

    Upserts by occurrence key, so a row another writer (a stream agent) created
    meanwhile is updated rather than duplicated, and only while it is owned.
    Returns whether every row of ``batch.inserts`` was inserted (False: some updated
    another writer's row instead).
    """
    return write_batches(conn, [(batch, run_id)])


def write_batches(conn: Connection, batches: Sequence[tuple[WriteBatch, str]]) -> bool:
    """``write_batch`` for several batches, each with its writer's run id, in one pass."""
    inserted = True
    ph = placeholder(conn)
    updates = [(*v, run_id, row_id) for batch, run_id in batches for row_id, v in batch.updates]
    deletes = [(i,) for batch, _ in batches for i in batch.deletes]
    with journals_in_memory(conn):
        if any(batch.inserts for batch, _ in batches):
            try:
                # Plain inserts cost half an upsert; the keys were free when read.
                with conn.begin_nested():
                    for batch, run_id in batches:
                        insert_rows(conn, _insert_head(upsert=False)[0], batch.inserts, ph, extra=(run_id,))
            except IntegrityError:
                # Another writer (a stream agent) created some of these keys meanwhile,
                # or batches of several writers hold one key: a statement per row, so
                # the later row updates the earlier.
                head, tail = _insert_head(upsert=True)
                marks = ", ".join(ph for _ in range(len(DECISION_COLUMNS) + 1))
                inserts = [(*v, run_id) for batch, run_id in batches for v in batch.inserts]
                conn.exec_driver_sql(f"{head} VALUES ({marks}){tail}", inserts)
                inserted = False
        if updates:
            conn.exec_driver_sql(_update_sql(ph), updates)
        if deletes:
            conn.exec_driver_sql(
                f"DELETE FROM email_schedules WHERE id = {ph} AND status IN {OWNED_SQL}", deletes
            )
    return inserted


def stage_write(batch: WriteBatch, values: ScheduleRow, existing: StoredRow | None) -> str:
    """Add a row's values to a batch unless the stored row already holds them.

    Returns 'inserted', 'updated' or 'unchanged'.
    """
    if existing is None:
        return stage_values(batch, values, 0, None)
    return stage_values(batch, values, existing.existing.id, existing.values)


def stage_values(
    batch: WriteBatch, values: ScheduleRow, row_id: int, stored: ScheduleRow | None
) -> str:
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
