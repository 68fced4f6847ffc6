"""One contact's schedule decided again and written: what the stream agents do per event.

The agents (``streams/agents.py``) and replay call ``sync_contact`` after
storing an event: it reads the contact's stored state (contact row, schedule
rows, campaign targets, clicks, answers), runs the same rules as the sweep
(``rules.contact_schedule.schedule_contact`` and the frequency limit), writes
only the difference and returns it as schedule changes.

What differs from the sweep, on purpose (ARCHITECTURE.md, "How the agents
decide"): no load balancing across contacts (effective-date smoothing and the
daily cap need every contact's placements, so they belong to the sweep);
newly placed emails go out on their ideal or catch-up dates.  With load
balancing switched off in config the sweep gives the same rows (tested).

One more difference, written down here: a contact decided again because its
own data changed also loses the planned post-window emails beyond the range
that no longer follow any of its windows (``planned_post_window_holds``).
The sweep leaves rows beyond the range alone (SPEC section 9) and removes
such a row once it enters the range; the agents remove it at once, so the
result does not depend on how events were grouped into batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, text

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
from streams.campaign_rows import (
    fetch_behaviour_as_of,
    fetch_targets,
    write_target_statuses,
)
from streams.schedule_rows import (
    DECISION_COLUMNS,
    ContactFields,
    RowValues,
    StoredRow,
    WriteBatch,
    fetch_contact_fields,
    fetch_rows,
    placed_values,
    placeholder,
    rows_by_id,
    stage_write,
    write_batches,
)

_KEY = DECISION_COLUMNS.index("occurrence_key")
_TYPE = DECISION_COLUMNS.index("email_type")
_DATE = DECISION_COLUMNS.index("scheduled_send_date")
_STATUS = DECISION_COLUMNS.index("status")
_REASON = DECISION_COLUMNS.index("skip_reason")


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


def _summary(values: RowValues) -> dict[str, object]:
    return {
        "email_type": values[_TYPE],
        "scheduled_send_date": values[_DATE],
        "status": values[_STATUS],
        "skip_reason": values[_REASON],
    }


def _change(contact_id: int, kind: str, values: RowValues, previous: RowValues | None) -> ScheduleChange:
    return ScheduleChange(
        contact_id=contact_id,
        occurrence_key=str(values[_KEY]),
        change=kind,
        email_type=str(values[_TYPE]),
        scheduled_send_date=str(values[_DATE]),
        status=str(values[_STATUS]),
        skip_reason=None if values[_REASON] is None else str(values[_REASON]),
        previous=_summary(previous) if previous is not None else None,
    )


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


def _values(d: Decision, stored: StoredRow | None, skipped: set[str], config: Config, run_id: str) -> RowValues:
    values = placed_values(d, stored, config.timing.send_time, run_id)
    if d.occurrence.key in skipped:
        values = (*values[:_STATUS], SKIPPED, FREQUENCY_LIMIT_REASON, *values[_REASON + 1 :])
    return values


@dataclass(frozen=True)
class SyncRequest:
    """Decide a contact again as of ``as_of``; ``run_id`` names the writer on the rows it places."""

    as_of: date
    run_id: str


def sync_contact(
    conn: Connection,
    config: Config,
    campaigns: CampaignBook,
    contact_id: int,
    as_of: date,
    run_id: str,
    lookahead_days: int = 30,
    lookback_days: int = 7,
) -> list[ScheduleChange]:
    """Decide one contact as of ``as_of``, write the difference, return it.

    ``run_id`` names the writer (e.g. ``agent:contacts:0:42``) on the rows it places.
    Call inside a transaction: the reads and writes are one unit.
    """
    requests = {contact_id: SyncRequest(as_of, run_id)}
    return sync_contacts(conn, config, campaigns, requests, lookahead_days, lookback_days)[contact_id]


def sync_contacts(
    conn: Connection,
    config: Config,
    campaigns: CampaignBook,
    requests: Mapping[int, SyncRequest],
    lookahead_days: int = 30,
    lookback_days: int = 7,
    chunk: int = 500,
) -> dict[int, list[ScheduleChange]]:
    """``sync_contact`` for many contacts: the same decisions, read and written per chunk.

    A handful of statements per chunk instead of a handful per contact: what
    lets one agent keep up with thousands of events a second.  Each contact
    is decided from its own stored state only, so the result is that of
    deciding them one by one.
    """
    out: dict[int, list[ScheduleChange]] = {}
    active = [i.id for i in campaigns.active_instances]
    ids = sorted(requests)
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        fields = {f[0]: f for f in fetch_contact_fields(conn, part)}
        stored = fetch_rows(conn, part)
        targets, _ = fetch_targets(conn, part, active)
        behaviour = fetch_behaviour_as_of(conn, {cid: requests[cid].as_of for cid in part})
        batches: list[tuple[WriteBatch, str]] = []
        written: list[tuple[int, str]] = []
        for cid in part:
            request = requests[cid]
            if cid not in fields:  # deleted meanwhile, or never known: nothing to decide
                out[cid] = []
                continue
            decided = _decide_contact(
                config,
                campaigns,
                fields[cid],
                stored.get(cid, []),
                targets.get(cid, ()),
                behaviour.get(cid, NO_BEHAVIOUR),
                Horizon(request.as_of, lookahead_days, lookback_days),
                request.run_id,
            )
            out[cid] = decided.changes
            batches.append((decided.batch, request.run_id))
            written.extend(decided.written_targets)
        write_batches(conn, batches)
        write_target_statuses(conn, written)  # SPEC 8: the target's status follows what was written
    return out


@dataclass(frozen=True)
class _Decided:
    batch: WriteBatch
    changes: list[ScheduleChange]
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
    changes: list[ScheduleChange] = []
    for d in plan.decisions:
        stored = by_id.get(d.existing_row_id) if d.existing_row_id is not None else None
        values = _values(d, stored, skipped, config, run_id)
        outcome = stage_write(batch, values, stored)
        if outcome == "inserted":
            changes.append(_change(contact_id, "created", values, None))
        elif outcome == "updated" and stored is not None and _summary(stored.values) != _summary(values):
            changes.append(_change(contact_id, "changed", values, stored.values))
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
    for row_id in (*plan.deletes, *stale):
        row = by_id[row_id]
        batch.deletes.append(row_id)
        if row.values[_KEY] is not None:
            changes.append(_change(contact_id, "cancelled", row.values, row.values))
    written = written_targets(contact_id, targets, campaigns, (d.occurrence.key for d in plan.decisions))
    return _Decided(batch, changes, list(written))


def cancel_owned_rows(conn: Connection, contact_id: int, from_date: date) -> list[ScheduleChange]:
    """A deleted contact: its owned rows dated from ``from_date`` go, announced as cancellations.

    Sending-side rows (history) stay (ARCHITECTURE.md).
    """
    stored_rows = fetch_rows(conn, [contact_id]).get(contact_id, [])
    gone = [
        r
        for r in stored_rows
        if r.existing.status in OWNED_STATUSES
        and r.existing.send_date is not None
        and r.existing.send_date >= from_date
    ]
    if gone:
        ph = placeholder(conn)
        conn.exec_driver_sql(
            f"DELETE FROM email_schedules WHERE id = {ph} AND status IN ('pre-scheduled', 'skipped')",
            [(r.existing.id,) for r in gone],
        )
    return [
        _change(contact_id, "cancelled", r.values, r.values)
        for r in gone
        if r.values[_KEY] is not None
    ]


def contact_exists(conn: Connection, contact_id: int) -> bool:
    return (
        conn.execute(text("SELECT 1 FROM contacts WHERE id = :id"), {"id": contact_id}).first()
        is not None
    )
