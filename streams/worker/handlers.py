"""Storing one event's facts, by its kind: ``HANDLERS`` maps each event type the
agents take to what stores it (``streams.worker.ingest``) and which contacts it
touches, i.e. must be decided again before the batch commits."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Final, TypeAlias

from sqlalchemy import Connection

from rules.campaign import CampaignBook
from rules.config import CampaignType
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
from streams.events.times import occurred_at_central_date
from streams.store.campaigns import instance_type
from streams.sweep.prefilter import all_contact_ids
from streams.worker.ingest import (
    BatchState,
    IngestError,
    delete_contact,
    instance_contacts,
    record_status_fact,
    store_click,
    store_health_answer,
    type_contacts,
    upsert_campaign_type,
    upsert_contact,
    upsert_instance,
    upsert_targets,
)


@dataclass
class Touched:
    """The event a contact's schedule changes are announced as caused by: its latest in the batch."""

    cause_topic: str
    cause_event_id: str
    occurred_at: datetime


def _contact_of(event: Event) -> int | None:
    contact_id = getattr(event, "contact_id", None)
    return contact_id if isinstance(contact_id, int) else None


@dataclass
class Applying:
    """One attempt at a batch, as the handlers of its events see it."""

    conn: Connection
    book: CampaignBook  # as the batch began; read again after it when campaign data changed
    known: BatchState | None
    # contact -> the Central date of its latest click, answer or upsert in the batch
    engaged_on: dict[int, date] = field(default_factory=dict)
    touched: dict[int, Touched] = field(default_factory=dict)
    campaigns_changed: bool = False

    def touch(self, contact_id: int, topic: str, event: Event) -> None:
        old = self.touched.get(contact_id)
        if old is None or (event.occurred_at, event.event_id) >= (
            old.occurred_at,
            old.cause_event_id,
        ):
            self.touched[contact_id] = Touched(topic, event.event_id, event.occurred_at)

    def touch_all(self, contact_ids: Iterable[int], topic: str, event: Event) -> None:
        for cid in contact_ids:
            self.touch(cid, topic, event)

    def engaged(self, event: ClickEvent | HealthEvent | ContactUpsert) -> None:
        day = occurred_at_central_date(event.occurred_at)
        engaged_on = self.engaged_on
        engaged_on[event.contact_id] = max(day, engaged_on.get(event.contact_id, day))

    def contacts_written(self) -> None:
        """The contact writes deferred so far sent: campaign targeting reads contacts."""
        if self.known is not None:
            self.known.flush(self.conn)


def _upsert_contact(batch: Applying, kind: str, event: ContactUpsert) -> None:
    fields = vars(event.contact)  # flat: asdict's deep copy costs more than the write
    if upsert_contact(
        batch.conn, event.contact_id, fields, event.occurred_at, event.event_id, batch.known
    ):
        batch.touch(event.contact_id, kind, event)
        batch.engaged(event)  # its clicks and answers stored before it count now


def _delete_contact(batch: Applying, kind: str, event: ContactDelete) -> None:
    if delete_contact(batch.conn, event.contact_id, event.occurred_at, event.event_id, batch.known):
        batch.touch(event.contact_id, kind, event)


# A click, an answer or a status is stored whether or not its contact (or row) exists yet.


def _store_click(batch: Applying, kind: str, event: ClickEvent) -> None:
    store_click(
        batch.conn,
        event.contact_id,
        event.tracking_id,
        event.quote_id,
        event.occurred_at,
        batch.known,
    )
    batch.engaged(event)
    batch.touch(event.contact_id, kind, event)


def _store_health_answer(batch: Applying, kind: str, event: HealthEvent) -> None:
    store_health_answer(batch.conn, event.contact_id, event.answers, event.occurred_at, batch.known)
    batch.engaged(event)
    batch.touch(event.contact_id, kind, event)


def _record_status(batch: Applying, kind: str, event: EmailStatusEvent) -> None:
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


def _upsert_campaign_type(batch: Applying, kind: str, event: CampaignTypeUpsert) -> None:
    batch.contacts_written()
    base = batch.book.types.get(event.name, CampaignType(event.name))
    changed = event.apply_to(base)
    upsert_campaign_type(batch.conn, changed)
    everyone = base.target_all_contacts or changed.target_all_contacts
    batch.touch_all(
        all_contact_ids(batch.conn) if everyone else type_contacts(batch.conn, event.name),
        kind,
        event,
    )
    batch.campaigns_changed = True


def _upsert_instance(batch: Applying, kind: str, event: InstanceUpsert) -> None:
    batch.contacts_written()
    i = event.instance
    before = instance_type(batch.conn, i.id)
    upsert_instance(batch.conn, i.id, asdict(i), event.occurred_at, event.changed_by)
    # A type targeting everyone, before or after the change, may change anyone's schedule.
    everyone = any(
        t is not None and t.target_all_contacts
        for t in (
            batch.book.types.get(before) if before else None,
            batch.book.types.get(i.campaign_type),
        )
    )
    batch.touch_all(
        all_contact_ids(batch.conn) if everyone else instance_contacts(batch.conn, i.id),
        kind,
        event,
    )
    batch.campaigns_changed = True


def _upsert_targets(batch: Applying, kind: str, event: TargetsEvent) -> None:
    batch.contacts_written()
    batch.touch_all(
        upsert_targets(batch.conn, event.instance_id, [asdict(t) for t in event.targets]),
        kind,
        event,
    )
    batch.campaigns_changed = True


Handler: TypeAlias = Callable[[Applying, str, Any], None]

# The events the agents take, each with what stores it; the audit records
# (sweep runs, baselines) are replay's, not the agents'.
HANDLERS: Final[Mapping[type, Handler]] = {
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
ENGAGING: Final = (ClickEvent, HealthEvent, ContactUpsert)
FACTS: Final = (ClickEvent, HealthEvent, EmailStatusEvent)


def apply(batch: Applying, kind: str, event: Event) -> None:
    handler = HANDLERS.get(type(event))
    if handler is None:
        raise IngestError(f"{kind}: {type(event).__name__} events are not taken by the agents")
    handler(batch, kind, event)
