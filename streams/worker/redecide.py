"""A contact's schedule decided again and written: what the stream agents do per event.

The agents (``streams/worker/batch.py``) call ``sync_contacts`` after storing a
batch's facts: for each contact the batch touched it puts the contact's rows
back to what the decision day found (``streams.store.epochs``: its base, with the
sending side's statuses applied), runs the same rules as the sweep
(``rules.contact_schedule.schedule_contact`` and the frequency limit) as of
the decision day, writes the difference, applies the status facts of rows
that now exist (then decides again, so a row reported sent gets its
follow-up), and returns what changed since before the batch as schedule
changes.  The result is a function of the base and the facts alone: it does
not depend on how the day's events were batched or interleaved.

What differs from the sweep, on purpose (ARCHITECTURE.md, "How the agents
decide"): no load balancing across contacts (effective-date smoothing and the
daily cap need every contact's placements, so they belong to the sweep);
newly placed emails go out on their ideal or catch-up dates.  With load
balancing switched off in config the sweep gives the same rows (tested).

One more difference, written down here: a contact decided again because its
own data changed also loses the planned post-window emails beyond the range
that no longer follow any of its windows (``planned_post_window_holds``).
The sweep leaves rows beyond the range alone (SPEC section 9) and removes
such a row once it enters the range; the agents remove it at once.

A contact that is not in ``contacts`` (deleted, or never known) gets no email:
its owned rows dated from the decision day on are cancelled; history stays.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection

from rules.campaign import CampaignBook, CampaignTarget, written_targets
from rules.config import Config
from rules.contact import Contact, ContactRecord, validate_contact
from rules.contact_schedule import Decision, schedule_contact
from rules.followup import NO_BEHAVIOUR, Behaviour
from rules.frequency_limit import FREQUENCY_LIMIT_REASON, NewEmail, could_break, frequency_skips
from rules.occurrence import POST_WINDOW
from rules.placement import Horizon
from rules.post_window import planned_post_window_holds
from rules.statuses import OWNED_STATUSES, SKIPPED
from streams.store.behaviour import BehaviourRead, fetch_behaviour_as_of
from streams.store.campaigns import fetch_targets, write_target_statuses
from streams.store.epochs import Epoch, Row, fetch_full_rows, load_bases, put_back, save_bases
from streams.store.schedules import (
    ContactFields,
    ScheduleRow,
    StoredRow,
    WriteBatch,
    fetch_contact_fields,
    fetch_rows,
    placed_values,
    rows_by_id,
    stage_write,
    stored_row_of,
    write_batches,
)
from streams.store.status_facts import apply_status_facts, status_facts_of, with_status


@dataclass(frozen=True)
class ScheduleChange:
    """A row created, changed or cancelled, as the ``schedule-changes`` topic announces it."""

    contact_id: int
    occurrence_key: str
    change: str  # created | changed | cancelled
    email_type: str
    scheduled_send_date: str
    status: str
    skip_reason: str | None
    previous: dict[str, object] | None


def _frequency_skipped(decisions: Sequence[Decision], fixed: Sequence[date], config: Config) -> set[str]:
    lb = config.load_balancing
    new = [
        NewEmail(d.occurrence.key, d.send_date, d.occurrence.priority, d.occurrence.key)
        for d in decisions
        if d.frequency_candidate
    ]
    limit, period = lb.max_emails_per_contact_per_period, lb.period_days
    if not new or not could_break(fixed, len(new), min(e.send_date for e in new), limit, period):
        return set()
    skips = frequency_skips(fixed, new, limit, period)
    return {e.key for e in skips}


def _values(
    d: Decision, stored: StoredRow | None, skipped: set[str], config: Config, run_id: str
) -> ScheduleRow:
    values = placed_values(d, stored, config.timing.send_time, run_id)
    if d.occurrence.key in skipped:
        return values._replace(status=SKIPPED, skip_reason=FREQUENCY_LIMIT_REASON)
    return values


# Rounds of "decide, then apply the status facts of rows that now exist": each round
# turns at least one row into the sending side's, so a handful always suffice.
MAX_ROUNDS = 20


def sync_contacts(
    conn: Connection,
    config: Config,
    campaigns: CampaignBook,
    contact_ids: Iterable[int],
    epoch: Epoch,
    lookahead_days: int = 30,
    lookback_days: int = 7,
    chunk: int = 500,
    behaviour: BehaviourRead | None = None,
) -> dict[int, list[ScheduleChange]]:
    """Decide these contacts as of the epoch's day, write the difference, return it per contact.

    ``behaviour``: the contacts' clicks and answers when the caller has read them already.

    A handful of statements per chunk, not per contact: what lets one agent
    keep up with thousands of events a second.  Call inside a transaction:
    the reads and writes are one unit.
    """
    horizon = Horizon(epoch.as_of, lookahead_days, lookback_days)
    run_id = f"agent:{epoch.as_of.isoformat()}"
    out: dict[int, list[ScheduleChange]] = {}
    ids = sorted(set(contact_ids))
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        before = fetch_full_rows(conn, part)
        bases = load_bases(conn, epoch.epoch_id, part)
        first_time = {cid: before[cid] for cid in part if cid not in bases}
        save_bases(conn, epoch.epoch_id, first_time)
        bases.update(first_time)
        facts = status_facts_of(conn, part)
        targets: dict[int, list[Row]] = {}
        for cid in part:
            mine = facts.get(cid, {})
            targets[cid] = [
                with_status(r, mine[str(r["occurrence_key"])]) if str(r["occurrence_key"]) in mine else r
                for r in bases[cid]
            ]
        settled = _first_round(conn, config, campaigns, part, before, targets, facts, horizon, run_id, behaviour)
        todo = part
        for _ in range(MAX_ROUNDS):
            # Only contacts with status facts can have a row turned over by one: most batches
            # have none, and reading every contact's rows again for nothing cost each batch a read.
            waiting = [cid for cid in todo if cid in facts]
            todo = sorted(apply_status_facts(conn, fetch_full_rows(conn, waiting), facts)) if waiting else []
            if not todo:
                break
            _decide_and_write(conn, config, campaigns, todo, horizon, run_id, behaviour)
        else:  # pragma: no cover - a bug: facts kept turning rows over
            raise RuntimeError(f"contacts {todo[:5]}: status facts still applying after {MAX_ROUNDS} rounds")
        written = [cid for cid in part if cid not in settled]
        after = fetch_full_rows(conn, written) if written else {}
        for cid in part:
            out[cid] = _changes(cid, before[cid], after[cid]) if cid in after else []
    return out


def sync_contact(
    conn: Connection,
    config: Config,
    campaigns: CampaignBook,
    contact_id: int,
    epoch: Epoch,
    lookahead_days: int = 30,
    lookback_days: int = 7,
) -> list[ScheduleChange]:
    """``sync_contacts`` for one contact."""
    return sync_contacts(conn, config, campaigns, [contact_id], epoch, lookahead_days, lookback_days)[contact_id]


def _first_round(
    conn: Connection,
    config: Config,
    campaigns: CampaignBook,
    ids: Sequence[int],
    before: Mapping[int, Sequence[Row]],
    targets: Mapping[int, Sequence[Row]],
    facts: Mapping[int, object],
    horizon: Horizon,
    run_id: str,
    read: BehaviourRead | None,
) -> set[int]:
    """The first decision of these contacts, made in memory on the rows they are put back
    to (``targets``), and its writes; returns the contacts it left untouched.

    Putting a contact's rows back and writing its decision again is most of what a
    batch writes, and for most contacts (a click that upgrades nothing, an answer
    again) the decision reproduces the very rows the contact has: deleted and
    written again, each write paying the schedule's indexes and checksum
    triggers.  The rules read the rows as ``fetch_rows`` would after the put-back
    (the same ids, values and order), so the decision is the one the database
    would get; a contact whose rows after the put-back and these writes would
    hold what they hold now, column for column (all but the row id and the two
    timestamps), is left alone.  Contacts with status facts always go the long way.
    """
    as_put_back = {cid: [stored_row_of(r) for r in _by_id(targets[cid])] for cid in ids}
    decided = _decided(conn, config, campaigns, ids, as_put_back, horizon, run_id, read)
    batch = WriteBatch.empty()
    written: list[tuple[int, str]] = []
    settled: set[int] = set()
    for cid in ids:
        mine = decided[cid]
        _never_before(mine.batch, horizon.as_of)
        written.extend(mine.written_targets)
        if cid not in facts and _same_rows(_written_over(targets[cid], mine.batch, run_id), before[cid]):
            settled.add(cid)
            continue
        put_back(conn, before[cid], targets[cid])
        batch.extend(mine.batch)
    write_batches(conn, [(batch, run_id)])
    write_target_statuses(conn, written)  # SPEC 8: the target's status follows what was written
    return settled


def _by_id(rows: Iterable[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: int(r["id"]))  # type: ignore[call-overload]


def _written_over(rows: Sequence[Row], batch: WriteBatch, run_id: str) -> list[Row]:
    """``rows`` as ``write_batches`` leaves them (inserted rows without their ids and stamps)."""
    by_id = {int(r["id"]): dict(r) for r in rows}  # type: ignore[call-overload]
    new: list[Row] = [{**v._asdict(), "scheduler_run_id": run_id} for v in batch.inserts]
    for row_id, values in batch.updates:
        row = by_id.get(row_id)
        if row is not None and row["status"] in OWNED_STATUSES:
            row.update(values._asdict())
            row["scheduler_run_id"] = run_id
    for row_id in batch.deletes:
        row = by_id.get(row_id)
        if row is not None and row["status"] in OWNED_STATUSES:
            del by_id[row_id]
    return [*by_id.values(), *new]


# Columns a rewrite of the same row changes: its id (a row written again is a new row) and
# the times the database stamps.
_NOT_COMPARED = frozenset({"id", "created_at", "updated_at"})


def _same_rows(these: Sequence[Row], those: Sequence[Row]) -> bool:
    """The same rows, column for column and type for type (a stored 1.0 is not 1), in any order."""
    if len(these) != len(those):
        return False
    if not these:
        return True
    columns = sorted({c for r in (*these, *those) for c in r} - _NOT_COMPARED)

    def content(rows: Sequence[Row]) -> Counter[tuple[tuple[type, object], ...]]:
        return Counter(tuple((type(r.get(c)), r.get(c)) for c in columns) for r in rows)

    return content(these) == content(those)


def _decide_and_write(
    conn: Connection,
    config: Config,
    campaigns: CampaignBook,
    ids: Sequence[int],
    horizon: Horizon,
    run_id: str,
    read: BehaviourRead | None = None,
) -> None:
    """The rules as of ``horizon`` for these contacts, on their stored rows; the writes they need."""
    decided = _decided(conn, config, campaigns, ids, fetch_rows(conn, ids), horizon, run_id, read)
    batch = WriteBatch.empty()
    written: list[tuple[int, str]] = []
    for cid in ids:
        batch.extend(decided[cid].batch)
        written.extend(decided[cid].written_targets)
    _never_before(batch, horizon.as_of)
    write_batches(conn, [(batch, run_id)])
    write_target_statuses(conn, written)  # SPEC 8: the target's status follows what was written


def _decided(
    conn: Connection,
    config: Config,
    campaigns: CampaignBook,
    ids: Sequence[int],
    stored: Mapping[int, Sequence[StoredRow]],
    horizon: Horizon,
    run_id: str,
    read: BehaviourRead | None,
) -> dict[int, _Decided]:
    """The rules as of ``horizon`` for these contacts, on the rows given: the writes each needs."""
    active = [i.id for i in campaigns.active_instances]
    fields = {f[0]: f for f in fetch_contact_fields(conn, ids)}
    targets, _ = fetch_targets(conn, ids, active)
    as_of = {cid: horizon.as_of for cid in ids}
    behaviour = read.as_of(as_of) if read is not None else fetch_behaviour_as_of(conn, as_of)
    out: dict[int, _Decided] = {}
    for cid in ids:
        rows = stored.get(cid, [])
        if cid not in fields:  # deleted, or never known: no email from the decision day on
            gone = [
                r.existing.id
                for r in rows
                if r.existing.owned and r.existing.send_date is not None and r.existing.send_date >= horizon.as_of
            ]
            out[cid] = _Decided(WriteBatch([], [], gone), [])
            continue
        out[cid] = _decide_contact(
            config,
            campaigns,
            fields[cid],
            rows,
            targets.get(cid, ()),
            behaviour.get(cid, NO_BEHAVIOUR),
            horizon,
            run_id,
        )
    return out


def _never_before(batch: WriteBatch, as_of: date) -> None:
    """No owned row dated before the decision day is ever written (a decision of the past)."""
    day = as_of.isoformat()
    for values in (*batch.inserts, *(v for _, v in batch.updates)):
        if str(values.scheduled_send_date) < day:
            raise AssertionError(
                f"a decision as of {day} would write {values.occurrence_key} "
                f"dated {values.scheduled_send_date}: refused"
            )


def _summary_of(row: Mapping[str, object]) -> dict[str, object]:
    return {
        "email_type": row["email_type"],
        "scheduled_send_date": row["scheduled_send_date"],
        "status": row["status"],
        "skip_reason": row["skip_reason"],
    }


def _change_of(contact_id: int, kind: str, row: Mapping[str, object], previous: Mapping[str, object] | None) -> ScheduleChange:
    return ScheduleChange(
        contact_id=contact_id,
        occurrence_key=str(row["occurrence_key"]),
        change=kind,
        email_type=str(row["email_type"]),
        scheduled_send_date=str(row["scheduled_send_date"]),
        status=str(row["status"]),
        skip_reason=None if row["skip_reason"] is None else str(row["skip_reason"]),
        previous=_summary_of(previous) if previous is not None else None,
    )


def _changes(contact_id: int, before: Sequence[Row], after: Sequence[Row]) -> list[ScheduleChange]:
    """What a batch changed in the contact's owned rows (a row the sender took is its news, not ours)."""
    was = {str(r["occurrence_key"]): r for r in before if r["occurrence_key"] is not None}
    now = {str(r["occurrence_key"]): r for r in after if r["occurrence_key"] is not None}
    out: list[ScheduleChange] = []
    for key in sorted(was.keys() | now.keys()):
        old, new = was.get(key), now.get(key)
        if new is not None and str(new["status"]) in OWNED_STATUSES:
            if old is None:
                out.append(_change_of(contact_id, "created", new, None))
            elif _summary_of(old) != _summary_of(new):
                out.append(_change_of(contact_id, "changed", new, old))
        elif new is None and old is not None and str(old["status"]) in OWNED_STATUSES:
            out.append(_change_of(contact_id, "cancelled", old, old))
    return out


@dataclass(frozen=True)
class _Decided:
    batch: WriteBatch
    written_targets: list[tuple[int, str]]


def _decide_contact(
    config: Config,
    campaigns: CampaignBook,
    fields: ContactFields,
    stored_rows: Sequence[StoredRow],
    targets: Sequence[CampaignTarget],
    behaviour: Behaviour,
    horizon: Horizon,
    run_id: str,
) -> _Decided:
    contact_id = fields[0]
    contact = validate_contact(ContactRecord(*fields))
    plan = schedule_contact(
        contact,
        [r.existing for r in stored_rows],
        config,
        horizon,
        campaigns=campaigns,
        targets=targets,
        behaviour=behaviour,
    )
    by_id = rows_by_id(stored_rows)
    skipped = _frequency_skipped(plan.decisions, plan.fixed_counted_dates, config)
    batch = WriteBatch.empty()
    for d in plan.decisions:
        stored = by_id.get(d.existing_row_id) if d.existing_row_id is not None else None
        stage_write(batch, _values(d, stored, skipped, config, run_id), stored)
    claimed = {d.existing_row_id for d in plan.decisions}
    stale = [
        r.existing.id
        for r in stored_rows
        if r.existing.owned
        and r.existing.id not in claimed
        and r.existing.send_date is not None
        and r.existing.send_date > horizon.range_end
        and r.existing.occurrence_key is not None
        and r.existing.email_type == POST_WINDOW
        and plan.windows is not None
        and isinstance(contact, Contact)
        and not planned_post_window_holds(
            r.existing.occurrence_key,
            r.existing.ideal_send_date,
            contact,
            plan.windows,
            config,
            plan.campaign_dates,
        )
    ]
    batch.deletes.extend((*plan.deletes, *stale))
    written = written_targets(contact_id, targets, campaigns, (d.occurrence.key for d in plan.decisions))
    return _Decided(batch, list(written))
