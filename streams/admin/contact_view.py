"""One contact as the people checking it see it: what ``mailwindow explain`` prints and the
console's contact page shows (``streams.console``), gathered once for both.

``gather_contact`` reads the contact, its stored rows (with their notes), the
campaign book, its targets and its behaviour in one read-only connection;
``ContactFacts.explanation`` is the plain-words explanation
(``rules.explain.explain_contact``), and ``ContactFacts.timeline`` what a
timeline of the months around the as-of date needs: the exclusion windows of
those years from the rules' own plan, and each email with its date and status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, inspect, text

from rules.bounds import shown
from rules.campaign import CampaignBook, CampaignTarget, campaign_occurrences
from rules.config import Config
from rules.contact import Contact, InvalidContact, validate_contact
from rules.contact_schedule import schedule_contact
from rules.exclusion_window import ContactWindows, Window
from rules.explain import explain_contact
from rules.followup import NO_BEHAVIOUR, Behaviour
from rules.occurrence import YEARLY_TYPES, Occurrence, aep_occurrence, yearly_occurrence
from rules.placement import Horizon
from rules.statuses import normalized_type
from streams.store.behaviour import behaviour_since, fetch_behaviour
from streams.store.campaigns import fetch_targets, load_campaign_book
from streams.store.ledger import decision_entry
from streams.store.schedules import StoredRow, fetch_contacts, fetch_rows


class NotAnAgencyDatabase(LookupError):
    """The database has no ``contacts`` table."""


class NoSuchContact(LookupError):
    """No contact has this id."""


@dataclass(frozen=True)
class ContactFacts:
    """What the rules need to explain one contact, as stored."""

    contact: Contact | InvalidContact
    stored: list[StoredRow]
    notes: dict[int, str]  # row id -> its status, date, type and note, as explain quotes it
    book: CampaignBook
    targets: Sequence[CampaignTarget]
    behaviour: Behaviour
    config: Config
    horizon: Horizon
    ledger: dict[str, object] | None = None  # the sweep's ledger entry (streams.store.ledger)

    def explanation(self) -> list[str]:
        """The lines ``mailwindow explain`` prints before the stored rows."""
        return explain_contact(
            self.contact,
            [r.existing for r in self.stored],
            self.config,
            self.horizon,
            self.notes,
            campaigns=self.book,
            targets=self.targets,
            behaviour=self.behaviour,
        )

    def stored_row_lines(self) -> list[str]:
        """The "Stored rows:" part of ``mailwindow explain`` (nothing when there are none)."""
        if not self.stored:
            return []
        lines = ["", "Stored rows:"]
        for r in self.stored:
            e = r.existing
            lines.append(
                f"  row {e.id}: {shown(e.email_type)} {e.send_date} {shown(e.status)} key={shown(e.occurrence_key)}"
            )
        return lines

    def ledger_lines(self) -> list[str]:
        """When the daily sweep decides the contact next (the incremental sweep's ledger)."""
        entry = self.ledger
        if entry is None:
            return ["", "Sweep ledger: no entry (decided when one of its emails enters the range or its data changes)."]
        return [
            "",
            f"Sweep ledger: decided as of {entry['decided_on']} by {entry['run_id']}; next due {entry['due']}"
            " (earlier if its data changes or an email enters the range); inputs " + str(entry["inputs"]) + ".",
        ]

    def timeline(self, first: date, last: date) -> Timeline:
        """The windows and emails of ``first..last`` (the rules' windows of those years)."""
        return build_timeline(self, first, last)


@dataclass(frozen=True)
class PlannedEmail:
    """A yearly email the rules will place on or after its ideal date: no row holds it yet."""

    email_type: str
    ideal_send_date: date
    excluded_by: str | None  # the window that would skip it, when its ideal date lies in one


@dataclass(frozen=True)
class Timeline:
    year_round: str | None  # the state's year-round rule (every day excluded), cited
    windows: list[Window]
    stored: list[StoredRow]  # the rows dated within the span
    planned: list[PlannedEmail]


_NOTES_SQL = text(
    "SELECT id, status, scheduled_send_date, email_type, catchup_note "
    "FROM email_schedules WHERE contact_id = :c"
)


def gather_contact(conn: Connection, contact_id: int, config: Config, horizon: Horizon) -> ContactFacts:
    """Everything explain and the contact page read about one contact (read-only)."""
    if not inspect(conn).has_table("contacts"):
        raise NotAnAgencyDatabase("no 'contacts' table")
    records = fetch_contacts(conn, [contact_id])
    if not records:
        raise NoSuchContact(contact_id)
    stored = fetch_rows(conn, [contact_id]).get(contact_id, [])
    book = load_campaign_book(conn, config).book
    targets, _ = fetch_targets(conn, [contact_id], (i.id for i in book.instances))
    behaviour = fetch_behaviour(conn, [contact_id], behaviour_since(horizon.as_of)).get(contact_id)
    ledger = decision_entry(conn, contact_id) if inspect(conn).has_table("mw_decided") else None
    notes = {
        int(r[0]): f"{shown(r[1])} on {shown(r[2])} ({shown(r[3])}){' - ' + shown(r[4]) if r[4] else ''}"
        for r in conn.execute(_NOTES_SQL, {"c": contact_id})
    }
    return ContactFacts(
        contact=validate_contact(records[0]),
        stored=stored,
        notes=notes,
        book=book,
        targets=targets.get(contact_id, ()),
        behaviour=behaviour or NO_BEHAVIOUR,
        config=config,
        horizon=horizon,
        ledger=ledger,
    )


def build_timeline(facts: ContactFacts, first: date, last: date) -> Timeline:
    in_span = [r for r in facts.stored if r.existing.send_date is not None and first <= r.existing.send_date <= last]
    contact = facts.contact
    if isinstance(contact, InvalidContact):
        return Timeline(None, [], in_span, [])
    # The same plan explain reads its windows from: the rules' windows, not a copy of them.
    plan = schedule_contact(
        contact,
        [r.existing for r in facts.stored],
        facts.config,
        facts.horizon,
        campaigns=facts.book,
        targets=facts.targets,
        behaviour=facts.behaviour,
    )
    windows = plan.windows
    assert windows is not None  # a valid contact's plan always has them
    shown_windows = [
        w for w in windows.windows_of_years(range(first.year, last.year + 1)) if w.end >= first and w.start <= last
    ]
    return Timeline(
        year_round=_year_round_shown(windows, first, last),
        windows=sorted(shown_windows, key=lambda w: (w.start, w.kind)),
        stored=in_span,
        planned=_planned(facts, contact, windows, first, last),
    )


def _planned(
    facts: ContactFacts, contact: Contact, windows: ContactWindows, first: date, last: date
) -> list[PlannedEmail]:
    """The contact's occurrences with an ideal date from the as-of date to ``last`` that no
    stored row holds yet (by key, or a legacy row of the same type and event year)."""
    start = max(first, facts.horizon.as_of)
    keys = {r.existing.occurrence_key for r in facts.stored}
    legacy = {(normalized_type(r.existing.email_type), r.existing.event_year) for r in facts.stored}
    config = facts.config
    occurrences: list[Occurrence] = [
        occ
        for email_type in YEARLY_TYPES
        for year in range(start.year, last.year + 2)
        if (occ := yearly_occurrence(contact, email_type, year, config)) is not None
    ]
    occurrences.extend(
        aep_occurrence(contact, date(year, month, day), config)
        for year in range(start.year, last.year + 1)
        for month, day in config.aep_dates
    )
    campaign_occs, _ = campaign_occurrences(
        contact, facts.book.active_instances, facts.targets, facts.book.types, config
    )
    occurrences.extend(campaign_occs)
    out: list[PlannedEmail] = []
    for occ in sorted(occurrences, key=lambda o: (o.ideal_send_date, o.email_type)):
        if not start <= occ.ideal_send_date <= last or occ.key in keys:
            continue
        if (occ.email_type, occ.event_date.year) in legacy:
            continue
        exclusion = windows.exclusion_on(occ.ideal_send_date) if occ.respects_windows else None
        out.append(PlannedEmail(occ.email_type, occ.ideal_send_date, None if exclusion is None else exclusion.reason))
    return out


def _year_round_shown(windows: ContactWindows, first: date, last: date) -> str | None:
    """The state's year-round rule in force during the timeline, as the chart labels it."""
    for rule in windows.year_round_rules:
        if (rule.effective_from or first) <= last and (rule.effective_until or last) >= first:
            version = f"{rule.version}; " if rule.dated else ""
            return f"{windows.state} year-round ({version}{windows.cited(rule)})"
    return None
