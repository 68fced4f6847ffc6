"""A contact's behaviour after an email: clicks (``tracking_clicks``) and health answers
(``contact_events`` of type ``eligibility_answered``), written by the agents and read
for the follow-up rules (``rules.followup``).

Times are stored text.  A time outside ``FIRST_DATE..LAST_DATE`` is unknown
and its click or answer does not count (``parse_stored_datetime``).  An
unmigrated database (read-only ``explain``): a missing table has no rows
(``streams.store.schedules.select_list``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from rules.followup import INITIAL_LOOKBACK_DAYS, Behaviour, Click, HealthAnswer
from streams.store.bulk import driver_rows, driver_write_many
from streams.store.schedules import parse_stored_datetime, placeholder, select_list
from streams.store.tables import contact_events, tracking_clicks

HEALTH_EVENT = "eligibility_answered"
_CLICK_COLUMNS = ("contact_id", "clicked_at")
_EVENT_COLUMNS = ("contact_id", "created_at", "event_type", "metadata")


_STORE_CLICK = sa.insert(tracking_clicks)
_STORE_ANSWER = sa.insert(contact_events).values(event_type=HEALTH_EVENT)


def store_clicks(conn: Connection, clicks: Sequence[Mapping[str, object]]) -> None:
    """Store clicks (``tracking_id``, ``contact_id``, ``quote_id``, ``clicked_at``)."""
    if clicks:
        driver_write_many(conn, _STORE_CLICK, clicks)


def store_health_answers(conn: Connection, answers: Sequence[Mapping[str, object]]) -> None:
    """Store health answers (``contact_id``, ``metadata`` as JSON text, ``created_at``)."""
    if answers:
        driver_write_many(conn, _STORE_ANSWER, answers)


@lru_cache(maxsize=64)  # asked once per contact of a batch, for a handful of days
def behaviour_since(as_of: date) -> str:
    """The earliest behaviour that can count as of ``T``: an initial is sent at or after ``T - 35``."""
    return (as_of - timedelta(days=INITIAL_LOOKBACK_DAYS + 1)).isoformat()


# One stored click or answer: its time as stored (bounds compare that text, as the
# query does) and what the rules read.
_Stored = tuple[str, Click | HealthAnswer]


def _stored_behaviour(conn: Connection, contact_ids: Sequence[int], since: str) -> dict[int, list[_Stored]]:
    """Clicks and answers of these contacts stored at ``since`` or later, in the order read."""
    found: dict[int, list[_Stored]] = {}
    if not contact_ids:
        return found
    marks = ", ".join(placeholder(conn) for _ in contact_ids)
    ph = placeholder(conn)
    params = (*contact_ids, since)
    if select_list(conn, "tracking_clicks", _CLICK_COLUMNS, required=_CLICK_COLUMNS):
        _add_rows(
            found,
            driver_rows(
                conn,
                f"SELECT contact_id, clicked_at FROM tracking_clicks WHERE contact_id IN ({marks}) AND clicked_at >= {ph}",
                params,
            ),
            lambda when, _row: Click(when),
        )
    columns = select_list(conn, "contact_events", _EVENT_COLUMNS, required=_EVENT_COLUMNS[:3])
    if columns:
        _add_rows(
            found,
            driver_rows(
                conn,
                f"SELECT {columns} FROM contact_events "
                f"WHERE contact_id IN ({marks}) AND event_type = '{HEALTH_EVENT}' AND created_at >= {ph}",
                params,
            ),
            lambda when, row: HealthAnswer(when, row[3]),  # contact_id, created_at, event_type, metadata
        )
    return found


def _add_rows(
    found: dict[int, list[_Stored]],
    rows: Iterable[Sequence[Any]],
    made: Callable[[datetime, Sequence[Any]], Click | HealthAnswer],
) -> None:
    """Rows of (contact id, stored time, ...) kept by contact; an unknown time counts for nothing."""
    for row in rows:
        at = row[1]
        when = parse_stored_datetime(None if at is None else str(at))
        if when is not None:
            found.setdefault(int(row[0]), []).append((str(at), made(when, row)))


def _behaviour(stored: Sequence[_Stored], since: str | None = None) -> Behaviour:
    clicks: list[Click] = []
    answers: list[HealthAnswer] = []
    for at, what in stored:
        if since is not None and not at >= since:
            continue
        if isinstance(what, Click):
            clicks.append(what)
        else:
            answers.append(what)
    return Behaviour(tuple(clicks), tuple(answers))


def fetch_behaviour(conn: Connection, contact_ids: Sequence[int], since: str) -> dict[int, Behaviour]:
    """Clicks and health answers of these contacts from ``since`` on, by contact.

    Behaviour of a pending follow-up's older initial (kept beyond 35 days) is
    read from the same bound: the type it earned then is already on its row,
    and a type is never lowered.
    """
    return {cid: _behaviour(stored) for cid, stored in _stored_behaviour(conn, contact_ids, since).items()}


def _reads(as_of: Mapping[int, date]) -> Iterator[tuple[str, list[int]]]:
    """(bound, contacts) of the reads these contacts' as-of dates need: one per distinct
    bound, at most 500 contacts each."""
    by_bound: dict[str, list[int]] = {}
    for cid in sorted(as_of):
        by_bound.setdefault(behaviour_since(as_of[cid]), []).append(cid)
    for bound, cids in by_bound.items():
        for start in range(0, len(cids), 500):
            yield bound, cids[start : start + 500]


def fetch_behaviour_as_of(conn: Connection, as_of: Mapping[int, date]) -> dict[int, Behaviour]:
    """``fetch_behaviour`` with each contact's own bound, ``behaviour_since`` of its as-of
    date: what deciding the contacts one by one would read (one read per distinct bound)."""
    found: dict[int, Behaviour] = {}
    for bound, cids in _reads(as_of):
        found.update(fetch_behaviour(conn, cids, bound))
    return found


class BehaviourRead:
    """Behaviour read once for several uses in one transaction, each with its own as-of date.

    An agent's batch reads its contacts' behaviour twice, as of the decision
    day to decide them and as of each contact's latest event for the
    engagement table: a fifth of the database process's time, the same rows
    twice.  Here the rows are read once, from the earliest date either use
    needs, and each use then keeps those at or after its own bound, comparing
    the stored text as the query does: ``as_of`` returns what
    ``fetch_behaviour_as_of`` would.  Nothing may store behaviour between the
    read and its uses.
    """

    def __init__(self, conn: Connection, earliest: Mapping[int, date]) -> None:
        self._earliest = dict(earliest)
        self._stored: dict[int, list[_Stored]] = {}
        for bound, cids in _reads(earliest):
            self._stored.update(_stored_behaviour(conn, cids, bound))

    def as_of(self, as_of: Mapping[int, date]) -> dict[int, Behaviour]:
        """Each contact's behaviour as of its date; a contact or a date not covered by the read raises."""
        found: dict[int, Behaviour] = {}
        for cid, day in as_of.items():
            earliest = self._earliest.get(cid)
            if earliest is None or day < earliest:
                raise ValueError(f"contact {cid}: behaviour as of {day} was not read (read from {earliest})")
            stored = self._stored.get(cid)
            if stored:
                behaviour = _behaviour(stored, behaviour_since(day))
                if behaviour.clicks or behaviour.answers:
                    found[cid] = behaviour
        return found
