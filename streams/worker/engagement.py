"""The windowed engagement table's values: a contact's clicks and health answers in the
35 days of event time before its latest event, with their times.

The agents write one value per contact to the compacted ``engagement`` topic
(``streams.worker.app``; co-partitioned with the input topics, so a table of
each contact's latest value):

    {"as_of": "2026-03-11", "clicks": ["2026-03-11T09:00:00Z", ...], "answers": [...]}

``as_of`` is the Central date of the contact's latest event seen; times are UTC,
ISO 8601 with ``Z``, in order.  The window is event time, never the wall clock:
behaviour counts for a follow-up only after an initial email sent in the 35
days before the decision, so older behaviour is not kept
(``streams.store.campaigns.behaviour_since``, the bound the decisions use).

A value is read from the database after the batch is stored, not built up
event by event: the database holds the same clicks and answers (and those
from before the stream), so the table never disagrees with what the agents
and the sweep decided from, and a batch read again after a crash (its events
already stored, its table write lost) writes the same value again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection

from rules.followup import Behaviour
from streams.store.behaviour import BehaviourRead, fetch_behaviour_as_of
from streams.store.contacts import present_contacts


def _utc(moment: datetime) -> str:
    if moment.tzinfo is None:  # as read back (streams.store.schedules.parse_stored_datetime): UTC
        return moment.isoformat() + "Z"
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def engagement_value(behaviour: Behaviour, as_of: date) -> dict[str, Any]:
    return {
        "as_of": as_of.isoformat(),
        "clicks": sorted(_utc(c.at) for c in behaviour.clicks),
        "answers": sorted(_utc(a.at) for a in behaviour.answers),
    }


def engagement_values(
    conn: Connection, as_of: Mapping[int, date], read: BehaviourRead | None = None
) -> dict[int, dict[str, Any]]:
    """The table values of these contacts (contact -> its latest event's Central date).

    Contacts not in the database (not arrived yet, or deleted) get none, nor do
    those with no click or answer in their window (a contact asked about only
    because its upsert was read again after a crash, and had nothing parked).
    ``read``: their behaviour when the caller has read it already.
    """
    present = present_contacts(conn, sorted(as_of))
    wanted = {cid: as_of[cid] for cid in present}
    found = read.as_of(wanted) if read is not None else fetch_behaviour_as_of(conn, wanted)
    return {cid: engagement_value(found[cid], as_of[cid]) for cid in present if cid in found}
