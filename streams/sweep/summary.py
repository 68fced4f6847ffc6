"""What a sweep is asked (``SweepOptions``), what it reports (``SweepSummary``), and
the one line it ends with when it cannot finish.

One line for what a user can cause (issue 11): a full disk, a lock held past the
retries or another operational database error ends as a ``SweepDatabaseError``
naming the database and the run (still an ``OperationalError``, so the stream
worker waits for the database and tries again as before); a decide worker
process that dies (the OOM killer) ends as a ``SweepError``.  The run is marked
``failed`` when the database still takes that write; otherwise it stays
``started`` and the next run marks it interrupted.  Either way the next sweep
completes the job (SPEC section 9).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError

from rules.placement import Horizon
from rules.statuses import PRE_SCHEDULED, SKIPPED
from streams.store.engine import error_line, is_disk_full, is_lock_error

# Invalid contacts and warnings a summary quotes; the rest are only counted.
EXAMPLES_KEPT = 20


class SweepError(RuntimeError):
    """A sweep that cannot start or finish; the message says why."""


class SweepDatabaseError(SweepError, OperationalError):
    """A sweep its database stopped (a full disk, a lock held too long, ...), in one line.

    Also an ``OperationalError``: callers that wait for the database and try
    again (``streams.worker.database_process``) go on doing so.
    """

    def __init__(self, message: str, cause: DBAPIError | None = None) -> None:
        OperationalError.__init__(
            self,
            cause.statement if cause is not None else None,
            None,
            cause.orig if cause is not None else None,  # type: ignore[arg-type]
            hide_parameters=True,
        )
        self.message = message
        self.args = (message,)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # The one line crosses a process boundary; the driver's error need not.
        return (type(self), (self.message,))


def default_workers() -> int:
    return min(2, os.cpu_count() or 1)


@dataclass(frozen=True)
class SweepOptions:
    as_of: date
    lookahead_days: int = 30
    lookback_days: int = 7
    full_scan: bool = False
    chunk_size: int = 1000
    batch_rows: int = 20000
    # Processes deciding chunks (phase 1); 1 decides in this process.  The
    # result is the same for any number.
    workers: int = field(default_factory=default_workers)
    # Decide only these contacts (``mailwindow campaign ... --apply``): the
    # rules are the same, only the set of contacts processed is narrower.
    contact_ids: tuple[int, ...] | None = None
    # The operator's override (``--take-over``): every ``started`` checkpoint is
    # marked failed, alive or not (``streams.sweep.checkpoint``).
    take_over: bool = False
    # A run deciding at least this many contacts, most of them without an owned row yet,
    # builds two of the schedule's indexes after its writes (``streams.sweep.deferred_indexes``).
    defer_indexes_from: int = 50_000
    # From this many newly placed emails on, a forked process makes their rows while the
    # main process writes them (``streams.sweep.row_maker``).
    make_rows_apart_from: int = 200_000

    @property
    def horizon(self) -> Horizon:
        return Horizon(self.as_of, self.lookahead_days, self.lookback_days)


@dataclass
class SweepSummary:
    run_id: str
    as_of: str
    full_scan: bool = False
    prefilter: str = ""
    contacts_scanned: int = 0
    contacts_processed: int = 0
    contacts_invalid: int = 0
    emails_scheduled: int = 0
    emails_skipped: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_deleted: int = 0
    moved_by_smoothing: int = 0
    moved_by_daily_cap: int = 0
    skipped_by_frequency_limit: int = 0
    campaign_targets_updated: int = 0
    valid_contacts: int = 0
    daily_cap: int = 0
    per_type: dict[str, dict[str, int]] = field(default_factory=dict)
    invalid_examples: list[dict[str, object]] = field(default_factory=list)
    warnings: int = 0
    warning_examples: list[str] = field(default_factory=list)
    contacts_checksum: str = ""
    schedules_before_checksum: str = ""
    schedules_after_checksum: str = ""
    elapsed_s: float = 0.0
    phase_s: dict[str, float] = field(default_factory=dict)
    status: str = "started"
    partial: bool = False  # only the contacts the caller named (no new decision day)
    # What its ledger entries are valid under (streams.sweep.incremental.run_basis), and
    # whether it decided only what can have changed since the last sweep.
    basis: str = ""
    incremental: bool = False
    config_digest: str = ""  # rules.config.config_digest: which rules (and versions) the run applied
    # Indexes dropped before the writes and built after them (streams.sweep.deferred_indexes).
    indexes_built_after_writes: list[str] = field(default_factory=list)

    def count(self, email_type: str, status: str, n: int = 1) -> None:
        t = self.per_type.get(email_type)
        if t is None:
            t = self.per_type[email_type] = {PRE_SCHEDULED: 0, SKIPPED: 0}
        t[status] = t.get(status, 0) + n
        if status == PRE_SCHEDULED:
            self.emails_scheduled += n
        else:
            self.emails_skipped += n

    def count_row(self, outcome: str, n: int = 1) -> None:
        """``n`` rows staged for writing: 'inserted', 'updated' or 'unchanged'."""
        if outcome == "inserted":
            self.rows_inserted += n
        elif outcome == "updated":
            self.rows_updated += n
        else:
            self.rows_unchanged += n

    def add_invalid(self, n: int, examples: Sequence[tuple[object, Sequence[str]]]) -> None:
        """``n`` invalid contacts; the first of ``examples`` while there is room."""
        self.contacts_invalid += n
        for contact_id, reasons in examples[: max(0, EXAMPLES_KEPT - len(self.invalid_examples))]:
            self.invalid_examples.append({"contact_id": contact_id, "reasons": list(reasons)})

    def add_warnings(self, n: int, examples: Sequence[str]) -> None:
        """``n`` data warnings; the first of ``examples`` while there is room."""
        self.warnings += n
        self.warning_examples.extend(examples[: max(0, EXAMPLES_KEPT - len(self.warning_examples))])

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def database_error(database: str, exc: OperationalError, outcome: str) -> SweepDatabaseError:
    """The one line for a database that stopped the run (``outcome``: what became of the run)."""
    reason = error_line(exc)
    if is_disk_full(exc):
        message = f"disk full writing {database}: {reason}; {outcome}; free space, then run the sweep again"
    elif is_lock_error(exc):
        message = (
            f"{database} stayed locked by another program: {reason}; {outcome}; "
            "run the sweep again once it is free"
        )
    else:
        message = f"database error in the sweep of {database}: {reason}; {outcome}"
    return SweepDatabaseError(message, exc)


def one_line_error(exc: BaseException, database: str, outcome: str) -> SweepError | None:
    """The error a run that ``exc`` stopped ends with; None: ``exc`` itself, as raised."""
    if isinstance(exc, BrokenProcessPool):
        return SweepError(
            f"sweep of {database}: a decide worker process died (killed?); {outcome}; run the sweep again"
        )
    if isinstance(exc, OperationalError):
        return database_error(database, exc, outcome)
    return None


def failure_reason(exc: BaseException) -> str:
    """What a failed checkpoint records as its error."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(exc, BrokenProcessPool):
        return "a decide worker process died (killed?)"
    if isinstance(exc, DBAPIError):
        # The driver's own line: SQLAlchemy's text adds the statement and its parameters.
        what = "disk full" if is_disk_full(exc) else type(exc).__name__
        return f"{what}: {error_line(exc)}"
    return f"{type(exc).__name__}: {exc}"
