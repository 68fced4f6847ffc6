"""Writing contacts: their rows (``contacts``), the removed ones (``deleted_contacts``), and
the event time of each contact's current version (``mw_contact_versions``).

The last write wins by the event's time (``streams.worker.ingest`` decides
which version is newer); a delete is a version too.  Reading contacts for the
rules is ``streams.store.schedules``' job.  Times are stored text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache

import sqlalchemy as sa
from sqlalchemy import Connection, TextClause

from streams.store.bulk import driver_rows, driver_write_many
from streams.store.dialects import as_text, defer_foreign_keys, upsert
from streams.store.schedules import in_lists
from streams.store.tables import contacts, deleted_contacts, mw_contact_versions

# A contact's stored version: (occurred_at, event id, deleted).
Version = tuple[str, str, bool]
_VERSION_COLUMNS = ("contact_id", "occurred_at", "event_id", "deleted")

# What a removed contact keeps in deleted_contacts, column for column.
_KEPT = (
    "first_name",
    "last_name",
    "email",
    "current_carrier",
    "plan_type",
    "effective_date",
    "birth_date",
    "tobacco_user",
    "gender",
    "state",
    "zip_code",
    "agent_id",
    "phone_number",
)


def present_contacts(conn: Connection, contact_ids: Sequence[int]) -> list[int]:
    """Which of these contacts are in the database (not arrived yet or deleted: not)."""
    found: list[int] = []
    for part, marks in in_lists(conn, contact_ids):
        # Bound at the DBAPI level: this read runs once per batch of the agents.
        found.extend(int(r[0]) for r in driver_rows(conn, f"SELECT id FROM contacts WHERE id IN ({marks})", part))
    return found


def versions_of(conn: Connection, contact_ids: Sequence[int]) -> dict[int, Version]:
    """The stored versions of these contacts (those that have one)."""
    found: dict[int, Version] = {}
    for part, marks in in_lists(conn, contact_ids):
        for cid, occurred_at, event_id, deleted in driver_rows(
            conn,
            "SELECT contact_id, occurred_at, event_id, deleted FROM mw_contact_versions "
            f"WHERE contact_id IN ({marks})",
            part,
        ):
            found[int(cid)] = (str(occurred_at), str(event_id), bool(deleted))
    return found


_VERSION_OF = sa.select(mw_contact_versions.c.occurred_at, mw_contact_versions.c.event_id).where(
    mw_contact_versions.c.contact_id == sa.bindparam("contact_id")
)


def version_of(conn: Connection, contact_id: int) -> tuple[str, str] | None:
    """(occurred_at, event id) of the contact's stored version, if any."""
    row = conn.execute(_VERSION_OF, {"contact_id": contact_id}).first()
    return None if row is None else (str(row[0]), str(row[1]))


@cache
def _upsert_by_key_sql(table: sa.Table, dialect: str, columns: tuple[str, ...]) -> TextClause:
    """Insert these columns of a row, or update them where the row's key is taken."""
    statement = upsert(table, dialect)
    key = [c.name for c in table.primary_key]
    statement = statement.on_conflict_do_update(
        index_elements=key,
        set_={name: statement.excluded[name] for name in columns if name not in key},
    )
    return as_text(statement, dialect, columns)


def write_versions(conn: Connection, versions: Sequence[Mapping[str, object]]) -> None:
    """Store contact versions (``contact_id``, ``occurred_at``, ``event_id``, ``deleted`` 0/1)."""
    if versions:
        statement = _upsert_by_key_sql(mw_contact_versions, conn.dialect.name, _VERSION_COLUMNS)
        driver_write_many(conn, statement, versions)


def write_contacts(conn: Connection, rows: Sequence[Mapping[str, object]]) -> None:
    """Insert or update contact rows by ``id``: the columns the rows give (the same in every row)."""
    if rows:
        statement = _upsert_by_key_sql(contacts, conn.dialect.name, tuple(rows[0]))
        driver_write_many(conn, statement, rows)


def email_owner(conn: Connection, email: object, other_than: int) -> int | None:
    """The id of another contact with this email address (``contacts.email`` is UNIQUE)."""
    c = contacts.c
    row = conn.execute(sa.select(c.id).where(c.email == email, c.id != other_than)).first()
    return None if row is None else int(row[0])


_KEEP_DELETED = sa.insert(deleted_contacts).from_select(
    ["original_contact_id", *_KEPT, "deleted_at"],
    sa.select(
        contacts.c.id,
        *(contacts.c[name] for name in _KEPT),
        sa.bindparam("deleted_at", type_=deleted_contacts.c.deleted_at.type),
    ).where(contacts.c.id == sa.bindparam("contact_id")),
)
_DELETE = sa.delete(contacts).where(contacts.c.id == sa.bindparam("contact_id"))


def remove_contact(conn: Connection, contact_id: int, deleted_at: str) -> None:
    """Keep the contact in ``deleted_contacts`` (for billing), then delete its row.

    Its schedule rows are not touched here: the sending-side history stays.
    """
    conn.execute(_KEEP_DELETED, {"contact_id": contact_id, "deleted_at": deleted_at})
    # Foreign keys may be on, in a connection the scheduler did not open (see defer_foreign_keys).
    defer_foreign_keys(conn)
    conn.execute(_DELETE, {"contact_id": contact_id})
