"""The campaign tables (the store side of SPEC section 8): every read and write of
``campaign_types``, ``campaign_instances``, ``contact_campaigns`` and
``campaign_change_log``.

The sweep and the stream agents read campaigns for the rules here (rows
turned into the rules' values); ``mailwindow campaign``
(``streams.admin.campaigns``) and the campaign agent
(``streams.worker.ingest``) write them here.  A contact's clicks and health
answers are ``streams.store.behaviour``'s.

Choices written down here (the SPEC is silent on them):
- A ``campaign_types`` row whose values cannot be read (a priority that is not
  a whole number, a boolean that is neither 0/1 nor true/false) is reported
  and left out, as if absent: a config type of that name, if any, applies;
  otherwise its instances are of an unknown type and send nothing (reported).
- A trigger or instance date that cannot be read is treated as missing and
  reported, like a contact's dates (SPEC section 2).
- Stored datetimes: see ``streams.store.schedules.parse_stored_datetime``.

Values the rules cannot compute with (issue 11, ``rules.bounds``) make the
one row that holds them unusable, reported with its table and row id:

- A ``campaign_types`` row whose ``days_before_event`` lies outside
  ``-MAX_DAYS_BEFORE_EVENT..MAX_DAYS_BEFORE_EVENT`` is left out like an
  unreadable row (above): the same rule for every row the sweep cannot use.
  ``mailwindow campaign type`` still reads it, so it can be fixed there.
- A ``campaign_instances`` row with an active date outside
  ``FIRST_DATE..LAST_DATE`` (or an id that is not one) is ignored: no
  occurrence comes from it, as if it did not exist.  Unlike an unreadable
  date, such a date is not "open": a start in 9999 says "never", an open
  start says "always", and guessing between them could send emails.
- A ``contact_campaigns`` row with a trigger date outside the range, or an
  instance id that is not an id, is ignored as if absent.  For an instance
  that targets all contacts the contact then gets the default email like
  every contact without a row of its own: the row's own date cannot be
  honoured, and the default is what the agency sends to everyone.
- The pre-filter (``campaign_candidate_ids``) skips the same rows silently:
  the sweep reports them where it reads them for a contact.
- An unmigrated database (read-only ``explain``): a table that is missing
  has no rows, a column that is missing reads as NULL
  (``streams.store.schedules.select_list``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache

import sqlalchemy as sa
from sqlalchemy import Connection, text

from rules.anniversary import parse_iso_date
from rules.bounds import FIRST_DATE, LAST_DATE, date_in_range, excerpt, id_in_range
from rules.campaign import (
    MAX_DAYS_BEFORE_EVENT,
    CampaignBook,
    CampaignInstance,
    CampaignTarget,
    days_before_in_range,
    default_trigger,
    merge_campaign_types,
)
from rules.config import CampaignType, Config
from streams.store.bulk import driver_rows
from streams.store.dialects import follow_chosen_ids, now_sql, stored_now, upsert
from streams.store.schedules import contact_id_of, placeholder, select_list
from streams.store.tables import (
    TARGET_FIELDS,
    campaign_change_log,
    campaign_instances,
    campaign_types,
    contact_campaigns,
)

_TARGET_COLUMNS = ("id", *TARGET_FIELDS)
# campaign_types columns after ``name``, in ``CampaignType`` field order.
TYPE_COLUMNS: tuple[str, ...] = (
    "respect_exclusion_windows",
    "enable_followups",
    "days_before_event",
    "target_all_contacts",
    "priority",
    "active",
)
_TRUE = frozenset({"1", "true", "t", "yes", "y"})
_FALSE = frozenset({"0", "false", "f", "no", "n"})


def _flag(value: object, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value in (0, 1):
            return bool(value)
        raise ValueError(f"{excerpt(value)} is not a boolean")
    lowered = str(value).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{excerpt(value)} is not a boolean")


def _whole(value: object, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool):
        raise ValueError(f"{excerpt(value)} is not a whole number")
    if isinstance(value, int):
        return value
    text_value = str(value).strip()
    try:
        return int(text_value)
    except ValueError:  # not a whole number, or more digits than int() reads
        raise ValueError(f"{excerpt(value)} is not a whole number") from None


def campaign_type_from_row(row: Sequence[object]) -> CampaignType:
    """A ``campaign_types`` row (name, then the fields in declaration order); ValueError if unreadable."""
    d = CampaignType(str(row[0]))
    return CampaignType(
        name=str(row[0]),
        respect_exclusion_windows=_flag(row[1], d.respect_exclusion_windows),
        enable_followups=_flag(row[2], d.enable_followups),
        days_before_event=_whole(row[3], d.days_before_event),
        target_all_contacts=_flag(row[4], d.target_all_contacts),
        priority=_whole(row[5], d.priority),
        active=_flag(row[6], d.active),
    )


def _date_field(value: object, what: str, problems: list[str]) -> date | None:
    if value is None or not str(value).strip():
        return None
    parsed = parse_iso_date(str(value))
    if parsed is None:
        problems.append(f"{what} {excerpt(value)} is not a date: treated as missing")
    return parsed


def _outside(value: object, day: date | None, what: str, problems: list[str], outcome: str) -> bool:
    """Whether a stored date lies outside ``FIRST_DATE..LAST_DATE`` (reported, with ``outcome``)."""
    if day is None or date_in_range(day):
        return False
    problems.append(f"{what} {excerpt(value)} is outside {FIRST_DATE}..{LAST_DATE}: {outcome}")
    return True


def _stored_id(value: object) -> int | None:
    """A stored instance id, when it is one (an integer in ``1..MAX_ID``)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and id_in_range(value) else None


@dataclass(frozen=True)
class LoadedBook:
    book: CampaignBook
    problems: list[str] = field(default_factory=list)


_INSTANCE_COLUMNS = (
    "id",
    "campaign_type",
    "instance_name",
    "email_template",
    "sms_template",
    "active_start_date",
    "active_end_date",
    "metadata",
)
# What an instance is, beside its id: what an instance event may set.
INSTANCE_FIELDS = _INSTANCE_COLUMNS[1:]


def load_campaign_book(conn: Connection, config: Config) -> LoadedBook:
    """Every campaign type (config and table, the table winning) and every usable instance."""
    problems: list[str] = []
    types = merge_campaign_types(config.campaign_types, _table_types(conn, problems))
    instances: list[CampaignInstance] = []
    columns = select_list(conn, "campaign_instances", _INSTANCE_COLUMNS, required=("id", "campaign_type"))
    rows = conn.execute(text(f"SELECT {columns} FROM campaign_instances ORDER BY id")) if columns else ()
    for r in rows:
        instance = _instance_from_row(tuple(r), problems)
        if instance is not None:
            instances.append(instance)
    return LoadedBook(CampaignBook(types, tuple(instances)), problems)


def _table_types(conn: Connection, problems: list[str]) -> list[CampaignType]:
    """The usable ``campaign_types`` rows; the others are reported and left out."""
    columns = select_list(conn, "campaign_types", ("name", *TYPE_COLUMNS), required=("name",))
    if columns is None:
        return []
    found: list[CampaignType] = []
    for row in conn.execute(text(f"SELECT {columns} FROM campaign_types ORDER BY name")):
        what = f"campaign_types row {excerpt(row[0])}"
        try:
            ctype = campaign_type_from_row(tuple(row))
        except ValueError as exc:
            problems.append(f"{what}: {exc}: left out")
            continue
        if not days_before_in_range(ctype.days_before_event):
            problems.append(
                f"{what}: days_before_event {ctype.days_before_event} is outside "
                f"-{MAX_DAYS_BEFORE_EVENT}..{MAX_DAYS_BEFORE_EVENT}: left out"
            )
            continue
        found.append(ctype)
    return found


def _instance_from_row(r: Sequence[object], problems: list[str]) -> CampaignInstance | None:
    """A ``campaign_instances`` row as the rules take it; None (reported) when unusable."""
    instance_id = _stored_id(r[0])
    if instance_id is None:
        problems.append(f"campaign_instances row with id {excerpt(r[0])}: not an id: the instance is ignored")
        return None
    what = f"campaign instance {instance_id}"
    start = _date_field(r[5], f"{what}: active_start_date", problems)
    end = _date_field(r[6], f"{what}: active_end_date", problems)
    where = f"campaign_instances row {instance_id}"
    ignored = "the instance is ignored"
    if _outside(r[5], start, f"{where}: active_start_date", problems, ignored) or _outside(
        r[6], end, f"{where}: active_end_date", problems, ignored
    ):
        return None
    return CampaignInstance(
        id=instance_id,
        campaign_type=str(r[1]),
        instance_name=str(r[2]),
        email_template=None if r[3] is None else str(r[3]),
        sms_template=None if r[4] is None else str(r[4]),
        active_start_date=start,
        active_end_date=end,
        metadata=None if r[7] is None else str(r[7]),
    )


def _in_marks(conn: Connection, ids: Sequence[int]) -> str:
    return ", ".join(placeholder(conn) for _ in ids)


def fetch_targets(
    conn: Connection, contact_ids: Sequence[int], instance_ids: Iterable[int]
) -> tuple[dict[int, list[CampaignTarget]], list[str]]:
    """The ``contact_campaigns`` rows of these contacts for these instances, by contact.

    A row that cannot be used (module docstring) is reported and left out.
    """
    wanted = set(instance_ids)
    out: dict[int, list[CampaignTarget]] = {}
    problems: list[str] = []
    if not contact_ids or not wanted:
        return out, problems
    columns = select_list(conn, "contact_campaigns", _TARGET_COLUMNS, required=_TARGET_COLUMNS[:3])
    if columns is None:
        return out, problems
    sql = (
        f"SELECT {columns} FROM contact_campaigns "
        f"WHERE contact_id IN ({_in_marks(conn, contact_ids)}) ORDER BY id"
    )
    for row in driver_rows(conn, sql, contact_ids):
        target = _target_from_row(row, wanted, problems)
        if target is not None:
            out.setdefault(target.contact_id, []).append(target)
    return out, problems


def _target_from_row(
    row: Sequence[object], wanted: set[int], problems: list[str]
) -> CampaignTarget | None:
    """A ``contact_campaigns`` row of a wanted instance, as the rules take it; else None."""
    row_id, cid, iid, trigger, status, metadata = row
    # Matched by IN (integers): the stored contact_id equals one of them.
    where = f"contact {int(cid)}: contact_campaigns row {row_id}"  # type: ignore[call-overload]
    instance_id = _stored_id(iid)
    if instance_id is None:
        if iid is not None:
            problems.append(f"{where}: campaign_instance_id {excerpt(iid)} is not an id: ignored")
        return None
    if instance_id not in wanted:
        return None
    day = _date_field(trigger, f"{where}: trigger_date", problems)
    if _outside(trigger, day, f"{where}: trigger_date", problems, "the target is ignored"):
        return None
    return CampaignTarget(
        contact_id=int(cid),  # type: ignore[call-overload]
        instance_id=instance_id,
        trigger_date=day,
        status="" if status is None else str(status),
        metadata=None if metadata is None else str(metadata),
        row_id=int(row_id),  # type: ignore[call-overload]
    )


def campaign_candidate_ids(
    conn: Connection, book: CampaignBook, first: date, last: date
) -> set[int]:
    """Contacts with a target whose ideal send date lies in ``[first, last]`` (pre-filter).

    The rows ``fetch_targets`` ignores are skipped here too (module docstring).
    """
    active = {i.id: i for i in book.active_instances}
    found: set[int] = set()
    if not active:
        return found
    rows = conn.execute(
        text("SELECT contact_id, campaign_instance_id, trigger_date, status FROM contact_campaigns")
    )
    for stored_cid, iid, trigger, status in rows:
        instance = active.get(instance_id) if (instance_id := _stored_id(iid)) is not None else None
        cid = contact_id_of(stored_cid)
        if instance is None or cid is None:
            continue
        if str(status or "").strip().lower() in ("cancelled", "canceled"):
            continue
        ctype = book.types[instance.campaign_type]
        own = parse_iso_date(None if trigger is None else str(trigger))
        if own is not None and not date_in_range(own):
            continue
        day = own or default_trigger(instance, ctype)
        if day is None:
            continue
        ideal = day - timedelta(days=ctype.days_before_event)
        if first <= ideal <= last:
            found.add(cid)
    return found


def write_target_statuses(conn: Connection, written: Sequence[tuple[int, str]]) -> int:
    """SPEC section 8: ``contact_campaigns.status`` follows what was written.

    ``written``: (contact_campaigns id, occurrence key).  A target whose email
    row is ``pre-scheduled`` becomes ``scheduled``, one whose row is
    ``skipped`` becomes ``skipped``; a status the sending side wrote
    (anything but pending/scheduled/skipped) and cancelled targets are left
    alone.  Returns the rows changed.
    """
    ph = placeholder(conn)
    changed = 0
    for start in range(0, len(written), 500):
        part = written[start : start + 500]
        keys = sorted({k for _, k in part})
        status_of: dict[str, str] = {
            str(k): str(v)
            for k, v in conn.exec_driver_sql(
                f"SELECT occurrence_key, status FROM email_schedules "
                f"WHERE occurrence_key IN ({', '.join(ph for _ in keys)})",
                tuple(keys),
            )
        }
        updates = []
        for row_id, key in part:
            status = status_of.get(key)
            new = {"pre-scheduled": "scheduled", "skipped": "skipped"}.get(str(status))
            if new is not None:
                updates.append((new, row_id, new))
        if updates:
            result = conn.exec_driver_sql(
                f"UPDATE contact_campaigns SET status = {ph}, updated_at = {now_sql(conn.dialect.name)} "
                f"WHERE id = {ph} AND lower(trim(coalesce(status, 'pending'))) "
                f"IN ('pending', 'scheduled', 'skipped', '') AND coalesce(status, '') != {ph}",
                updates,
            )
            changed += max(result.rowcount, 0)
    return changed


# --- campaign_types: `mailwindow campaign type` and the campaign agent ------------------------

_TYPE_ROW = (campaign_types.c.name, *(campaign_types.c[name] for name in TYPE_COLUMNS))


def type_rows(conn: Connection) -> list[tuple[object, ...]]:
    """Every ``campaign_types`` row (name, then TYPE_COLUMNS: ``campaign_type_from_row``), by name."""
    return [tuple(r) for r in conn.execute(sa.select(*_TYPE_ROW).order_by(campaign_types.c.name))]


def type_row(conn: Connection, name: str) -> tuple[object, ...] | None:
    row = conn.execute(sa.select(*_TYPE_ROW).where(campaign_types.c.name == name)).first()
    return None if row is None else tuple(row)


def add_type(conn: Connection, name: str, values: Mapping[str, int]) -> None:
    """A new ``campaign_types`` row; ``values`` by TYPE_COLUMNS, booleans as 1/0."""
    now = stored_now(conn.dialect.name)
    conn.execute(sa.insert(campaign_types).values(name=name, **values, created_at=now, updated_at=now))


def change_type(conn: Connection, name: str, values: Mapping[str, int]) -> None:
    """Set these fields of the type's row (``updated_at``: now)."""
    conn.execute(
        sa.update(campaign_types)
        .where(campaign_types.c.name == name)
        .values(**values, updated_at=stored_now(conn.dialect.name))
    )


def put_type(conn: Connection, name: str, values: Mapping[str, int]) -> None:
    """The type's row with these fields, created or changed (``updated_at``: now, on a change)."""
    statement = upsert(campaign_types, conn.dialect.name).values(name=name, **values)
    statement = statement.on_conflict_do_update(
        index_elements=[campaign_types.c.name],
        set_={
            **{field: statement.excluded[field] for field in values},
            "updated_at": stored_now(conn.dialect.name),
        },
    )
    conn.execute(statement)


# --- campaign_instances ---------------------------------------------------------------------

_INSTANCE_ROW = tuple(campaign_instances.c[name] for name in _INSTANCE_COLUMNS)
# The dates whose change is logged and owes a sweep.
DATE_FIELDS = ("active_start_date", "active_end_date")


def instance_row(conn: Connection, instance_id: int) -> tuple[object, ...] | None:
    """The instance's row (the columns of ``load_campaign_book``), as stored."""
    query = sa.select(*_INSTANCE_ROW).where(campaign_instances.c.id == instance_id)
    row = conn.execute(query).first()
    return None if row is None else tuple(row)


def instance_type(conn: Connection, instance_id: int) -> str | None:
    """The campaign type the instance of this id belongs to now, if it exists."""
    i = campaign_instances.c
    value = conn.execute(sa.select(i.campaign_type).where(i.id == instance_id)).scalar()
    return None if value is None else str(value)


def instance_rows(conn: Connection) -> list[tuple[object, ...]]:
    return [tuple(r) for r in conn.execute(sa.select(*_INSTANCE_ROW).order_by(campaign_instances.c.id))]


def instance_named(conn: Connection, type_name: str, instance_name: str) -> int | None:
    """The id of the type's instance of that name (the pair is UNIQUE)."""
    i = campaign_instances.c
    query = sa.select(i.id).where(i.campaign_type == type_name, i.instance_name == instance_name)
    row = conn.execute(query).first()
    return None if row is None else int(row[0])


def add_instance(conn: Connection, values: Mapping[str, object]) -> int:
    """A new ``campaign_instances`` row numbered by the database; its id."""
    now = stored_now(conn.dialect.name)
    statement = (
        sa.insert(campaign_instances)
        .values(**values, created_at=now, updated_at=now)
        .returning(campaign_instances.c.id)  # lastrowid is SQLite's; RETURNING works on both
    )
    return int(conn.execute(statement).scalar_one())


def instance_dates(conn: Connection, instance_id: int) -> tuple[object, object] | None:
    """The instance's stored (active_start_date, active_end_date), if it exists."""
    i = campaign_instances.c
    row = conn.execute(sa.select(i.active_start_date, i.active_end_date).where(i.id == instance_id)).first()
    return None if row is None else (row[0], row[1])


def put_instance(conn: Connection, instance_id: int, values: Mapping[str, object]) -> None:
    """The instance's row of this id (an id an event chose) with these fields, created or changed."""
    statement = upsert(campaign_instances, conn.dialect.name).values(
        id=instance_id, **values, updated_at=stored_now(conn.dialect.name)
    )
    statement = statement.on_conflict_do_update(
        index_elements=[campaign_instances.c.id],
        set_={name: statement.excluded[name] for name in (*values, "updated_at")},
    )
    conn.execute(statement)
    follow_chosen_ids(conn, campaign_instances.name)


def change_instance_dates(conn: Connection, instance_id: int, dates: Mapping[str, str | None]) -> None:
    """Set these active dates of the instance (``updated_at``: now)."""
    conn.execute(
        sa.update(campaign_instances)
        .where(campaign_instances.c.id == instance_id)
        .values(**dates, updated_at=stored_now(conn.dialect.name))
    )


# --- campaign_change_log --------------------------------------------------------------------


def log_date_change(
    conn: Connection,
    instance_id: int,
    field: str,
    old: object,
    new: object,
    changed_by: str | None,
    changed_at: str | None = None,
) -> int:
    """Log a changed date of an instance, owing a sweep (``requires_rescheduling``); the log id.

    ``changed_at``: the change's stored time; None: now.
    """
    statement = (
        sa.insert(campaign_change_log)
        .values(
            campaign_instance_id=instance_id,
            field_changed=field,
            old_value=old,
            new_value=new,
            changed_at=stored_now(conn.dialect.name) if changed_at is None else changed_at,
            changed_by=changed_by,
            requires_rescheduling=1,
        )
        .returning(campaign_change_log.c.id)
    )
    return int(conn.execute(statement).scalar_one())


def clear_rescheduling(conn: Connection, log_ids: Sequence[int]) -> None:
    """The sweep these logged changes owed has run."""
    log = campaign_change_log.c
    for start in range(0, len(log_ids), 500):
        part = list(log_ids[start : start + 500])
        conn.execute(sa.update(campaign_change_log).where(log.id.in_(part)).values(requires_rescheduling=0))


# --- contact_campaigns ----------------------------------------------------------------------


_targets = contact_campaigns.c
# Built once: a CSV import or a targets event runs them once per target.
_FIND_TARGET = (
    sa.select(_targets.id, _targets.metadata)
    .where(
        _targets.contact_id == sa.bindparam("contact_id"),
        _targets.campaign_instance_id == sa.bindparam("instance_id"),
        # NULL matches NULL here: the table's UNIQUE does not hold for a NULL date.
        _targets.trigger_date.is_not_distinct_from(sa.bindparam("trigger_date")),
    )
    .order_by(_targets.id)
    .limit(1)
)


def find_target(
    conn: Connection, contact_id: int, instance_id: int, trigger_date: str | None
) -> tuple[int, object] | None:
    """(id, metadata) of the contact's first target row of this instance and trigger date."""
    params = {"contact_id": contact_id, "instance_id": instance_id, "trigger_date": trigger_date}
    row = conn.execute(_FIND_TARGET, params).first()
    return None if row is None else (int(row[0]), row[1])


@cache
def _add_target_sql(dialect: str, stamp_now: bool) -> sa.Insert:
    if not stamp_now:
        return sa.insert(contact_campaigns)
    now = stored_now(dialect)
    return sa.insert(contact_campaigns).values(created_at=now, updated_at=now)


def add_target(
    conn: Connection,
    contact_id: int,
    instance_id: int,
    trigger_date: str | None,
    status: str,
    metadata: str | None,
    *,
    stamp_now: bool,
) -> None:
    """A new target row; ``stamp_now``: created_at and updated_at now, else the table's defaults."""
    conn.execute(
        _add_target_sql(conn.dialect.name, stamp_now),
        {
            "contact_id": contact_id,
            "campaign_instance_id": instance_id,
            "trigger_date": trigger_date,
            "status": status,
            "metadata": metadata,
        },
    )


@cache
def _set_metadata_sql(dialect: str) -> sa.Update:
    return (
        sa.update(contact_campaigns)
        .where(_targets.id == sa.bindparam("target_id"))
        .values(metadata=sa.bindparam("new_metadata"), updated_at=stored_now(dialect))
    )


def set_target_metadata(conn: Connection, target_id: int, metadata: str) -> None:
    conn.execute(_set_metadata_sql(conn.dialect.name), {"target_id": target_id, "new_metadata": metadata})


@cache
def _renew_sql(dialect: str) -> sa.Update:
    given = sa.bindparam("new_metadata", type_=_targets.metadata.type)
    return (
        sa.update(contact_campaigns)
        .where(_targets.id == sa.bindparam("target_id"))
        .values(
            status=sa.bindparam("new_status"),
            metadata=sa.func.coalesce(given, _targets.metadata),
            updated_at=stored_now(dialect),
        )
    )


def renew_target(conn: Connection, target_id: int, status: str, metadata: str | None) -> None:
    """Set the target's status, and its metadata when one is given."""
    params = {"target_id": target_id, "new_status": status, "new_metadata": metadata}
    conn.execute(_renew_sql(conn.dialect.name), params)


def live_target_counts(conn: Connection) -> dict[int, int]:
    """Targets per instance id, cancelled ones (``cancelled``/``canceled``, any case) left out."""
    rows = conn.execute(
        text(
            "SELECT campaign_instance_id, count(*) FROM contact_campaigns "
            "WHERE lower(trim(coalesce(status, ''))) NOT IN (:a, :b) GROUP BY 1"
        ),
        {"a": "cancelled", "b": "canceled"},
    )
    return {r[0]: int(r[1]) for r in rows}


def has_campaign_tables(conn: Connection) -> bool:
    """Whether the database has the campaign tables (an unmigrated one may not)."""
    present = set(sa.inspect(conn).get_table_names())
    return {campaign_types.name, campaign_instances.name, contact_campaigns.name} <= present


# --- whom a campaign change concerns ----------------------------------------------------------

_INSTANCE_CONTACTS = text(
    "SELECT contact_id FROM contact_campaigns WHERE campaign_instance_id = :i "
    "UNION SELECT contact_id FROM email_schedules WHERE campaign_instance_id = :i"
)


def instance_contacts(conn: Connection, instance_id: int) -> list[int]:
    """Contacts an instance names, or that own a row of it: those its date change concerns."""
    return [int(r[0]) for r in conn.execute(_INSTANCE_CONTACTS, {"i": instance_id})]


def usable_instance_contacts(conn: Connection, instance_id: int) -> tuple[int, ...]:
    """``instance_contacts`` with usable ids only (``contact_id_of``: a sweep decides no other), sorted."""
    ids = {cid for r in conn.execute(_INSTANCE_CONTACTS, {"i": instance_id}) if (cid := contact_id_of(r[0])) is not None}
    return tuple(sorted(ids))


def type_contacts(conn: Connection, type_name: str) -> list[int]:
    """Contacts a campaign type's change concerns: its instances' targets and row owners."""
    return [
        int(r[0])
        for r in conn.execute(
            text(
                "SELECT cc.contact_id FROM contact_campaigns cc JOIN campaign_instances ci "
                "ON ci.id = cc.campaign_instance_id WHERE ci.campaign_type = :t UNION "
                "SELECT contact_id FROM email_schedules WHERE email_type = :e"
            ),
            {"t": type_name, "e": f"campaign_{type_name}"},
        )
    ]


def campaign_tables_digest(conn: Connection) -> str:
    """A digest of every campaign type and instance row as stored (a few dozen rows): what
    changes when any writer, the campaign commands included, changes a campaign."""
    digest = hashlib.sha256()
    for table in (campaign_types, campaign_instances):
        for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns)):
            digest.update(repr(tuple(row)).encode())
    return "sha256:" + digest.hexdigest()[:32]
