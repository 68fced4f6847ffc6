"""Builders shared by the rule tests (unit and property): contacts, campaign types,
instances and targets, stored rows of initial emails and follow-ups, a ``schedule_contact``
call for one day, and health-answer metadata.

Import it as ``tests.builders``: ``tests/conftest.py`` (``tests`` being a package) makes
pytest put the repository root on ``sys.path``, for the whole suite and for a single file.
The SPEC oracle of the property tests (``tests/rules/oracle.py``) is independent
of these on purpose and does not use them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, time
from types import MappingProxyType

from hypothesis import strategies as st

from rules.campaign import CampaignBook, CampaignInstance, CampaignTarget
from rules.config import DEFAULT_CONFIG, CampaignType, Config
from rules.contact import Contact
from rules.contact_schedule import ContactSchedule, Decision, ExistingRow, schedule_contact
from rules.followup import FOLLOWUP_COLD, NO_BEHAVIOUR, Behaviour, HealthAnswer
from rules.placement import Horizon
from rules.statuses import PRE_SCHEDULED

CID = 42  # the contact of every builder below unless said otherwise

# --- contacts --------------------------------------------------------------------------------


def make_contact(
    state: str = "TX",
    birth: date | None = None,
    effective: date | None = None,
    *,
    phone: str | None = None,
    email: str = "pat@example.com",
    id: int = CID,
) -> Contact:
    return Contact(id, email, state, birth, effective, phone_number=phone)


# TX has no exclusion windows; no birth or effective date: no anniversary emails of its own.
TX = make_contact("TX")
TX_PHONE = make_contact("TX", phone="555-0100")


# --- campaigns -------------------------------------------------------------------------------

RATE_INCREASE = CampaignType("rate_increase", days_before_event=14, priority=4)
REGULATORY = CampaignType(
    "regulatory_notice", respect_exclusion_windows=False, enable_followups=False, priority=1
)
PLAN_NEWS = CampaignType("plan_news", priority=2)
WELCOME = CampaignType("welcome", days_before_event=-7, priority=6)
PAUSED = CampaignType("paused_promo", active=False)


def campaign_types(*types: CampaignType) -> MappingProxyType[str, CampaignType]:
    """The types by name, in the order given."""
    return MappingProxyType({t.name: t for t in types})


def instance(
    id: int,
    campaign_type: str = "rate_increase",
    start: date | None = None,
    end: date | None = None,
    email: str | None = "rate_increase_v1",
    sms: str | None = "rate_increase_sms_v1",
) -> CampaignInstance:
    return CampaignInstance(id, campaign_type, f"instance {id}", email, sms, start, end, None)


def target(
    instance_id: int, trigger: date | None, status: str = "pending", contact_id: int = CID
) -> CampaignTarget:
    return CampaignTarget(contact_id, instance_id, trigger, status, None)


# --- follow-ups: the initial email and its follow-up rows --------------------------------------

T = date(2025, 6, 10)
# The initial email: a birthday email sent on 2025-06-05 at 08:31 (its event 2025-06-19).
SENT_AT = datetime(2025, 6, 5, 8, 31)
INITIAL_KEY = f"{CID}:birthday:2025"
FU_KEY = f"{CID}:followup:{INITIAL_KEY}"
# Email types that get a follow-up (a campaign type when its type enables them).
FOLLOWED_UP_TYPES = (
    "birthday",
    "effective_date",
    "aep",
    "post_window",
    "BIRTHDAY",
    "POST_WINDOW_BIRTHDAY",
    "campaign_rate_increase",
)


def initial_row(
    id: int = 100,
    sent_at: datetime = SENT_AT,
    *,
    email_type: str = "birthday",
    status: str = "sent",
    key: str | None = INITIAL_KEY,
    priority: int | None = 5,
    instance_id: int | None = None,
    event_date: date | None = date(2025, 6, 19),
    placed_run_id: str | None = "run-0",
) -> ExistingRow:
    """The stored row of an initial email, sent at ``sent_at``."""
    return ExistingRow(
        id,
        email_type,
        sent_at.date(),
        status,
        occurrence_key=key,
        ideal_send_date=sent_at.date(),
        event_year=event_date.year if event_date else None,
        placed_run_id=placed_run_id,
        send_time=time(8, 30),
        actual_send_at=sent_at,
        priority=priority,
        campaign_instance_id=instance_id,
        event_date=event_date,
    )


def followup_row(
    id: int = 200,
    *,
    email_type: str = FOLLOWUP_COLD,
    send: date = date(2025, 6, 11),
    status: str = PRE_SCHEDULED,
    key: str | None = FU_KEY,
    ideal: date | None = date(2025, 6, 7),
    metadata: str | None = None,
    priority: int | None = 5,
    event_date: date | None = date(2025, 6, 19),
) -> ExistingRow:
    """A stored follow-up row (by default the pending follow-up of ``initial_row()``)."""
    return ExistingRow(
        id,
        email_type,
        send,
        status,
        occurrence_key=key,
        ideal_send_date=ideal,
        event_year=2025,
        placed_run_id="run-1",
        priority=priority,
        event_date=event_date,
        metadata=metadata,
    )


def as_stored(
    d: Decision, row_id: int, run_id: str = "run-1", send_time: time | None = None
) -> ExistingRow:
    """The row a sweep writes for a decision, as the next sweep reads it."""
    occ = d.occurrence
    return ExistingRow(
        row_id,
        occ.email_type,
        d.send_date,
        d.status,
        occurrence_key=occ.key,
        ideal_send_date=occ.ideal_send_date,
        event_year=occ.event_date.year,
        placed_run_id=run_id,
        skip_reason=d.skip_reason,
        send_time=send_time,
        priority=occ.priority,
        campaign_instance_id=occ.campaign_instance_id,
        event_date=occ.event_date,
        metadata=occ.metadata,
    )


# --- behaviour -------------------------------------------------------------------------------


def answer(at: datetime, **fields: object) -> HealthAnswer:
    """A health answer at ``at`` whose metadata holds ``fields``."""
    return HealthAnswer(at, json.dumps(fields))


def health_metadata(max_yes_count: int) -> st.SearchStrategy[str]:
    """Health-answer metadata as JSON, each of its two fields present or not."""
    return st.builds(
        lambda flag, count: json.dumps(
            {
                k: v
                for k, v in (("has_medical_conditions", flag), ("main_questions_yes_count", count))
                if v is not None
            }
        ),
        st.one_of(st.none(), st.booleans()),
        st.one_of(st.none(), st.integers(0, max_yes_count)),
    )


# --- one contact, one day ----------------------------------------------------------------------


def schedule_on(
    as_of: date,
    contact: Contact,
    rows: Sequence[ExistingRow],
    *,
    campaigns: CampaignBook,
    targets: Sequence[CampaignTarget] = (),
    behaviour: Behaviour = NO_BEHAVIOUR,
    config: Config = DEFAULT_CONFIG,
    failed_runs: frozenset[str] = frozenset(),
) -> ContactSchedule:
    """``schedule_contact`` for a sweep on ``as_of``."""
    return schedule_contact(
        contact,
        rows,
        config,
        Horizon(as_of),
        failed_runs,
        campaigns=campaigns,
        targets=targets,
        behaviour=behaviour,
    )


def rate_increase_q2_events(at: str) -> list[dict[str, object]]:
    """Campaign topic values: type rate_increase (14 days before, priority 1) and its Q2
    instance, id 3, active March 1 to June 30 2026; ``at`` is their occurred_at."""
    return [
        {"event_id": "a1", "occurred_at": at, "op": "type_upsert",
         "campaign_type": {"name": "rate_increase", "days_before_event": 14, "priority": 1}},
        {"event_id": "a2", "occurred_at": at, "op": "instance_upsert", "changed_by": "ops",
         "instance": {"id": 3, "campaign_type": "rate_increase", "instance_name": "Q2",
                      "email_template": "ri_q2", "sms_template": None,
                      "active_start_date": "2026-03-01", "active_end_date": "2026-06-30", "metadata": None}},
    ]
