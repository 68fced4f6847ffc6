"""The input events as the stream uses them: frozen, typed, real dates and aware times.

``streams.events.codec`` makes them from topic values and writes them back;
the agents (``streams.worker.batch``) store them, replay reads the audit
records (``SweepRun``, ``BaselineRecord``).  ``TOPIC`` says which topic kind
each comes from.

Choices written down here (SPEC and ARCHITECTURE are silent on them):

- Free-form ``metadata`` (instances, targets) is kept as its JSON text
  (orjson, compact, keys sorted), which is what the ``metadata`` columns
  hold; ``None`` means no metadata.  Health ``answers`` keep every field given.
- ``SweepRun.config`` is kept as the mapping the sweep recorded
  (``Config.to_dict()``); it is not read back here (see ``SweepRun``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any, ClassVar, Final, TypeAlias

import orjson

from rules.campaign import CampaignInstance, CampaignTarget
from rules.config import CampaignType
from rules.contact import ContactRecord
from streams.events.kinds import (
    BASELINES,
    CAMPAIGNS,
    CLICKS,
    CONTACTS,
    EMAIL_STATUS,
    HEALTH,
    SWEEP_RUNS,
)
from streams.events.times import iso_date

# Campaign type fields an event may set (everything of CampaignType but its name).
CAMPAIGN_TYPE_FIELDS: Final = tuple(f.name for f in fields(CampaignType) if f.name != "name")


@dataclass(frozen=True)
class ContactFields:
    """A contact as an upsert gives it; dates parsed, the rest as given (the rules judge it)."""

    email: str
    zip_code: str | None
    state: str | None
    birth_date: date | None
    effective_date: date | None
    phone_number: str | None = None
    first_name: str | None = None
    last_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class ContactUpsert:
    TOPIC: ClassVar[str] = CONTACTS
    event_id: str
    occurred_at: datetime
    contact_id: int
    contact: ContactFields

    def record(self) -> ContactRecord:
        """The contact as ``rules.contact.validate_contact`` takes it."""
        c = self.contact
        return ContactRecord(
            id=self.contact_id,
            email=c.email,
            zip_code=c.zip_code,
            state=c.state,
            birth_date=iso_date(c.birth_date),
            effective_date=iso_date(c.effective_date),
            phone_number=c.phone_number,
        )


@dataclass(frozen=True, kw_only=True)
class ContactDelete:
    TOPIC: ClassVar[str] = CONTACTS
    event_id: str
    occurred_at: datetime
    contact_id: int


@dataclass(frozen=True, kw_only=True)
class ClickEvent:
    TOPIC: ClassVar[str] = CLICKS
    event_id: str
    occurred_at: datetime
    contact_id: int
    tracking_id: str
    quote_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class HealthEvent:
    TOPIC: ClassVar[str] = HEALTH
    event_id: str
    occurred_at: datetime
    contact_id: int
    has_medical_conditions: bool
    main_questions_yes_count: int
    answers_count: int | None
    # Every answer field given (the three above included), as the event gave it.
    answers: Mapping[str, Any] = field(hash=False)

    @property
    def metadata_text(self) -> str:
        """The ``contact_events.metadata`` JSON of this answer."""
        return orjson.dumps(dict(self.answers), option=orjson.OPT_SORT_KEYS).decode()


@dataclass(frozen=True, kw_only=True)
class EmailStatusEvent:
    TOPIC: ClassVar[str] = EMAIL_STATUS
    event_id: str
    occurred_at: datetime
    contact_id: int
    occurrence_key: str
    status: str  # lower case, one of the sending side's statuses
    actual_send_datetime: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class CampaignTypeUpsert:
    """A campaign type created or changed: only the fields in ``given`` change."""

    TOPIC: ClassVar[str] = CAMPAIGNS
    event_id: str
    occurred_at: datetime
    name: str
    given: Mapping[str, int | bool] = field(hash=False)  # the shape set_campaign_type takes
    changed_by: str | None = None

    def apply_to(self, base: CampaignType) -> CampaignType:
        """``base`` (the stored, configured or default type) with the given fields changed."""
        values = {f.name: getattr(base, f.name) for f in fields(base)}
        return CampaignType(**{**values, **self.given, "name": self.name})


@dataclass(frozen=True, kw_only=True)
class InstanceUpsert:
    """A campaign instance created or replaced (every field given; metadata as JSON text)."""

    TOPIC: ClassVar[str] = CAMPAIGNS
    event_id: str
    occurred_at: datetime
    instance: CampaignInstance
    changed_by: str | None = None


@dataclass(frozen=True)
class Target:
    """One targeted contact of a ``targets`` event; ``status`` None: not given."""

    contact_id: int
    trigger_date: date | None
    status: str | None = None
    metadata: str | None = None  # JSON text

    def campaign_target(
        self, instance_id: int, status_if_absent: str = "pending"
    ) -> CampaignTarget:
        """As ``rules.campaign`` takes it (``pending``: the legacy column default)."""
        return CampaignTarget(
            contact_id=self.contact_id,
            instance_id=instance_id,
            trigger_date=self.trigger_date,
            status=self.status if self.status is not None else status_if_absent,
            metadata=self.metadata,
        )


@dataclass(frozen=True, kw_only=True)
class TargetsEvent:
    TOPIC: ClassVar[str] = CAMPAIGNS
    event_id: str
    occurred_at: datetime
    instance_id: int
    targets: tuple[Target, ...]
    changed_by: str | None = None


@dataclass(frozen=True, kw_only=True)
class SweepRun:
    """One sweep, as replay needs it.

    ``config`` is the mapping the sweep recorded (``Config.to_dict()``, the config
    file's own shape, dated rule versions and their sources included):
    ``rules.config.config_from_mapping`` reads it back to an equal config, which is
    how replay runs the sweep again under the rules it used.
    """

    TOPIC: ClassVar[str] = SWEEP_RUNS
    event_id: str
    occurred_at: datetime
    run_id: str
    as_of: date
    config: Mapping[str, Any] = field(hash=False)
    # topic -> partition -> the next offset the sweep had not seen
    offsets: Mapping[str, Mapping[int, int]] = field(hash=False)
    summary: Mapping[str, Any] | None = field(default=None, hash=False)


@dataclass(frozen=True, kw_only=True)
class BaselineRecord:
    """A deployment's audit baseline (``streams.worker.baseline``), as replay needs it."""

    TOPIC: ClassVar[str] = BASELINES
    event_id: str
    occurred_at: datetime
    baseline_id: str
    as_of: date
    epoch_id: int
    source: str
    snapshot_path: str
    snapshot_sha256: str
    snapshot_bytes: int
    schedules_checksum: str
    offsets: Mapping[str, Mapping[int, int]] = field(hash=False)
    config: Mapping[str, Any] = field(hash=False)


Event: TypeAlias = (
    ContactUpsert
    | ContactDelete
    | ClickEvent
    | HealthEvent
    | EmailStatusEvent
    | CampaignTypeUpsert
    | InstanceUpsert
    | TargetsEvent
    | SweepRun
    | BaselineRecord
)

