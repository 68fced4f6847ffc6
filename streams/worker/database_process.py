"""The worker's database side in a process of its own: store events, decide, sweep.

Why a process and not a thread: one Python process runs one thread at a
time.  The Kafka side of the worker (Faust fetching, streaming, publishing)
and the database side (parsing, storing, the rules) each need about a core at
a thousand events a second; as two threads of one process they took turns
(1,500 events/s measured); as two processes each has a core of the machine.

One process, one writer: SQLite takes one writer at a time, and a single
process applies a contact's events in the order they were read.

It is started with ``spawn``: forking a process that runs Kafka client
threads is not safe.  If the worker is killed (SIGKILL leaves no time to say
so), the database process notices that its parent is gone within a fifth of a second
and ends at once: a batch it was applying is undone whole by the database,
and its events are read again by the restarted worker.  It must not go on
alone: its queued batches would be applied beside the restarted worker's.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.exc import OperationalError

from rules.config import Config, config_from_mapping
from rules.zip_state import zip_states
from streams.events.times import format_datetime
from streams.store import outbox
from streams.store.engine import open_store, run_with_retry
from streams.store.epoch_lock import sweep_turn
from streams.store.epochs import current_epoch
from streams.sweep.checkpoint import owed_sweep
from streams.sweep.run import run_sweep
from streams.sweep.summary import SweepError, SweepOptions
from streams.watchdog import end_with_parent
from streams.worker.baseline import record_baseline, recorded_baseline
from streams.worker.batch import BatchProcessor, BatchResult, Message
from streams.worker.health import DatabaseCalls

logger = logging.getLogger(__name__)

_PROCESSOR: BatchProcessor | None = None


def _start(target: str, config: dict[str, Any], prefix: str) -> None:
    global _PROCESSOR
    end_with_parent(exit_code=70)
    store = open_store(target)
    store.migrate()
    _PROCESSOR = BatchProcessor(store, config_from_mapping(config, "worker config")[0], prefix=prefix)
    zip_states()  # loaded now, not while the first events wait
    # What start-up built lives as long as the process: out of the collector's sight, a full
    # collection in the middle of a batch took 11 ms instead of 46 (18,000 contact upserts
    # in batches of 40, one such collection each way), a stall every event queued behind it waits.
    gc.freeze()


def _started() -> bool:
    return _PROCESSOR is not None


def _processor() -> BatchProcessor:
    if _PROCESSOR is None:  # pragma: no cover - the pool's initializer always ran
        raise RuntimeError("the database process was not started")
    return _PROCESSOR


class DatabaseUnavailable(Exception):
    """The database refused work for a while (locked too long, disk full, gone): try later."""


def _process(messages: Sequence[Message]) -> BatchResult:
    try:
        return _processor().process(messages)
    except OperationalError as exc:  # raised as plain text: it crosses a process boundary
        raise DatabaseUnavailable(str(exc).splitlines()[0]) from None


def _prepare(today: date, snapshot_dir: str) -> dict[str, Any]:
    """What a worker does before it reads an event: finish what a crash left, know its day.

    Events an older worker parked become facts; a full sweep that did not
    complete runs again for its day; a database without an audit baseline gets
    one (as of ``today``).  Returns what it did, for the log.
    """
    p = _processor()
    done: dict[str, Any] = {"adopted_parked_events": p.adopt_parked_events()}
    with p.store.engine.connect() as conn:
        owed = owed_sweep(conn)
    if owed is not None:
        try:
            run_sweep(p.store, p.config, SweepOptions(as_of=owed, workers=1))
            done["sweep_finished"] = owed.isoformat()
        except SweepError as exc:
            logger.error("the unfinished sweep of %s was not run again: %s", owed, exc)
    # Several workers starting together on one PostgreSQL database: one records the
    # baseline, the others wait for its turn to end and find it (streams.store.epoch_lock).
    with sweep_turn(p.store):
        if recorded_baseline(p.store) is None:
            b = record_baseline(p.store, p.config, today, Path(snapshot_dir))
            done["baseline"] = b.baseline_id
    try:
        p.rehearse(rehearsal(today))
    except Exception:  # noqa: BLE001 - only a warm-up: the real batches meet any problem again
        logger.warning("the start-up rehearsal of the batch step failed", exc_info=True)
    return done


def rehearsal(day: date) -> list[Message]:
    """A contact upsert, a click and a health answer for one contact: rehearsed, never kept.

    The contact's birthday email falls in the next weeks, so its rules run in full.
    """
    at = format_datetime(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))
    birthday = (day + timedelta(days=30)).replace(year=1950, day=1)
    cid = 2_000_000_000
    values = [
        ("contacts", {
            "event_id": "rehearsal-contact", "occurred_at": at, "op": "upsert", "contact_id": cid,
            "contact": {"email": "rehearsal@mailwindow.invalid", "zip_code": "75201", "state": "TX",
                        "birth_date": birthday.isoformat(), "effective_date": "2015-06-01"},
        }),
        ("clicks", {"event_id": "rehearsal-click", "occurred_at": at, "contact_id": cid, "tracking_id": "rehearsal"}),
        ("health", {
            "event_id": "rehearsal-health", "occurred_at": at, "contact_id": cid,
            "answers": {"has_medical_conditions": True, "main_questions_yes_count": 1, "answers_count": 7},
        }),
    ]
    return [Message(kind, None, None, str(cid).encode(), orjson.dumps(v)) for kind, v in values]


def _sweep(as_of: date) -> dict[str, Any]:
    """A full sweep; its ``sweep-runs`` record is queued in the outbox with it.

    One sweep process (``workers=1``): this is already the worker's
    database process, and the result is the same for any number of workers.
    """
    p = _processor()
    try:
        summary = run_sweep(p.store, p.config, SweepOptions(as_of=as_of, workers=1))
    except OperationalError as exc:
        raise DatabaseUnavailable(str(exc).splitlines()[0]) from None
    return {"run_id": summary.run_id, "as_of": summary.as_of, "elapsed_s": summary.elapsed_s}


def _ping() -> None:
    """The health tick's question when the process has nothing else to do: does the database answer?"""
    try:
        with _processor().store.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except OperationalError as exc:
        raise DatabaseUnavailable(str(exc).splitlines()[0]) from None


def _decision_day() -> date | None:
    with _processor().store.engine.connect() as conn:
        epoch = current_epoch(conn)
    return None if epoch is None else epoch.as_of


def _unpublished() -> list[outbox.OutboxRecord]:
    with _processor().store.engine.connect() as conn:
        return outbox.unpublished(conn)


def _mark_published(seqs: list[int]) -> None:
    def go() -> None:
        with _processor().store.engine.begin() as conn:
            outbox.mark_published(conn, seqs)

    run_with_retry(go)


class DatabaseProcess:
    """The worker's database process, called from the agents' event loop."""

    def __init__(self, store_target: str, config: Config, prefix: str = "") -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=get_context("spawn"),
            initializer=_start,
            initargs=(store_target, config.to_dict(), prefix),
        )
        # What the process is on, for the health endpoints (streams.worker.health).
        self.calls = DatabaseCalls()

    async def _call(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        token = self.calls.begin(fn.__name__.lstrip("_"))

        def finished(f: Future[Any]) -> None:  # in the pool's thread: when the process is done,
            at = time.monotonic()  # even with the caller cancelled
            failed = None if f.cancelled() else f.exception()
            unavailable = str(failed) if isinstance(failed, DatabaseUnavailable) else None
            try:
                loop.call_soon_threadsafe(lambda: self.calls.end(token, unavailable, at=at))
            except RuntimeError:  # the loop is closed: the worker has ended
                pass

        try:
            future = self._pool.submit(fn, *args)
        except BaseException:  # a broken or shut pool: nothing was started
            self.calls.end(token)
            raise
        future.add_done_callback(finished)
        return await asyncio.wrap_future(future)

    def alive(self) -> bool:
        """False once the process has died (its pool is broken then; the next call fails)."""
        processes = self._pool._processes or {}  # None once shut down
        return not self._pool._broken and all(p.is_alive() for p in processes.values())

    async def ping(self) -> None:
        """Raises DatabaseUnavailable when the database does not answer."""
        await self._call(_ping)

    async def start(self, today: date, snapshot_dir: Path) -> dict[str, Any]:
        """Start the process, finish what a crash left, record a baseline if there is none.

        The worker reads nothing before this returns.
        """
        await self._call(_started)
        done: dict[str, Any] = await self._call(_prepare, today, str(snapshot_dir))
        return done

    async def process(self, messages: Sequence[Message]) -> BatchResult:
        result: BatchResult = await self._call(_process, list(messages))
        return result

    async def sweep(self, as_of: date) -> dict[str, Any]:
        summary: dict[str, Any] = await self._call(_sweep, as_of)
        return summary

    async def decision_day(self) -> date | None:
        day: date | None = await self._call(_decision_day)
        return day

    async def unpublished(self) -> list[outbox.OutboxRecord]:
        records: list[outbox.OutboxRecord] = await self._call(_unpublished)
        return records

    async def mark_published(self, seqs: list[int]) -> None:
        await self._call(_mark_published, seqs)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
