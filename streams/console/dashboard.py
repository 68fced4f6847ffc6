"""The dashboard's data: the next 60 days by email type, skips by reason, the last sweeps,
the invalid contacts the last sweep reported.  The HTML page and ``/api/dashboard`` are
both made from ``dashboard_data``'s result, so they cannot disagree.

Choices written down here:

- A day's bar counts the rows that occupy its sending volume (``pre-scheduled`` and
  the sent-like statuses, ``rules.statuses.counts_toward_volume``), follow-ups
  included (as their own types); skipped rows are counted beside the bar, rows in
  any other status (``failed``, ``bounced``, unknown) as ``other``.  Legacy
  upper-case types count as today's (``normalized_type``).
- The daily cap line is the last completed sweep's cap (``summary.daily_cap``): the
  cap is counted over the whole agency, which only a sweep does.  It applies to the
  non-follow-up emails (SPEC section 7).
- Moved emails are the rows whose note says the sweep moved them (effective-date
  smoothing, the daily cap), counted on the day they were moved to.
- Skip reasons are grouped without their window dates (``CA birthday window``,
  ``NY year-round``, ``frequency limit``, ...): a window's dates differ per contact.
- Invalid contacts: the agency's count as of the last completed sweep (contacts
  scanned minus valid contacts, both counted by every sweep over the whole agency),
  and the sample of at most ``streams.sweep.summary.EXAMPLES_KEPT`` contacts with
  their reasons that a summary keeps, from the newest of the last sweeps that
  decided invalid contacts (an incremental sweep decides few: it may have none).
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection

from rules.statuses import SKIPPED, counts_toward_volume, normalized_type
from streams.console import queries
from streams.console.runs import sweep_view

DAYS = 60
RECENT_SWEEPS = 10

# A skip reason's window dates: '... window 2025-01-31..2025-06-30'.
_WINDOW_DATES = re.compile(r"\s+\d{4}-\d{2}-\d{2}\.\.\d{4}-\d{2}-\d{2}$")


def reason_kind(reason: str | None) -> str:
    if not reason:
        return "(no reason given)"
    return _WINDOW_DATES.sub("", reason.strip())


def days_of(rows: list[queries.DayMix], today: date) -> list[dict[str, Any]]:
    """Exactly ``DAYS`` days from ``today``, each with its counts (no row: zeros)."""
    days = [today + timedelta(days=i) for i in range(DAYS)]
    by_day: dict[str, dict[str, Any]] = {
        d.isoformat(): {
            "date": d.isoformat(),
            "by_type": {},
            "total": 0,
            "moved": {"smoothing": 0, "daily_cap": 0},
            "skipped": 0,
            "other": 0,
        }
        for d in days
    }
    for r in rows:
        day = by_day.get(r.day)
        if day is None:  # stored text that is not an ISO date of the span: not a day of the chart
            continue
        if counts_toward_volume(r.status):
            kind = normalized_type(r.email_type)
            day["by_type"][kind] = day["by_type"].get(kind, 0) + r.count
            day["total"] += r.count
            if r.moved:
                day["moved"][r.moved] += r.count
        elif r.status == SKIPPED:
            day["skipped"] += r.count
        else:
            day["other"] += r.count
    return [by_day[d.isoformat()] for d in days]


def skipped_by_reason(rows: list[queries.DayMix]) -> list[dict[str, Any]]:
    counts: Counter[str] = Counter()
    for r in rows:
        if r.status == SKIPPED:
            counts[reason_kind(r.skip_reason)] += r.count
    return [{"reason": k, "count": n} for k, n in sorted(counts.items(), key=lambda x: (-x[1], x[0]))]


def _examples(checkpoint: dict[str, Any]) -> list[dict[str, Any]]:
    examples = checkpoint["summary"].get("invalid_examples")
    return [
        {"contact_id": e.get("contact_id"), "reasons": [str(x) for x in e.get("reasons", [])]}
        for e in (examples if isinstance(examples, list) else [])
        if isinstance(e, dict)
    ]


def invalid_contacts(last: dict[str, Any] | None, recent: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The agency's invalid contacts as of ``last``, with examples from the newest completed
    sweep among ``recent`` that decided some (an incremental sweep decides few contacts)."""
    if last is None:
        return None
    summary = last["summary"]
    scanned, valid = summary.get("contacts_scanned"), summary.get("valid_contacts")
    agency_wide = isinstance(scanned, int) and isinstance(valid, int) and scanned >= valid > 0
    sample = next(
        (cp for cp in [last, *recent] if cp["status"] == "completed" and _examples(cp)), last
    )
    return {
        "run_id": last["scheduler_run_id"],
        "as_of": last["as_of"],
        # Every sweep counts the agency's valid contacts (the daily cap's base, the same
        # test as the rules': a usable email and a state): the rest are invalid, whichever
        # contacts this sweep decided.
        "count": scanned - valid if agency_wide else last["contacts_invalid"] or 0,
        "examples": _examples(sample),
        "examples_run_id": sample["scheduler_run_id"],
        "examples_decided_invalid": sample["contacts_invalid"] or 0,
    }


def dashboard_data(conn: Connection, today: date) -> dict[str, Any]:
    rows = queries.day_mix(conn, today, today + timedelta(days=DAYS - 1))
    last = queries.last_completed_checkpoint(conn)
    recent = queries.checkpoints(conn, RECENT_SWEEPS)
    days = days_of(rows, today)
    types = sorted({t for d in days for t in d["by_type"]})
    return {
        "today": today.isoformat(),
        "days": days,
        "email_types": types,
        "daily_cap": sweep_view(last)["daily_cap"] if last is not None else None,
        "skipped_by_reason": skipped_by_reason(rows),
        "sweeps": [sweep_view(cp) for cp in recent],
        "invalid_contacts": invalid_contacts(last, recent),
    }
