"""Sweeps as the console shows them: one checkpoint row and its JSON summary, in plain fields."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from streams.console import queries


def sweep_view(cp: dict[str, Any]) -> dict[str, Any]:
    """A ``scheduler_checkpoints`` row (``queries.checkpoints``) as the pages show it: when,
    how long, contacts decided, rows written, status, and the per-phase timings."""
    s = cp["summary"]
    rows = {k: _count(s.get(f"rows_{k}")) for k in ("inserted", "updated", "deleted", "unchanged")}
    phases = s.get("phase_s") if isinstance(s.get("phase_s"), dict) else {}
    return {
        "id": cp["id"],
        "run_id": cp["scheduler_run_id"],
        "as_of": cp["as_of"],
        "started_at": cp["run_timestamp"],
        "completed_at": cp["completed_at"],
        "status": cp["status"],
        "full_scan": bool(s.get("full_scan", False)),
        "elapsed_s": _seconds(s.get("elapsed_s")),
        "contacts_scanned": cp["contacts_scanned"],
        "contacts_processed": cp["contacts_processed"],
        "contacts_invalid": cp["contacts_invalid"],
        "emails_scheduled": cp["emails_scheduled"],
        "emails_skipped": cp["emails_skipped"],
        "rows_written": rows["inserted"] + rows["updated"] + rows["deleted"],
        "rows": rows,
        "moved_by_smoothing": _count(s.get("moved_by_smoothing")),
        "moved_by_daily_cap": _count(s.get("moved_by_daily_cap")),
        "daily_cap": _count(s.get("daily_cap")),
        "phase_s": {str(k): _seconds(v) for k, v in phases.items()},
        "error": cp["error_message"],
    }


def _count(value: object) -> int:
    # The summary is JSON another version may have written: a number or nothing.
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _seconds(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return round(float(value), 3)
    return None


PAGE = 50


def runs_data(conn: Connection, before: int | None) -> dict[str, Any]:
    """The ``/runs`` page: sweeps newest first, ``PAGE`` at a time (``before``: the next page)."""
    found = queries.checkpoints(conn, PAGE + 1, before)
    shown = [sweep_view(cp) for cp in found[:PAGE]]
    return {
        "runs": shown,
        "next_before": shown[-1]["id"] if len(found) > PAGE else None,
    }
