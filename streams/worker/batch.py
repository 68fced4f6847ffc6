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
   by the handler of its kind (``streams.worker.handlers.HANDLERS``);
3. every contact the batch touched is decided again (``streams.worker.redecide``)
   as of the decision day (``streams.store.epochs``: the last sweep's as-of date, or
   the baseline's), and the difference is announced on ``schedule-changes``.

Facts never wait in a queue of their own: a click, an answer or a status for
a contact (or a row) not known yet is stored like any other and counts once
the contact (or the row) exists.  So no event can take another down with it,
and the final database does not depend on the order in which the topics'
events arrive, how they are batched, or where a crash cut in
(``streams.store.epochs`` says why; tests/streams/worker/test_event_order.py checks it).

The cost is per batch, not per event: a batch is first applied ``Unguarded``
(``streams.worker.guarding``)
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
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from rules.campaign import CampaignBook
from rules.config import Config
from streams.events.codec import parse_event
from streams.events.model import Event
from streams.events.records import RowState, deadletter_record, schedule_change_record
from streams.events.schema import EventError, decode_record
from streams.store.behaviour import BehaviourRead
from streams.store.campaigns import campaign_tables_digest, load_campaign_book
from streams.store.engine import Store, run_with_retry
from streams.store.epoch_lock import batch_turn
from streams.store.epochs import NoDecisionDay, require_epoch
from streams.store.parked_events import forget_parked_events, parked_events
from streams.worker.engagement import engagement_values
from streams.worker.guarding import Guarded, Guarding, RetryGuarded, Unguarded
from streams.worker.handlers import ENGAGING, FACTS, Applying, Touched, apply
from streams.worker.ingest import IngestError
from streams.worker.redecide import ScheduleChange, sync_contacts

__all__ = ["BatchProcessor", "BatchResult", "Guarded", "Message", "Unguarded", "checked_messages"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """One Kafka message as the agents see it (``topic_kind``: the topic's name without prefix).

    ``partition`` and ``offset`` are None for an event that was never on a topic (the
    console's delivery webhook applying a batch itself, ``streams.console.webhook``): it
    is recorded as applied with no position, so what a sweep "saw" of the topics
    (``applied_offsets``) is not changed by it.  Such a batch is refused whole by its
    caller, never dead-lettered (a dead letter names a position).

    ``checked``: the value was found valid for its topic by the agent that read it
    (``checked_messages``), so the database process reads it without checking again.
    """

    topic_kind: str
    partition: int | None
    offset: int | None
    key: bytes | None
    value: bytes | None
    checked: bool = False


def checked_messages(messages: Sequence[Message]) -> list[Message]:
    """``messages``, those whose values are valid for their topics marked ``checked``.

    The agents call it in the worker's Faust process before handing a batch to the
    database process: checking a value against its topic's schema is most of
    what parsing costs (9 of 13 µs an event), and the database process, the one
    writer, is what limits the worker's throughput while the Faust process has time
    to spare.  A value found invalid is left unmarked: the database process checks
    it again and dead-letters it with the problem worded as always.
    """
    out: list[Message] = []
    for m in messages:
        try:
            decode_record(m.topic_kind, m.value)
        except (EventError, ValueError):
            out.append(m)
        else:
            out.append(replace(m, checked=True))
    return out


@dataclass
class BatchResult:
    changes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (key, record)
    deadletters: list[dict[str, Any]] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0
    # contact -> its engagement table value (streams.worker.engagement), for the contacts whose
    # clicks or answers the batch stored or saw again
    engagement: dict[int, dict[str, Any]] = field(default_factory=dict)


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
        self.campaigns, self._campaigns_digest = self._load_book()

    def _load_book(self) -> tuple[CampaignBook, str]:
        with self.store.engine.connect() as conn:
            return load_campaign_book(conn, self.config).book, campaign_tables_digest(conn)

    def process(self, messages: Sequence[Message]) -> BatchResult:
        """The batch in one transaction; a batch where any event fails is done again, guarded.

        First ``Unguarded``; if any event's storing fails, that attempt is
        undone whole and the batch is applied again ``Guarded``, so the failure
        undoes that event alone and goes to ``deadletter``: the same result.
        """
        try:
            try:
                return run_with_retry(lambda: self.attempt(messages, Unguarded))
            except RetryGuarded:
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
            logger.exception(
                "%s message at offset %s cannot be processed",
                messages[0].topic_kind,
                messages[0].offset,
            )
            return BatchResult(
                deadletters=[
                    self._dead(messages[0], f"cannot be processed: {type(exc).__name__}: {exc}")
                ]
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

    def rehearse(self, messages: Sequence[Message]) -> BatchResult:
        """The batch step on ``messages``, undone: what a worker runs once at start so that its
        first real batch does not pay for the first use of every statement and rule cache
        (the first batch of two events took 66 ms, 38 of them the database process's CPU)."""
        return self.attempt(messages, Unguarded, keep=False)

    def attempt(
        self,
        messages: Sequence[Message],
        way: Callable[[Connection, Sequence[tuple[Message, Event]]], Guarding],
        keep: bool = True,
    ) -> BatchResult:
        """One attempt at the batch in one transaction, its events applied ``way``
        (``Unguarded`` or ``Guarded``); ``process`` chooses.  ``keep=False``: rolled back."""
        result = BatchResult()
        parsed = self._parsed(messages, result)
        with self.store.engine.connect() as conn, conn.begin() as transaction:
            batch_turn(conn)  # while a sweep runs on another worker: after it (streams.store.epoch_lock)
            epoch = require_epoch(conn)
            applying = way(conn, parsed)
            # Campaigns change through the campaigns topic and through the campaign
            # commands, which write the tables directly: both are seen before deciding.
            digest = campaign_tables_digest(conn)
            book = self.campaigns
            if digest != self._campaigns_digest:
                book = load_campaign_book(conn, self.config).book
            batch = Applying(conn, book, applying.known)
            for m, event in parsed:
                try:
                    with applying.guard(conn):
                        if applying.first_time(conn, m, event):
                            apply(batch, m.topic_kind, event)
                            result.applied += 1
                        else:
                            result.duplicates += 1
                            if isinstance(event, ENGAGING):
                                # Its engagement value may be what a crash lost (an upsert's:
                                # the parked clicks and answers it applied).
                                batch.engaged(event)
                except (IngestError, DBAPIError) as exc:
                    result.deadletters.append(self._dead(m, applying.refused(exc)))
            applying.flush(conn)
            if batch.campaigns_changed:
                book = load_campaign_book(conn, self.config).book
                digest = campaign_tables_digest(conn)
            # Deciding reads the contacts' behaviour as of the decision day, the engagement
            # table as of each contact's latest event: one read serves both.
            read = BehaviourRead(conn, _earliest(batch.touched, epoch.as_of, batch.engaged_on))
            decided = sync_contacts(
                conn,
                self.config,
                book,
                batch.touched,
                epoch,
                self.lookahead_days,
                self.lookback_days,
                behaviour=read,
            )
            for cid in sorted(decided):
                result.changes.extend(
                    (str(cid), self._announce(c, batch.touched[cid])) for c in decided[cid]
                )
            result.engagement = engagement_values(conn, batch.engaged_on, read)
            if not keep:
                transaction.rollback()
                return result
        self.campaigns, self._campaigns_digest = book, digest  # only once committed
        return result

    def _parsed(
        self, messages: Sequence[Message], result: BatchResult
    ) -> list[tuple[Message, Event]]:
        parsed: list[tuple[Message, Event]] = []
        for m in messages:
            try:
                parsed.append((m, parse_event(m.topic_kind, m.value or b"", checked=m.checked)))
            except EventError as exc:
                result.deadletters.append(self._dead(m, str(exc)))
        return parsed

    def adopt_parked_events(self) -> int:
        """Events an older worker parked for contacts not known yet, stored as facts now."""
        with self.store.engine.begin() as conn:
            batch_turn(conn)
            parked = parked_events(conn)
            batch = Applying(conn, self.campaigns, None)  # nothing decided, nothing announced
            for event_id, topic, payload in parked:
                try:
                    event = parse_event(topic, payload)
                except EventError:
                    logger.warning("parked event %s cannot be read again: dropped", event_id)
                    continue
                if isinstance(event, FACTS):
                    apply(batch, topic, event)
            forget_parked_events(conn)
        return len(parked)

    # -- output records -----------------------------------------------------------

    def _dead(self, m: Message, error: str) -> dict[str, Any]:
        if m.partition is None or m.offset is None:
            raise ValueError(f"{m.topic_kind}: an event not read from a topic cannot be dead-lettered: {error}")
        return deadletter_record(
            f"{self.prefix}{m.topic_kind}", m.partition, m.offset, m.key, m.value, error
        )

    def _announce(self, c: ScheduleChange, t: Touched) -> dict[str, Any]:
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


def _earliest(touched: Iterable[int], decision_day: date, engaged_on: Mapping[int, date]) -> dict[int, date]:
    """Each contact's earliest as-of date of the batch: the decision day, or its latest event's day."""
    earliest = dict.fromkeys(touched, decision_day)
    for cid, day in engaged_on.items():
        earliest[cid] = min(day, earliest.get(cid, day))
    return earliest
