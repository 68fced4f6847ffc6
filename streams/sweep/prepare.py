"""What a run reads before deciding: the figures it starts from, the campaign book and
the contacts to decide (the pre-filter, ``rules.prefilter``)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, text

from rules.campaign import CampaignBook, instance_problems
from rules.config import Config
from rules.prefilter import PrefilterPlan, prefilter_plan
from streams.store.campaigns import campaign_candidate_ids, load_campaign_book
from streams.store.engine import Store
from streams.store.ledger import last_mark
from streams.sweep.balance import day_volumes
from streams.sweep.checkpoint import unfinished_runs
from streams.sweep.incremental import (
    Selection,
    incremental_selection,
    previous_run,
    run_basis,
    why_everyone,
)
from streams.sweep.prefilter import (
    all_contact_ids,
    candidate_contact_ids,
    followup_candidate_ids,
    unusable_contacts,
    usable_contact_count,
)
from streams.sweep.summary import SweepOptions, SweepSummary
from streams.sweep.valid_contacts import InvalidContacts, incremental_invalid


@dataclass(frozen=True)
class Prepared:
    ids: array  # the contacts to decide, in id order
    # Runs that did not complete: their placements are not "kept" (rules.contact_schedule).
    failed_runs: frozenset[str]
    campaigns: CampaignBook
    volume: dict[int, int]  # day ordinal -> emails counting toward the daily cap
    ed_volume: dict[int, int]  # the same for effective-date emails
    usable_contacts: int  # contacts with a usable id: the valid ones are these less the invalid
    # The invalid contacts when this run builds on the last one (how many, and what its
    # completion keeps); otherwise the side process finds them (streams.sweep.valid_contacts).
    invalid: tuple[int, InvalidContacts] | None
    marks_upto: int = 0  # the change marks this run has seen (cleared when it completes)
    forget_ledger: bool = False  # the ledger's entries were made under another basis


def prepare(
    store: Store, config: Config, options: SweepOptions, run_id: str, summary: SweepSummary
) -> Prepared:
    """Read what deciding needs, in one transaction (one snapshot); the figures it starts
    from go into ``summary``, but for the checksum before and, unless the run builds on
    the last one, the invalid contacts: ``streams.sweep.side_reads`` reads those."""
    with store.engine.connect() as conn:
        failed_runs = unfinished_runs(conn) - {run_id}
        volume, ed_volume = day_volumes(conn, options.as_of)
        summary.contacts_scanned = int(conn.execute(text("SELECT count(*) FROM contacts")).scalar_one())
        usable = usable_contact_count(conn, summary.contacts_scanned)
        if options.contact_ids is None:  # ids the rules cannot key on: never decided, reported (issue 11)
            for shown, reason in unusable_contacts(conn):
                summary.add_invalid(1, [(shown, (reason,))])
        campaigns = _campaign_book(conn, config, summary)
        marks_upto = last_mark(conn)
        selection = None
        if options.contact_ids is None:
            summary.basis = run_basis(conn, config, options)
            selection = _incremental(conn, config, options, campaigns, summary, run_id, marks_upto)
        if selection is None:
            ids, invalid = _contacts_to_decide(conn, config, options, campaigns, summary), None
        else:
            ids = array("q")
            ids.extend(sorted(selection.ids))
            invalid = incremental_invalid(conn, selection.marked)
    forget = options.contact_ids is None and selection is None
    return Prepared(ids, failed_runs, campaigns, volume, ed_volume, usable, invalid, marks_upto, forget)


def _incremental(
    conn: Connection,
    config: Config,
    options: SweepOptions,
    campaigns: CampaignBook,
    summary: SweepSummary,
    run_id: str,
    marks_upto: int,
) -> Selection | None:
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
    return selection


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
