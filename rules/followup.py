"""Follow-ups (SPEC section 8, second part): one email after each initial email,
whose type is earned by what the contact did after receiving it.

An initial email is a row in ``sent`` or ``delivered`` (any letter case) of
type birthday, effective date, AEP, post-window (legacy upper-case types and
``POST_WINDOW_*`` included) or of a campaign whose type enables follow-ups,
sent in ``[T - 35, T]``.  It gets exactly one follow-up, keyed by the initial
email's key (or, for a legacy row without a key, its row id), so an upgrade
of the type stays one row.

Choices written down here (the SPEC is silent on them):
- Send time of the initial email: ``actual_send_datetime``; without it, the
  scheduled date at its scheduled send time (the earliest moment the sending
  side picks a row up), or at 00:00 when no time is recorded.  Behaviour at or
  after that moment counts.  All datetimes given to this module must follow
  one convention (all naive Central Time, or all aware); the shell converts.
- A campaign email of a type no longer known gets no follow-up: whether its
  type enables follow-ups cannot be told.  A known type that was made inactive
  still follows up the emails already sent: ``active`` stops new sends.
- Health-answer metadata that is missing, not JSON or not a JSON object, or
  whose two fields hold values of the wrong kind, counts as an answer without
  a condition, and the problem is reported.
- The deciding behaviour recorded in the metadata is the earliest one of the
  kind that decided the type, so the record does not depend on input order.
- A follow-up's event date is its parent's event date when the initial row
  records one; otherwise (legacy rows without event year) its own ideal date.
- A follow-up of an unknown type name (legacy text) ranks below every known
  type: an upgrade replaces it, which only ever happens to a row we own.

Placement (applied by the caller, see ``place_followup``): the ideal date is
the initial send date + ``followup_days_after``; if that is before ``T`` the
follow-up goes out on ``T + 1`` (today's sending has already begun).  The
recorded ideal date stays the initial + 2, so the next sweep keeps the
placement (SPEC section 5) instead of moving it one day further every day.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from rules.bounds import excerpt
from rules.campaign import campaign_type_name
from rules.config import BIRTHDAY, EFFECTIVE_DATE, CampaignType, Config
from rules.contact import Contact
from rules.occurrence import (
    AEP,
    FOLLOWUP_PREFIX,
    POST_WINDOW,
    Occurrence,
    occurrence_key,
    templates,
)
from rules.placement import Placement
from rules.records import quick_init
from rules.statuses import normalized_type

FOLLOWUP_COLD = "followup_1_cold"
FOLLOWUP_CLICKED = "followup_2_clicked_no_hq"
FOLLOWUP_HEALTHY = "followup_3_hq_no_yes"
FOLLOWUP_CONDITIONS = "followup_4_hq_with_yes"
# Lowest to highest: the type a contact's behaviour earns is the highest reached.
FOLLOWUP_TYPES = (FOLLOWUP_COLD, FOLLOWUP_CLICKED, FOLLOWUP_HEALTHY, FOLLOWUP_CONDITIONS)
_RANK = {name: rank for rank, name in enumerate(FOLLOWUP_TYPES, start=1)}

INITIAL_STATUSES = frozenset({"sent", "delivered"})
INITIAL_TYPES = frozenset({BIRTHDAY, EFFECTIVE_DATE, AEP, POST_WINDOW})
INITIAL_LOOKBACK_DAYS = 35
LEGACY_FOLLOWUP_DAYS = 35  # a legacy follow-up this close after an initial is taken as its own


@quick_init
@dataclass(frozen=True)
class EmailRow:
    """An ``email_schedules`` row as the follow-up rules need it."""

    id: int
    contact_id: int
    email_type: str
    status: str
    scheduled_send_date: date | None
    actual_send_datetime: datetime | None = None
    scheduled_send_time: time | None = None
    occurrence_key: str | None = None
    priority: int | None = None
    campaign_instance_id: int | None = None
    event_date: date | None = None
    metadata: str | None = None

    @property
    def is_followup(self) -> bool:
        return normalized_type(self.email_type).startswith(FOLLOWUP_PREFIX)

    @property
    def send_at(self) -> datetime | None:
        if self.actual_send_datetime is not None:
            return self.actual_send_datetime
        if self.scheduled_send_date is None:
            return None
        return datetime.combine(self.scheduled_send_date, self.scheduled_send_time or time(0, 0))


@dataclass(frozen=True)
class InitialEmail:
    """A sent email that calls for a follow-up."""

    row_id: int
    key: str | None  # None for legacy rows
    contact_id: int
    email_type: str  # as stored; ``parent_type`` is the normalized one
    status: str
    send_at: datetime
    priority: int
    campaign_instance_id: int | None = None
    event_date: date | None = None

    @property
    def send_date(self) -> date:
        return self.send_at.date()

    @property
    def parent_type(self) -> str:
        return normalized_type(self.email_type)


@dataclass(frozen=True)
class Click:
    """A ``tracking_clicks`` row."""

    at: datetime


@dataclass(frozen=True)
class HealthAnswer:
    """A ``contact_events`` row of type ``eligibility_answered``."""

    at: datetime
    metadata: str | None


@dataclass(frozen=True)
class Behaviour:
    """What a contact did that can decide a follow-up's type: its clicks and health answers."""

    clicks: tuple[Click, ...] = ()
    answers: tuple[HealthAnswer, ...] = ()


NO_BEHAVIOUR = Behaviour()


# --- which rows are initial emails -------------------------------------------


def _enables_followups(email_type: str, types: Mapping[str, CampaignType]) -> bool:
    kind = normalized_type(email_type)
    if kind in INITIAL_TYPES:
        return True
    name = campaign_type_name(kind)
    if name is None:
        return False
    ctype = types.get(name)
    return ctype is not None and ctype.enable_followups


def is_initial_email(
    row: EmailRow, types: Mapping[str, CampaignType], as_of: date, any_age: bool = False
) -> bool:
    """SPEC section 8: sent or delivered, of a following-up type, sent in ``[T - 35, T]``.

    ``any_age``: sent on or before ``T``, however long ago.  A follow-up placed
    on ``T + 1`` for an initial sent on ``T - 35`` is still pending when the
    initial leaves the 35 days: its row is re-decided, not removed.
    """
    if row.status.strip().lower() not in INITIAL_STATUSES:
        return False
    if not _enables_followups(row.email_type, types):
        return False
    sent = row.send_at
    if sent is None:
        return False
    if sent.date() > as_of:
        return False
    return any_age or as_of - timedelta(days=INITIAL_LOOKBACK_DAYS) <= sent.date()


def _default_priority(kind: str, types: Mapping[str, CampaignType], config: Config) -> int:
    name = campaign_type_name(kind)
    if name is not None:
        ctype = types.get(name)
        return ctype.priority if ctype is not None else CampaignType(name).priority
    return int(getattr(config.priorities, kind))


def initial_email(
    row: EmailRow,
    types: Mapping[str, CampaignType],
    config: Config,
    as_of: date,
    any_age: bool = False,
) -> InitialEmail | None:
    """The row as an initial email, or None when it is not one as of ``T``.

    A legacy row without a priority takes its type's configured priority.
    """
    if not is_initial_email(row, types, as_of, any_age):
        return None
    send_at = row.send_at
    assert send_at is not None  # is_initial_email checked it
    kind = normalized_type(row.email_type)
    return InitialEmail(
        row_id=row.id,
        key=row.occurrence_key,
        contact_id=row.contact_id,
        email_type=row.email_type,
        status=row.status,
        send_at=send_at,
        priority=row.priority
        if row.priority is not None
        else _default_priority(kind, types, config),
        campaign_instance_id=row.campaign_instance_id,
        event_date=row.event_date,
    )


# --- behaviour and the type it earns ------------------------------------------


def health_answer_outcome(metadata: str | None) -> tuple[bool, str | None]:
    """(has a condition, problem to report) of one health answer's metadata."""
    if metadata is None or not metadata.strip():
        return False, "health answer without metadata: counted as an answer without a condition"
    try:
        data: Any = json.loads(metadata)
    except ValueError:
        return False, (
            f"health answer metadata is not JSON ({excerpt(metadata)}): counted as an answer "
            "without a condition"
        )
    if not isinstance(data, dict):
        return False, (
            f"health answer metadata is not a JSON object ({excerpt(metadata)}): counted as an "
            "answer without a condition"
        )
    flag = data.get("has_medical_conditions")
    count = data.get("main_questions_yes_count")
    wrong: list[str] = []
    if flag is not None and not isinstance(flag, bool):
        wrong.append(f"has_medical_conditions={excerpt(flag)}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, (int, float))):
        wrong.append(f"main_questions_yes_count={excerpt(count)}")
    has_condition = flag is True or (
        isinstance(count, (int, float)) and not isinstance(count, bool) and count > 0
    )
    if wrong:
        counted = "with" if has_condition else "without"
        return has_condition, (
            f"health answer metadata holds {', '.join(wrong)}: counted as an answer {counted} "
            "a condition"
        )
    return has_condition, None


def followup_type(
    initial_send_at: datetime, clicks: Iterable[Click], answers: Iterable[HealthAnswer]
) -> tuple[str, dict[str, Any]]:
    """The highest follow-up type earned by behaviour at or after the initial send time,
    and the evidence (JSON-ready, independent of input order)."""
    click_times = sorted(c.at for c in clicks if c.at >= initial_send_at)
    with_condition: list[datetime] = []
    without_condition: list[datetime] = []
    for answer in answers:
        if answer.at < initial_send_at:
            continue
        has_condition, _ = health_answer_outcome(answer.metadata)
        (with_condition if has_condition else without_condition).append(answer.at)
    evidence: dict[str, Any] = {
        "clicks": len(click_times),
        "health_answers": len(with_condition) + len(without_condition),
        "health_answers_with_condition": len(with_condition),
    }
    if with_condition:
        kind, decided_by, at = (
            FOLLOWUP_CONDITIONS,
            "health answer with a condition",
            min(with_condition),
        )
    elif without_condition:
        kind, decided_by, at = (
            FOLLOWUP_HEALTHY,
            "health answer without a condition",
            min(without_condition),
        )
    elif click_times:
        kind, decided_by, at = FOLLOWUP_CLICKED, "click", click_times[0]
    else:
        evidence["decided_by"] = "no click or health answer since the initial email"
        return FOLLOWUP_COLD, evidence
    evidence["decided_by"] = decided_by
    evidence["decided_at"] = at.isoformat()
    return kind, evidence


def health_answer_problems(
    contact_id: int, initial_send_at: datetime, answers: Iterable[HealthAnswer]
) -> list[str]:
    """The reports due for the answers that ``followup_type`` counted."""
    problems = []
    for answer in sorted(answers, key=lambda a: a.at):
        if answer.at < initial_send_at:
            continue
        _, problem = health_answer_outcome(answer.metadata)
        if problem is not None:
            problems.append(f"contact {contact_id}: answer of {answer.at.isoformat()}: {problem}")
    return problems


def followup_rank(kind: str) -> int:
    """1 (cold) .. 4 (condition); 0 for a name that is not a follow-up type."""
    return _RANK.get(kind, 0)


def upgrade(current_type: str, new_type: str) -> str:
    """The type a pre-scheduled follow-up takes now: never lower than it was."""
    return new_type if followup_rank(new_type) > followup_rank(current_type) else current_type


# --- one follow-up per initial email ------------------------------------------


def followup_key(contact_id: int, initial: InitialEmail) -> str:
    """SPEC section 9: contact, ``followup``, the initial's key (or legacy row id).

    The type is not in the key, so an upgrade stays one row.
    """
    part = initial.key if initial.key is not None else f"row{initial.row_id}"
    return occurrence_key(contact_id, FOLLOWUP_PREFIX, part)


def _named_initial(row: EmailRow) -> tuple[str | None, int | None] | None:
    """The initial (key, row id) that a follow-up row's metadata names, or None."""
    if row.metadata is None:
        return None
    try:
        data: Any = json.loads(row.metadata)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    key = data.get("initial_key")
    row_id = data.get("initial_row_id")
    key = key if isinstance(key, str) else None
    row_id = row_id if isinstance(row_id, int) and not isinstance(row_id, bool) else None
    if key is None and row_id is None:
        return None
    return key, row_id


def _names(row: EmailRow, initial: InitialEmail) -> bool:
    named = _named_initial(row)
    if named is None:
        return False
    key, row_id = named
    if initial.key is not None and key is not None:
        return key == initial.key
    return row_id == initial.row_id


def _is_keyed_followup(row: EmailRow) -> bool:
    return row.occurrence_key is not None and row.occurrence_key.startswith(
        f"{row.contact_id}:{FOLLOWUP_PREFIX}:"
    )


def existing_followup(initial: InitialEmail, followup_rows: Iterable[EmailRow]) -> EmailRow | None:
    """The follow-up row that already answers ``initial``, if any, any status.

    By strength: the row with the follow-up's own key; a row whose metadata
    names the initial; for legacy rows that name no initial (no follow-up key,
    no such metadata), a follow-up of the contact dated within 35 days after
    the initial's send date (the earliest, then the lowest id).
    """
    own_key = followup_key(initial.contact_id, initial)
    rows = [r for r in followup_rows if r.is_followup and r.contact_id == initial.contact_id]
    for row in rows:
        if row.occurrence_key == own_key:
            return row
    named = sorted((r for r in rows if _names(r, initial)), key=lambda r: r.id)
    if named:
        return named[0]
    last = initial.send_date + timedelta(days=LEGACY_FOLLOWUP_DAYS)
    legacy = sorted(
        (
            r
            for r in rows
            if not _is_keyed_followup(r)
            and _named_initial(r) is None
            and r.scheduled_send_date is not None
            and initial.send_date <= r.scheduled_send_date <= last
        ),
        key=lambda r: (r.scheduled_send_date or date.min, r.id),
    )
    return legacy[0] if legacy else None


def already_has_followup(initial: InitialEmail, followup_rows: Iterable[EmailRow]) -> bool:
    return existing_followup(initial, followup_rows) is not None


def followup_ideal_date(initial: InitialEmail, config: Config) -> date:
    return initial.send_date + timedelta(days=config.timing.followup_days_after)


def followup_occurrence(
    contact: Contact,
    initial: InitialEmail,
    followup_type_name: str,
    evidence: Mapping[str, Any],
    config: Config,
    as_of: date,
) -> Occurrence:
    """The follow-up of ``initial`` as an occurrence (SPEC sections 5 and 8).

    The occurrence does not depend on ``as_of`` (it only guards against an
    initial email from the future): its ideal date stays the initial + 2 days
    in every sweep, so a placement on ``T + 1`` is kept by the next sweep.
    Place it with ``place_followup``.
    """
    if initial.send_date > as_of:
        raise ValueError(f"initial email row {initial.row_id} is sent after {as_of}")
    if followup_rank(followup_type_name) == 0:
        raise ValueError(f"{followup_type_name!r} is not a follow-up type")
    ideal = followup_ideal_date(initial, config)
    email, sms = templates(contact, followup_type_name, config)
    return Occurrence(
        key=followup_key(contact.id, initial),
        contact_id=contact.id,
        email_type=followup_type_name,
        event_date=initial.event_date if initial.event_date is not None else ideal,
        ideal_send_date=ideal,
        priority=initial.priority,
        email_template=email,
        sms_template=sms,
        respects_windows=True,
        campaign_instance_id=initial.campaign_instance_id,
        note=(
            f"follow-up of {initial.parent_type} sent {initial.send_at.isoformat()} "
            f"({initial.key or f'legacy row {initial.row_id}'}): "
            f"{evidence.get('decided_by', 'behaviour')}; ideal {ideal}"
        ),
    )


def place_followup_date(ideal: date, as_of: date) -> date:
    return ideal if ideal >= as_of else as_of + timedelta(days=1)


def place_followup(occ: Occurrence, as_of: date) -> Placement:
    """A fresh follow-up placement: the ideal date, or tomorrow once it has passed."""
    placed = place_followup_date(occ.ideal_send_date, as_of)
    if placed == occ.ideal_send_date:
        return Placement(placed, False, f"follow-up on its ideal date {placed}")
    return Placement(
        placed, True, f"follow-up ideal date {occ.ideal_send_date} passed: placed tomorrow {placed}"
    )


def followup_metadata(
    initial: InitialEmail, followup_type_name: str, evidence: Mapping[str, Any]
) -> str:
    """The ``metadata`` JSON of a follow-up row: what it follows and why it has its type."""
    return json.dumps(
        {
            "initial_key": initial.key,
            "initial_row_id": initial.row_id,
            "initial_type": initial.parent_type,
            "initial_send_at": initial.send_at.isoformat(),
            "followup_type": followup_type_name,
            "behaviour": dict(evidence),
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def initial_emails(
    rows: Sequence[EmailRow], types: Mapping[str, CampaignType], config: Config, as_of: date
) -> list[InitialEmail]:
    """Every initial email among a contact's rows, oldest first."""
    found = [i for i in (initial_email(r, types, config, as_of) for r in rows) if i is not None]
    return sorted(found, key=lambda i: (i.send_at, i.row_id))
