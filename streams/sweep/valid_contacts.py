"""The valid contacts (a usable email and a state), the base of the daily cap (SPEC
section 7), counted from what changed.

valid = contacts with a usable id - the invalid ones among them.  The invalid ones
are few (0.2 to a few percent of an agency) and are kept in ``mw_invalid_contacts``
as the last completed sweep of the whole agency found them.  Whether a contact is
valid depends on its own fields only, and a write of those marks it
(``mw_changed``), so a run that builds on the last one (``streams.sweep.incremental``)
looks again at the marked contacts only: at 3M contacts, a few hundred instead of a
scan of them all (4.5 s).  Any other run finds them all (in the side process,
``streams.sweep.side_reads``) and its completion replaces the kept ones.

What a completion keeps is right as of the marks the run saw when it started (it
reads them first, then the contacts), and it clears only those marks: a contact
written since stays marked, and the next run looks at it again.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection

from streams.store.bulk import insert_rows
from streams.store.schedules import IN_LIST_SIZE, placeholder
from streams.store.tables import mw_invalid_contacts
from streams.sweep.prefilter import invalid_contact_ids


@dataclass(frozen=True)
class InvalidContacts:
    """What a run found: the invalid contacts of ``looked_at`` (None: of every contact)."""

    looked_at: Collection[int] | None
    invalid: Collection[int]


def incremental_invalid(conn: Connection, marked: Collection[int]) -> tuple[int, InvalidContacts]:
    """How many contacts are invalid now, from the kept ones and the marked contacts, and
    what the run's completion keeps."""
    kept = {int(v) for (v,) in conn.execute(sa.select(mw_invalid_contacts.c.contact_id))}
    now = invalid_contact_ids(conn, sorted(marked))
    return len((kept - set(marked)) | set(now)), InvalidContacts(marked, now)


def keep_invalid(conn: Connection, found: InvalidContacts) -> None:
    """In the run's completion: the kept invalid contacts as the run found them."""
    table = mw_invalid_contacts
    if found.looked_at is None:
        conn.execute(sa.delete(table))
    else:
        looked_at = sorted(found.looked_at)
        for start in range(0, len(looked_at), IN_LIST_SIZE):
            conn.execute(sa.delete(table).where(table.c.contact_id.in_(looked_at[start : start + IN_LIST_SIZE])))
    insert_rows(conn, f"INSERT INTO {table.name} (contact_id)", [(c,) for c in sorted(found.invalid)], placeholder(conn))
