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
- Stored datetimes: see ``streams.schedule_rows.parse_stored_datetime``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import Connection, text

from rules.anniversary import parse_iso_date
from rules.campaign import (
    CampaignBook,
    CampaignInstance,
    CampaignTarget,
    default_trigger,
    merge_campaign_types,
)
from rules.config import CampaignType, Config
from rules.followup import INITIAL_LOOKBACK_DAYS, Behaviour, Click, HealthAnswer
from streams.schedule_rows import parse_stored_datetime, placeholder
from streams.store import now_sql

HEALTH_EVENT = "eligibility_answered"
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
        raise ValueError(f"{value!r} is not a boolean")
    lowered = str(value).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a boolean")


def _whole(value: object, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number")
    if isinstance(value, int):
        return value
    text_value = str(value).strip()
    try:
        return int(text_value)
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None


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
        problems.append(f"{what} {value!r} is not a date: treated as missing")
    return parsed


@dataclass(frozen=True)
class LoadedBook:
    book: CampaignBook
    problems: list[str] = field(default_factory=list)


def load_campaign_book(conn: Connection, config: Config) -> LoadedBook:
    """Every campaign type (config and table, the table winning) and every instance."""
    problems: list[str] = []
    table_types: list[CampaignType] = []
    rows = conn.execute(
        text(f"SELECT name, {', '.join(TYPE_COLUMNS)} FROM campaign_types ORDER BY name")
    )
    for row in rows:
        try:
            table_types.append(campaign_type_from_row(tuple(row)))
        except ValueError as exc:
            problems.append(f"campaign_types row {row[0]!r}: {exc}: left out")
    types = merge_campaign_types(config.campaign_types, table_types)
    instances: list[CampaignInstance] = []
    rows = conn.execute(
        text(
            "SELECT id, campaign_type, instance_name, email_template, sms_template, "
            "active_start_date, active_end_date, metadata FROM campaign_instances ORDER BY id"
        )
    )
    for r in rows:
        what = f"campaign instance {r[0]}"
        instances.append(
            CampaignInstance(
                id=int(r[0]),
                campaign_type=str(r[1]),
                instance_name=str(r[2]),
                email_template=r[3],
                sms_template=r[4],
                active_start_date=_date_field(r[5], f"{what}: active_start_date", problems),
                active_end_date=_date_field(r[6], f"{what}: active_end_date", problems),
                metadata=r[7],
            )
        )
    return LoadedBook(CampaignBook(types, tuple(instances)), problems)


def _in_marks(conn: Connection, ids: Sequence[int]) -> str:
    return ", ".join(placeholder(conn) for _ in ids)


def fetch_targets(
    conn: Connection, contact_ids: Sequence[int], instance_ids: Iterable[int]
) -> tuple[dict[int, list[CampaignTarget]], list[str]]:
    """The ``contact_campaigns`` rows of these contacts for these instances, by contact."""
    wanted = set(instance_ids)
    out: dict[int, list[CampaignTarget]] = {}
    problems: list[str] = []
    if not contact_ids or not wanted:
        return out, problems
    sql = (
        "SELECT id, contact_id, campaign_instance_id, trigger_date, status, metadata "
        f"FROM contact_campaigns WHERE contact_id IN ({_in_marks(conn, contact_ids)}) ORDER BY id"
    )
    for row_id, cid, iid, trigger, status, metadata in conn.exec_driver_sql(sql, tuple(contact_ids)):
        if iid is None or int(iid) not in wanted:
            continue
        what = f"contact {cid}: contact_campaigns row {row_id}: trigger_date"
        out.setdefault(int(cid), []).append(
            CampaignTarget(
                contact_id=int(cid),
                instance_id=int(iid),
                trigger_date=_date_field(trigger, what, problems),
                status="" if status is None else str(status),
                metadata=metadata,
                row_id=int(row_id),
            )
        )
    return out, problems


def behaviour_since(as_of: date) -> str:
    """The earliest behaviour that can count as of ``T``: an initial is sent at or after ``T - 35``."""
    return (as_of - timedelta(days=INITIAL_LOOKBACK_DAYS + 1)).isoformat()


def fetch_behaviour(conn: Connection, contact_ids: Sequence[int], since: str) -> dict[int, Behaviour]:
    """Clicks and health answers of these contacts from ``since`` on, by contact.

    Behaviour of a pending follow-up's older initial (kept beyond 35 days) is
    read from the same bound: the type it earned then is already on its row,
    and a type is never lowered.
    """
    clicks: dict[int, list[Click]] = {}
    answers: dict[int, list[HealthAnswer]] = {}
    if contact_ids:
        marks = _in_marks(conn, contact_ids)
        ph = placeholder(conn)
        params = (*contact_ids, since)
        for cid, at in conn.exec_driver_sql(
            f"SELECT contact_id, clicked_at FROM tracking_clicks "
            f"WHERE contact_id IN ({marks}) AND clicked_at >= {ph}",
            params,
        ):
            when = parse_stored_datetime(None if at is None else str(at))
            if when is not None:
                clicks.setdefault(int(cid), []).append(Click(when))
        for cid, at, metadata in conn.exec_driver_sql(
            f"SELECT contact_id, created_at, metadata FROM contact_events "
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
    """Contacts with a target whose ideal send date lies in ``[first, last]`` (pre-filter)."""
    active = {i.id: i for i in book.active_instances}
    found: set[int] = set()
    if not active:
        return found
    rows = conn.execute(
        text("SELECT contact_id, campaign_instance_id, trigger_date, status FROM contact_campaigns")
    )
    for cid, iid, trigger, status in rows:
        instance = active.get(int(iid)) if iid is not None else None
        if instance is None or cid is None:
            continue
        if str(status or "").strip().lower() in ("cancelled", "canceled"):
            continue
        ctype = book.types[instance.campaign_type]
        day = parse_iso_date(None if trigger is None else str(trigger)) or default_trigger(instance, ctype)
        if day is None:
            continue
        ideal = day - timedelta(days=ctype.days_before_event)
        if first <= ideal <= last:
            found.add(int(cid))
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
