"""What a run reads before deciding: the figures it starts from, the campaign book and
the contacts to decide (the pre-filter, ``rules.prefilter``)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, text

from rules.campaign import CampaignBook, instance_problems
from rules.config import Config
from rules.load_balancing import daily_cap
from rules.prefilter import PrefilterPlan, prefilter_plan
from streams.store.campaigns import campaign_candidate_ids, load_campaign_book
from streams.store.checksum import schedule_checksum
from streams.store.engine import Store
from streams.store.ledger import last_mark
from streams.sweep.balance import day_volumes
from streams.sweep.checkpoint import unfinished_runs
from streams.sweep.incremental import incremental_selection, previous_run, run_basis, why_everyone
from streams.sweep.prefilter import (
    all_contact_ids,
    candidate_contact_ids,
    count_valid_contacts,
    followup_candidate_ids,
    unusable_contacts,
)
from streams.sweep.summary import SweepOptions, SweepSummary


@dataclass(frozen=True)
class Prepared:
    ids: array  # the contacts to decide, in id order
    # Runs that did not complete: their placements are not "kept" (rules.contact_schedule).
    failed_runs: frozenset[str]
    campaigns: CampaignBook
    volume: dict[int, int]  # day ordinal -> emails counting toward the daily cap
    ed_volume: dict[int, int]  # the same for effective-date emails
    marks_upto: int = 0  # the change marks this run has seen (cleared when it completes)
    forget_ledger: bool = False  # the ledger's entries were made under another basis


def prepare(
    store: Store, config: Config, options: SweepOptions, run_id: str, summary: SweepSummary
) -> Prepared:
    """Read what deciding needs; the figures it starts from go into ``summary``."""
    with store.engine.connect() as conn:
        failed_runs = unfinished_runs(conn) - {run_id}
        summary.schedules_before_checksum = schedule_checksum(conn)
        summary.valid_contacts = count_valid_contacts(conn)
        summary.daily_cap = daily_cap(summary.valid_contacts, config.load_balancing)
        volume, ed_volume = day_volumes(conn, options.as_of)
        summary.contacts_scanned = int(conn.execute(text("SELECT count(*) FROM contacts")).scalar_one())
        if options.contact_ids is None:  # ids the rules cannot key on: never decided, reported (issue 11)
            for shown, reason in unusable_contacts(conn):
                summary.add_invalid(1, [(shown, (reason,))])
        campaigns = _campaign_book(conn, config, summary)
        marks_upto = last_mark(conn)
        incremental = None
        if options.contact_ids is None:
            summary.basis = run_basis(conn, config, options)
            incremental = _incremental(conn, config, options, campaigns, summary, run_id, marks_upto)
        ids = incremental if incremental is not None else _contacts_to_decide(conn, config, options, campaigns, summary)
    forget = options.contact_ids is None and incremental is None
    return Prepared(ids, failed_runs, campaigns, volume, ed_volume, marks_upto, forget)


def _incremental(
    conn: Connection,
    config: Config,
    options: SweepOptions,
    campaigns: CampaignBook,
    summary: SweepSummary,
    run_id: str,
    marks_upto: int,
) -> array | None:
    """The contacts whose decision can have changed (``streams.sweep.incremental``), or None
    when this run cannot build on the last one and decides as the pre-filter says."""
    if options.full_scan:
        return None
    previous = previous_run(conn, run_id)
    if previous is None or previous.basis != summary.basis or previous.as_of > options.as_of:
        return None
    selection = incremental_selection(conn, config, options, campaigns, previous, marks_upto)
    summary.incremental = True
    summary.prefilter = selection.why
    ids = array("q")
    ids.extend(sorted(selection.ids))
    return ids


def _campaign_book(conn: Connection, config: Config, summary: SweepSummary) -> CampaignBook:
    """Every campaign type and instance; what is wrong with them is a warning each."""
    loaded = load_campaign_book(conn, config)
    for problem in [*loaded.problems, *instance_problems(loaded.book.instances, loaded.book.types)]:
        summary.add_warnings(1, [problem])
    return loaded.book


def _contacts_to_decide(
    conn: Connection, config: Config, options: SweepOptions, campaigns: CampaignBook, summary: SweepSummary
) -> array:
    """The contacts this run decides, in id order; ``summary.prefilter`` says why these."""
    ids = array("q")
    if options.contact_ids is not None:
        summary.prefilter = f"{len(options.contact_ids)} contacts named by the caller"
        ids.extend(sorted(set(options.contact_ids)))
        return ids
    horizon = options.horizon
    plan = prefilter_plan(config, horizon)
    first, last = horizon.lookback_start, horizon.range_end
    everyone = _why_every_contact(options, plan, campaigns, first, last)
    if everyone is not None:
        summary.prefilter = everyone
        ids.extend(all_contact_ids(conn))
        return ids
    summary.prefilter = plan.why + "; plus campaign targets and initial emails awaiting follow-ups"
    found = set(candidate_contact_ids(conn, plan, horizon.as_of.isoformat(), last.isoformat()))
    found |= campaign_candidate_ids(conn, campaigns, first, last)
    found |= followup_candidate_ids(conn, horizon.as_of)
    ids.extend(sorted(found))
    return ids


def _why_every_contact(
    options: SweepOptions, plan: PrefilterPlan, campaigns: CampaignBook, first: date, last: date
) -> str | None:
    """Why the pre-filter cannot narrow the contacts down, or None when it can."""
    if options.full_scan:
        return "full scan (--full-scan)"
    return why_everyone(plan, campaigns, first, last)
