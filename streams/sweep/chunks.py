"""Phase 1 for one chunk of contacts: read them and their rows, decide each contact
(``rules.contact_schedule``), and return the outcome as plain values.

The same code runs in the main process and in worker processes
(``streams.sweep.pool``); it writes nothing.  What cannot move (kept
placements, skips, deletes) comes back as writes; the newly placed emails come
back packed (``streams.sweep.movables``) for balancing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import repeat
from typing import NamedTuple

import orjson

from rules.campaign import EMPTY_BOOK, CampaignBook, CampaignTarget, written_targets
from rules.config import EFFECTIVE_DATE, Config
from rules.contact import Contact, ContactRecord, InvalidContact, validate_contact
from rules.contact_schedule import (
    ContactSchedule,
    Decision,
    ExistingRow,
    placed_decision,
    schedule_contact,
)
from rules.decision_due import decision_due
from rules.exclusion_window import Exclusion, contact_windows
from rules.followup import NO_BEHAVIOUR, Behaviour
from rules.frequency_limit import could_break
from rules.load_balancing import FLAG_EFFECTIVE_DATE
from rules.placement import Horizon
from rules.statuses import PRE_SCHEDULED
from rules.unexcluded import exclusions_without_window, is_free_state, placements_in_view
from rules.zip_state import USPS_CODES
from streams.store.behaviour import behaviour_since, fetch_behaviour
from streams.store.campaigns import fetch_targets
from streams.store.engine import Store
from streams.store.ledger import LedgerEntry
from streams.store.schedules import (
    ContactFields,
    ScheduleRow,
    StoredRow,
    WriteBatch,
    fetch_contact_fields,
    fetch_rows_reported,
    placed_values,
    rows_by_id,
    stage_write,
)
from streams.sweep.movables import Movables, PackedMovables
from streams.sweep.summary import EXAMPLES_KEPT

# (contact, its fixed counted dates, its movables as indices into the chunk's)
FrequencyWatch = tuple[int, tuple[date, ...], list[int]]


class ChunkResult(NamedTuple):
    """A chunk's decisions as plain values: what the main process applies, in chunk order."""

    contacts: int
    contacts_json: bytes  # one JSON array per contact read, in id order (contacts checksum)
    invalid: int
    invalid_examples: list[tuple[int, tuple[str, ...]]]
    warnings: int
    warning_examples: list[str]
    inserts: list[ScheduleRow]  # rows that cannot move: kept placements, skips
    updates: list[tuple[int, ScheduleRow]]
    deletes: list[int]
    unchanged: int
    counts: dict[tuple[str, str], int]  # (email type, status) -> emails, first seen first
    volume: dict[int, int]  # day ordinal -> change of the day's volume
    ed_volume: dict[int, int]
    movables: PackedMovables  # the newly placed emails
    frequency_watch: list[FrequencyWatch]  # contacts whose movables the limit may skip
    # (contact_campaigns id, occurrence key) of the targets decided: statuses written back
    campaign_targets: list[tuple[int, str]]
    # Each contact decided: when it is next due and a digest of what it was decided from
    ledger: list[LedgerEntry]


@dataclass(frozen=True)
class DecideContext:
    """What deciding a chunk needs, the same in the main process and in every worker."""

    config: Config
    horizon: Horizon
    failed_runs: frozenset[str]
    run_id: str
    campaigns: CampaignBook = EMPTY_BOOK


class _Chunk:
    """A chunk's outcome while its contacts are decided one by one."""

    def __init__(self) -> None:
        self.invalid = 0
        self.invalid_examples: list[tuple[int, tuple[str, ...]]] = []
        self.warnings = 0
        self.warning_examples: list[str] = []
        self.batch = WriteBatch.empty()
        self.unchanged = 0
        self.counts: dict[tuple[str, str], int] = {}
        self.volume: dict[int, int] = {}
        self.ed_volume: dict[int, int] = {}
        self.movables = Movables()
        self.frequency_watch: list[FrequencyWatch] = []
        self.campaign_targets: list[tuple[int, str]] = []
        self.ledger: list[LedgerEntry] = []

    def warn(self, warnings: Sequence[str]) -> None:
        self.warnings += len(warnings)
        self.warning_examples.extend(warnings[: max(0, EXAMPLES_KEPT - len(self.warning_examples))])

    def warn_contact(self, contact_id: int, warnings: Sequence[str]) -> None:
        """A contact's warnings, each under its id."""
        self.warn([f"contact {contact_id}: {w}" for w in warnings])

    def count_day(self, day: date, email_type: str, change: int) -> None:
        d = day.toordinal()
        self.volume[d] = self.volume.get(d, 0) + change
        if email_type == EFFECTIVE_DATE:
            self.ed_volume[d] = self.ed_volume.get(d, 0) + change

    def result(self, contacts: list[ContactFields]) -> ChunkResult:
        return ChunkResult(
            contacts=len(contacts),
            contacts_json=b"".join(map(orjson.dumps, contacts)),
            invalid=self.invalid,
            invalid_examples=self.invalid_examples,
            warnings=self.warnings,
            warning_examples=self.warning_examples,
            inserts=self.batch.inserts,
            updates=self.batch.updates,
            deletes=self.batch.deletes,
            unchanged=self.unchanged,
            counts=self.counts,
            volume=self.volume,
            ed_volume=self.ed_volume,
            movables=self.movables.packed(),
            frequency_watch=self.frequency_watch,
            campaign_targets=self.campaign_targets,
            ledger=self.ledger,
        )


class ChunkDecider:
    """Runs the per-contact rules for chunks of contacts (in the main process or a worker)."""

    def __init__(self, context: DecideContext) -> None:
        self.config = context.config
        self.horizon = context.horizon
        self.as_of = context.horizon.as_of
        self.failed_runs = context.failed_runs
        self.run_id = context.run_id
        self.send_time = context.config.timing.send_time
        lb = context.config.load_balancing
        self.limit, self.period = lb.max_emails_per_contact_per_period, lb.period_days
        self.campaigns = context.campaigns
        self.behaviour_since = behaviour_since(self.as_of)
        # Without an all-contacts campaign, a contact with nothing stored whose emails meet
        # no window is decided by ``rules.unexcluded``; in a free state none can.
        self.free_of_campaigns = not context.campaigns.targets_all
        self.free_states = {s: is_free_state(s, context.config) for s in USPS_CODES}

    def decide_chunk(self, store: Store, ids: Sequence[int]) -> ChunkResult:
        with store.engine.connect() as conn:
            contacts = fetch_contact_fields(conn, ids)
            rows, row_problems = fetch_rows_reported(conn, ids)
            targets, problems = fetch_targets(conn, ids, self.campaigns.active_by_id)
            behaviour = fetch_behaviour(conn, ids, self.behaviour_since)
        return self.decide_contacts(contacts, rows, targets, behaviour, [*row_problems, *problems])

    def decide_contacts(
        self,
        contacts: list[ContactFields],
        rows: dict[int, list[StoredRow]],
        targets: dict[int, list[CampaignTarget]] | None = None,
        behaviour: dict[int, Behaviour] | None = None,
        problems: Sequence[str] = (),
    ) -> ChunkResult:
        chunk = _Chunk()
        chunk.warn(problems)
        targets = targets or {}
        behaviour = behaviour or {}
        for c in contacts:
            self.decide_contact(
                ContactRecord(*c), rows[c[0]], chunk, targets.get(c[0], ()), behaviour.get(c[0], NO_BEHAVIOUR)
            )
        return chunk.result(contacts)

    def decide_contact(
        self,
        record: ContactRecord,
        stored_rows: list[StoredRow],
        chunk: _Chunk,
        targets: Sequence[CampaignTarget] = (),
        behaviour: Behaviour = NO_BEHAVIOUR,
    ) -> None:
        contact = validate_contact(record)
        watched = len(chunk.frequency_watch)
        decided_directly = (
            not stored_rows
            and not targets
            and isinstance(contact, Contact)
            and self.free_of_campaigns
            and self._decided_directly(chunk, contact)
        )
        written: Iterable[str] = (
            () if decided_directly else self._decide_planned(chunk, contact, stored_rows, targets, behaviour)
        )
        due = decision_due([r.existing for r in stored_rows], self.horizon, self.config, behaviour, written)
        if len(chunk.frequency_watch) > watched:
            # The frequency limit may skip some of its new emails after balancing; the rows
            # it then writes are read the next day, which weighs them (their period) anew.
            due = min(due, self.as_of + timedelta(days=1))
        chunk.ledger.append((record.id, due.isoformat(), _inputs_digest(record, stored_rows, targets, behaviour)))

    def _decided_directly(self, chunk: _Chunk, contact: Contact) -> bool:
        """A contact with nothing stored whose emails meet no window (``rules.unexcluded``):
        they go where ``_stage`` would put them (the movables; a year-round skip, a row),
        without the planner.  False, with nothing done, when the planner must decide."""
        placed = placements_in_view(contact, self.config, self.horizon)
        exclusions: Iterable[Exclusion | None] = repeat(None)  # a free state excludes no day
        if not self.free_states.get(contact.state, False):
            found = exclusions_without_window(
                placed,
                contact,
                contact_windows(contact.state, contact.birth_date, contact.effective_date, self.config),
                self.config,
                self.horizon,
            )
            if found is None:
                return False
            exclusions = found
        if contact.warnings:
            chunk.warn_contact(contact.id, tuple(dict.fromkeys(contact.warnings)))
        if placed:
            first_new = len(chunk.movables)
            add = chunk.movables.add_placed
            for (occ, p), exclusion in zip(placed, exclusions, strict=False):
                if exclusion is None:
                    add(contact, occ, p.send_date, p.catch_up)
                else:
                    self._stage_fixed(chunk, placed_decision(occ, p, exclusion), None)
            if len(chunk.movables) > first_new:
                self._count_movables(chunk, contact.id, (), first_new)
        return True

    def _decide_planned(
        self,
        chunk: _Chunk,
        contact: Contact | InvalidContact,
        stored_rows: list[StoredRow],
        targets: Sequence[CampaignTarget],
        behaviour: Behaviour,
    ) -> Iterator[str]:
        """Any other contact: the planner's decisions staged; returns the keys they write."""
        plan = schedule_contact(
            contact,
            [r.existing for r in stored_rows],
            self.config,
            self.horizon,
            self.failed_runs,
            campaigns=self.campaigns,
            targets=targets,
            behaviour=behaviour,
        )
        if targets and plan.decisions:
            chunk.campaign_targets.extend(
                written_targets(
                    contact.id, targets, self.campaigns, (d.occurrence.key for d in plan.decisions)
                )
            )
        if plan.warnings:
            chunk.warn_contact(plan.contact_id, plan.warnings)
        by_id = self._replaced(chunk, plan, stored_rows)
        if plan.invalid_reasons:
            chunk.invalid += 1
            if len(chunk.invalid_examples) < EXAMPLES_KEPT:
                chunk.invalid_examples.append((plan.contact_id, plan.invalid_reasons))
        chunk.batch.deletes.extend(plan.deletes)
        if isinstance(contact, Contact):
            self._stage(chunk, contact, plan, by_id)
        return (d.occurrence.key for d in plan.decisions)

    def _replaced(
        self, chunk: _Chunk, plan: ContactSchedule, stored_rows: list[StoredRow]
    ) -> dict[int, StoredRow]:
        """The contact's stored rows by id; those its decisions replace or delete leave the volumes."""
        if not stored_rows:
            return {}
        by_id = rows_by_id(stored_rows)
        claimed = {d.existing_row_id for d in plan.decisions if d.existing_row_id is not None}
        for row_id in (*claimed, *plan.deletes):
            self._uncount(chunk, by_id[row_id].existing)
        return by_id

    def _uncount(self, chunk: _Chunk, row: ExistingRow) -> None:
        """A stored row this contact's decisions replace or delete leaves its day's volume."""
        if (
            row.status == PRE_SCHEDULED
            and row.send_date is not None
            and row.send_date >= self.as_of
            and not row.is_followup
        ):
            chunk.count_day(row.send_date, row.email_type.lower(), -1)

    def _stage(
        self, chunk: _Chunk, contact: Contact, plan: ContactSchedule, by_id: dict[int, StoredRow]
    ) -> None:
        """Writes for the decisions that cannot move; the newly placed emails into the movables."""
        first_new = len(chunk.movables)
        for d in plan.decisions:
            stored = by_id.get(d.existing_row_id) if d.existing_row_id is not None else None
            if d.frequency_candidate:
                chunk.movables.add(contact, d, stored.values if stored is not None else None)
                continue
            self._stage_fixed(chunk, d, stored)
        if len(chunk.movables) > first_new:
            self._count_movables(chunk, contact.id, plan.fixed_counted_dates, first_new)

    def _stage_fixed(self, chunk: _Chunk, d: Decision, stored: StoredRow | None) -> None:
        """The write of a decision that cannot move (a kept placement, a skip, a follow-up),
        counted; a pre-scheduled one counts toward its day."""
        values = placed_values(d, stored, self.send_time, self.run_id)
        if stage_write(chunk.batch, values, stored) == "unchanged":
            chunk.unchanged += 1
        email_type = d.occurrence.email_type
        key = (email_type, d.status)
        chunk.counts[key] = chunk.counts.get(key, 0) + 1
        if d.status == PRE_SCHEDULED and not d.occurrence.is_followup:
            chunk.count_day(d.send_date, email_type, +1)

    def _count_movables(
        self, chunk: _Chunk, contact_id: int, fixed: tuple[date, ...], first_new: int
    ) -> None:
        """The contact's new movables count toward their days; watched when the limit may bind."""
        p = chunk.movables.p
        new = range(first_new, len(chunk.movables))
        for i in new:
            day = p.dates[i]
            chunk.volume[day] = chunk.volume.get(day, 0) + 1
            if p.flags[i] & FLAG_EFFECTIVE_DATE:
                chunk.ed_volume[day] = chunk.ed_volume.get(day, 0) + 1
        if could_break(fixed, len(new), self.as_of, self.limit, self.period):
            chunk.frequency_watch.append((contact_id, fixed, list(new)))


# The JSON of what most contacts read besides themselves: no rows, no targets, no behaviour.
_NONE_JSON = b"[]"
_NO_BEHAVIOUR_JSON = orjson.dumps(NO_BEHAVIOUR)


def _inputs_digest(
    record: ContactRecord, rows: Sequence[StoredRow], targets: Sequence[CampaignTarget], behaviour: Behaviour
) -> str:
    """A digest of what a decision read: the JSON list of the contact, its rows as stored,
    its targets and its behaviour (orjson writes the dataclasses and dates itself).

    Joined part by part, the same bytes as one ``orjson.dumps`` of the list (so the same
    digest as the ledger's entries written before), without writing the empty parts and
    the usual no-behaviour each time: the one-shot form was a tenth of a contact's
    decision in the AEP season (3.5 of 33 µs in the chunk bench).
    """
    parts = (
        orjson.dumps(record, default=str),
        orjson.dumps([tuple(r.values) for r in rows], default=str) if rows else _NONE_JSON,
        orjson.dumps(list(targets), default=str) if targets else _NONE_JSON,
        _NO_BEHAVIOUR_JSON if behaviour is NO_BEHAVIOUR else orjson.dumps(behaviour, default=str),
    )
    return hashlib.blake2b(b"[" + b",".join(parts) + b"]", digest_size=12).hexdigest()
