"""The audit baseline: where a deployment starts from an agency's existing database.

Every real deployment starts from a database that already holds contacts,
sent history, clicks, answers, campaigns and the last sweep's rows; none of
that is on the topics.  So replay cannot start from an empty database: it
starts from the **baseline**, recorded once when the deployment starts (the
worker records one itself when its database has none; ``mailwindow baseline``
records one by hand):

- a snapshot of the whole database as it was (an SQLite file, its sha256);
- its schedule checksum and the input offsets it had applied (events after
  them are replayed, those before are in the snapshot);
- the decision day the agents decide for until the first sweep (``as_of``:
  today in Central Time unless given), and the worker's config.

The record goes to the ``baselines`` topic (kept forever) through the outbox
(``streams.store.outbox``), so the audit finds it; replay restores the snapshot,
checks its sha256, then applies the events after its offsets and the sweeps
recorded after it.  The snapshot file must be archived with the topics: it is
the audit's starting point.

Why a snapshot and not every table as events: the history of a database (rows
the old scheduler wrote, sent emails, legacy statuses) is not a set of events
the agents could decide from, and decisions made as of a bootstrap day would
rewrite the past; a snapshot keeps it exactly as it was, and costs one file.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

from rules.config import Config
from streams.events.kinds import BASELINES
from streams.events.times import format_datetime
from streams.store import outbox
from streams.store.applied_events import applied_offsets
from streams.store.checksum import schedule_checksum
from streams.store.engine import Store, open_store, run_with_retry
from streams.store.epochs import current_epoch, start_epoch
from streams.store.snapshot import file_sha256, snapshot_to_sqlite


@dataclass(frozen=True)
class Baseline:
    baseline_id: str
    record: dict[str, Any]

    @property
    def snapshot(self) -> Path:
        return Path(str(self.record["snapshot"]["path"]))


def recorded_baseline(store: Store) -> Baseline | None:
    """The database's latest recorded baseline, if any."""
    with store.engine.connect() as conn:
        row = conn.execute(
            text("SELECT baseline_id, record FROM mw_baselines ORDER BY recorded_at DESC, baseline_id DESC LIMIT 1")
        ).first()
    return None if row is None else Baseline(str(row[0]), orjson.loads(row[1]))


def record_baseline(store: Store, config: Config, as_of: date, snapshot_dir: Path) -> Baseline:
    """Snapshot the database and record it as the audit baseline (queued for the topic).

    The database must be migrated.  Its decision day stays what it is when it
    has one (a database a worker already ran on); otherwise it becomes ``as_of``.
    """
    baseline_id = f"baseline-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"

    def begin_day() -> None:
        with store.engine.begin() as conn:
            if current_epoch(conn) is None:
                start_epoch(conn, as_of, "baseline", baseline_id)

    run_with_retry(begin_day)
    snapshot = (snapshot_dir / f"{baseline_id}.db").resolve()
    snapshot_to_sqlite(store, snapshot)
    # The record describes the snapshot itself: what it had applied, its checksum, its day.
    copy = open_store(str(snapshot))
    try:
        with copy.engine.connect() as conn:
            epoch = current_epoch(conn)
            assert epoch is not None  # begun above, before the copy
            offsets = applied_offsets(conn)
            checksum = schedule_checksum(conn)
    finally:
        copy.close()
    now = datetime.now(UTC)
    record: dict[str, Any] = {
        "event_id": baseline_id,
        "occurred_at": format_datetime(now),
        "baseline_id": baseline_id,
        "as_of": epoch.as_of.isoformat(),
        "epoch_id": epoch.epoch_id,
        "source": store.target if store.is_sqlite else store.url.render_as_string(hide_password=True),
        "snapshot": {"path": str(snapshot), "sha256": file_sha256(snapshot), "bytes": snapshot.stat().st_size},
        "schedules_checksum": checksum,
        "offsets": offsets,
        "config": config.to_dict(),
    }

    def remember() -> None:
        with store.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO mw_baselines (baseline_id, as_of, recorded_at, record) VALUES (:b, :a, :t, :r)"),
                {
                    "b": baseline_id,
                    "a": epoch.as_of.isoformat(),
                    "t": now.strftime("%Y-%m-%d %H:%M:%S"),
                    "r": orjson.dumps(record).decode(),
                },
            )
            outbox.put(conn, BASELINES, baseline_id, record)

    run_with_retry(remember)
    return Baseline(baseline_id, record)
