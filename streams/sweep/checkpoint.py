"""A run's checkpoint (``scheduler_checkpoints``): the runs before it that stopped, its own
row from start to end, and the sweep a worker owes.

A run that is not alive (``streams.sweep.liveness``) is marked ``failed``
("interrupted: ...") by the next run.  ``SweepOptions.take_over``
(``--take-over``) is the operator's override when a run is wrongly believed
alive (a host that no longer exists, a clock far ahead): every ``started``
checkpoint is marked ``failed`` ("taken over by an operator") and the sweep
proceeds.  The operator answers for no other sweep of the database running
then: the rows stay correct (keys are unique and each batch is a transaction),
but two live sweeps would balance the same days twice.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from datetime import date

import orjson
from sqlalchemy import Connection, text

from rules.bounds import excerpt
from streams.store.applied_events import applied_offsets
from streams.store.engine import Store
from streams.sweep.liveness import (
    HEARTBEAT_EVERY_S,
    checkpoint_time,
    process_start,
    run_alive,
    stored_pid,
)
from streams.sweep.summary import SweepError, SweepOptions, SweepSummary
from streams.sweep.transactions import write_transaction


def mark_interrupted_runs(conn: Connection, *, take_over: bool = False, database: str = "") -> list[str]:
    """Mark ``started`` checkpoints of runs that are no longer alive as failed.

    Alive: ``run_alive``.  Raises SweepError when a live sweep is still
    running, unless ``take_over``: then every ``started`` checkpoint is
    marked failed ("taken over by an operator").
    """
    marked: list[str] = []
    rows = conn.execute(
        text(
            "SELECT scheduler_run_id, pid, pid_started, host, heartbeat_at FROM scheduler_checkpoints "
            "WHERE status = 'started'"
        )
    ).all()
    for run_id, pid, pid_started, run_host, heartbeat in rows:
        if take_over:
            error = "taken over by an operator"
        elif run_alive(
            stored_pid(pid),
            None if pid_started is None else str(pid_started),
            None if run_host is None else str(run_host),
            heartbeat,
        ):
            where = f" on {database}" if database else ""
            raise SweepError(
                f"another sweep is running{where}: run {excerpt(run_id)} (pid {pid} on "
                f"{excerpt(run_host)}, last heartbeat {excerpt(heartbeat)} UTC); "
                "if it is not, run the sweep with --take-over"
            )
        else:
            error = "interrupted: the run stopped without finishing"
        conn.execute(
            text(
                "UPDATE scheduler_checkpoints SET status = 'failed', error_message = :err, "
                "completed_at = :now WHERE scheduler_run_id = :run_id AND status = 'started'"
            ),
            {"err": error, "now": checkpoint_time(), "run_id": run_id},
        )
        marked.append(str(run_id))
    return marked


def owed_sweep(conn: Connection) -> date | None:
    """The as-of date of the latest full sweep when it did not complete (a worker owes it).

    A worker runs it again before anything else: the rows it wrote in part
    would otherwise stay beside decisions replay makes without them.
    """
    row = conn.execute(
        text("SELECT as_of, status, summary FROM scheduler_checkpoints ORDER BY id DESC LIMIT 1")
    ).first()
    if row is None or row[1] == "completed" or row[0] is None:
        return None
    try:
        partial = bool(orjson.loads(row[2] or "{}").get("partial", False))
    except orjson.JSONDecodeError:
        partial = False
    return None if partial else date.fromisoformat(str(row[0]))


def unfinished_runs(conn: Connection) -> frozenset[str]:
    return frozenset(
        str(r[0])
        for r in conn.execute(
            text("SELECT scheduler_run_id FROM scheduler_checkpoints WHERE status != 'completed'")
        )
    )


_START_SQL = text(
    "INSERT INTO scheduler_checkpoints (run_timestamp, scheduler_run_id, "
    "contacts_checksum, status, as_of, pid, pid_started, host, heartbeat_at, "
    "summary) VALUES "
    "(:ts, :run_id, '', 'started', :as_of, :pid, :pid_started, :host, :ts, :summary)"
)
_FINISH_SQL = text(
    "UPDATE scheduler_checkpoints SET status = :status, error_message = :error, "
    "completed_at = :ts, heartbeat_at = :ts, contacts_checksum = :cc, "
    "schedules_before_checksum = :before, schedules_after_checksum = :after, "
    "contacts_processed = :processed, contacts_scanned = :scanned, "
    "contacts_invalid = :invalid, emails_scheduled = :scheduled, "
    "emails_skipped = :skipped, summary = :summary "
    "WHERE scheduler_run_id = :run_id"
)


class RunCheckpoint:
    """This run's row: written when it starts, with its heartbeats, and when it ends."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.last_heartbeat = time.monotonic()

    def start(self, summary: SweepSummary, options: SweepOptions) -> dict[str, dict[str, int]]:
        """The runs that stopped marked, this one ``started``; the input offsets applied before it."""

        def work(conn: Connection) -> dict[str, dict[str, int]]:
            # One transaction with the write lock from its start: two sweeps
            # starting together cannot both find no live run.
            mark_interrupted_runs(conn, take_over=options.take_over, database=self.store.target)
            offsets = applied_offsets(conn)
            conn.execute(
                _START_SQL,
                {
                    "summary": orjson.dumps(summary.to_dict()).decode(),
                    "ts": checkpoint_time(),
                    "run_id": self.run_id,
                    "as_of": options.as_of.isoformat(),
                    "pid": os.getpid(),
                    "pid_started": process_start(os.getpid()),
                    "host": socket.gethostname(),
                },
            )
            return offsets

        offsets = write_transaction(self.store, work, defer_ctrl_c=False)
        self.last_heartbeat = time.monotonic()
        return offsets

    def heartbeat(self, conn: Connection) -> None:
        conn.execute(
            text("UPDATE scheduler_checkpoints SET heartbeat_at = :ts WHERE scheduler_run_id = :run_id"),
            {"ts": checkpoint_time(), "run_id": self.run_id},
        )
        self.last_heartbeat = time.monotonic()

    def heartbeat_if_due(self) -> None:
        """A heartbeat of its own when no batch write brought one for HEARTBEAT_EVERY_S."""
        if time.monotonic() - self.last_heartbeat >= HEARTBEAT_EVERY_S:
            write_transaction(self.store, self.heartbeat)

    def finish(
        self,
        summary: SweepSummary,
        status: str,
        error: str | None,
        also: Callable[[Connection], None] | None = None,
    ) -> None:
        """How the run ended and its summary; ``also`` writes in the same transaction."""
        summary.status = status

        def work(conn: Connection) -> None:
            conn.execute(_FINISH_SQL, self._finished(summary, status, error))
            if also is not None:
                also(conn)

        write_transaction(self.store, work, defer_ctrl_c=False)

    def _finished(self, s: SweepSummary, status: str, error: str | None) -> dict[str, object]:
        return {
            "status": status,
            "error": error,
            "ts": checkpoint_time(),
            "cc": s.contacts_checksum,
            "before": s.schedules_before_checksum or None,
            "after": s.schedules_after_checksum or None,
            "processed": s.contacts_processed,
            "scanned": s.contacts_scanned,
            "invalid": s.contacts_invalid,
            "scheduled": s.emails_scheduled,
            "skipped": s.emails_skipped,
            "summary": orjson.dumps(s.to_dict()).decode(),
            "run_id": self.run_id,
        }
