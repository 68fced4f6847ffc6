"""The two ways one attempt at a batch guards its events (``streams.worker.batch``).

``Unguarded`` applies the whole batch with a few statements and gives up the
attempt on any refusal (``RetryGuarded``); ``Guarded`` puts each event in a
savepoint, so a refusal undoes that event alone.  Both give the same database.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import TYPE_CHECKING, NoReturn, Protocol

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from streams.events.model import Event
from streams.store.engine import is_lock_error
from streams.worker.ingest import (
    BatchState,
    IngestError,
    applied_already,
    mark_all_applied,
    mark_applied,
)

if TYPE_CHECKING:
    from streams.worker.batch import Message


def contact_of(event: Event) -> int | None:
    contact_id = getattr(event, "contact_id", None)
    return contact_id if isinstance(contact_id, int) else None


class RetryGuarded(Exception):
    """An event of the batch failed while the batch was applied unguarded."""


def _retry_guarded(exc: Exception) -> NoReturn:
    """Give up the unguarded attempt, unless the database is only locked (then retry it as is)."""
    if isinstance(exc, OperationalError) and is_lock_error(exc):
        raise exc
    raise RetryGuarded from exc


class Guarding(Protocol):
    """How one attempt at a batch guards its events: ``Unguarded`` or ``Guarded``."""

    @property
    def known(self) -> BatchState | None:
        """What the batch knows of its contacts, with the writes it defers; None: nothing deferred."""

    def guard(self, conn: Connection) -> AbstractContextManager[object]:
        """What one event is applied in: what its failure undoes."""

    def first_time(self, conn: Connection, m: Message, event: Event) -> bool:
        """Mark the event applied; False when it already was (a duplicate)."""

    def refused(self, exc: IngestError | DBAPIError) -> str:
        """The dead letter's error for an event the database refused, or raise."""

    def flush(self, conn: Connection) -> None:
        """Send what the attempt deferred, before the batch's contacts are decided."""


class Unguarded:
    """The whole batch with a few statements: which events were applied already and what
    its contacts are, read once; the bookkeeping and the contacts' writes sent together.

    Nothing tells which deferred write was which event's, so any failure gives
    up the whole attempt (``RetryGuarded``), and the batch is applied ``Guarded``.
    """

    def __init__(self, conn: Connection, parsed: Sequence[tuple[Message, Event]]) -> None:
        self._state = BatchState(
            conn, [cid for _, e in parsed if (cid := contact_of(e)) is not None]
        )
        self._seen = applied_already(conn, [e.event_id for _, e in parsed])
        self._new: list[tuple[str, str, datetime, int | None, int | None]] = []

    @property
    def known(self) -> BatchState | None:
        return self._state

    def guard(self, conn: Connection) -> AbstractContextManager[object]:
        return nullcontext()

    def first_time(self, conn: Connection, m: Message, event: Event) -> bool:
        if event.event_id in self._seen:
            return False
        self._seen.add(event.event_id)
        self._new.append((event.event_id, m.topic_kind, event.occurred_at, m.partition, m.offset))
        return True

    def refused(self, exc: IngestError | DBAPIError) -> str:
        _retry_guarded(exc)

    def flush(self, conn: Connection) -> None:
        try:
            self._state.flush(conn)
            mark_all_applied(conn, self._new)
        except DBAPIError as exc:  # e.g. a deferred contact with another's email
            _retry_guarded(exc)


class Guarded:
    """One savepoint per event, its bookkeeping with it: a refusal undoes that event alone,
    which goes to ``deadletter``.  Paid for only by batches holding a bad event."""

    known: BatchState | None = None  # a savepoint undoing one event would leave it out of date

    def __init__(self, conn: Connection, parsed: Sequence[tuple[Message, Event]]) -> None:
        pass

    def guard(self, conn: Connection) -> AbstractContextManager[object]:
        return conn.begin_nested()

    def first_time(self, conn: Connection, m: Message, event: Event) -> bool:
        return mark_applied(
            conn, event.event_id, m.topic_kind, event.occurred_at, m.partition, m.offset
        )

    def refused(self, exc: IngestError | DBAPIError) -> str:
        if not isinstance(exc, IngestError):
            raise exc  # not a refusal of this event's: ``process`` deals with it
        return str(exc)

    def flush(self, conn: Connection) -> None:
        pass
