"""Campaigns (SPEC section 8, first part): types and instances as data.

A campaign type (``rules.config.CampaignType``) says how its emails behave;
an instance of it (``CampaignInstance``) says what is sent and when it may be
sent; the instance's targets (``CampaignTarget``, the ``contact_campaigns``
rows) say who gets it and for which trigger date.

Choices written down here (the SPEC is silent on them):
- A target's status is compared without regard to letter case or trimming,
  and both spellings ``cancelled`` / ``canceled`` cancel: an agent who
  cancels a target never wants the email to go out because of a spelling.
- For a type that targets all contacts, a contact's own row for the instance
  replaces the default even when that row is cancelled: cancelling is how a
  contact is taken out of an all-contacts campaign.
- A target row without a trigger date whose instance has no start date is
  reported per contact (it names a contact); the implicit all-contacts target
  of such an instance is not, since it would repeat for every contact in the
  database: ``instance_problems`` reports it once per run instead.
- Instances of an unknown or inactive type, and targets naming an instance
  not given, produce no email; unknown types are reported by
  ``instance_problems``.
- Templates come from the instance; where the instance has none, the config's
  template for ``campaign_<type>`` (if any) is used.  The SMS template is only
  given to contacts with a phone number.

- ``days_before_event`` lies within ``-MAX_DAYS_BEFORE_EVENT..MAX_DAYS_BEFORE_EVENT``
  (a year, as every other offset of the rules: ``rules.bounds``).  The ways
  in check it: ``mailwindow campaign type`` refuses a value beyond it, and a
  stored ``campaign_types`` row holding one is left out
  (``streams.store.campaigns``).

Campaign conflicts (SPEC section 7): two campaign emails for one contact on
one day cannot both go out; ``resolve_campaign_conflicts`` says which to skip.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from types import MappingProxyType
from typing import Protocol

from rules.config import MAX_DAYS, CampaignType, Config
from rules.contact import Contact
from rules.occurrence import Occurrence, occurrence_key
from rules.statuses import PRE_SCHEDULED, is_sent_like

CAMPAIGN_PREFIX = "campaign_"
CAMPAIGN_KEY_PART = "campaign"
CAMPAIGN_CONFLICT_REASON = "campaign conflict"
_CANCELLED = frozenset({"cancelled", "canceled"})
MAX_DAYS_BEFORE_EVENT = MAX_DAYS  # the config's bound on days: a year


def days_before_in_range(days: int) -> bool:
    """Whether a type's ``days_before_event`` is one the rules take (module docstring)."""
    return -MAX_DAYS_BEFORE_EVENT <= days <= MAX_DAYS_BEFORE_EVENT


@dataclass(frozen=True)
class CampaignInstance:
    """One run of a campaign type (a ``campaign_instances`` row)."""

    id: int
    campaign_type: str
    instance_name: str
    email_template: str | None
    sms_template: str | None
    active_start_date: date | None
    active_end_date: date | None
    metadata: str | None = None

    def allows(self, ideal_send_date: date) -> bool:
        """Whether an email ideally sent on this date belongs to the instance (open ends)."""
        if self.active_start_date is not None and ideal_send_date < self.active_start_date:
            return False
        return self.active_end_date is None or ideal_send_date <= self.active_end_date


@dataclass(frozen=True)
class CampaignTarget:
    """A contact targeted by an instance (a ``contact_campaigns`` row)."""

    contact_id: int
    instance_id: int
    trigger_date: date | None
    status: str
    metadata: str | None = None
    row_id: int | None = None  # the contact_campaigns id, so the status can be written back

    @property
    def cancelled(self) -> bool:
        return self.status.strip().lower() in _CANCELLED


@dataclass(frozen=True, eq=False)
class CampaignBook:
    """Every campaign type (config and table merged) and every instance: read once per run."""

    types: Mapping[str, CampaignType]
    instances: tuple[CampaignInstance, ...] = ()

    # Cached: the sweep asks for every contact it processes.
    @cached_property
    def active_instances(self) -> tuple[CampaignInstance, ...]:
        return tuple(
            i for i in self.instances if (t := self.types.get(i.campaign_type)) is not None and t.active
        )

    @cached_property
    def active_by_id(self) -> Mapping[int, CampaignInstance]:
        return MappingProxyType({i.id: i for i in self.active_instances})

    def instances_for(
        self,
        targets: Iterable[CampaignTarget],
        first: date,
        last: date,
        with_rows: Iterable[int] = (),
    ) -> list[CampaignInstance]:
        """The active instances that can matter to a contact with these targets, by id.

        An all-contacts instance matters when its default email (on its start
        date) is in view ``[first, last]``, when it respects windows (its date
        can make one of the contact's windows block, in any year), or when it
        is among ``with_rows``: the contact has a row of it awaiting its date.
        """
        by_id = self.active_by_id
        rows_of = set(with_rows)
        found = {
            i.id: i
            for i in self.targets_all
            if self.types[i.campaign_type].respect_exclusion_windows
            or i.id in rows_of
            or (i.active_start_date is not None and first <= i.active_start_date <= last)
        }
        for target in targets:
            instance = by_id.get(target.instance_id)
            if instance is not None:
                found[instance.id] = instance
        return [found[i] for i in sorted(found)]

    @cached_property
    def targets_all(self) -> tuple[CampaignInstance, ...]:
        """Active instances whose type targets every valid contact."""
        return tuple(i for i in self.active_instances if self.types[i.campaign_type].target_all_contacts)


EMPTY_BOOK = CampaignBook(MappingProxyType({}))


def campaign_email_type(type_name: str) -> str:
    return f"{CAMPAIGN_PREFIX}{type_name}"


def campaign_type_name(email_type: str) -> str | None:
    """``rate_increase`` for ``campaign_rate_increase`` (any case); None for other types."""
    lowered = email_type.lower()
    if not lowered.startswith(CAMPAIGN_PREFIX):
        return None
    return lowered[len(CAMPAIGN_PREFIX) :]


def campaign_key(contact_id: int, instance_id: int, trigger_date: date) -> str:
    """SPEC section 9: contact, instance id, trigger date — so two instances of one
    type in one year, or one instance with two trigger dates, are separate rows."""
    return occurrence_key(
        contact_id, CAMPAIGN_KEY_PART, f"{instance_id}:{trigger_date.isoformat()}"
    )


def merge_campaign_types(
    from_config: Mapping[str, CampaignType], from_table: Sequence[CampaignType]
) -> Mapping[str, CampaignType]:
    """Every campaign type by name; the ``campaign_types`` table wins over the config.

    The table is where agency staff change campaigns while the scheduler runs,
    so it is the more recent word.  Names are unique in the table (primary key);
    should a caller pass one twice anyway, the later one wins.
    """
    merged = dict(from_config)
    for campaign_type in from_table:
        merged[campaign_type.name] = campaign_type
    return MappingProxyType(dict(sorted(merged.items())))


def instance_problems(
    instances: Iterable[CampaignInstance], types: Mapping[str, CampaignType]
) -> list[str]:
    """What to report once per run about the instances themselves."""
    problems: list[str] = []
    for instance in sorted(instances, key=lambda i: i.id):
        ctype = types.get(instance.campaign_type)
        label = f"campaign instance {instance.id} ({instance.instance_name!r})"
        if ctype is None:
            problems.append(
                f"{label} is of unknown campaign type {instance.campaign_type!r}: no emails"
            )
            continue
        if (
            instance.active_start_date is not None
            and instance.active_end_date is not None
            and instance.active_end_date < instance.active_start_date
        ):
            problems.append(
                f"{label} ends {instance.active_end_date} before it starts "
                f"{instance.active_start_date}: no emails"
            )
        if ctype.active and ctype.target_all_contacts and instance.active_start_date is None:
            problems.append(
                f"{label} targets all contacts but has no start date: contacts without a "
                "trigger date of their own get no email"
            )
    return problems


def target_trigger(target: CampaignTarget, instance: CampaignInstance, ctype: CampaignType) -> date | None:
    """The trigger date a target row stands for: its own, else the instance's default."""
    if target.trigger_date is not None:
        return target.trigger_date
    return default_trigger(instance, ctype)


def default_trigger(instance: CampaignInstance, ctype: CampaignType) -> date | None:
    # Trigger = start + days_before so that ideal = trigger - days_before = start.
    if instance.active_start_date is None:
        return None
    return instance.active_start_date + timedelta(days=ctype.days_before_event)


def _campaign_occurrence(
    contact: Contact,
    instance: CampaignInstance,
    ctype: CampaignType,
    trigger: date,
    how: str,
    config: Config,
) -> Occurrence | None:
    ideal = trigger - timedelta(days=ctype.days_before_event)
    if not instance.allows(ideal):
        return None
    email_type = campaign_email_type(ctype.name)
    email = instance.email_template or config.email_templates.get(email_type)
    sms = (
        (instance.sms_template or config.sms_templates.get(email_type))
        if contact.has_phone
        else None
    )
    offset = ctype.days_before_event
    relation = f"{offset} days before" if offset >= 0 else f"{-offset} days after"
    return Occurrence(
        key=campaign_key(contact.id, instance.id, trigger),
        contact_id=contact.id,
        email_type=email_type,
        event_date=trigger,
        ideal_send_date=ideal,
        priority=ctype.priority,
        email_template=email,
        sms_template=sms,
        respects_windows=ctype.respect_exclusion_windows,
        campaign_instance_id=instance.id,
        note=(
            f"campaign {ctype.name!r} instance {instance.id} ({instance.instance_name!r}): "
            f"trigger {trigger} ({how}), sent {relation} it"
        ),
    )


def campaign_occurrences(
    contact: Contact,
    instances: Iterable[CampaignInstance],
    targets_of_contact: Iterable[CampaignTarget],
    types: Mapping[str, CampaignType],
    config: Config,
) -> tuple[list[Occurrence], list[str]]:
    """The contact's campaign emails of every year, and the problems to report.

    ``types`` is the merged mapping (``merge_campaign_types``).  Occurrences are
    returned in key order, one per key.  Whether one is in play for a sweep is
    placement's business (SPEC section 5), as for every other occurrence.
    """
    by_instance: dict[int, list[CampaignTarget]] = {}
    for target in targets_of_contact:
        if target.contact_id == contact.id:
            by_instance.setdefault(target.instance_id, []).append(target)
    found: dict[str, Occurrence] = {}
    problems: list[str] = []
    for instance in sorted(instances, key=lambda i: i.id):
        ctype = types.get(instance.campaign_type)
        if ctype is None or not ctype.active:
            continue
        own_rows = by_instance.get(instance.id, [])
        triggers: list[tuple[date, str]] = []
        for target in own_rows:
            if target.cancelled:
                continue
            if target.trigger_date is not None:
                triggers.append((target.trigger_date, "its target row"))
                continue
            default = default_trigger(instance, ctype)
            if default is None:
                problems.append(
                    f"contact {contact.id}: target of campaign instance {instance.id} "
                    f"({instance.instance_name!r}) has no trigger date and the instance no "
                    "start date: ignored"
                )
                continue
            triggers.append((default, "no trigger date on its row: start date + days before"))
        if ctype.target_all_contacts and not own_rows:
            default = default_trigger(instance, ctype)
            if default is not None:
                triggers.append((default, "all contacts targeted: start date + days before"))
        for trigger, how in triggers:
            occ = _campaign_occurrence(contact, instance, ctype, trigger, how, config)
            if occ is not None and occ.key not in found:
                found[occ.key] = occ
    return [found[k] for k in sorted(found)], problems


def written_targets(
    contact_id: int,
    targets: Iterable[CampaignTarget],
    book: CampaignBook,
    decided_keys: Iterable[str],
) -> list[tuple[int, str]]:
    """(target row id, occurrence key) of the targets whose email was decided.

    SPEC section 8: the scheduler writes back the status of the targets it
    wrote (``scheduled`` / ``skipped``); cancelled ones and those whose email
    is not in play are left as they are.
    """
    decided = set(decided_keys)
    out: list[tuple[int, str]] = []
    for target in targets:
        instance = book.active_by_id.get(target.instance_id)
        if instance is None or target.row_id is None or target.cancelled:
            continue
        trigger = target_trigger(target, instance, book.types[instance.campaign_type])
        if trigger is not None and (key := campaign_key(contact_id, instance.id, trigger)) in decided:
            out.append((target.row_id, key))
    return out


def blocking_campaign_dates(
    occurrences: Iterable[Occurrence], start: date, end: date
) -> list[tuple[str, date]]:
    """(type, ideal date) of campaign emails that make a window ``[start, end]`` block.

    SPEC section 6: only campaigns that respect windows block; a regulatory
    notice sent through a window never calls for a post-window email.  Same
    shape as ``rules.occurrence.ideal_send_dates_between``.
    """
    return sorted(
        (occ.email_type, occ.ideal_send_date)
        for occ in occurrences
        if campaign_type_name(occ.email_type) is not None
        and occ.respects_windows
        and start <= occ.ideal_send_date <= end
    )


# --- campaign conflicts (SPEC section 7) ------------------------------------


@dataclass(frozen=True)
class CampaignEmail:
    """One email as the conflict rule sees it, for callers that hold rows, not decisions."""

    key: str
    contact_id: int
    send_date: date
    status: str
    priority: int
    instance_id: int | None
    is_campaign: bool


class PlacedEmail(Protocol):
    """What the conflict rule reads of a decision; ``contact_schedule.Decision`` fits as is."""

    @property
    def occurrence(self) -> Occurrence: ...

    @property
    def send_date(self) -> date: ...

    @property
    def status(self) -> str: ...


def campaign_email_of(placed: PlacedEmail | CampaignEmail) -> CampaignEmail:
    if isinstance(placed, CampaignEmail):
        return placed
    occ = placed.occurrence
    return CampaignEmail(
        key=occ.key,
        contact_id=occ.contact_id,
        send_date=placed.send_date,
        status=placed.status,
        priority=occ.priority,
        instance_id=occ.campaign_instance_id,
        # Not the instance id: a follow-up inherits its parent's instance, but it
        # is not a campaign email and takes no part in conflicts.
        is_campaign=campaign_type_name(occ.email_type) is not None,
    )


def _rank(email: CampaignEmail) -> tuple[int, int, float, str]:
    # An email the sending side already holds cannot be skipped: it goes first.
    fixed = 0 if is_sent_like(email.status) else 1
    instance = email.instance_id if email.instance_id is not None else float("inf")
    return (fixed, email.priority, instance, email.key)


def resolve_campaign_conflicts(
    emails: Iterable[PlacedEmail | CampaignEmail],
) -> dict[str, str]:
    """Which campaign emails to skip with reason ``campaign conflict``: skipped key -> winner key.

    Per contact and day, among the campaign emails that will go out, the one
    with the lower priority number wins (tie: lower instance id, then key, so
    the answer never depends on input order); the other ``pre-scheduled`` ones
    are skipped.  Skipped emails (excluded by a window) do not compete.  An
    email in a sending-side status (a caller may pass such rows as
    ``CampaignEmail``) cannot be skipped, so it wins whatever its priority and
    is never in the answer.
    """
    days: dict[tuple[int, date], list[CampaignEmail]] = {}
    for placed in emails:
        email = campaign_email_of(placed)
        if not email.is_campaign:
            continue
        if email.status != PRE_SCHEDULED and not is_sent_like(email.status):
            continue
        days.setdefault((email.contact_id, email.send_date), []).append(email)
    skips: dict[str, str] = {}
    for same_day in days.values():
        if len(same_day) < 2:
            continue
        winner, *others = sorted(same_day, key=_rank)
        for other in others:
            if other.status == PRE_SCHEDULED:
                skips[other.key] = winner.key
    return dict(sorted(skips.items()))
