"""What each agent does with a batch of messages: parse, store, decide, announce.

``BatchProcessor.process`` is the whole per-batch step the Faust agents
(``streams/app.py``, through the decider process of ``streams/decider.py``)
and ``mailwindow replay`` run, outside Faust so it can be tested directly and
reused: it is synchronous and returns the records to publish.

Per batch, in one transaction:
1. each message is parsed and validated (``streams.events.codec``); a bad one, or one
   the database refuses, becomes a ``deadletter`` record (source topic with
   its prefix, partition, offset, raw value, error) and the others go on;
2. the event's facts are stored (``streams.worker.ingest``), once per event id;
3. every contact the batch touched is decided again (``streams.worker.redecide``)
   as of the decision day (``streams.store.epochs``: the last sweep's as-of date, or
   the baseline's), and the difference is announced on ``schedule-changes``.

Facts never wait in a queue of their own: a click, an answer or a status for
a contact (or a row) not known yet is stored like any other and counts once
the contact (or the row) exists.  So no event can take another down with it,
and the final database does not depend on the order in which the topics'
events arrive, how they are batched, or where a crash cut in
(``streams.store.epochs`` says why; tests/property/test_event_order.py checks it).

The cost is per batch, not per event: what the batch's contacts are is read
in a few statements (``BatchState``), writes go out together, and the touched
contacts are decided per chunk (``sync_contacts``).  A refusal by the database
(e.g. an email address another contact has) undoes that whole attempt; the
batch is then applied again with a savepoint per event, so the refusal undoes
its own event only.  Both ways give the same database (tested).

A deleted contact's owned rows from the decision day on are cancelled; events
about it are stored but give it no email, unless a newer upsert brings it back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, NoReturn

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, OperationalError

from rules.campaign import CampaignBook
from rules.config import CampaignType, Config
from streams.events.codec import (
    CampaignTypeUpsert,
    ClickEvent,
    ContactDelete,
    ContactUpsert,
    EmailStatusEvent,
    Event,
    EventError,
    HealthEvent,
    InstanceUpsert,
    RowState,
    TargetsEvent,
    deadletter_record,
    occurred_at_central_date,
    parse_event,
    schedule_change_record,
)
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
    # contact -> its engagement table value (streams/engagement.py), for the contacts whose
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


class _RetryGuarded(Exception):
    """An event of the batch failed while the batch was applied unguarded."""


def _retry_guarded(exc: Exception) -> NoReturn:
    """Give up the unguarded attempt, unless the database is only locked (then retry it as is)."""
    if isinstance(exc, OperationalError) and is_lock_error(exc):
        raise exc
    raise _RetryGuarded from exc


def _engaged(result: BatchResult, event: ClickEvent | HealthEvent | ContactUpsert) -> None:
    day = occurred_at_central_date(event.occurred_at)
    result.engaged_on[event.contact_id] = max(day, result.engaged_on.get(event.contact_id, day))


def _contact_of(event: Event) -> int | None:
    contact_id = getattr(event, "contact_id", None)
    return contact_id if isinstance(contact_id, int) else None


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

        First the whole batch with a few statements per batch (``BatchState``,
        bulk bookkeeping, ``sync_contacts``).  If any event's storing fails, that
        attempt is undone whole and the batch is applied again with one
        savepoint per event, so the failure undoes that event alone and goes to
        ``deadletter``: the same result, paid for only by batches holding a bad event.
        """
        try:
            try:
                return run_with_retry(lambda: self._process_once(messages, guarded=False))
            except _RetryGuarded:
                return run_with_retry(lambda: self._process_once(messages, guarded=True))
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

    def _process_once(self, messages: Sequence[Message], *, guarded: bool) -> BatchResult:
        result = BatchResult()
        touched: dict[int, _Touched] = {}
        campaigns_changed = False
        parsed: list[tuple[Message, Event]] = []
        for m in messages:
            try:
                parsed.append((m, parse_event(m.topic_kind, m.value or b"")))
            except EventError as exc:
                result.deadletters.append(self._dead(m, str(exc)))
        with self.store.engine.begin() as conn:
            epoch = require_epoch(conn)
            book = self.campaigns
            known: BatchState | None = None
            seen: set[str] = set()
            new: list[tuple[str, str, datetime, int | None, int | None]] = []
            if not guarded:
                known = BatchState(conn, [cid for _, e in parsed if (cid := _contact_of(e)) is not None])
                seen = applied_already(conn, [e.event_id for _, e in parsed])
            for m, event in parsed:
                try:
                    with conn.begin_nested() if guarded else nullcontext():
                        if guarded:
                            fresh = mark_applied(
                                conn, event.event_id, m.topic_kind, event.occurred_at, m.partition, m.offset
                            )
                        else:
                            fresh = event.event_id not in seen
                            seen.add(event.event_id)
                        if not fresh:
                            result.duplicates += 1
                            if isinstance(event, (ClickEvent, HealthEvent, ContactUpsert)):
                                # Its engagement value may be what a crash lost (an upsert's:
                                # the parked clicks and answers it applied).
                                _engaged(result, event)
                            continue
                        if not guarded:  # guarded, mark_applied has recorded it
                            new.append((event.event_id, m.topic_kind, event.occurred_at, m.partition, m.offset))
                        campaigns_changed |= self._apply(conn, m, event, touched, result, book, known)
                        result.applied += 1
                except (IngestError, DBAPIError) as exc:
                    if not guarded:
                        _retry_guarded(exc)
                    if not isinstance(exc, IngestError):
                        raise
                    result.deadletters.append(self._dead(m, str(exc)))
            if known is not None:
                try:
                    known.flush(conn)
                    mark_all_applied(conn, new)
                except DBAPIError as exc:  # e.g. a deferred contact with another's email
                    _retry_guarded(exc)
            if campaigns_changed:
                book = load_campaign_book(conn, self.config).book
            decided = sync_contacts(
                conn, self.config, book, touched, epoch, self.lookahead_days, self.lookback_days
            )
            for cid in sorted(decided):
                result.changes.extend((str(cid), self._announce(c, touched[cid])) for c in decided[cid])
            result.engagement = engagement_values(conn, result.engaged_on)
        self.campaigns = book  # only once committed
        return result

    # -- storing one event's facts ------------------------------------------------

    def _touch(self, touched: dict[int, _Touched], contact_id: int, topic: str, event: Event) -> None:
        old = touched.get(contact_id)
        if old is None or (event.occurred_at, event.event_id) >= (old.occurred_at, old.cause_event_id):
            touched[contact_id] = _Touched(topic, event.event_id, event.occurred_at)

    def _apply(
        self,
        conn: Connection,
        m: Message,
        event: Event,
        touched: dict[int, _Touched],
        result: BatchResult,
        book: CampaignBook,
        known: BatchState | None,
    ) -> bool:
        """Store the event; True when campaign data changed (the book is read again)."""
        kind = m.topic_kind
        if isinstance(event, ContactUpsert):
            fields = vars(event.contact)  # flat: asdict's deep copy costs more than the write
            if upsert_contact(conn, event.contact_id, fields, event.occurred_at, event.event_id, known):
                self._touch(touched, event.contact_id, kind, event)
                _engaged(result, event)  # its clicks and answers stored before it count now
            return False
        if isinstance(event, ContactDelete):
            if delete_contact(conn, event.contact_id, event.occurred_at, event.event_id, known):
                self._touch(touched, event.contact_id, kind, event)
            return False
        if isinstance(event, (ClickEvent, HealthEvent, EmailStatusEvent)):
            self._store_fact(conn, event, known, result)
            self._touch(touched, event.contact_id, kind, event)
            return False
        if known is not None:
            known.flush(conn)  # campaign targeting reads contacts
        if isinstance(event, CampaignTypeUpsert):
            base = book.types.get(event.name, CampaignType(event.name))
            changed = event.apply_to(base)
            upsert_campaign_type(conn, changed)
            everyone = base.target_all_contacts or changed.target_all_contacts
            for cid in all_contact_ids(conn) if everyone else type_contacts(conn, event.name):
                self._touch(touched, cid, kind, event)
            return True
        if isinstance(event, InstanceUpsert):
            i = event.instance
            before = conn.execute(
                text("SELECT campaign_type FROM campaign_instances WHERE id = :i"), {"i": i.id}
            ).scalar()
            upsert_instance(conn, i.id, asdict(i), event.occurred_at, event.changed_by)
            everyone = any(
                t is not None and t.target_all_contacts
                for t in (book.types.get(str(before)) if before else None, book.types.get(i.campaign_type))
            )
            for cid in all_contact_ids(conn) if everyone else instance_contacts(conn, i.id):
                self._touch(touched, cid, kind, event)
            return True
        if isinstance(event, TargetsEvent):
            for cid in upsert_targets(conn, event.instance_id, [asdict(t) for t in event.targets]):
                self._touch(touched, cid, kind, event)
            return True
        raise IngestError(f"{kind}: {type(event).__name__} events are not taken by the agents")

    def _store_fact(
        self,
        conn: Connection,
        event: ClickEvent | HealthEvent | EmailStatusEvent,
        known: BatchState | None,
        result: BatchResult,
    ) -> None:
        """A click, an answer or a status, stored whether or not its contact (or row) exists yet."""
        if isinstance(event, ClickEvent):
            store_click(conn, event.contact_id, event.tracking_id, event.quote_id, event.occurred_at, known)
            _engaged(result, event)
        elif isinstance(event, HealthEvent):
            store_health_answer(conn, event.contact_id, event.answers, event.occurred_at, known)
            _engaged(result, event)
        else:
            record_status_fact(
                conn,
                event.contact_id,
                event.occurrence_key,
                event.status,
                event.actual_send_datetime,
                event.occurred_at,
                event.event_id,
            )

    def adopt_parked_events(self) -> int:
        """Events an older worker parked for contacts not known yet, stored as facts now."""
        with self.store.engine.begin() as conn:
            parked = conn.execute(text("SELECT event_id, topic, payload FROM mw_parked_events")).fetchall()
            for event_id, topic, payload in parked:
                try:
                    event = parse_event(str(topic), bytes(payload))
                except EventError:
                    logger.warning("parked event %s cannot be read again: dropped", event_id)
                    continue
                if isinstance(event, (ClickEvent, HealthEvent, EmailStatusEvent)):
                    self._store_fact(conn, event, None, BatchResult())
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

