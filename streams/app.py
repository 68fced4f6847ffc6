"""The Faust app: topics, one short agent per input topic, and the sweep as a
crontab on the leader (ARCHITECTURE.md).

Not done yet: the windowed engagement table.  A Faust table written from these
batching agents stalled the stream in this version (faust-streaming 0.15.3):
behaviour is read from the database, which the agents write first and which
holds the same facts with their event times.

The agents hand each batch of messages to ``streams.agents.BatchProcessor``
(parse, dead-letter, store, decide, announce) in a single database thread:
SQLite takes one writer at a time, and one thread keeps a contact's events in
the order they were read.  Offsets are committed by Faust after the batch is
processed; a message delivered again after a crash is recognised by its event
id and changes nothing.

``build_app`` makes the app from ``WorkerSettings`` (broker, database, config,
topic prefix, partitions, sweep time); ``mailwindow worker`` runs it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import faust

from rules.config import Config
from streams.agents import BatchProcessor, BatchResult, Message
from streams.events import (
    DEADLETTER,
    SCHEDULE_CHANGES,
    SWEEP_RUNS,
    dumps_event,
    format_datetime,
)
from streams.ingest import applied_offsets
from streams.store import Store
from streams.sweep import SweepOptions, SweepSummary, run_sweep
from streams.topics import INPUT_TOPICS, topic_name


@dataclass(frozen=True)
class WorkerSettings:
    broker: str  # host:port[,host:port]
    store: Store
    config: Config
    prefix: str = ""
    partitions: int = 4
    batch_size: int = 500
    batch_within_s: float = 0.05
    sweep_cron: str = "30 3 * * *"  # 03:30 exists on every day, DST changes included
    sweep_timezone: str = "America/Chicago"
    app_id: str = "mailwindow"
    extra: dict[str, Any] = field(default_factory=dict)  # more faust.App settings


class Worker:
    """The app with what its agents share: the processor, its thread, the offsets it applied."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.processor = BatchProcessor(settings.store, settings.config)
        self.db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mailwindow-db")
        self.app = faust.App(
            settings.app_id,
            broker=",".join(f"kafka://{b}" for b in settings.broker.split(",")),
            store="memory://",
            topic_partitions=settings.partitions,
            key_serializer="raw",
            value_serializer="raw",
            web_enabled=False,
            consumer_auto_offset_reset="earliest",
            **settings.extra,
        )
        self.changes = self._topic(SCHEDULE_CHANGES)
        self.deadletter = self._topic(DEADLETTER)
        self.sweep_runs = self._topic(SWEEP_RUNS)
        for kind in INPUT_TOPICS:
            self.app.agent(self._topic(kind), name=f"mailwindow-{kind}")(self._agent_for(kind))
        self.app.crontab(
            settings.sweep_cron, timezone=ZoneInfo(settings.sweep_timezone), on_leader=True
        )(self.sweep)

    def _topic(self, kind: str) -> faust.TopicT:
        return self.app.topic(
            topic_name(self.settings.prefix, kind), key_type=bytes, value_type=bytes
        )

    def _agent_for(self, kind: str) -> Any:
        settings = self.settings

        async def agent(stream: faust.StreamT) -> None:
            async for events in stream.take_events(settings.batch_size, settings.batch_within_s):
                messages = [
                    Message(kind, e.message.partition, e.message.offset, e.message.key, e.message.value)
                    for e in events
                ]
                result = await self.run_in_db_thread(self._process, messages)
                await self.publish(result)

        agent.__name__ = f"mailwindow_{kind.replace('-', '_')}"
        return agent

    def _process(self, messages: Sequence[Message]) -> BatchResult:
        return self.processor.process(messages)

    async def run_in_db_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.db_thread, fn, *args)

    async def publish(self, result: BatchResult) -> None:
        for key, record in result.changes:
            await self.changes.send(key=key.encode(), value=dumps_event(record))
        for record in result.deadletters:
            await self.deadletter.send(
                key=str(record["event_id"]).encode(), value=dumps_event(record)
            )

    async def sweep(self) -> None:
        """The daily sweep (leader only), then its ``sweep-runs`` record for replay."""
        now = datetime.now(ZoneInfo(self.settings.sweep_timezone))
        record = await self.run_in_db_thread(self.sweep_now, now.date(), now)
        await self.sweep_runs.send(key=record["run_id"].encode(), value=dumps_event(record))

    def sweep_now(self, as_of: Any, now: datetime) -> dict[str, Any]:
        """Run a sweep in the database thread: the offsets it records are exactly those applied.

        One process (``workers=1``): forking a process that runs Kafka clients in
        threads is not safe, and the result is the same for any number of workers.
        """
        with self.settings.store.engine.connect() as conn:
            offsets = applied_offsets(conn)
        summary: SweepSummary = run_sweep(self.settings.store, self.settings.config, SweepOptions(as_of=as_of, workers=1))
        return sweep_run_record(summary, self.settings.config, offsets, now)


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


def run_worker(settings: WorkerSettings, sweep_interval_s: float | None = None) -> None:
    """Run the worker until SIGTERM or Ctrl-C: topics made sure of, agents started, then wait.

    ``sweep_interval_s`` adds a sweep every so many seconds (leader only), for
    demos and tests; the daily crontab is always there.
    """
    import signal

    from streams.topics import ensure_topics

    async def main() -> None:
        await ensure_topics(settings.broker, settings.prefix, settings.partitions)
        worker = Worker(settings)
        if sweep_interval_s:
            worker.app.timer(interval=sweep_interval_s, on_leader=True)(worker.sweep)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await worker.app.start()
        print(
            f"mailwindow worker: ready (broker {settings.broker}, prefix {settings.prefix!r}, "
            f"{settings.partitions} partitions)",
            flush=True,
        )
        try:
            await stop.wait()
        finally:
            await worker.app.stop()
            worker.db_thread.shutdown(wait=True)

    asyncio.run(main())
