"""Input events to and from topic values: ``parse_event`` reads, ``event_to_mapping`` writes.

``parse_event`` turns the raw bytes of an input topic into a frozen, typed
event (``streams.events.model``) or raises ``EventError`` whose one-line
message names the topic, the field and the problem, e.g.::

    contacts: field 'contact.birth_date': '2025-02-30' is not a real date

An agent sends a message that raises ``EventError`` to ``deadletter``
(``streams.events.records.deadletter_record``) and goes on; any other
exception is a bug.  ``event_to_mapping`` is its inverse: ``parse_event`` of
its dump gives the event back (tests/streams/events/test_events.py checks it).

Each direction is a table with one small function per kind of event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, TypeAlias, cast

import orjson

from rules.campaign import CampaignInstance
from streams.events.kinds import (
    BASELINES,
    CAMPAIGNS,
    CLICKS,
    CONTACTS,
    EMAIL_STATUS,
    HEALTH,
    INPUT_KINDS,
    SWEEP_RUNS,
)
from streams.events.model import (
    CAMPAIGN_TYPE_FIELDS,
    BaselineRecord,
    CampaignTypeUpsert,
    ClickEvent,
    ContactDelete,
    ContactFields,
    ContactUpsert,
    EmailStatusEvent,
    Event,
    HealthEvent,
    InstanceUpsert,
    SweepRun,
    Target,
    TargetsEvent,
)
from streams.events.schema import RawValue, decode_record
from streams.events.times import (
    format_datetime,
    iso_date,
    optional_date,
    parse_date,
    parse_datetime,
)

# A valid value (the schema checked it), its event id and its time -> the event.
_Reader: TypeAlias = Callable[[dict[str, Any], str, datetime], Event]
# An event and its head (event id, time) -> its JSON-ready value.
_Writer: TypeAlias = Callable[[Any, dict[str, Any]], dict[str, Any]]


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


def _json_text(value: Any) -> str | None:
    """Free-form JSON as the text a ``metadata`` column holds; ``null`` is no metadata.

    Keys sorted: the stored text must not depend on the producer's key order, or a
    re-sent instance would look changed (and a dump and re-parse would differ).
    """
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _json_value(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def _offsets(value: Mapping[str, Mapping[str, int]]) -> Mapping[str, Mapping[int, int]]:
    return MappingProxyType(
        {topic: MappingProxyType({int(p): o for p, o in parts.items()}) for topic, parts in value.items()}
    )


def _offsets_value(offsets: Mapping[str, Mapping[int, int]]) -> dict[str, dict[str, int]]:
    return {t: {str(p): o for p, o in parts.items()} for t, parts in offsets.items()}


def _without_none(mapping: dict[str, Any], *optional: str) -> dict[str, Any]:
    # Optional fields left out rather than written as null: the smallest valid value.
    return {k: v for k, v in mapping.items() if not (k in optional and v is None)}


# --- reading: one function per kind of event ---------------------------------------------------


def _contact_upsert(v: dict[str, Any], event_id: str, at: datetime) -> Event:
    c = v["contact"]
    return ContactUpsert(
        event_id=event_id,
        occurred_at=at,
        contact_id=v["contact_id"],
        contact=ContactFields(
            email=c["email"],
            zip_code=c["zip_code"],
            state=c["state"],
            birth_date=optional_date(c["birth_date"]),
            effective_date=optional_date(c["effective_date"]),
            phone_number=c.get("phone_number"),
            first_name=c.get("first_name"),
            last_name=c.get("last_name"),
        ),
    )


def _contact_delete(v: dict[str, Any], event_id: str, at: datetime) -> Event:
    return ContactDelete(event_id=event_id, occurred_at=at, contact_id=v["contact_id"])


def _click(v: dict[str, Any], event_id: str, at: datetime) -> Event:
    return ClickEvent(
        event_id=event_id,
        occurred_at=at,
        contact_id=v["contact_id"],
        tracking_id=v["tracking_id"],
        quote_id=v.get("quote_id"),
    )


def _health_answer(v: dict[str, Any], event_id: str, at: datetime) -> Event:
    a = v["answers"]
    return HealthEvent(
        event_id=event_id,
        occurred_at=at,
        contact_id=v["contact_id"],
        has_medical_conditions=a["has_medical_conditions"],
        main_questions_yes_count=a["main_questions_yes_count"],
        answers_count=a.get("answers_count"),
        answers=_frozen(a),
    )


def _email_status(v: dict[str, Any], event_id: str, at: datetime) -> Event:
    sent_at = v.get("actual_send_datetime")
    return EmailStatusEvent(
        event_id=event_id,
        occurred_at=at,
        contact_id=v["contact_id"],
        occurrence_key=v["occurrence_key"],
        status=v["status"],
        actual_send_datetime=None if sent_at is None else parse_datetime(sent_at),
    )


def _campaign_type_upsert(v: dict[str, Any], event_id: str, at: datetime) -> Event:
    t = v["campaign_type"]
    return CampaignTypeUpsert(
        event_id=event_id,
        occurred_at=at,
        name=t["name"],
        given=_frozen({k: t[k] for k in CAMPAIGN_TYPE_FIELDS if k in t}),
        changed_by=v.get("changed_by"),
    )


def _instance_upsert(v: dict[str, Any], event_id: str, at: datetime) -> Event:
    i = v["instance"]
    return InstanceUpsert(
        event_id=event_id,
        occurred_at=at,
        instance=CampaignInstance(
            id=i["id"],
            campaign_type=i["campaign_type"],
            instance_name=i["instance_name"],
            email_template=i["email_template"],
            sms_template=i["sms_template"],
            active_start_date=optional_date(i["active_start_date"]),
            active_end_date=optional_date(i["active_end_date"]),
            metadata=_json_text(i.get("metadata")),
        ),
        changed_by=v.get("changed_by"),
    )


def _targets(v: dict[str, Any], event_id: str, at: datetime) -> Event:
    return TargetsEvent(
        event_id=event_id,
        occurred_at=at,
        instance_id=v["instance_id"],
        targets=tuple(
            Target(
                contact_id=t["contact_id"],
                trigger_date=optional_date(t["trigger_date"]),
                status=t.get("status"),
                metadata=_json_text(t.get("metadata")),
            )
            for t in v["targets"]
        ),
        changed_by=v.get("changed_by"),
    )


def _sweep_run(v: dict[str, Any], event_id: str, at: datetime) -> Event:
    summary = v.get("summary")
    return SweepRun(
        event_id=event_id,
        occurred_at=at,
        run_id=v["run_id"],
        as_of=parse_date(v["as_of"]),
        config=_frozen(v["config"]),
        offsets=_offsets(v["offsets"]),
        summary=None if summary is None else _frozen(summary),
    )


def _baseline(v: dict[str, Any], event_id: str, at: datetime) -> Event:
    snap = v["snapshot"]
    return BaselineRecord(
        event_id=event_id,
        occurred_at=at,
        baseline_id=v["baseline_id"],
        as_of=parse_date(v["as_of"]),
        epoch_id=v["epoch_id"],
        source=v["source"],
        snapshot_path=snap["path"],
        snapshot_sha256=snap["sha256"],
        snapshot_bytes=snap["bytes"],
        schedules_checksum=v["schedules_checksum"],
        offsets=_offsets(v["offsets"]),
        config=_frozen(v["config"]),
    )


def _by_op(readers: Mapping[str, _Reader]) -> _Reader:
    """The reader of a topic whose values say which event they are by their ``op``
    (one of the schema's, so always in ``readers``)."""

    def read(v: dict[str, Any], event_id: str, at: datetime) -> Event:
        return readers[v["op"]](v, event_id, at)

    return read


_READERS: Final[Mapping[str, _Reader]] = {
    CONTACTS: _by_op({"upsert": _contact_upsert, "delete": _contact_delete}),
    CLICKS: _click,
    HEALTH: _health_answer,
    EMAIL_STATUS: _email_status,
    CAMPAIGNS: _by_op(
        {"type_upsert": _campaign_type_upsert, "instance_upsert": _instance_upsert, "targets": _targets}
    ),
    SWEEP_RUNS: _sweep_run,
    BASELINES: _baseline,
}


def parse_event(topic_kind: str, raw: RawValue, checked: bool = False) -> Event:
    """The typed event of an input topic's raw value, or ``EventError`` naming the problem.

    ``topic_kind`` is the topic's name without the agency prefix (``contacts``,
    ``clicks``, ``health``, ``email-status``, ``campaigns``, ``sweep-runs``, ``baselines``).
    ``checked``: ``decode_record`` has accepted this very value already (the worker's
    agents check values before the database process reads them), so it is not checked again.
    """
    if topic_kind not in INPUT_KINDS:
        raise ValueError(f"{topic_kind!r} is not an input topic (expected one of {INPUT_KINDS})")
    v = orjson.loads(raw) if checked and raw is not None else decode_record(topic_kind, raw)
    return _READERS[topic_kind](v, v["event_id"], parse_datetime(v["occurred_at"]))


def expected_key(event: Event) -> str:
    """The Kafka key of an event as text: the contact id, instance id, type name or run id."""
    if isinstance(event, CampaignTypeUpsert):
        return event.name
    if isinstance(event, InstanceUpsert):
        return str(event.instance.id)
    if isinstance(event, TargetsEvent):
        return str(event.instance_id)
    if isinstance(event, SweepRun):
        return event.run_id
    if isinstance(event, BaselineRecord):
        return event.baseline_id
    return str(event.contact_id)


# --- writing: one function per kind of event ---------------------------------------------------


def _contact_upsert_value(event: ContactUpsert, head: dict[str, Any]) -> dict[str, Any]:
    c = event.contact
    contact = {
        "email": c.email,
        "zip_code": c.zip_code,
        "state": c.state,
        "birth_date": iso_date(c.birth_date),
        "effective_date": iso_date(c.effective_date),
        "phone_number": c.phone_number,
        "first_name": c.first_name,
        "last_name": c.last_name,
    }
    return {**head, "op": "upsert", "contact_id": event.contact_id, "contact": contact}


def _contact_delete_value(event: ContactDelete, head: dict[str, Any]) -> dict[str, Any]:
    return {**head, "op": "delete", "contact_id": event.contact_id}


def _click_value(event: ClickEvent, head: dict[str, Any]) -> dict[str, Any]:
    value = {**head, "contact_id": event.contact_id, "tracking_id": event.tracking_id, "quote_id": event.quote_id}
    return _without_none(value, "quote_id")


def _health_answer_value(event: HealthEvent, head: dict[str, Any]) -> dict[str, Any]:
    answers = {
        **event.answers,
        "has_medical_conditions": event.has_medical_conditions,
        "main_questions_yes_count": event.main_questions_yes_count,
    }
    if event.answers_count is not None:
        answers["answers_count"] = event.answers_count
    return {**head, "contact_id": event.contact_id, "answers": answers}


def _email_status_value(event: EmailStatusEvent, head: dict[str, Any]) -> dict[str, Any]:
    sent_at = event.actual_send_datetime
    value = {
        **head,
        "contact_id": event.contact_id,
        "occurrence_key": event.occurrence_key,
        "status": event.status,
        "actual_send_datetime": None if sent_at is None else format_datetime(sent_at),
    }
    return _without_none(value, "actual_send_datetime")


def _campaign_head(head: dict[str, Any], changed_by: str | None) -> dict[str, Any]:
    return _without_none({**head, "changed_by": changed_by}, "changed_by")


def _campaign_type_upsert_value(event: CampaignTypeUpsert, head: dict[str, Any]) -> dict[str, Any]:
    campaign_type = {"name": event.name, **event.given}
    return {**_campaign_head(head, event.changed_by), "op": "type_upsert", "campaign_type": campaign_type}


def _instance_upsert_value(event: InstanceUpsert, head: dict[str, Any]) -> dict[str, Any]:
    i = event.instance
    instance = {
        "id": i.id,
        "campaign_type": i.campaign_type,
        "instance_name": i.instance_name,
        "email_template": i.email_template,
        "sms_template": i.sms_template,
        "active_start_date": iso_date(i.active_start_date),
        "active_end_date": iso_date(i.active_end_date),
        "metadata": _json_value(i.metadata),
    }
    return {**_campaign_head(head, event.changed_by), "op": "instance_upsert", "instance": instance}


def _target_value(t: Target) -> dict[str, Any]:
    value = {
        "contact_id": t.contact_id,
        "trigger_date": iso_date(t.trigger_date),
        "status": t.status,
        "metadata": _json_value(t.metadata),
    }
    return _without_none(value, "status", "metadata")


def _targets_value(event: TargetsEvent, head: dict[str, Any]) -> dict[str, Any]:
    targets = [_target_value(t) for t in event.targets]
    return {**_campaign_head(head, event.changed_by), "op": "targets", "instance_id": event.instance_id, "targets": targets}


def _sweep_run_value(event: SweepRun, head: dict[str, Any]) -> dict[str, Any]:
    value = {
        **head,
        "run_id": event.run_id,
        "as_of": event.as_of.isoformat(),
        "config": dict(event.config),
        "offsets": _offsets_value(event.offsets),
        "summary": None if event.summary is None else dict(event.summary),
    }
    return _without_none(value, "summary")


def _baseline_value(event: BaselineRecord, head: dict[str, Any]) -> dict[str, Any]:
    return {
        **head,
        "baseline_id": event.baseline_id,
        "as_of": event.as_of.isoformat(),
        "epoch_id": event.epoch_id,
        "source": event.source,
        "snapshot": {"path": event.snapshot_path, "sha256": event.snapshot_sha256, "bytes": event.snapshot_bytes},
        "schedules_checksum": event.schedules_checksum,
        "offsets": _offsets_value(event.offsets),
        "config": dict(event.config),
    }


_WRITERS: Final[Mapping[type, _Writer]] = {
    ContactUpsert: _contact_upsert_value,
    ContactDelete: _contact_delete_value,
    ClickEvent: _click_value,
    HealthEvent: _health_answer_value,
    EmailStatusEvent: _email_status_value,
    CampaignTypeUpsert: _campaign_type_upsert_value,
    InstanceUpsert: _instance_upsert_value,
    TargetsEvent: _targets_value,
    SweepRun: _sweep_run_value,
    BaselineRecord: _baseline_value,
}


def event_to_mapping(event: Event) -> dict[str, Any]:
    """The JSON-ready value of an input event: ``parse_event`` of its dump gives it back."""
    head: dict[str, Any] = {"event_id": event.event_id, "occurred_at": format_datetime(event.occurred_at)}
    return _WRITERS[type(event)](event, head)


def dumps_event(obj: Event | Mapping[str, Any]) -> bytes:
    """A topic value's bytes: an input event (via ``event_to_mapping``) or an output record.

    Keys are sorted so the same record is always the same bytes.
    """
    # One look-up, not an isinstance per kind: most values written are output records.
    value = event_to_mapping(cast(Event, obj)) if type(obj) in _WRITERS else obj
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
