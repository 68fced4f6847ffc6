"""A contact's page: its timeline of the 24 months around today, the explanation
``mailwindow explain`` prints (``streams.admin.contact_view``: the same code), its stored
rows, clicks and answers.  ``/contacts/{id}`` and ``/api/contacts/{id}`` are both made
from ``contact_data``.

The timeline's statuses, in three words a person reads at a glance:
``pending`` (pre-scheduled, or the sending side's scheduled / processing: not sent
yet), ``sent`` (sent, delivered, accepted), ``skipped``; anything else the sending
side reported (failed, bounced, an unknown value) is ``failed``; an email the rules
will place but no row holds yet (beyond the sweep's lookahead) is ``planned``, with
the window that will skip it when its ideal date lies in one.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection

from rules.config import Config
from rules.contact import InvalidContact
from rules.placement import Horizon
from rules.statuses import SKIPPED
from streams.admin.contact_view import NoSuchContact, Timeline, gather_contact
from streams.console import queries
from streams.console.charts import Band, Mark, timeline_chart

LISTED = 200  # clicks and answers shown per contact, newest first
_PENDING = frozenset({"pre-scheduled", "scheduled", "processing"})
_SENT = frozenset({"sent", "delivered", "accepted"})


def status_class(status: str) -> str:
    lowered = status.lower()
    if status == SKIPPED:
        return "skipped"
    if lowered in _PENDING:
        return "pending"
    if lowered in _SENT:
        return "sent"
    return "failed"


def year_shift(d: date, years: int) -> date:
    """The same day ``years`` later (February 29 becomes the 28th in other years)."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


def span_around(today: date) -> tuple[date, date]:
    """The timeline's 24 months: a year back and a year ahead of today."""
    return year_shift(today, -1), year_shift(today, 1)


def _emails(timeline: Timeline) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in timeline.stored:
        e, v = r.existing, r.values
        out.append(
            {
                "date": e.send_date.isoformat() if e.send_date else None,
                "type": e.email_type,
                "status": e.status,
                "status_class": status_class(e.status),
                "key": e.occurrence_key,
                "row_id": e.id,
                "skip_reason": e.skip_reason,
                "note": v.catchup_note,
            }
        )
    for p in timeline.planned:
        out.append(
            {
                "date": p.ideal_send_date.isoformat(),
                "type": p.email_type,
                "status": "planned",
                "status_class": "planned",
                "key": None,
                "row_id": None,
                "skip_reason": p.excluded_by,
                "note": "no row yet: placed when its ideal date comes into the sweep's range",
            }
        )
    return sorted(out, key=lambda m: (m["date"] or "", m["type"]))


def _timeline_json(timeline: Timeline, first: date, last: date) -> dict[str, Any]:
    return {
        "first": first.isoformat(),
        "last": last.isoformat(),
        "year_round": timeline.year_round,
        "windows": [
            {
                "label": w.label,
                "state": w.state,
                "kind": w.kind,
                "start": w.start.isoformat(),
                "end": w.end.isoformat(),
                "anchor": w.anchor.isoformat(),
                "source": w.cited,
            }
            for w in timeline.windows
        ],
        "emails": _emails(timeline),
    }


def contact_data(conn: Connection, contact_id: int, config: Config, today: date) -> dict[str, Any] | None:
    """The contact page's data; None when no contact has this id."""
    identity = queries.contact(conn, contact_id)
    if identity is None:
        return None
    try:
        facts = gather_contact(conn, contact_id, config, Horizon(today, 30, 7))
    except NoSuchContact:  # a row whose id is not a usable contact id (rules.bounds)
        return None
    first, last = span_around(today)
    timeline = facts.timeline(first, last)
    contact = facts.contact
    invalid = isinstance(contact, InvalidContact)
    return {
        "today": today.isoformat(),
        "contact": {
            **identity,
            "valid": not invalid,
            "resolved_state": None if isinstance(contact, InvalidContact) else contact.state,
            "invalid_reasons": list(contact.reasons) if isinstance(contact, InvalidContact) else [],
        },
        "timeline": _timeline_json(timeline, first, last),
        # What `mailwindow explain --contact ID --as-of TODAY` prints, line for line.
        "explanation": facts.explanation() + facts.stored_row_lines() + facts.ledger_lines(),
        "rows": queries.contact_rows(conn, contact_id),
        "clicks": queries.contact_clicks(conn, contact_id, LISTED),
        "answers": queries.contact_answers(conn, contact_id, LISTED),
    }


def contact_chart(data: dict[str, Any]) -> str:
    """The timeline SVG of ``contact_data``'s result."""
    t = data["timeline"]
    bands = [
        Band(date.fromisoformat(w["start"]), date.fromisoformat(w["end"]), w["label"], w["source"])
        for w in t["windows"]
    ]
    marks = [
        Mark(
            date.fromisoformat(m["date"]),
            m["type"],
            m["status"],
            m["status_class"],
            "; ".join(str(x) for x in (m["key"], m["skip_reason"], m["note"]) if x),
        )
        for m in t["emails"]
        if m["date"]
    ]
    return timeline_chart(
        date.fromisoformat(t["first"]),
        date.fromisoformat(t["last"]),
        date.fromisoformat(data["today"]),
        bands,
        marks,
        t["year_round"],
    )
