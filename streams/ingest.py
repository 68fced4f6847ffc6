"""Storing input events in the agency database: the write side of each agent.

Each function stores one event's facts (a contact version, a click, a health
answer, a sending-side status, campaign data) and is idempotent: an event id
already applied changes nothing (``mark_applied``), so Kafka's at-least-once
delivery gives exactly-once state.  Deciding schedules afterwards is
``streams.contact_sync``'s job.

Choices written down here (ARCHITECTURE.md is silent on them):
- Event times are stored as UTC without an offset (``YYYY-MM-DD HH:MM:SS``),
  the form of SQLite's ``CURRENT_TIMESTAMP`` that the legacy defaults of
  ``clicked_at`` and ``created_at`` already use.
- Contacts: last write wins by ``occurred_at`` (ties: the larger event id), so
  a late, older version never overwrites a newer one; a delete is a version
  too, and an upsert older than the delete does not bring the contact back.
- A contact event the schema accepts but the database refuses (e.g. an email
  address another contact already uses: ``contacts.email`` is UNIQUE) raises
  ``IngestError`` naming the conflict; the agent sends it to ``deadletter``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime

import orjson
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from rules.config import CampaignType


class IngestError(ValueError):
    """An event the database cannot take; the message names the reason."""


def stored_time(moment: datetime) -> str:
    """An aware event time as stored: UTC, no offset."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def mark_applied(
    conn: Connection,
    event_id: str,
    topic: str,
    occurred_at: datetime,
    partition: int | None = None,
    offset: int | None = None,
) -> bool:
    """Record the event as applied (and where it was read); False when it already was."""
    result = conn.execute(
        text(
            "INSERT INTO mw_applied_events (event_id, topic, occurred_at, source_partition, "
            "source_offset) VALUES (:e, :t, :o, :p, :n) ON CONFLICT (event_id) DO NOTHING"
        ),
        {"e": event_id, "t": topic, "o": stored_time(occurred_at), "p": partition, "n": offset},
    )
    return result.rowcount == 1


def _newer(conn: Connection, contact_id: int, occurred_at: str, event_id: str) -> bool:
    row = conn.execute(
        text("SELECT occurred_at, event_id FROM mw_contact_versions WHERE contact_id = :c"),
        {"c": contact_id},
    ).first()
    return row is None or (occurred_at, event_id) > (str(row[0]), str(row[1]))


def _version(conn: Connection, contact_id: int, occurred_at: str, event_id: str, deleted: bool) -> None:
    conn.execute(
        text(
            "INSERT INTO mw_contact_versions (contact_id, occurred_at, event_id, deleted) "
            "VALUES (:c, :o, :e, :d) ON CONFLICT (contact_id) DO UPDATE SET "
            "occurred_at = excluded.occurred_at, event_id = excluded.event_id, deleted = excluded.deleted"
        ),
        {"c": contact_id, "o": occurred_at, "e": event_id, "d": int(deleted)},
    )


def _upsert_by_id_sql(table: str, fields: tuple[str, ...], stamp: str) -> str:
    """Insert or update the row of ``:id`` (names are constants of this module, values bound)."""
    columns = ", ".join(fields)
    marks = ", ".join(f":{c}" for c in fields)
    updates = ", ".join(f"{c} = excluded.{c}" for c in fields)
    return (
        f"INSERT INTO {table} (id, {columns}, updated_at) VALUES (:id, {marks}, {stamp}) "
        f"ON CONFLICT (id) DO UPDATE SET {updates}, updated_at = excluded.updated_at"
    )


CONTACT_FIELDS = (
    "email",
    "zip_code",
    "state",
    "birth_date",
    "effective_date",
    "phone_number",
    "first_name",
    "last_name",
)


def upsert_contact(
    conn: Connection,
    contact_id: int,
    fields: Mapping[str, object],
    occurred_at: datetime,
    event_id: str,
) -> bool:
    """Store a contact version; False when a newer version is already stored."""
    when = stored_time(occurred_at)
    if not _newer(conn, contact_id, when, event_id):
        return False
    values = {name: fields.get(name) for name in CONTACT_FIELDS}
    # The legacy table requires names; the event may not carry them.
    values["first_name"] = values["first_name"] or ""
    values["last_name"] = values["last_name"] or ""
    values = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in values.items()}
    try:
        with conn.begin_nested():
            conn.execute(
                text(_upsert_by_id_sql("contacts", CONTACT_FIELDS, ":ts")),
                {"id": contact_id, "ts": when, **values},
            )
    except IntegrityError as exc:
        other = conn.execute(
            text("SELECT id FROM contacts WHERE email = :e AND id != :id"),
            {"e": values["email"], "id": contact_id},
        ).first()
        if other is not None:
            raise IngestError(
                f"contact {contact_id}: email {values['email']!r} is already contact {other[0]}'s"
            ) from None
        raise IngestError(f"contact {contact_id}: the database refused it: {exc.orig}") from None
    _version(conn, contact_id, when, event_id, deleted=False)
    return True


def delete_contact(conn: Connection, contact_id: int, occurred_at: datetime, event_id: str) -> bool:
    """Move the contact to ``deleted_contacts`` (kept for billing); False if a newer version is stored.

    Its schedule rows are not deleted here: owned ones are cancelled by the
    caller (``contact_sync.cancel_owned_rows``), sending-side history stays.
    """
    when = stored_time(occurred_at)
    if not _newer(conn, contact_id, when, event_id):
        return False
    conn.execute(
        text(
            "INSERT INTO deleted_contacts (original_contact_id, first_name, last_name, email, "
            "current_carrier, plan_type, effective_date, birth_date, tobacco_user, gender, state, "
            "zip_code, agent_id, phone_number, deleted_at) "
            "SELECT id, first_name, last_name, email, current_carrier, plan_type, effective_date, "
            "birth_date, tobacco_user, gender, state, zip_code, agent_id, phone_number, :ts "
            "FROM contacts WHERE id = :id"
        ),
        {"id": contact_id, "ts": when},
    )
    # Foreign keys may be on (ON DELETE CASCADE would take the history with it).
    fk = conn.exec_driver_sql("PRAGMA foreign_keys").scalar() if conn.dialect.name == "sqlite" else 0
    if fk:
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
    conn.execute(text("DELETE FROM contacts WHERE id = :id"), {"id": contact_id})
    _version(conn, contact_id, when, event_id, deleted=True)
    return True


def contact_deleted(conn: Connection, contact_id: int) -> bool:
    row = conn.execute(
        text("SELECT deleted FROM mw_contact_versions WHERE contact_id = :c"), {"c": contact_id}
    ).first()
    return row is not None and bool(row[0])


def store_click(
    conn: Connection, contact_id: int, tracking_id: str, quote_id: str | None, occurred_at: datetime
) -> None:
    conn.execute(
        text(
            "INSERT INTO tracking_clicks (tracking_id, contact_id, quote_id, clicked_at) "
            "VALUES (:t, :c, :q, :at)"
        ),
        {"t": tracking_id, "c": contact_id, "q": quote_id, "at": stored_time(occurred_at)},
    )


def store_health_answer(
    conn: Connection, contact_id: int, answers: Mapping[str, object], occurred_at: datetime
) -> None:
    conn.execute(
        text(
            "INSERT INTO contact_events (contact_id, event_type, metadata, created_at) "
            "VALUES (:c, 'eligibility_answered', :m, :at)"
        ),
        {
            "c": contact_id,
            "m": orjson.dumps(dict(answers), option=orjson.OPT_SORT_KEYS).decode(),
            "at": stored_time(occurred_at),
        },
    )


def record_email_status(
    conn: Connection,
    contact_id: int,
    occurrence_key: str,
    status: str,
    actual_send: datetime | None,
) -> bool:
    """The sending side's status on the row of this key (its write, applied on its behalf).

    False when no row of that key exists for the contact (reported by the caller).
    """
    result = conn.execute(
        text(
            "UPDATE email_schedules SET status = :s, "
            "actual_send_datetime = COALESCE(:a, actual_send_datetime) "
            "WHERE occurrence_key = :k AND contact_id = :c"
        ),
        {
            "s": status,
            "a": stored_time(actual_send) if actual_send is not None else None,
            "k": occurrence_key,
            "c": contact_id,
        },
    )
    return result.rowcount > 0


def park_event(
    conn: Connection, event_id: str, contact_id: int, topic: str, occurred_at: datetime, payload: bytes
) -> None:
    """Keep an event for a contact not known yet; applied when the contact arrives."""
    conn.execute(
        text(
            "INSERT INTO mw_parked_events (event_id, contact_id, topic, occurred_at, payload) "
            "VALUES (:e, :c, :t, :o, :p) ON CONFLICT (event_id) DO NOTHING"
        ),
        {"e": event_id, "c": contact_id, "t": topic, "o": stored_time(occurred_at), "p": payload},
    )


def take_parked_events(conn: Connection, contact_id: int) -> list[tuple[str, bytes]]:
    """The contact's parked events, (topic, payload) in event-time order, removed from the park."""
    rows = conn.execute(
        text(
            "SELECT topic, payload FROM mw_parked_events WHERE contact_id = :c "
            "ORDER BY occurred_at, event_id"
        ),
        {"c": contact_id},
    ).fetchall()
    if rows:
        conn.execute(text("DELETE FROM mw_parked_events WHERE contact_id = :c"), {"c": contact_id})
    return [(str(t), bytes(p)) for t, p in rows]


def upsert_campaign_type(conn: Connection, campaign_type: CampaignType) -> None:
    conn.execute(
        text(
            "INSERT INTO campaign_types (name, respect_exclusion_windows, enable_followups, "
            "days_before_event, target_all_contacts, priority, active) "
            "VALUES (:name, :r, :f, :d, :t, :p, :a) ON CONFLICT (name) DO UPDATE SET "
            "respect_exclusion_windows = excluded.respect_exclusion_windows, "
            "enable_followups = excluded.enable_followups, "
            "days_before_event = excluded.days_before_event, "
            "target_all_contacts = excluded.target_all_contacts, priority = excluded.priority, "
            "active = excluded.active, updated_at = CURRENT_TIMESTAMP"
        ),
        {
            "name": campaign_type.name,
            "r": int(campaign_type.respect_exclusion_windows),
            "f": int(campaign_type.enable_followups),
            "d": campaign_type.days_before_event,
            "t": int(campaign_type.target_all_contacts),
            "p": campaign_type.priority,
            "a": int(campaign_type.active),
        },
    )


_INSTANCE_FIELDS = (
    "campaign_type",
    "instance_name",
    "email_template",
    "sms_template",
    "active_start_date",
    "active_end_date",
    "metadata",
)


def upsert_instance(
    conn: Connection,
    instance_id: int,
    fields: Mapping[str, object],
    occurred_at: datetime,
    changed_by: str | None,
) -> bool:
    """Create or change an instance; a change of its dates is logged. True when its dates changed."""
    values = {
        k: (v.isoformat() if isinstance(v, date) else v)
        for k, v in ((name, fields.get(name)) for name in _INSTANCE_FIELDS)
    }
    if values["metadata"] is not None and not isinstance(values["metadata"], str):
        values["metadata"] = orjson.dumps(values["metadata"], option=orjson.OPT_SORT_KEYS).decode()
    old = conn.execute(
        text("SELECT active_start_date, active_end_date FROM campaign_instances WHERE id = :id"),
        {"id": instance_id},
    ).first()
    try:
        with conn.begin_nested():
            conn.execute(
                text(_upsert_by_id_sql("campaign_instances", _INSTANCE_FIELDS, "CURRENT_TIMESTAMP")),
                {"id": instance_id, **values},
            )
    except IntegrityError as exc:
        raise IngestError(f"campaign instance {instance_id}: the database refused it: {exc.orig}") from None
    changed = False
    if old is not None:
        for name, before in zip(("active_start_date", "active_end_date"), old, strict=True):
            after = values[name]
            if (None if before is None else str(before)) != after:
                changed = True
                conn.execute(
                    text(
                        "INSERT INTO campaign_change_log (campaign_instance_id, field_changed, "
                        "old_value, new_value, changed_at, changed_by, requires_rescheduling) "
                        "VALUES (:i, :f, :o, :n, :at, :by, 1)"
                    ),
                    {
                        "i": instance_id,
                        "f": name,
                        "o": before,
                        "n": after,
                        "at": stored_time(occurred_at),
                        "by": changed_by,
                    },
                )
    return changed


def upsert_targets(
    conn: Connection, instance_id: int, targets: Sequence[Mapping[str, object]]
) -> list[int]:
    """Store the instance's targets (one row per contact and trigger date); returns their contacts."""
    contacts: list[int] = []
    for target in targets:
        cid = int(target["contact_id"])  # type: ignore[call-overload]
        trigger = target.get("trigger_date")
        trigger_text = trigger.isoformat() if isinstance(trigger, date) else trigger
        metadata = target.get("metadata")
        # JSON text as the events give it, or a value to write as JSON.
        meta_text = (
            metadata
            if metadata is None or isinstance(metadata, str)
            else orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS).decode()
        )
        status = str(target.get("status") or "pending")
        row = conn.execute(
            text(
                "SELECT id FROM contact_campaigns WHERE contact_id = :c AND campaign_instance_id = :i "
                "AND trigger_date IS :t"
            ),
            {"c": cid, "i": instance_id, "t": trigger_text},
        ).first()
        if row is None:
            conn.execute(
                text(
                    "INSERT INTO contact_campaigns (contact_id, campaign_instance_id, trigger_date, "
                    "status, metadata) VALUES (:c, :i, :t, :s, :m)"
                ),
                {"c": cid, "i": instance_id, "t": trigger_text, "s": status, "m": meta_text},
            )
        else:
            conn.execute(
                text(
                    "UPDATE contact_campaigns SET status = :s, metadata = COALESCE(:m, metadata), "
                    "updated_at = CURRENT_TIMESTAMP WHERE id = :id"
                ),
                {"s": status, "m": meta_text, "id": row[0]},
            )
        contacts.append(cid)
    return sorted(set(contacts))


def instance_contacts(conn: Connection, instance_id: int) -> list[int]:
    """Contacts an instance names, or that own a row of it: those its date change concerns."""
    return [
        int(r[0])
        for r in conn.execute(
            text(
                "SELECT contact_id FROM contact_campaigns WHERE campaign_instance_id = :i UNION "
                "SELECT contact_id FROM email_schedules WHERE campaign_instance_id = :i"
            ),
            {"i": instance_id},
        )
    ]


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


def applied_offsets(conn: Connection) -> dict[str, dict[str, int]]:
    """Per topic and partition, the next offset after the last event this database applied.

    Each partition is read in order, one batch after another, so every message
    before that offset has been applied (or dead-lettered): what a sweep "saw".
    """
    out: dict[str, dict[str, int]] = {}
    for topic, partition, last in conn.execute(
        text(
            "SELECT topic, source_partition, max(source_offset) FROM mw_applied_events "
            "WHERE source_partition IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2"
        )
    ):
        out.setdefault(str(topic), {})[str(partition)] = int(last) + 1
    return out
