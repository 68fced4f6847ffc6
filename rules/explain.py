"""Plain-words explanation of one contact's schedule (``mailwindow explain``).

It re-runs the same per-contact rules the sweep runs and says, for every
occurrence near ``T``: its dates, the window that applies, and why it is
scheduled, moved, skipped or not written.  Moves made across contacts (daily
cap, smoothing) and frequency-limit skips are read from the stored rows,
whose notes say what moved them.
"""

from __future__ import annotations

from collections.abc import Sequence

from rules.config import BIRTHDAY, EFFECTIVE_DATE, Config
from rules.contact import Contact, InvalidContact
from rules.contact_schedule import ExistingRow, schedule_contact
from rules.occurrence import next_aep_occurrences, next_yearly_occurrence
from rules.placement import Horizon
from rules.post_window import blocked_by, post_window_date


def explain_contact(
    contact: Contact | InvalidContact,
    rows: Sequence[ExistingRow],
    config: Config,
    horizon: Horizon,
    stored_notes: dict[int, str] | None = None,
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

    plan = schedule_contact(contact, rows, config, horizon)
    windows = plan.windows
    assert windows is not None
    out.append("")
    out.append("Exclusion windows:")
    if windows.year_round:
        out.append(f"  {contact.state} is a year-round state: every date is excluded.")
    elif not windows.rules:
        out.append(f"  {contact.state} has no window rule (or the contact lacks its date): none.")
    for w in windows.windows_of_years(range(t.year - 1, t.year + 2)):
        blocking = blocked_by(w, contact, config)
        line = f"  {w.label} (anchor {w.anchor})"
        if blocking:
            pw = post_window_date(w, windows)
            what = ", ".join(f"{kind} {d}" for kind, d in blocking)
            line += f": blocks {what}; " + "; ".join(pw.path)
        else:
            line += ": blocks no email"
        out.append(line)

    out.append("")
    out.append("Emails:")
    decided = {d.occurrence.key: d for d in plan.decisions}
    not_written = {n.occurrence.key: n for n in plan.not_written}
    candidates = [
        occ
        for kind in (BIRTHDAY, EFFECTIVE_DATE)
        if (occ := next_yearly_occurrence(contact, kind, t, config)) is not None
    ]
    candidates.extend(next_aep_occurrences(contact, t, config))
    shown: set[str] = set()
    for occ in [*candidates, *(d.occurrence for d in plan.decisions)]:
        if occ.key in shown:
            continue
        shown.add(occ.key)
        head = (
            f"  {occ.email_type} (key {occ.key}): event {occ.event_date}, "
            f"ideal send {occ.ideal_send_date}, priority {occ.priority}"
        )
        out.append(head)
        if occ.note:
            out.append(f"    post-window: {occ.note}")
        if occ.key in decided:
            d = decided[occ.key]
            verdict = "SKIPPED" if d.skip_reason else "SCHEDULED"
            out.append(f"    {verdict} on {d.send_date}: {d.why}")
            if d.skip_reason:
                out.append(f"    skip reason: {d.skip_reason}")
            if d.existing_row_id is not None and stored_notes and d.existing_row_id in stored_notes:
                out.append(f"    stored row {d.existing_row_id}: {stored_notes[d.existing_row_id]}")
        elif occ.key in not_written:
            out.append(f"    NOT WRITTEN: {not_written[occ.key].reason}")
        else:
            out.append(
                f"    not in play today: ideal send date is outside "
                f"{horizon.lookback_start}..{horizon.range_end}"
                + (" (its event has passed)" if occ.event_date < t else "")
            )
            window = windows.exclusion_on(occ.ideal_send_date)
            if window is not None and occ.respects_windows:
                out.append(f"    when it comes into play: {occ.ideal_send_date} is excluded ({window.reason})")
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


