"""Storing input events in the agency database: the write side of each agent.

Each function stores one event's facts (a contact version, a click, a health
answer, a sending-side status, campaign data) and is idempotent: an event id
already applied changes nothing (``mark_applied``), so Kafka's at-least-once
delivery gives exactly-once state.  Deciding schedules afterwards is
``streams.worker.redecide``'s job.

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
from sqlalchemy import Connection, TextClause, text
from sqlalchemy.exc import IntegrityError

from rules.config import CampaignType
from streams.store.engine import now_sql, same_value_op
from streams.store.schedules import placeholder


class IngestError(ValueError):
    """An event the database cannot take; the message names the reason."""


def stored_time(moment: datetime) -> str:
    """An aware event time as stored: UTC, no offset."""
    # isoformat, not strftime: the same text (years 1000-9999) at a third of the cost
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "seconds")


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


def applied_already(conn: Connection, event_ids: Sequence[str]) -> set[str]:
    """Which of these event ids are applied already (one read for a whole batch)."""
    found: set[str] = set()
    for start in range(0, len(event_ids), 500):
        part = event_ids[start : start + 500]
        marks = ", ".join(placeholder(conn) for _ in part)
        found.update(
            str(r[0])
            for r in conn.exec_driver_sql(
                f"SELECT event_id FROM mw_applied_events WHERE event_id IN ({marks})", tuple(part)
            )
        )
    return found


def mark_all_applied(
    conn: Connection, applied: Sequence[tuple[str, str, datetime, int | None, int | None]]
) -> None:
    """``mark_applied`` for events known to be new: (event id, topic, occurred_at, partition, offset)."""
    if applied:
        ph = placeholder(conn)
        conn.exec_driver_sql(
            "INSERT INTO mw_applied_events (event_id, topic, occurred_at, source_partition, "
            f"source_offset) VALUES ({ph}, {ph}, {ph}, {ph}, {ph})",
            [(e, t, stored_time(o), p, n) for e, t, o, p, n in applied],
        )


def present_contacts(conn: Connection, contact_ids: Sequence[int]) -> list[int]:
    """Which of these contacts are in the database (not arrived yet or deleted: not)."""
    found: list[int] = []
    for start in range(0, len(contact_ids), 500):
        part = tuple(contact_ids[start : start + 500])
        marks = ", ".join(placeholder(conn) for _ in part)
        found.extend(int(r[0]) for r in conn.exec_driver_sql(f"SELECT id FROM contacts WHERE id IN ({marks})", part))
    return found


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
        self.deferred: dict[TextClause, list[dict[str, object]]] = {}
        self.versions: dict[int, tuple[str, str, bool]] = {}
        ids = sorted(set(contact_ids))
        self.present: set[int] = set(present_contacts(conn, ids))
        for start in range(0, len(ids), 500):
            part = tuple(ids[start : start + 500])
            marks = ", ".join(placeholder(conn) for _ in part)
            for cid, occurred_at, event_id, deleted in conn.exec_driver_sql(
                "SELECT contact_id, occurred_at, event_id, deleted FROM mw_contact_versions "
                f"WHERE contact_id IN ({marks})",
                part,
            ):
                self.versions[int(cid)] = (str(occurred_at), str(event_id), bool(deleted))

    def defer(self, statement: TextClause, params: dict[str, object]) -> None:
        self.deferred.setdefault(statement, []).append(params)

    def flush(self, conn: Connection) -> None:
        for statement, rows in self.deferred.items():
            conn.execute(statement, rows)
        self.deferred.clear()


def _newer(
    conn: Connection, contact_id: int, occurred_at: str, event_id: str, known: BatchState | None
) -> bool:
    if known is not None:
        version = known.versions.get(contact_id)
        return version is None or (occurred_at, event_id) > version[:2]
    row = conn.execute(_VERSION_OF, {"c": contact_id}).first()
    return row is None or (occurred_at, event_id) > (str(row[0]), str(row[1]))


_VERSION_OF = text("SELECT occurred_at, event_id FROM mw_contact_versions WHERE contact_id = :c")


_WRITE_VERSION = text(
    "INSERT INTO mw_contact_versions (contact_id, occurred_at, event_id, deleted) "
    "VALUES (:c, :o, :e, :d) ON CONFLICT (contact_id) DO UPDATE SET "
    "occurred_at = excluded.occurred_at, event_id = excluded.event_id, deleted = excluded.deleted"
)


def _version(
    conn: Connection,
    contact_id: int,
    occurred_at: str,
    event_id: str,
    deleted: bool,
    known: BatchState | None,
) -> None:
    params = {"c": contact_id, "o": occurred_at, "e": event_id, "d": int(deleted)}
    if known is None:
        conn.execute(_WRITE_VERSION, params)
    else:
        known.defer(_WRITE_VERSION, params)
        known.versions[contact_id] = (occurred_at, event_id, deleted)
        if deleted:
            known.present.discard(contact_id)
        else:
            known.present.add(contact_id)


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
_UPSERT_CONTACT = text(_upsert_by_id_sql("contacts", CONTACT_FIELDS, ":ts"))


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
    params = {"id": contact_id, "ts": when, **values}
    if known is not None:
        known.defer(_UPSERT_CONTACT, params)
        _version(conn, contact_id, when, event_id, False, known)
        return True
    try:
        with conn.begin_nested():
            conn.execute(_UPSERT_CONTACT, params)
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
    _version(conn, contact_id, when, event_id, True, known)
    return True


_STORE_CLICK = text(
    "INSERT INTO tracking_clicks (tracking_id, contact_id, quote_id, clicked_at) VALUES (:t, :c, :q, :at)"
)


def store_click(
    conn: Connection,
    contact_id: int,
    tracking_id: str,
    quote_id: str | None,
    occurred_at: datetime,
    known: BatchState | None = None,
) -> None:
    params = {"t": tracking_id, "c": contact_id, "q": quote_id, "at": stored_time(occurred_at)}
    if known is None:
        conn.execute(_STORE_CLICK, params)
    else:
        known.defer(_STORE_CLICK, params)


_STORE_ANSWER = text(
    "INSERT INTO contact_events (contact_id, event_type, metadata, created_at) "
    "VALUES (:c, 'eligibility_answered', :m, :at)"
)


def store_health_answer(
    conn: Connection,
    contact_id: int,
    answers: Mapping[str, object],
    occurred_at: datetime,
    known: BatchState | None = None,
) -> None:
    params: dict[str, object] = {
        "c": contact_id,
        "m": orjson.dumps(dict(answers), option=orjson.OPT_SORT_KEYS).decode(),
        "at": stored_time(occurred_at),
    }
    if known is None:
        conn.execute(_STORE_ANSWER, params)
    else:
        known.defer(_STORE_ANSWER, params)


_STATUS_FACT = text(
    "INSERT INTO mw_status_facts (occurrence_key, contact_id, status, actual_send_datetime, "
    "occurred_at, event_id) VALUES (:k, :c, :s, :a, :o, :e) ON CONFLICT (occurrence_key) DO UPDATE SET "
    "contact_id = excluded.contact_id, status = excluded.status, "
    "actual_send_datetime = excluded.actual_send_datetime, occurred_at = excluded.occurred_at, "
    "event_id = excluded.event_id "
    "WHERE (excluded.occurred_at, excluded.event_id) > (mw_status_facts.occurred_at, mw_status_facts.event_id)"
)


def record_status_fact(
    conn: Connection,
    contact_id: int,
    occurrence_key: str,
    status: str,
    actual_send: datetime | None,
    occurred_at: datetime,
    event_id: str,
) -> None:
    """The sending side's status of a row, kept as a fact (last write wins by occurred_at).

    Whether the row exists yet does not matter: the status is applied to the
    row of that key whenever it exists (``apply_status_facts``), so a status
    that overtook its contact or its row waits for them and takes nothing down.
    """
    conn.execute(
        _STATUS_FACT,
        {
            "k": occurrence_key,
            "c": contact_id,
            "s": status,
            "a": stored_time(actual_send) if actual_send is not None else None,
            "o": stored_time(occurred_at),
            "e": event_id,
        },
    )


StatusFact = tuple[str, str | None]  # status, actual send time as stored


def status_facts_of(conn: Connection, contact_ids: Sequence[int]) -> dict[int, dict[str, StatusFact]]:
    """The contacts' status facts: contact -> occurrence key -> (status, actual send time)."""
    out: dict[int, dict[str, StatusFact]] = {}
    for start in range(0, len(contact_ids), 500):
        part = tuple(contact_ids[start : start + 500])
        marks = ", ".join(placeholder(conn) for _ in part)
        for cid, key, status, actual in conn.exec_driver_sql(
            "SELECT contact_id, occurrence_key, status, actual_send_datetime FROM mw_status_facts "
            f"WHERE contact_id IN ({marks})",
            part,
        ):
            out.setdefault(int(cid), {})[str(key)] = (str(status), None if actual is None else str(actual))
    return out


def with_status(row: dict[str, object], fact: StatusFact) -> dict[str, object]:
    """A row as the sending side's status fact leaves it."""
    status, actual = fact
    return {
        **row,
        "status": status,
        "actual_send_datetime": actual if actual is not None else row.get("actual_send_datetime"),
    }


def apply_status_facts(
    conn: Connection, rows: Mapping[int, Sequence[Mapping[str, object]]], facts: Mapping[int, Mapping[str, StatusFact]]
) -> set[int]:
    """Apply each fact to the row of its key where the row exists and does not show it yet.

    ``rows``: the contacts' current rows (every column).  The sending side's
    write, applied on its behalf (SPEC section 1), so no status guard.
    Returns the contacts whose rows changed.
    """
    ph = placeholder(conn)
    updates: list[tuple[object, ...]] = []
    changed: set[int] = set()
    for cid, contact_rows in rows.items():
        mine = facts.get(cid)
        if not mine:
            continue
        for row in contact_rows:
            fact = mine.get(str(row.get("occurrence_key")))
            if fact is None:
                continue
            after = with_status(dict(row), fact)
            if (after["status"], after["actual_send_datetime"]) != (row["status"], row.get("actual_send_datetime")):
                updates.append((after["status"], after["actual_send_datetime"], row["id"]))
                changed.add(cid)
    if updates:
        conn.exec_driver_sql(
            f"UPDATE email_schedules SET status = {ph}, actual_send_datetime = {ph} WHERE id = {ph}",
            updates,
        )
    return changed


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
            f"active = excluded.active, updated_at = {now_sql(conn.dialect.name)}"
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
                text(_upsert_by_id_sql("campaign_instances", _INSTANCE_FIELDS, now_sql(conn.dialect.name))),
                {"id": instance_id, **values},
            )
    except IntegrityError as exc:
        raise IngestError(f"campaign instance {instance_id}: the database refused it: {exc.orig}") from None
    if conn.dialect.name == "postgresql":
        # The event chose the id; PostgreSQL's id counter does not see it, and the next
        # instance made by `mailwindow campaign instance` would be given it again.
        conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('campaign_instances', 'id'), "
                "(SELECT max(id) FROM campaign_instances))"
            )
        )
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
                f"AND trigger_date {same_value_op(conn.dialect.name)} :t"
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
                    f"updated_at = {now_sql(conn.dialect.name)} WHERE id = :id"
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
