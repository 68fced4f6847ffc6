"""One contact's schedule as of ``T``: the per-contact part of a sweep.

This is the function both the sweep and the stream agents call.  Given a
contact, its existing schedule rows, the config and the horizon, it returns
every decision (placement, exclusion, reason), the owned rows to delete, the
occurrences it must not write, and what the frequency limit needs.  Load
balancing across contacts (smoothing, daily cap) is not done here: it needs
every contact's new placements (``load_balancing``).

Rules applied here (SPEC sections 5, 6, 9):
- an occurrence whose key has a row in a sending-side status is not written;
- a legacy row (no key) in a sent-like status for the same type and event
  year (or, without event year, dated within 30 days of the ideal date) means
  the email was already handled: not written again;
- an owned legacy row (no key) of the same type and event year is adopted
  (updated in place, placed afresh) rather than duplicated;
- an owned keyed row dated ``>= T`` with the same ideal date keeps its date
  (only its status is re-evaluated), unless the run that placed it never
  completed: an interrupted run's placements are placed afresh, so a rerun
  gives what an uninterrupted run would have;
- a skip inside a blocking window materializes that window's post-window
  email, even beyond the range;
- owned rows dated in the range that no decision claims are deleted;
- campaigns (SPEC section 8): the contact's targets of the active instances
  are occurrences like any other; a window-respecting campaign date makes its
  window block; two campaign emails on one day: the loser is skipped with
  reason ``campaign conflict`` (``rules.campaign``);
- follow-ups (SPEC section 8): one per initial email, typed by the behaviour
  since it (``rules.followup``), placed on its ideal date or tomorrow; an
  excluded follow-up is skipped and calls for no post-window email; a pending
  follow-up is upgraded in place, never downgraded; a follow-up row in a
  sending-side status is never touched.

Choices written down here (the SPEC is silent on them):
- An owned follow-up row dated before ``T`` is history: it is left as it is,
  not moved to tomorrow (that would send a follow-up days late).
- A pending follow-up whose initial email has left the 35 days is still
  re-decided (upgraded, kept), not removed: a follow-up placed on ``T + 1``
  for an initial sent on ``T - 35`` must survive the next day's sweep.
- A campaign conflict skips; it never moves the loser (the SPEC says skip).
  Load balancing runs after conflicts and only moves newly placed emails,
  so it can in rare cases put a moved campaign email on the day of another
  of the same contact: both then go out, one day apart from the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta

from rules.anniversary import next_anniversary
from rules.campaign import (
    CAMPAIGN_CONFLICT_REASON,
    EMPTY_BOOK,
    CampaignBook,
    CampaignEmail,
    CampaignTarget,
    campaign_occurrences,
    campaign_type_name,
    resolve_campaign_conflicts,
)
from rules.config import BIRTHDAY, EFFECTIVE_DATE, Config
from rules.contact import Contact, InvalidContact
from rules.decided_once import (
    awaits_its_date,
    claimed_occurrences,
    final_decision,
    kept_placement,
)
from rules.exclusion_window import ContactWindows, Exclusion, contact_windows
from rules.followup import (
    INITIAL_LOOKBACK_DAYS,
    INITIAL_STATUSES,
    NO_BEHAVIOUR,
    Behaviour,
    EmailRow,
    existing_followup,
    followup_metadata,
    followup_occurrence,
    followup_type,
    health_answer_problems,
    initial_email,
    place_followup,
    upgrade,
)
from rules.frequency_limit import FREQUENCY_LIMIT_REASON
from rules.occurrence import (
    AEP,
    Occurrence,
    aep_occurrence,
    occurrence_key,
    yearly_occurrence,
)
from rules.placement import Horizon, Placement, place, place_forced
from rules.post_window import post_window_occurrence, post_windows_around
from rules.records import quick_init
from rules.statuses import (
    PRE_SCHEDULED,
    SKIPPED,
    counts_toward_volume,
    is_owned,
    is_sent_like,
    normalized_type,
)
from rules.why import Explanation

LEGACY_MATCH_DAYS = 30


@quick_init
@dataclass(frozen=True)
class ExistingRow:
    """A schedule row as stored, with what the rules need of it."""

    id: int
    email_type: str
    send_date: date | None
    status: str
    occurrence_key: str | None = None
    ideal_send_date: date | None = None
    event_year: int | None = None
    placed_run_id: str | None = None
    skip_reason: str | None = None
    # What follow-ups and campaign conflicts read; None on legacy rows without them.
    send_time: time | None = None
    actual_send_at: datetime | None = None
    priority: int | None = None
    campaign_instance_id: int | None = None
    event_date: date | None = None
    metadata: str | None = None

    @property
    def owned(self) -> bool:
        return is_owned(self.status)

    @property
    def is_followup(self) -> bool:
        return normalized_type(self.email_type).startswith("followup")

    def email_row(self, contact_id: int) -> EmailRow:
        return EmailRow(
            id=self.id,
            contact_id=contact_id,
            email_type=self.email_type,
            status=self.status,
            scheduled_send_date=self.send_date,
            actual_send_datetime=self.actual_send_at,
            scheduled_send_time=self.send_time,
            occurrence_key=self.occurrence_key,
            priority=self.priority,
            campaign_instance_id=self.campaign_instance_id,
            event_date=self.event_date,
            metadata=self.metadata,
        )


@quick_init
@dataclass(frozen=True)
class Decision:
    occurrence: Occurrence
    send_date: date
    status: str  # PRE_SCHEDULED or SKIPPED
    skip_reason: str | None
    kept: bool  # an earlier placement is kept: it does not move
    catch_up: bool
    existing_row_id: int | None
    why: Explanation
    # A kept placement that the frequency limit skipped before: the limit is
    # applied to it again (it may have room now), but it does not move.
    frequency_recheck: bool = False

    @property
    def newly_placed(self) -> bool:
        """Placed afresh by this decision: load balancing and the frequency limit may act on it."""
        return not self.kept and self.status == PRE_SCHEDULED and not self.occurrence.is_followup

    @property
    def frequency_candidate(self) -> bool:
        """The frequency limit decides this email's status (SPEC section 7)."""
        return self.newly_placed or self.frequency_recheck


@quick_init
@dataclass(frozen=True)
class NotWritten:
    occurrence: Occurrence
    reason: str
    # Its row was dated before T: the decision is history (``decided_once``).
    final: bool = False


@quick_init
@dataclass(frozen=True)
class ContactSchedule:
    contact_id: int
    decisions: tuple[Decision, ...] = ()
    deletes: tuple[int, ...] = ()
    not_written: tuple[NotWritten, ...] = ()
    # Dates of this contact's rows that count toward the frequency limit and
    # will not move: sending-side rows, kept placements, untouched owned rows.
    fixed_counted_dates: tuple[date, ...] = ()
    invalid_reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    windows: ContactWindows | None = field(default=None, compare=False)
    # Ideal dates of the contact's window-respecting campaign emails (they make windows block).
    campaign_dates: tuple[date, ...] = ()


def placed_decision(
    occ: Occurrence,
    placement: Placement,
    exclusion: Exclusion | None,
    *,
    kept: bool = False,
    existing_row_id: int | None = None,
    frequency_recheck: bool = False,
) -> Decision:
    """An occurrence's decision where it is placed: pre-scheduled, or skipped for the
    exclusion on that day."""
    return Decision(
        occurrence=occ,
        send_date=placement.send_date,
        status=SKIPPED if exclusion else PRE_SCHEDULED,
        skip_reason=exclusion.reason if exclusion else None,
        kept=kept,
        catch_up=placement.catch_up,
        existing_row_id=existing_row_id,
        why=(placement.why + f"; excluded: {exclusion.reason}") if exclusion else placement.why,
        frequency_recheck=frequency_recheck,
    )


def _legacy_handles(occ: Occurrence, row: ExistingRow) -> bool:
    if row.occurrence_key is not None or normalized_type(row.email_type) != occ.email_type:
        return False
    if row.event_year is not None:
        return row.event_year == occ.event_date.year
    return row.send_date is not None and abs((row.send_date - occ.ideal_send_date).days) <= LEGACY_MATCH_DAYS


def _fresh_initial_status(row: ExistingRow, fresh_from: date) -> bool:
    """Whether the row may be an initial email of the last 35 days (``followup.is_initial_email``
    asks more: its type, and a date not after ``T``)."""
    if row.status.strip().lower() not in INITIAL_STATUSES:
        return False
    sent = row.actual_send_at.date() if row.actual_send_at is not None else row.send_date
    return sent is not None and sent >= fresh_from


def yearly_in_view(
    contact: Contact, horizon: Horizon, config: Config, keys_with_rows: Mapping[str, ExistingRow]
) -> list[Occurrence]:
    """The birthday, effective-date and AEP occurrences that may be in play: the next event's
    ideal date in ``[T - L, T + H]``, or a stored row of it."""
    t, first, last = horizon.as_of, horizon.lookback_start, horizon.range_end
    occs: list[Occurrence] = []
    timing = config.timing
    for email_type, base, days_before in (
        (BIRTHDAY, contact.birth_date, timing.birthday_days_before),
        (EFFECTIVE_DATE, contact.effective_date, timing.effective_date_days_before),
    ):
        if base is None:
            continue
        event = next_anniversary(base, t)
        ideal = event - timedelta(days=days_before)
        if first <= ideal <= last or (
            keys_with_rows and occurrence_key(contact.id, email_type, str(event.year)) in keys_with_rows
        ):
            occ = yearly_occurrence(contact, email_type, event.year, config)
            if occ is not None:
                occs.append(occ)
    for month, day in config.aep_dates:
        event = date(t.year, month, day)
        if event < t:
            event = date(t.year + 1, month, day)
        if event <= last or (keys_with_rows and occurrence_key(contact.id, AEP, event.isoformat()) in keys_with_rows):
            occs.append(aep_occurrence(contact, event, config))
    return occs


def _occurrences_in_view(
    contact: Contact,
    windows: ContactWindows,
    horizon: Horizon,
    config: Config,
    keys_with_rows: Mapping[str, ExistingRow],
    campaigns: Sequence[Occurrence] = (),
    campaign_dates: Sequence[date] = (),
) -> list[Occurrence]:
    """The occurrences that may be in play: ideal date in ``[T - L, T + H]``, or a stored row.

    Only those are built: most of a contact's yearly emails are far from ``T``,
    and the sweep asks this for hundreds of thousands of contacts.
    """
    first, last = horizon.lookback_start, horizon.range_end
    occs = yearly_in_view(contact, horizon, config, keys_with_rows)
    occs.extend(
        occ for occ in campaigns if first <= occ.ideal_send_date <= last or occ.key in keys_with_rows
    )
    occs.extend(post_windows_around(contact, windows, horizon, config, campaign_dates))
    if keys_with_rows:
        # Rows awaiting their date stay claimed by their occurrence, in play or not (decided_once rule 2).
        occs.extend(
            claimed_occurrences(
                contact,
                keys_with_rows.values(),
                horizon,
                config,
                windows,
                campaign_dates,
                {o.key for o in occs},
            )
        )
    return occs


class _Planner:
    """The state of one contact's decision, kept together while it is built."""

    def __init__(
        self,
        contact: Contact,
        rows: Sequence[ExistingRow],
        config: Config,
        horizon: Horizon,
        failed_runs: frozenset[str],
        campaign_dates: Sequence[date] = (),
    ) -> None:
        self.contact = contact
        self.campaign_dates = campaign_dates
        self.config = config
        self.horizon = horizon
        self.failed_runs = failed_runs
        self.rows = rows
        self.by_key: dict[str, ExistingRow] = {
            r.occurrence_key: r for r in rows if r.occurrence_key is not None
        }
        self.adoptable = [r for r in rows if r.occurrence_key is None and r.owned]
        self.windows = contact_windows(
            contact.state, contact.birth_date, contact.effective_date, config
        )
        self.decisions: dict[str, Decision] = {}
        self.not_written: dict[str, NotWritten] = {}
        self.claimed: set[int] = set()
        # Owned rows dated before T that decided an occurrence: history (decided_once rule 3).
        self.final_rows: set[int] = set()
        self.problems: list[str] = []

    def existing_for(self, occ: Occurrence) -> ExistingRow | None:
        row = self.by_key.get(occ.key)
        if row is not None:
            return row
        for legacy in self.adoptable:
            if legacy.id not in self.claimed and legacy.id not in self.final_rows and _legacy_handles(occ, legacy):
                return legacy
        return None

    def blocked_write(self, occ: Occurrence, row: ExistingRow | None) -> str | None:
        if row is not None and row.occurrence_key == occ.key and not row.owned:
            return f"its row is in the sending side's status '{row.status}': not touched"
        for legacy in self.rows:
            if is_sent_like(legacy.status) and _legacy_handles(occ, legacy):
                return (
                    f"already handled by legacy row {legacy.id} ({legacy.email_type}, "
                    f"{legacy.status}, {legacy.send_date})"
                )
        return None

    def decide(self, occ: Occurrence, forced: bool, row: ExistingRow | None = None) -> None:
        if occ.key in self.decisions or occ.key in self.not_written:
            return
        if occ.is_followup:
            # The follow-up rules found its row (by key, metadata or date); the
            # legacy same-type match below is not theirs.
            blocked = None
        else:
            row = self.existing_for(occ)
            blocked = self.blocked_write(occ, row)
        if blocked is not None:
            self.not_written[occ.key] = NotWritten(occ, blocked)
            return
        final = final_decision(row, self.horizon.as_of)
        if final is not None:
            assert row is not None
            self.final_rows.add(row.id)
            self.not_written[occ.key] = NotWritten(occ, final, final=True)
            return
        spread = self.config.load_balancing.catch_up_spread_days
        placement = kept_placement(occ, row, self.horizon.as_of, self.failed_runs)
        kept = placement is not None
        if placement is None:
            if occ.is_followup:
                placement = place_followup(occ, self.horizon.as_of)
            elif forced:
                placement = place_forced(occ, self.horizon, spread)
            else:
                placement = place(occ, self.horizon, spread)
        if placement is None:
            return  # not in play
        exclusion = self.windows.exclusion_on(placement.send_date) if occ.respects_windows else None
        if row is not None:
            self.claimed.add(row.id)
        recheck = (
            kept
            and exclusion is None
            and row is not None
            and row.skip_reason == FREQUENCY_LIMIT_REASON
            and not occ.is_followup
        )
        self.decisions[occ.key] = placed_decision(
            occ,
            placement,
            exclusion,
            kept=kept,
            existing_row_id=row.id if row is not None else None,
            frequency_recheck=recheck,
        )
        if exclusion is not None and exclusion.window is not None and not occ.is_followup:
            # A skip inside a window materializes the window's post-window email
            # now, even beyond the range, so people see the plan (SPEC section 6).
            # A skipped follow-up calls for none (SPEC section 8).
            pw = post_window_occurrence(
                exclusion.window, self.contact, self.windows, self.config, self.campaign_dates
            )
            if pw is not None:
                self.decide(pw, forced=True)

    def decide_followups(self, book: CampaignBook, behaviour: Behaviour) -> None:
        """One follow-up per initial email among the contact's rows (SPEC section 8)."""
        if not self.rows:
            return
        t = self.horizon.as_of
        fresh_from = t - timedelta(days=INITIAL_LOOKBACK_DAYS)
        if not any(r.status.strip().lower() in INITIAL_STATUSES for r in self.rows):
            return
        if not any(r.is_followup or _fresh_initial_status(r, fresh_from) for r in self.rows):
            # Every initial is older than the 35 days and none has a follow-up row: the loop
            # below would pass over each one (most contacts with a sent history).
            return
        contact_id = self.contact.id
        email_rows = [r.email_row(contact_id) for r in self.rows]
        followups = [e for e in email_rows if e.is_followup]
        by_id = {r.id: r for r in self.rows}
        # A follow-up row is decided for one initial only; a legacy row (no key,
        # no metadata) may also answer later initials (SPEC: "any follow-up row
        # ... within 35 days"): they already have their follow-up.
        answered: set[int] = set()
        initials = [
            i
            for i in (initial_email(e, book.types, self.config, t, any_age=True) for e in email_rows)
            if i is not None
        ]
        for initial in sorted(initials, key=lambda i: (i.send_at, i.row_id)):
            fresh = initial.send_date >= fresh_from
            found = existing_followup(initial, followups)
            if found is None and not fresh:
                continue
            if found is not None and found.id in answered:
                continue
            row = by_id[found.id] if found is not None else None
            kind, evidence = followup_type(initial.send_at, behaviour.clicks, behaviour.answers)
            if row is not None:
                answered.add(row.id)
                kind = upgrade(normalized_type(row.email_type), kind)
            occ = followup_occurrence(self.contact, initial, kind, evidence, self.config, t)
            occ = replace(occ, metadata=followup_metadata(initial, kind, evidence))
            if row is not None and (not row.owned or row.send_date is None):
                self.claimed.add(row.id)
                why = f"its follow-up row {row.id} is in the sending side's status '{row.status}': not touched"
                self.not_written[occ.key] = NotWritten(occ, why)
                continue
            self.problems.extend(health_answer_problems(contact_id, initial.send_at, behaviour.answers))
            self.decide(occ, forced=False, row=row)

    def resolve_campaign_conflicts(self) -> None:
        """SPEC section 7: per day, one campaign email; the others are skipped."""
        if len(self.decisions) < 2 and not self.rows:
            return
        if sum(1 for k in self.decisions if ":campaign:" in k) < 2 and not any(
            campaign_type_name(r.email_type) is not None and is_sent_like(r.status) for r in self.rows
        ):
            return
        held = [
            CampaignEmail(
                key=r.occurrence_key or f"row{r.id}",
                contact_id=self.contact.id,
                send_date=r.send_date,
                status=r.status,
                priority=r.priority if r.priority is not None else 10,
                instance_id=r.campaign_instance_id,
                is_campaign=True,
            )
            for r in self.rows
            if r.send_date is not None
            and r.id not in self.claimed
            and is_sent_like(r.status)
            and campaign_type_name(r.email_type) is not None
        ]
        for loser, winner in resolve_campaign_conflicts([*self.decisions.values(), *held]).items():
            d = self.decisions[loser]
            self.decisions[loser] = replace(
                d,
                status=SKIPPED,
                skip_reason=CAMPAIGN_CONFLICT_REASON,
                why=f"{d.why}; campaign conflict: {winner} goes out on {d.send_date}",
                frequency_recheck=False,
            )

    def deletes(self) -> tuple[int, ...]:
        if not self.rows:
            return ()
        return tuple(
            r.id
            for r in self.rows
            if r.owned
            and r.id not in self.claimed
            and r.send_date is not None
            and self.horizon.in_range(r.send_date)
        )

    def fixed_counted_dates(self, deleted: Iterable[int]) -> tuple[date, ...]:
        if not self.rows:
            return ()  # nothing sent, nothing kept: a kept placement is a row's
        gone = set(deleted) | self.claimed
        dates = [
            r.send_date
            for r in self.rows
            if r.id not in gone
            and r.send_date is not None
            and counts_toward_volume(r.status)
            and not r.is_followup
        ]
        dates.extend(
            d.send_date
            for d in self.decisions.values()
            if d.kept
            and d.status == PRE_SCHEDULED
            and not d.occurrence.is_followup
            and not d.frequency_recheck
        )
        return tuple(sorted(dates))


def schedule_contact(
    contact: Contact | InvalidContact,
    rows: Sequence[ExistingRow],
    config: Config,
    horizon: Horizon,
    failed_runs: frozenset[str] = frozenset(),
    *,
    campaigns: CampaignBook = EMPTY_BOOK,
    targets: Sequence[CampaignTarget] = (),
    behaviour: Behaviour = NO_BEHAVIOUR,
) -> ContactSchedule:
    """Decide one contact's emails as of ``horizon.as_of``.

    ``campaigns``: every type and instance (read once per run); ``targets``:
    this contact's ``contact_campaigns`` rows; ``behaviour``: its clicks and
    health answers (those before ``T - 35`` can never count and may be left out).
    """
    if isinstance(contact, InvalidContact):
        deletes = tuple(
            r.id for r in rows if r.owned and r.send_date is not None and horizon.in_range(r.send_date)
        )
        return ContactSchedule(
            contact_id=contact.id,
            deletes=deletes,
            invalid_reasons=contact.reasons,
            warnings=contact.warnings,
        )
    campaign_occs: list[Occurrence] = []
    problems: list[str] = []
    if targets or campaigns.targets_all:
        # Instances of rows awaiting their date too: a cap move may have left its ideal date behind.
        awaiting = {
            r.campaign_instance_id
            for r in rows
            if r.campaign_instance_id is not None and awaits_its_date(r, horizon)
        }
        instances = campaigns.instances_for(
            targets, horizon.lookback_start, horizon.range_end, awaiting
        )
        if instances:
            campaign_occs, problems = campaign_occurrences(
                contact, instances, targets, campaigns.types, config
            )
    campaign_dates = [o.ideal_send_date for o in campaign_occs if o.respects_windows]
    planner = _Planner(contact, rows, config, horizon, failed_runs, campaign_dates)
    for occ in _occurrences_in_view(
        contact, planner.windows, horizon, config, planner.by_key, campaign_occs, campaign_dates
    ):
        planner.decide(occ, forced=False)
    planner.decide_followups(campaigns, behaviour)
    planner.resolve_campaign_conflicts()
    deletes = planner.deletes()
    return ContactSchedule(
        contact_id=contact.id,
        decisions=tuple(sorted(planner.decisions.values(), key=lambda d: (d.send_date, d.occurrence.key))),
        deletes=deletes,
        not_written=tuple(planner.not_written.values()),
        fixed_counted_dates=planner.fixed_counted_dates(deletes),
        warnings=tuple(dict.fromkeys((*contact.warnings, *problems, *planner.problems))),
        windows=planner.windows,
        campaign_dates=tuple(campaign_dates),
    )


def catchup_note(decision: Decision) -> str | None:
    if not decision.catch_up:
        return None
    return f"catch-up: ideal {decision.occurrence.ideal_send_date}, placed {decision.send_date}"



__all__ = [
    "ContactSchedule",
    "Decision",
    "ExistingRow",
    "Horizon",
    "NotWritten",
    "schedule_contact",
    "catchup_note",
]
