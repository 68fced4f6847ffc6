"""What each agent does with a batch of messages: parse, store, decide, announce.

``BatchProcessor.process`` is the whole per-batch step the Faust agents
(``streams.worker.app``, through the worker's database process,
``streams.worker.database_process``) and ``mailwindow replay`` run, outside
Faust so it can be tested directly and reused: it is synchronous and returns
the records to publish.

Per batch, in one transaction:
1. each message is parsed and validated (``streams.events.codec``); a bad one, or one
   the database refuses, becomes a ``deadletter`` record (source topic with
   its prefix, partition, offset, raw value, error) and the others go on;
2. the event's facts are stored (``streams.worker.ingest``), once per event id,
   by the handler of its kind (``_HANDLERS``);
3. every contact the batch touched is decided again (``streams.worker.redecide``)
   as of the decision day (``streams.store.epochs``: the last sweep's as-of date, or
   the baseline's), and the difference is announced on ``schedule-changes``.

Facts never wait in a queue of their own: a click, an answer or a status for
a contact (or a row) not known yet is stored like any other and counts once
the contact (or the row) exists.  So no event can take another down with it,
and the final database does not depend on the order in which the topics'
events arrive, how they are batched, or where a crash cut in
(``streams.store.epochs`` says why; tests/property/test_event_order.py checks it).

The cost is per batch, not per event: a batch is first applied ``Unguarded``
(what its contacts are read in a few statements, ``BatchState``; writes go
out together; the touched contacts decided per chunk, ``sync_contacts``).  A
refusal by the database (e.g. an email address another contact has) undoes
that whole attempt; the batch is then applied again ``Guarded``, with a
savepoint per event, so the refusal undoes its own event only.  Both ways
give the same database (tested).

A deleted contact's owned rows from the decision day on are cancelled; events
about it are stored but give it no email, unless a newer upsert brings it back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Final, NoReturn, Protocol, TypeAlias

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, OperationalError

from rules.campaign import CampaignBook
from rules.config import CampaignType, Config
from streams.events.codec import parse_event
from streams.events.model import (
    CampaignTypeUpsert,
    ClickEvent,
    ContactDelete,
    ContactUpsert,
    EmailStatusEvent,
    Event,
    HealthEvent,
    InstanceUpsert,
    TargetsEvent,
)
from streams.events.records import RowState, deadletter_record, schedule_change_record
from streams.events.schema import EventError
from streams.events.times import occurred_at_central_date
from streams.store.campaigns import load_campaign_book
from streams.store.engine import Store, is_lock_error, run_with_retry
from streams.store.epochs import NoDecisionDay, require_epoch
from streams.sweep.prefilter import all_contact_ids
from streams.worker.engagement import engagement_values
from streams.worker.ingest import (
    BatchState,
    IngestError,
    applied_already,
    delete_contact,
    instance_contacts,
    mark_all_applied,
    mark_applied,
    record_status_fact,
    store_click,
    store_health_answer,
    type_contacts,
    upsert_campaign_type,
    upsert_contact,
    upsert_instance,
    upsert_targets,
)
from streams.worker.redecide import ScheduleChange, sync_contacts

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """One Kafka message as the agents see it (``topic_kind``: the topic's name without prefix)."""

    topic_kind: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class BatchResult:
    changes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (key, record)
    deadletters: list[dict[str, Any]] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0
    # contact -> its engagement table value (streams.worker.engagement), for the contacts whose
    # clicks or answers the batch stored or saw again
    engagement: dict[int, dict[str, Any]] = field(default_factory=dict)
    # while the batch is applied: those contacts, with the Central date of their latest such event
    engaged_on: dict[int, date] = field(default_factory=dict, repr=False)


@dataclass
class _Touched:
    """The event a contact's schedule changes are announced as caused by: its latest in the batch."""

    cause_topic: str
    cause_event_id: str
    occurred_at: datetime


def _contact_of(event: Event) -> int | None:
    contact_id = getattr(event, "contact_id", None)
    return contact_id if isinstance(contact_id, int) else None


# --- the two ways of applying a batch ---------------------------------------------------------


class _RetryGuarded(Exception):
    """An event of the batch failed while the batch was applied unguarded."""


def _retry_guarded(exc: Exception) -> NoReturn:
    """Give up the unguarded attempt, unless the database is only locked (then retry it as is)."""
    if isinstance(exc, OperationalError) and is_lock_error(exc):
        raise exc
    raise _RetryGuarded from exc


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
    up the whole attempt (``_RetryGuarded``), and the batch is applied ``Guarded``.
    """

    def __init__(self, conn: Connection, parsed: Sequence[tuple[Message, Event]]) -> None:
        self._state = BatchState(conn, [cid for _, e in parsed if (cid := _contact_of(e)) is not None])
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
        return mark_applied(conn, event.event_id, m.topic_kind, event.occurred_at, m.partition, m.offset)

    def refused(self, exc: IngestError | DBAPIError) -> str:
        if not isinstance(exc, IngestError):
            raise exc  # not a refusal of this event's: ``process`` deals with it
        return str(exc)

    def flush(self, conn: Connection) -> None:
        pass


# --- storing one event's facts, by its kind ---------------------------------------------------


@dataclass
class _Applying:
    """One attempt at a batch, as the handlers of its events see it."""

    conn: Connection
    book: CampaignBook  # as the batch began; read again after it when campaign data changed
    known: BatchState | None
    result: BatchResult
    touched: dict[int, _Touched] = field(default_factory=dict)
    campaigns_changed: bool = False

    def touch(self, contact_id: int, topic: str, event: Event) -> None:
        old = self.touched.get(contact_id)
        if old is None or (event.occurred_at, event.event_id) >= (old.occurred_at, old.cause_event_id):
            self.touched[contact_id] = _Touched(topic, event.event_id, event.occurred_at)

    def touch_all(self, contact_ids: Iterable[int], topic: str, event: Event) -> None:
        for cid in contact_ids:
            self.touch(cid, topic, event)

    def engaged(self, event: ClickEvent | HealthEvent | ContactUpsert) -> None:
        day = occurred_at_central_date(event.occurred_at)
        engaged_on = self.result.engaged_on
        engaged_on[event.contact_id] = max(day, engaged_on.get(event.contact_id, day))

    def contacts_written(self) -> None:
        """The contact writes deferred so far sent: campaign targeting reads contacts."""
        if self.known is not None:
            self.known.flush(self.conn)


def _upsert_contact(batch: _Applying, kind: str, event: ContactUpsert) -> None:
    fields = vars(event.contact)  # flat: asdict's deep copy costs more than the write
    if upsert_contact(batch.conn, event.contact_id, fields, event.occurred_at, event.event_id, batch.known):
        batch.touch(event.contact_id, kind, event)
        batch.engaged(event)  # its clicks and answers stored before it count now


def _delete_contact(batch: _Applying, kind: str, event: ContactDelete) -> None:
    if delete_contact(batch.conn, event.contact_id, event.occurred_at, event.event_id, batch.known):
        batch.touch(event.contact_id, kind, event)


# A click, an answer or a status is stored whether or not its contact (or row) exists yet.


def _store_click(batch: _Applying, kind: str, event: ClickEvent) -> None:
    store_click(batch.conn, event.contact_id, event.tracking_id, event.quote_id, event.occurred_at, batch.known)
    batch.engaged(event)
    batch.touch(event.contact_id, kind, event)


def _store_health_answer(batch: _Applying, kind: str, event: HealthEvent) -> None:
    store_health_answer(batch.conn, event.contact_id, event.answers, event.occurred_at, batch.known)
    batch.engaged(event)
    batch.touch(event.contact_id, kind, event)


def _record_status(batch: _Applying, kind: str, event: EmailStatusEvent) -> None:
    record_status_fact(
        batch.conn,
        event.contact_id,
        event.occurrence_key,
        event.status,
        event.actual_send_datetime,
        event.occurred_at,
        event.event_id,
    )
    batch.touch(event.contact_id, kind, event)


def _upsert_campaign_type(batch: _Applying, kind: str, event: CampaignTypeUpsert) -> None:
    batch.contacts_written()
    base = batch.book.types.get(event.name, CampaignType(event.name))
    changed = event.apply_to(base)
    upsert_campaign_type(batch.conn, changed)
    everyone = base.target_all_contacts or changed.target_all_contacts
    batch.touch_all(all_contact_ids(batch.conn) if everyone else type_contacts(batch.conn, event.name), kind, event)
    batch.campaigns_changed = True


def _upsert_instance(batch: _Applying, kind: str, event: InstanceUpsert) -> None:
    batch.contacts_written()
    i = event.instance
    before = batch.conn.execute(
        text("SELECT campaign_type FROM campaign_instances WHERE id = :i"), {"i": i.id}
    ).scalar()
    upsert_instance(batch.conn, i.id, asdict(i), event.occurred_at, event.changed_by)
    # A type targeting everyone, before or after the change, may change anyone's schedule.
    everyone = any(
        t is not None and t.target_all_contacts
        for t in (batch.book.types.get(str(before)) if before else None, batch.book.types.get(i.campaign_type))
    )
    batch.touch_all(all_contact_ids(batch.conn) if everyone else instance_contacts(batch.conn, i.id), kind, event)
    batch.campaigns_changed = True


def _upsert_targets(batch: _Applying, kind: str, event: TargetsEvent) -> None:
    batch.contacts_written()
    batch.touch_all(upsert_targets(batch.conn, event.instance_id, [asdict(t) for t in event.targets]), kind, event)
    batch.campaigns_changed = True


_Handler: TypeAlias = Callable[[_Applying, str, Any], None]

# The events the agents take, each with what stores it; the audit records
# (sweep runs, baselines) are replay's, not the agents'.
_HANDLERS: Final[Mapping[type, _Handler]] = {
    ContactUpsert: _upsert_contact,
    ContactDelete: _delete_contact,
    ClickEvent: _store_click,
    HealthEvent: _store_health_answer,
    EmailStatusEvent: _record_status,
    CampaignTypeUpsert: _upsert_campaign_type,
    InstanceUpsert: _upsert_instance,
    TargetsEvent: _upsert_targets,
}
# The events that give a contact an engagement value.
_ENGAGING: Final = (ClickEvent, HealthEvent, ContactUpsert)
_FACTS: Final = (ClickEvent, HealthEvent, EmailStatusEvent)


def _apply(batch: _Applying, kind: str, event: Event) -> None:
    handler = _HANDLERS.get(type(event))
    if handler is None:
        raise IngestError(f"{kind}: {type(event).__name__} events are not taken by the agents")
    handler(batch, kind, event)


# --- the batch step ---------------------------------------------------------------------------


class BatchProcessor:
    """The agents' per-batch work over one store, with the config and campaign data it needs."""

    def __init__(
        self,
        store: Store,
        config: Config,
        lookahead_days: int = 30,
        lookback_days: int = 7,
        prefix: str = "",
    ) -> None:
        self.store = store
        self.config = config
        self.prefix = prefix  # of the deployment's topics: dead letters name the full topic
        self.lookahead_days = lookahead_days
        self.lookback_days = lookback_days
        self.campaigns = self._load_book()

    def _load_book(self) -> CampaignBook:
        with self.store.engine.connect() as conn:
            return load_campaign_book(conn, self.config).book

    def process(self, messages: Sequence[Message]) -> BatchResult:
        """The batch in one transaction; a batch where any event fails is done again, guarded.

        First ``Unguarded``; if any event's storing fails, that attempt is
        undone whole and the batch is applied again ``Guarded``, so the failure
        undoes that event alone and goes to ``deadletter``: the same result.
        """
        try:
            try:
                return run_with_retry(lambda: self.attempt(messages, Unguarded))
            except _RetryGuarded:
                return run_with_retry(lambda: self.attempt(messages, Guarded))
        except (OperationalError, NoDecisionDay):
            raise  # the database or the deployment, not the batch: nothing to blame an event for
        except Exception as exc:  # a bug, or data no check foresaw
            return self._one_by_one(messages, exc)

    def _one_by_one(self, messages: Sequence[Message], exc: Exception) -> BatchResult:
        """A batch that failed with no event to blame (e.g. the rules failing on some
        contact): each message alone, and one that still fails goes to ``deadletter``
        with the error, so it never holds up the others."""
        if len(messages) == 1:
            logger.exception("%s message at offset %s cannot be processed", messages[0].topic_kind, messages[0].offset)
            return BatchResult(
                deadletters=[self._dead(messages[0], f"cannot be processed: {type(exc).__name__}: {exc}")]
            )
        total = BatchResult()
        for m in messages:
            r = self.process([m])
            total.changes.extend(r.changes)
            total.deadletters.extend(r.deadletters)
            total.applied += r.applied
            total.duplicates += r.duplicates
            total.engagement.update(r.engagement)
        return total

    def attempt(
        self, messages: Sequence[Message], way: Callable[[Connection, Sequence[tuple[Message, Event]]], Guarding]
    ) -> BatchResult:
        """One attempt at the batch in one transaction, its events applied ``way``
        (``Unguarded`` or ``Guarded``); ``process`` chooses."""
        result = BatchResult()
        parsed = self._parsed(messages, result)
        with self.store.engine.begin() as conn:
            epoch = require_epoch(conn)
            applying = way(conn, parsed)
            batch = _Applying(conn, self.campaigns, applying.known, result)
            for m, event in parsed:
                try:
                    with applying.guard(conn):
                        if applying.first_time(conn, m, event):
                            _apply(batch, m.topic_kind, event)
                            result.applied += 1
                        else:
                            result.duplicates += 1
                            if isinstance(event, _ENGAGING):
                                # Its engagement value may be what a crash lost (an upsert's:
                                # the parked clicks and answers it applied).
                                batch.engaged(event)
                except (IngestError, DBAPIError) as exc:
                    result.deadletters.append(self._dead(m, applying.refused(exc)))
            applying.flush(conn)
            book = load_campaign_book(conn, self.config).book if batch.campaigns_changed else self.campaigns
            decided = sync_contacts(
                conn, self.config, book, batch.touched, epoch, self.lookahead_days, self.lookback_days
            )
            for cid in sorted(decided):
                result.changes.extend((str(cid), self._announce(c, batch.touched[cid])) for c in decided[cid])
            result.engagement = engagement_values(conn, result.engaged_on)
        self.campaigns = book  # only once committed
        return result

    def _parsed(self, messages: Sequence[Message], result: BatchResult) -> list[tuple[Message, Event]]:
        parsed: list[tuple[Message, Event]] = []
        for m in messages:
            try:
                parsed.append((m, parse_event(m.topic_kind, m.value or b"")))
            except EventError as exc:
                result.deadletters.append(self._dead(m, str(exc)))
        return parsed

    def adopt_parked_events(self) -> int:
        """Events an older worker parked for contacts not known yet, stored as facts now."""
        with self.store.engine.begin() as conn:
            parked = conn.execute(text("SELECT event_id, topic, payload FROM mw_parked_events")).fetchall()
            batch = _Applying(conn, self.campaigns, None, BatchResult())  # nothing decided, nothing announced
            for event_id, topic, payload in parked:
                try:
                    event = parse_event(str(topic), bytes(payload))
                except EventError:
                    logger.warning("parked event %s cannot be read again: dropped", event_id)
                    continue
                if isinstance(event, _FACTS):
                    _apply(batch, str(topic), event)
            conn.execute(text("DELETE FROM mw_parked_events"))
        return len(parked)

    # -- output records -----------------------------------------------------------

    def _dead(self, m: Message, error: str) -> dict[str, Any]:
        return deadletter_record(f"{self.prefix}{m.topic_kind}", m.partition, m.offset, m.key, m.value, error)

    def _announce(self, c: ScheduleChange, t: _Touched) -> dict[str, Any]:
        prev = c.previous
        previous = (
            None
            if prev is None
            else RowState(
                email_type=str(prev["email_type"]),
                scheduled_send_date=date.fromisoformat(str(prev["scheduled_send_date"])),
                status=str(prev["status"]),
                skip_reason=None if prev["skip_reason"] is None else str(prev["skip_reason"]),
            )
        )
        return schedule_change_record(
            contact_id=c.contact_id,
            occurrence_key=c.occurrence_key,
            change=c.change,
            email_type=c.email_type,
            scheduled_send_date=date.fromisoformat(c.scheduled_send_date),
            status=c.status,
            skip_reason=c.skip_reason,
            previous=previous,
            cause_topic=t.cause_topic,
            cause_event_id=t.cause_event_id,
            occurred_at=t.occurred_at,
        )
