"""The console's ``/preview`` (issue 15): a sweep's dry run for a config file on disk, as
``mailwindow sweep --dry-run`` makes it (``streams.sweep.preview``): the counts, the first
changes of each kind and the sweep's summary, the same numbers as the command's JSON.

Choices written down here: one dry run at a time (a second one asked meanwhile is
refused, not queued: each copies the whole database); the sweep on the copy decides in
this process (``workers=1``, the same result as any number: the console is a threaded
server and the decide pool forks); its copy goes to the console's scratch directory
(``mailwindow serve --scratch DIR``, default tempfile's).
"""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path
from typing import Any

from rules.bounds import FIRST_DATE, LAST_DATE, excerpt
from rules.config import ConfigError
from streams.store.engine import Store, StoreError
from streams.sweep.summary import SweepError, SweepOptions

MAX_PATH = 4096


def preview_data(
    store: Store, config_path: str, as_of: date, scratch: Path | None, lock: threading.Lock
) -> dict[str, Any]:
    """The page's data: ``error`` (a line) or ``result`` (head, examples per kind, total)."""
    from streams.config_file import load_config_file
    from streams.sweep.preview import preview_sweep

    data: dict[str, Any] = {"config": config_path, "as_of": as_of.isoformat(), "error": None, "result": None}
    if not lock.acquire(blocking=False):
        data["error"] = "another preview is running: ask again when it has finished"
        return data
    try:
        config, warnings = load_config_file(config_path)
        options = SweepOptions(as_of=as_of, workers=1)
        with preview_sweep(store, config, options, scratch=scratch) as preview:
            data["result"] = {
                **preview.head(),
                "total": preview.counts.total,
                "examples": preview.examples(),
                "warnings": warnings,
            }
    except (ConfigError, StoreError, SweepError) as exc:
        data["error"] = str(exc)
    finally:
        lock.release()
    return data


def as_of_param(raw: str | None, today: date) -> date | str:
    """The as-of date asked for (today when blank), or the line that refuses it."""
    if raw is None or not raw.strip():
        return today
    try:
        day = date.fromisoformat(raw.strip())
    except ValueError:
        return f"as-of {excerpt(raw)} is not a date (YYYY-MM-DD)"
    if not FIRST_DATE <= day <= LAST_DATE:
        return f"as-of {day} is outside the dates the scheduler decides about ({FIRST_DATE}..{LAST_DATE})"
    return day
