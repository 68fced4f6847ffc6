"""Storing input events in the agency database: the write side of each agent.

Each function turns one event's facts (a contact version, a click, a health
answer, a sending-side status, campaign data) into the stored values and
hands them to the store module of their tables (``streams.store.contacts``,
``behaviour``, ``status_facts``, ``campaigns``, ``applied_events``).  Each is
idempotent: an event id already applied changes nothing (``mark_applied``),
so Kafka's at-least-once delivery gives exactly-once state.  Deciding
schedules afterwards is ``streams.worker.redecide``'s job.

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

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime

import orjson
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from rules.config import CampaignType
from streams.store import applied_events, behaviour, campaigns, contacts, status_facts
from streams.store.applied_events import applied_already
from streams.store.campaigns import instance_contacts, type_contacts

__all__ = [
    "CONTACT_FIELDS",
    "BatchState",
    "IngestError",
    "applied_already",
    "delete_contact",
    "instance_contacts",
    "mark_all_applied",
    "mark_applied",
    "record_status_fact",
    "store_click",
    "store_health_answer",
    "stored_time",
    "type_contacts",
    "upsert_campaign_type",
    "upsert_contact",
    "upsert_instance",
    "upsert_targets",
]

Row = dict[str, object]
# A store function that writes many rows of one table in one statement.
Writer = Callable[[Connection, Sequence[Mapping[str, object]]], None]


class IngestError(ValueError):
    """An event the database cannot take; the message names the reason."""


def stored_time(moment: datetime) -> str:
    """An aware event time as stored: UTC, no offset."""
    # isoformat, not strftime: the same text (years 1000-9999) at a third of the cost; most
    # event times arrive in UTC already, and converting them again was 3% of a batch
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    return utc.replace(tzinfo=None).isoformat(" ", "seconds")


def _json_text(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _applied_row(
    event_id: str, topic: str, occurred_at: datetime, partition: int | None, offset: int | None
) -> Row:
    return {
        "event_id": event_id,
        "topic": topic,
        "occurred_at": stored_time(occurred_at),
        "source_partition": partition,
        "source_offset": offset,
    }


def mark_applied(
    conn: Connection,
    event_id: str,
    topic: str,
    occurred_at: datetime,
    partition: int | None = None,
    offset: int | None = None,
) -> bool:
    """Record the event as applied (and where it was read); False when it already was."""
    return applied_events.record_applied(conn, _applied_row(event_id, topic, occurred_at, partition, offset))


def mark_all_applied(
    conn: Connection, applied: Sequence[tuple[str, str, datetime, int | None, int | None]]
) -> None:
    """``mark_applied`` for events known to be new: (event id, topic, occurred_at, partition, offset)."""
    applied_events.record_all_applied(conn, [_applied_row(*a) for a in applied])


class BatchState:
    """What a batch knows of its contacts, read in two statements and kept current,
    and the writes it defers to send them together (``executemany``).

    Which contacts exist and their stored version (last write wins).  Only
    for a batch that is undone whole when anything fails: a savepoint undoing
    one event's writes would leave this out of date.  Deferred writes go to
    tables no other write of the batch reads (contacts, their versions,
    clicks, answers); ``flush`` sends them, in order, before anything that
    could read them (a delete, campaign targeting, the decisions).
    """

    def __init__(self, conn: Connection, contact_ids: Sequence[int]) -> None:
        self.deferred: dict[Writer, list[Row]] = {}
        ids = sorted(set(contact_ids))
        self.present: set[int] = set(contacts.present_contacts(conn, ids))
        self.versions: dict[int, contacts.Version] = contacts.versions_of(conn, ids)

    def defer(self, write: Writer, row: Row) -> None:
        self.deferred.setdefault(write, []).append(row)

    def flush(self, conn: Connection) -> None:
        for write, rows in self.deferred.items():
            write(conn, rows)
        self.deferred.clear()


def _newer(
    conn: Connection, contact_id: int, occurred_at: str, event_id: str, known: BatchState | None
) -> bool:
    if known is not None:
        version = known.versions.get(contact_id)
        return version is None or (occurred_at, event_id) > version[:2]
    stored = contacts.version_of(conn, contact_id)
    return stored is None or (occurred_at, event_id) > stored


def _version(
    conn: Connection,
    contact_id: int,
    occurred_at: str,
    event_id: str,
    deleted: bool,
    known: BatchState | None,
) -> None:
    row: Row = {"contact_id": contact_id, "occurred_at": occurred_at, "event_id": event_id, "deleted": int(deleted)}
    if known is None:
        contacts.write_versions(conn, [row])
    else:
        known.defer(contacts.write_versions, row)
        known.versions[contact_id] = (occurred_at, event_id, deleted)
        if deleted:
            known.present.discard(contact_id)
        else:
            known.present.add(contact_id)


# The contact fields a contact event carries, written to its row.
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
    known: BatchState | None = None,
) -> bool:
    """Store a contact version; False when a newer version is already stored.

    With ``known`` (a batch undone whole on failure) no savepoint guards the
    write: a refused contact fails the batch, which is then applied event by
    event without ``known``, where the refusal is reported for that event alone.
    """
    when = stored_time(occurred_at)
    if not _newer(conn, contact_id, when, event_id, known):
        return False
    values = {name: fields.get(name) for name in CONTACT_FIELDS}
    # The legacy table requires names; the event may not carry them.
    values["first_name"] = values["first_name"] or ""
    values["last_name"] = values["last_name"] or ""
    values = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in values.items()}
    row: Row = {"id": contact_id, **values, "updated_at": when}
    if known is not None:
        known.defer(contacts.write_contacts, row)
        _version(conn, contact_id, when, event_id, False, known)
        return True
    try:
        with conn.begin_nested():
            contacts.write_contacts(conn, [row])
    except IntegrityError as exc:
        other = contacts.email_owner(conn, values["email"], other_than=contact_id)
        if other is not None:
            raise IngestError(
                f"contact {contact_id}: email {values['email']!r} is already contact {other}'s"
            ) from None
        raise IngestError(f"contact {contact_id}: the database refused it: {exc.orig}") from None
    _version(conn, contact_id, when, event_id, False, known)
    return True


def delete_contact(
    conn: Connection,
    contact_id: int,
    occurred_at: datetime,
    event_id: str,
    known: BatchState | None = None,
) -> bool:
    """Move the contact to ``deleted_contacts`` (kept for billing); False if a newer version is stored.

    Its schedule rows are not deleted here: owned ones are cancelled by the
    caller (``contact_sync.cancel_owned_rows``), sending-side history stays.
    """
    when = stored_time(occurred_at)
    if not _newer(conn, contact_id, when, event_id, known):
        return False
    if known is not None:
        known.flush(conn)  # the contact's latest fields are copied from its row
    contacts.remove_contact(conn, contact_id, deleted_at=when)
    _version(conn, contact_id, when, event_id, True, known)
    return True


def store_click(
    conn: Connection,
    contact_id: int,
    tracking_id: str,
    quote_id: str | None,
    occurred_at: datetime,
    known: BatchState | None = None,
) -> None:
    row: Row = {
        "tracking_id": tracking_id,
        "contact_id": contact_id,
        "quote_id": quote_id,
        "clicked_at": stored_time(occurred_at),
    }
    if known is None:
        behaviour.store_clicks(conn, [row])
    else:
        known.defer(behaviour.store_clicks, row)


def store_health_answer(
    conn: Connection,
    contact_id: int,
    answers: Mapping[str, object],
    occurred_at: datetime,
    known: BatchState | None = None,
) -> None:
    row: Row = {
        "contact_id": contact_id,
        "metadata": _json_text(dict(answers)),
        "created_at": stored_time(occurred_at),
    }
    if known is None:
        behaviour.store_health_answers(conn, [row])
    else:
        known.defer(behaviour.store_health_answers, row)


def record_status_fact(
    conn: Connection,
    contact_id: int,
    occurrence_key: str,
    status: str,
    actual_send: datetime | None,
    occurred_at: datetime,
    event_id: str,
) -> None:
    """The sending side's status of a row, kept as a fact (``streams.store.status_facts``)."""
    status_facts.record_status_fact(
        conn,
        {
            "occurrence_key": occurrence_key,
            "contact_id": contact_id,
            "status": status,
            "actual_send_datetime": stored_time(actual_send) if actual_send is not None else None,
            "occurred_at": stored_time(occurred_at),
            "event_id": event_id,
        },
    )


def upsert_campaign_type(conn: Connection, campaign_type: CampaignType) -> None:
    campaigns.put_type(
        conn,
        campaign_type.name,
        {name: int(getattr(campaign_type, name)) for name in campaigns.TYPE_COLUMNS},
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
        for k, v in ((name, fields.get(name)) for name in campaigns.INSTANCE_FIELDS)
    }
    if values["metadata"] is not None and not isinstance(values["metadata"], str):
        values["metadata"] = _json_text(values["metadata"])
    old = campaigns.instance_dates(conn, instance_id)
    try:
        with conn.begin_nested():
            campaigns.put_instance(conn, instance_id, values)
    except IntegrityError as exc:
        raise IngestError(f"campaign instance {instance_id}: the database refused it: {exc.orig}") from None
    changed = False
    if old is not None:
        for name, before in zip(campaigns.DATE_FIELDS, old, strict=True):
            after = values[name]
            if (None if before is None else str(before)) != after:
                changed = True
                campaigns.log_date_change(
                    conn, instance_id, name, before, after, changed_by, changed_at=stored_time(occurred_at)
                )
    return changed


def upsert_targets(
    conn: Connection, instance_id: int, targets: Sequence[Mapping[str, object]]
) -> list[int]:
    """Store the instance's targets (one row per contact and trigger date); returns their contacts."""
    contact_ids: list[int] = []
    for target in targets:
        cid = int(target["contact_id"])  # type: ignore[call-overload]
        trigger = target.get("trigger_date")
        trigger_text = trigger.isoformat() if isinstance(trigger, date) else _text_or_none(trigger)
        metadata = target.get("metadata")
        # JSON text as the events give it, or a value to write as JSON.
        meta_text = metadata if metadata is None or isinstance(metadata, str) else _json_text(metadata)
        status = str(target.get("status") or "pending")
        found = campaigns.find_target(conn, cid, instance_id, trigger_text)
        if found is None:
            campaigns.add_target(conn, cid, instance_id, trigger_text, status, meta_text, stamp_now=False)
        else:
            campaigns.renew_target(conn, found[0], status, meta_text)
        contact_ids.append(cid)
    return sorted(set(contact_ids))
