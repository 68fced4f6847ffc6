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
so), the decider notices that its parent is gone within a fifth of a second
and ends at once: a batch it was applying is undone whole by the database,
and its events are read again by the restarted worker.  It must not go on
alone: its queued batches would be applied beside the restarted worker's.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime
from multiprocessing import get_context
from typing import Any

from sqlalchemy.exc import OperationalError

from rules.config import Config, config_from_mapping
from rules.zip_state import zip_states
from streams.agents import BatchProcessor, BatchResult, Message
from streams.events import format_datetime
from streams.ingest import applied_offsets
from streams.store import open_store
from streams.sweep import SweepOptions, SweepSummary, run_sweep

_PROCESSOR: BatchProcessor | None = None


def _start(target: str, config: dict[str, Any]) -> None:
    global _PROCESSOR
    threading.Thread(target=_end_with, args=(os.getppid(),), name="end-with-worker", daemon=True).start()
    _PROCESSOR = BatchProcessor(open_store(target), config_from_mapping(config, "worker config")[0])
    zip_states()  # loaded now, not while the first events wait (about 4 s on a busy machine)


def _started() -> bool:
    return _PROCESSOR is not None


def _end_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(70)  # no cleanup: an open transaction is rolled back by the database


def _processor() -> BatchProcessor:
    if _PROCESSOR is None:  # pragma: no cover - the pool's initializer always ran
        raise RuntimeError("the decider process was not started")
    return _PROCESSOR


class DatabaseUnavailable(Exception):
    """The database refused work for a while (locked too long, disk full, gone): try later."""


def _process(messages: Sequence[Message]) -> BatchResult:
    try:
        return _processor().process(messages)
    except OperationalError as exc:  # raised as plain text: it crosses a process boundary
        raise DatabaseUnavailable(str(exc).splitlines()[0]) from None


def _sweep(as_of: date, now: datetime) -> dict[str, Any]:
    """A sweep; the offsets its record names are exactly those applied before it.

    One sweep process (``workers=1``): the decider is already the worker's
    database process, and the result is the same for any number of workers.
    """
    p = _processor()
    try:
        with p.store.engine.connect() as conn:
            offsets = applied_offsets(conn)
        summary = run_sweep(p.store, p.config, SweepOptions(as_of=as_of, workers=1))
    except OperationalError as exc:
        raise DatabaseUnavailable(str(exc).splitlines()[0]) from None
    return sweep_run_record(summary, p.config, offsets, now)


def sweep_run_record(
    summary: SweepSummary, config: Config, offsets: dict[str, dict[str, int]], now: datetime
) -> dict[str, Any]:
    return {
        "event_id": summary.run_id,
        "occurred_at": format_datetime(now),
        "run_id": summary.run_id,
        "as_of": summary.as_of,
        "config": config.to_dict(),
        "offsets": offsets,
        "summary": {
            "contacts_processed": summary.contacts_processed,
            "emails_scheduled": summary.emails_scheduled,
            "emails_skipped": summary.emails_skipped,
            "schedules_after_checksum": summary.schedules_after_checksum,
        },
    }


class Decider:
    """The database process, called from the agents' event loop."""

    def __init__(self, store_target: str, config: Config) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=get_context("spawn"),
            initializer=_start,
            initargs=(store_target, config.to_dict()),
        )

    async def start(self) -> None:
        """Start the process and wait until it is ready: the worker reads nothing before."""
        await asyncio.get_running_loop().run_in_executor(self._pool, _started)

    async def process(self, messages: Sequence[Message]) -> BatchResult:
        result: BatchResult = await asyncio.get_running_loop().run_in_executor(
            self._pool, _process, list(messages)
        )
        return result

    async def sweep(self, as_of: date, now: datetime) -> dict[str, Any]:
        record: dict[str, Any] = await asyncio.get_running_loop().run_in_executor(
            self._pool, _sweep, as_of, now
        )
        return record

    def close(self) -> None:
        self._pool.shutdown(wait=True)
