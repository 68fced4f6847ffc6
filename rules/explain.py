"""Plain-words explanation of one contact's schedule (``mailwindow explain``).

It re-runs the same per-contact rules the sweep runs and says, for every
occurrence near ``T``: its dates, the window that applies, and why it is
scheduled, moved, skipped or not written.  Moves made across contacts (daily
cap, smoothing) and frequency-limit skips are read from the stored rows,
whose notes say what moved them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date

from rules.bounds import excerpt, shown
from rules.campaign import (
    EMPTY_BOOK,
    CampaignBook,
    CampaignTarget,
    campaign_occurrences,
    campaign_type_name,
)
from rules.config import BIRTHDAY, EFFECTIVE_DATE, Config
from rules.contact import Contact, InvalidContact
from rules.contact_schedule import ContactSchedule, ExistingRow, schedule_contact
from rules.followup import NO_BEHAVIOUR, Behaviour
from rules.occurrence import POST_WINDOW, Occurrence, next_aep_occurrences, next_yearly_occurrence
from rules.placement import Horizon
from rules.post_window import blocked_by, post_window_date


def explain_contact(
    contact: Contact | InvalidContact,
    rows: Sequence[ExistingRow],
    config: Config,
    horizon: Horizon,
    stored_notes: dict[int, str] | None = None,
    *,
    campaigns: CampaignBook = EMPTY_BOOK,
    targets: Sequence[CampaignTarget] = (),
    behaviour: Behaviour = NO_BEHAVIOUR,
) -> list[str]:
    t = horizon.as_of
    out = [
        f"Contact {contact.id} as of {t} (range {t}..{horizon.range_end}, "
        f"lookback to {horizon.lookback_start})"
    ]
    if isinstance(contact, InvalidContact):
        out.append("  INVALID: gets no emails; its owned rows in the range are removed.")
        out.extend(f"  - {r}" for r in contact.reasons)
        out.extend(f"  note: {w}" for w in contact.warnings)
        return out
    out.append(
        f"  state {contact.state}, birth date {contact.birth_date or 'none'}, "
        f"effective date {contact.effective_date or 'none'}, "
        f"phone {'yes' if contact.has_phone else 'no'}"
    )
    out.extend(f"  note: {w}" for w in contact.warnings)

    plan = schedule_contact(
        contact, rows, config, horizon, campaigns=campaigns, targets=targets, behaviour=behaviour
    )
    campaign_occs, _ = campaign_occurrences(
        contact, campaigns.active_instances, targets, campaigns.types, config
    )
    out.extend(_window_lines(contact, plan, config, campaign_occs, t))
    out.extend(_email_lines(contact, plan, config, horizon, campaign_occs, stored_notes))
    out.extend(_campaign_lines(campaigns, targets, contact.id))
    if plan.warnings:
        out.append("")
        out.append("Reported:")
        out.extend(f"  - {w}" for w in plan.warnings)
    if plan.deletes:
        out.append("")
        out.append(
            "Rows to remove (owned, in the range, claimed by no email): "
            + ", ".join(str(i) for i in plan.deletes)
        )
    out.append("")
    out.append(
        "Across contacts, the sweep may still move a newly placed email (effective-date "
        "smoothing, daily cap) or skip it (frequency limit); stored rows say so in their note."
    )
    return out


def _window_lines(
    contact: Contact, plan: ContactSchedule, config: Config, campaign_occs: Sequence[Occurrence], t: date
) -> list[str]:
    """The contact's exclusion windows of last, this and next year, with what each blocks."""
    windows = plan.windows
    assert windows is not None
    out = ["", "Exclusion windows:"]
    for year_round in windows.year_round_rules:
        when = f"from {year_round.effective_from or 'always'} until {year_round.effective_until or 'further notice'}"
        out.append(
            f"  {contact.state} is a year-round state"
            + (f" ({year_round.version}): every date {when} is excluded" if year_round.dated else ": every date is excluded")
            + f" (source: {windows.cited(year_round)})."
        )
    if not windows.year_round_rules and not windows.rules:
        out.append(f"  {contact.state} has no window rule (or the contact lacks its date): none.")
    for w in windows.windows_of_years(range(t.year - 1, t.year + 2)):
        blocking = blocked_by(w, contact, config, campaign_occs)
        version = f"{w.version}; " if w.version else ""
        line = f"  {w.dates_label} (anchor {w.anchor}; {version}source: {w.cited})"
        if blocking:
            pw = post_window_date(w, windows)
            what = ", ".join(f"{kind} {d}" for kind, d in blocking)
            line += f": blocks {what}; " + "; ".join(pw.path)
        else:
            line += ": blocks no email"
        out.append(line)
    return out


def _email_lines(
    contact: Contact,
    plan: ContactSchedule,
    config: Config,
    horizon: Horizon,
    campaign_occs: Sequence[Occurrence],
    stored_notes: dict[int, str] | None,
) -> list[str]:
    """Every occurrence near ``T`` (in play, decided or not written) and what became of it."""
    t = horizon.as_of
    windows = plan.windows
    assert windows is not None
    out = ["", "Emails:"]
    decided = {d.occurrence.key: d for d in plan.decisions}
    not_written = {n.occurrence.key: n for n in plan.not_written}
    candidates = [
        occ
        for kind in (BIRTHDAY, EFFECTIVE_DATE)
        if (occ := next_yearly_occurrence(contact, kind, t, config)) is not None
    ]
    candidates.extend(next_aep_occurrences(contact, t, config))
    candidates.extend(o for o in campaign_occs if o.ideal_send_date >= horizon.lookback_start)
    listed: set[str] = set()
    for occ in [
        *candidates,
        *(d.occurrence for d in plan.decisions),
        *(n.occurrence for n in plan.not_written),
    ]:
        if occ.key in listed:
            continue
        listed.add(occ.key)
        out.append(
            f"  {occ.email_type} (key {occ.key}): event {occ.event_date}, "
            f"ideal send {occ.ideal_send_date}, priority {occ.priority}"
        )
        if occ.note:
            out.append(f"    {_what(occ)}: {occ.note}")
        out.extend(f"    {line}" for line in _followup_evidence(occ))
        if occ.key in decided:
            d = decided[occ.key]
            verdict = "SKIPPED" if d.skip_reason else "SCHEDULED"
            out.append(f"    {verdict} on {d.send_date}: {d.why}")
            if d.skip_reason:
                out.append(f"    skip reason: {d.skip_reason}")
            if d.existing_row_id is not None and stored_notes and d.existing_row_id in stored_notes:
                out.append(f"    stored row {d.existing_row_id}: {stored_notes[d.existing_row_id]}")
        elif occ.key in not_written:
            n = not_written[occ.key]
            out.append(f"    {'DECIDED' if n.final else 'NOT WRITTEN'}: {n.reason}")
        else:
            out.append(
                f"    not in play today: ideal send date is outside "
                f"{horizon.lookback_start}..{horizon.range_end}"
                + (" (its event has passed)" if occ.event_date < t else "")
            )
            window = windows.exclusion_on(occ.ideal_send_date)
            if window is not None and occ.respects_windows:
                out.append(f"    when it comes into play: {occ.ideal_send_date} is excluded ({window.reason})")
    return out


def _what(occ: Occurrence) -> str:
    if occ.email_type == POST_WINDOW:
        return "post-window"
    if occ.is_followup:
        return "follow-up"
    if campaign_type_name(occ.email_type) is not None:
        return "campaign"
    return "how"


def _followup_evidence(occ: Occurrence) -> list[str]:
    """Why a follow-up has its type, from the behaviour its metadata records."""
    if not occ.is_followup or occ.metadata is None:
        return []
    data = json.loads(occ.metadata)
    b = data.get("behaviour", {})
    line = (
        f"type {data.get('followup_type')}: {b.get('decided_by')}"
        + (f" at {b['decided_at']}" if "decided_at" in b else "")
        + f" (since the initial email: {b.get('clicks', 0)} click(s), "
        f"{b.get('health_answers', 0)} health answer(s), "
        f"{b.get('health_answers_with_condition', 0)} with a condition)"
    )
    return [f"initial email {data.get('initial_key') or 'row ' + str(data.get('initial_row_id'))} "
            f"({data.get('initial_type')}) sent {data.get('initial_send_at')}", line]


def _campaign_lines(book: CampaignBook, targets: Sequence[CampaignTarget], contact_id: int) -> list[str]:
    """Every instance that names the contact, or targets everyone, and what became of it."""
    instances = {i.id: i for i in book.instances}
    lines: list[str] = []
    for target in sorted(targets, key=lambda x: (x.instance_id, x.row_id or 0)):
        instance = instances.get(target.instance_id)
        label = f"  instance {target.instance_id}"
        if instance is None:
            lines.append(f"{label}: no such instance: ignored")
            continue
        ctype = book.types.get(instance.campaign_type)
        label += f" ({excerpt(instance.instance_name)}, type {shown(instance.campaign_type)})"
        trigger = target.trigger_date or "none (start date + days before)"
        state = (
            "unknown type: no emails" if ctype is None
            else "type inactive: no emails" if not ctype.active
            else "cancelled: no email" if target.cancelled
            else f"dates {instance.active_start_date or 'open'}..{instance.active_end_date or 'open'}"
        )
        lines.append(f"{label}: trigger {trigger}, target status {excerpt(target.status)}; {state}")
    own = {t.instance_id for t in targets}
    for instance in book.targets_all:
        if instance.id not in own:
            lines.append(
                f"  instance {instance.id} ({excerpt(instance.instance_name)}, type {shown(instance.campaign_type)}): "
                f"targets all contacts; starts {instance.active_start_date or 'never (no start date)'}"
            )
    if not lines:
        return []
    return ["", f"Campaigns naming contact {contact_id}:", *lines]
