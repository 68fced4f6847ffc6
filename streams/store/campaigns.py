"""Reading campaign and behaviour data for the rules (the store side of SPEC section 8).

One place reads ``campaign_types``, ``campaign_instances``,
``contact_campaigns``, ``tracking_clicks`` and ``contact_events`` and turns
rows into the rules' values; the sweep and the stream agents both go
through here.

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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

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
from rules.followup import INITIAL_LOOKBACK_DAYS, Behaviour, Click, HealthAnswer
from streams.store.engine import now_sql
from streams.store.schedules import contact_id_of, parse_stored_datetime, placeholder, select_list

HEALTH_EVENT = "eligibility_answered"
_CLICK_COLUMNS = ("contact_id", "clicked_at")
_EVENT_COLUMNS = ("contact_id", "created_at", "event_type", "metadata")
_TARGET_COLUMNS = ("id", "contact_id", "campaign_instance_id", "trigger_date", "status", "metadata")
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
    for row in conn.exec_driver_sql(sql, tuple(contact_ids)):
        target = _target_from_row(tuple(row), wanted, problems)
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


def behaviour_since(as_of: date) -> str:
    """The earliest behaviour that can count as of ``T``: an initial is sent at or after ``T - 35``."""
    return (as_of - timedelta(days=INITIAL_LOOKBACK_DAYS + 1)).isoformat()


def fetch_behaviour(conn: Connection, contact_ids: Sequence[int], since: str) -> dict[int, Behaviour]:
    """Clicks and health answers of these contacts from ``since`` on, by contact.

    Behaviour of a pending follow-up's older initial (kept beyond 35 days) is
    read from the same bound: the type it earned then is already on its row,
    and a type is never lowered.  A time outside ``FIRST_DATE..LAST_DATE`` is
    unknown and its click or answer does not count (``parse_stored_datetime``).
    """
    clicks: dict[int, list[Click]] = {}
    answers: dict[int, list[HealthAnswer]] = {}
    if contact_ids:
        marks = _in_marks(conn, contact_ids)
        ph = placeholder(conn)
        params = (*contact_ids, since)
        if select_list(conn, "tracking_clicks", _CLICK_COLUMNS, required=_CLICK_COLUMNS):
            for cid, at in conn.exec_driver_sql(
                f"SELECT contact_id, clicked_at FROM tracking_clicks "
                f"WHERE contact_id IN ({marks}) AND clicked_at >= {ph}",
                params,
            ):
                when = parse_stored_datetime(None if at is None else str(at))
                if when is not None:
                    clicks.setdefault(int(cid), []).append(Click(when))
        columns = select_list(conn, "contact_events", _EVENT_COLUMNS, required=_EVENT_COLUMNS[:3])
        if columns:
            for cid, at, _, metadata in conn.exec_driver_sql(
                f"SELECT {columns} FROM contact_events "
                f"WHERE contact_id IN ({marks}) AND event_type = '{HEALTH_EVENT}' AND created_at >= {ph}",
                params,
            ):
                when = parse_stored_datetime(None if at is None else str(at))
                if when is not None:
                    answers.setdefault(int(cid), []).append(HealthAnswer(when, metadata))
    return {
        cid: Behaviour(tuple(clicks.get(cid, ())), tuple(answers.get(cid, ())))
        for cid in set(clicks) | set(answers)
    }


def fetch_behaviour_as_of(conn: Connection, as_of: Mapping[int, date]) -> dict[int, Behaviour]:
    """``fetch_behaviour`` with each contact's own bound, ``behaviour_since`` of its as-of
    date: what deciding the contacts one by one would read (one read per distinct bound)."""
    by_bound: dict[str, list[int]] = {}
    for cid in sorted(as_of):
        by_bound.setdefault(behaviour_since(as_of[cid]), []).append(cid)
    found: dict[int, Behaviour] = {}
    for bound, cids in by_bound.items():
        for start in range(0, len(cids), 500):
            found.update(fetch_behaviour(conn, cids[start : start + 500], bound))
    return found


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
