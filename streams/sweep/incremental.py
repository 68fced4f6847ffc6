"""Which contacts an incremental sweep decides: those whose decision can have changed since
the last completed sweep, not the fifth of the agency the pre-filter finds in play.

Since the last completed sweep (as of ``T0``), under the same basis (rules version,
config, horizon, campaign types and instances), a contact's decision as of ``T`` can
differ from its rows only if:

- its day has come: the ledger's ``due <= T`` (``rules.decision_due``);
- its inputs changed: a trigger marked it (``mw_changed``);
- one of its occurrences entered the range: its ideal date lies in
  ``(T0 + H, T + H]``, which is the pre-filter run over those days only (the
  "slice": the same indexed month-day SQL, a day's worth of it), campaign targets
  included; or the slice holds an AEP date or a campaign for all contacts, and then
  everyone is decided, as the pre-filter would;
- one of its sent emails entered the follow-ups' 35 days: sent in ``(T0, T]``.  Such a
  row is usually marked when the sending side writes it, but not one stored as sent
  with a time still to come at ``T0`` (an import, a clock ahead).

Anything else (no previous sweep, another basis, a run that failed since, a day
before ``T0``) decides as before: the whole pre-filter, with the ledger cleared and
refilled by what it decides.  A contact the pre-filter leaves out is one whose
decision changes nothing, and it stays so until its occurrence enters (the slice)
or its inputs change (a mark).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from rules.campaign import CampaignBook
from rules.config import Config
from rules.decision_due import LEDGER_VERSION
from rules.placement import Horizon
from rules.prefilter import PrefilterPlan, prefilter_plan
from streams.store.campaigns import campaign_candidate_ids, campaign_tables_digest
from streams.store.ledger import due_contacts, marked_contacts
from streams.store.tables import scheduler_checkpoints
from streams.sweep.prefilter import all_contact_ids, candidate_contact_ids, followup_candidate_ids
from streams.sweep.summary import SweepOptions

# What a completed run keeps for the next beside the ledger; bumped when that changes, so
# the next run does not build on a run that kept less.  2: the invalid contacts
# (streams.sweep.valid_contacts).
KEPT_VERSION = 2


def run_basis(conn: Connection, config: Config, options: SweepOptions) -> str:
    """What every ledger entry of a run is valid under: another basis decides everyone."""
    digest = hashlib.sha256()
    kept = [LEDGER_VERSION, KEPT_VERSION]
    digest.update(orjson.dumps([kept, config.to_dict(), options.lookahead_days, options.lookback_days],
                               option=orjson.OPT_SORT_KEYS, default=str))
    digest.update(campaign_tables_digest(conn).encode())
    return "sha256:" + digest.hexdigest()[:32]


@dataclass(frozen=True)
class PreviousRun:
    as_of: date
    basis: str


def previous_run(conn: Connection, run_id: str) -> PreviousRun | None:
    """The last completed sweep of the whole agency, when its ledger can be built on: it
    recorded a basis, and no run other than this one failed or is unfinished since."""
    cp = scheduler_checkpoints.c
    rows = conn.execute(
        sa.select(cp.id, cp.as_of, cp.summary).where(cp.status == "completed").order_by(cp.id.desc()).limit(50)
    )
    for checkpoint_id, as_of, raw in rows:
        try:
            summary = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            return None
        if not isinstance(summary, dict) or summary.get("partial"):
            continue  # a run for named contacts does not make a decision day
        basis = summary.get("basis")
        if not isinstance(basis, str) or not basis or as_of is None:
            return None
        later_unfinished = conn.execute(
            sa.select(sa.func.count()).where(
                cp.id > checkpoint_id, cp.status != "completed", cp.scheduler_run_id != run_id
            )
        ).scalar_one()
        if later_unfinished:
            return None
        try:
            return PreviousRun(date.fromisoformat(str(as_of)), basis)
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class Selection:
    ids: set[int]
    why: str
    marked: set[int]  # the contacts whose inputs changed
    everyone: bool = False


def incremental_selection(
    conn: Connection,
    config: Config,
    options: SweepOptions,
    campaigns: CampaignBook,
    previous: PreviousRun,
    marks_upto: int,
) -> Selection:
    """The contacts whose decision can have changed since ``previous`` (module docstring)."""
    t, h = options.as_of, options.lookahead_days
    due = due_contacts(conn, t)
    marked = marked_contacts(conn, marks_upto)
    entered: set[int] = set()
    if t > previous.as_of:
        first, last = previous.as_of + timedelta(days=h + 1), t + timedelta(days=h)
        window = Horizon(first, (last - first).days, 0)
        plan = prefilter_plan(config, window)
        everyone = why_everyone(plan, campaigns, first, last)
        if everyone is not None:
            return Selection(set(all_contact_ids(conn)), f"incremental, but {everyone}", marked, everyone=True)
        entered = set(candidate_contact_ids(conn, plan, first.isoformat(), last.isoformat()))
        entered |= campaign_candidate_ids(conn, campaigns, first, last)
        # Initial emails enter the follow-ups' 35 days at T: those sent since T0.
        entered |= followup_candidate_ids(conn, t, since=previous.as_of + timedelta(days=1))
    why = (
        f"incremental since {previous.as_of}: {len(due)} due, {len(marked)} changed, "
        f"{len(entered)} entering the range"
    )
    return Selection(due | marked | entered, why, marked)


def why_everyone(plan: PrefilterPlan, campaigns: CampaignBook, first: date, last: date) -> str | None:
    """Why every contact is in play over ``[first, last]`` (an AEP date, a campaign for all
    contacts starting), or None."""
    if plan.every_contact:
        return plan.why
    starting = [
        i for i in campaigns.targets_all
        if i.active_start_date is not None and first <= i.active_start_date <= last
    ]
    if starting:
        names = ", ".join(f"{i.id} ({i.instance_name})" for i in starting)
        return f"every contact: campaign instance(s) {names} target all contacts and start in range"
    return None
