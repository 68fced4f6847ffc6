"""Occurrences: the emails the rules say a contact should get (SPEC section 5).

Each has a key (SPEC section 9, unique per row), an event date ``E``, an ideal
send date ``S``, a type and a priority.  This module builds the yearly ones
(birthday, effective date, AEP); post-window emails live in ``post_window``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from rules.anniversary import anniversary, next_anniversary
from rules.config import BIRTHDAY, EFFECTIVE_DATE, Config
from rules.contact import Contact
from rules.exclusion_window import Window
from rules.records import quick_init

AEP = "aep"
POST_WINDOW = "post_window"
FOLLOWUP_PREFIX = "followup"
YEARLY_TYPES = (BIRTHDAY, EFFECTIVE_DATE)


@quick_init
@dataclass(frozen=True)
class Occurrence:
    key: str
    contact_id: int
    email_type: str
    event_date: date
    ideal_send_date: date
    priority: int
    email_template: str | None
    sms_template: str | None
    respects_windows: bool = True
    campaign_instance_id: int | None = None
    window: Window | None = None  # post-window emails: the window that blocked
    note: str = ""  # how the ideal date was found, for explain
    metadata: str | None = None  # the row's JSON metadata (follow-ups: what decided the type)

    @property
    def is_followup(self) -> bool:
        return self.email_type.startswith(FOLLOWUP_PREFIX)


def occurrence_key(contact_id: int, email_type: str, part: str) -> str:
    """``contact:type:part``, e.g. ``42:birthday:2026`` or ``42:aep:2026-09-15``."""
    return f"{contact_id}:{email_type}:{part}"


def templates(contact: Contact, email_type: str, config: Config) -> tuple[str | None, str | None]:
    """The email template of a type, and its SMS template when the contact has a phone."""
    sms = config.sms_templates.get(email_type) if contact.has_phone else None
    return config.email_templates.get(email_type), sms


def _days_before(email_type: str, config: Config) -> int:
    if email_type == BIRTHDAY:
        return config.timing.birthday_days_before
    return config.timing.effective_date_days_before


def _base(contact: Contact, email_type: str) -> date | None:
    return contact.birth_date if email_type == BIRTHDAY else contact.effective_date


def _priority(email_type: str, config: Config) -> int:
    return int(getattr(config.priorities, email_type))


def yearly_occurrence(contact: Contact, email_type: str, year: int, config: Config) -> Occurrence | None:
    """The birthday or effective-date email of ``year``; None before the first anniversary."""
    base = _base(contact, email_type)
    if base is None or year <= base.year:
        return None
    event = anniversary(base, year)
    email, sms = templates(contact, email_type, config)
    return Occurrence(
        key=occurrence_key(contact.id, email_type, str(year)),
        contact_id=contact.id,
        email_type=email_type,
        event_date=event,
        ideal_send_date=event - timedelta(days=_days_before(email_type, config)),
        priority=_priority(email_type, config),
        email_template=email,
        sms_template=sms,
    )


def next_yearly_occurrence(contact: Contact, email_type: str, as_of: date, config: Config) -> Occurrence | None:
    """The occurrence whose event is the next anniversary on or after ``as_of``."""
    base = _base(contact, email_type)
    if base is None:
        return None
    return yearly_occurrence(contact, email_type, next_anniversary(base, as_of).year, config)


def aep_occurrence(contact: Contact, event: date, config: Config) -> Occurrence:
    email, sms = templates(contact, AEP, config)
    return Occurrence(
        key=occurrence_key(contact.id, AEP, event.isoformat()),
        contact_id=contact.id,
        email_type=AEP,
        event_date=event,
        ideal_send_date=event,
        priority=config.priorities.aep,
        email_template=email,
        sms_template=sms,
    )


def next_aep_occurrences(contact: Contact, as_of: date, config: Config) -> list[Occurrence]:
    """Each configured AEP date of ``year(T)``, or of the next year once passed."""
    out = []
    for month, day in config.aep_dates:
        event = date(as_of.year, month, day)
        if event < as_of:
            event = date(as_of.year + 1, month, day)
        out.append(aep_occurrence(contact, event, config))
    return out


def ideal_send_dates_between(contact: Contact, start: date, end: date, config: Config) -> list[tuple[str, date]]:
    """Every (type, ideal send date) of the contact's yearly occurrences in ``[start, end]``.

    Used to decide whether a window blocks (SPEC section 6): any year counts.
    """
    found: list[tuple[str, date]] = []
    for email_type in YEARLY_TYPES:
        for year in range(start.year - 1, end.year + 3):
            occ = yearly_occurrence(contact, email_type, year, config)
            if occ is not None and start <= occ.ideal_send_date <= end:
                found.append((email_type, occ.ideal_send_date))
    for year in range(start.year, end.year + 1):
        for month, day in config.aep_dates:
            aep = date(year, month, day)
            if start <= aep <= end:
                found.append((AEP, aep))
    return found
