"""The Faust app: topics, one short agent per input topic, and the daily sweep on
the leader (ARCHITECTURE.md).

The sweep runs when it is due: a leader timer checks every 30 seconds whether
the decision day (``streams.store.epochs``) is behind the day of the sweep time's
last occurrence (``--sweep-cron``, 03:30 Central by default), so a worker that
was down at 03:30 sweeps as soon as it is back, not a day late, and the
agents never decide for a day that is over.  Its ``sweep-runs`` record, and
the baseline the worker records when it first starts, go to the audit topics
through the outbox (``streams.store.outbox``): published when the worker starts and
after each sweep.

The windowed engagement table is the compacted, co-partitioned ``engagement``
topic (values in ``streams.worker.engagement``): each contact's clicks and answers
of the last 35 days of event time, as the database holds them once the batch
is stored, so the table never disagrees with what was decided.  The agents
write it with the batch's schedule changes.  Not a Faust ``Table``: with one,
a worker restarted after SIGKILL stopped processing in one run of three
(faust-streaming 0.15: its recovery of a table races with the streams'
offsets, faust-streaming issue #596, open), and the values need no in-memory
copy, being read from the database.

The agents hand each batch of messages to ``streams.worker.batch.BatchProcessor``
(parse, dead-letter, store, decide, announce) in the worker's single database
process (``streams.worker.database_process``): SQLite takes one writer at
a time, one process keeps a contact's events in the order they were read, and
a process of its own gives the database side a core of its own.  Offsets are
committed by Faust after the batch is processed; a message delivered again
after a crash is recognised by its event id and changes nothing.

``Worker`` makes the app from ``WorkerSettings`` (broker, database, config,
topic prefix, partitions, sweep time); ``mailwindow worker`` runs it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import faust
from croniter import croniter

from rules.config import Config
from streams.events.codec import dumps_event
from streams.events.kinds import DEADLETTER, ENGAGEMENT, SCHEDULE_CHANGES
from streams.store.engine import Store
from streams.worker import fetch_delivery
from streams.worker.batch import BatchResult, Message, checked_messages
from streams.worker.database_process import DatabaseProcess, DatabaseUnavailable
from streams.worker.health import (
    LIVE_PATH,
    READY_PATH,
    Limits,
    Observation,
    liveness,
    readiness,
    serve_health,
)
from streams.worker.ready_batches import acknowledge, ready_batches
from streams.worker.topics import INPUT_TOPICS, ensure_topics, topic_name

logger = logging.getLogger(__name__)

# A dead worker's partitions move (to the others, or to it restarted) once the broker
# has not heard from it for this long: Kafka's default minimum, against Faust's 60 s.
# Static membership (group.instance.id) was tried and not taken: a restart was no
# faster (start-up itself takes about 5 s), two processes given one id push each other
# out of the group, a clean stop no longer leaves the group (partitions wait a whole
# session), and a restarted member is handed its old assignment even when its topics changed.
SESSION_TIMEOUT_S = 6.0
HEARTBEAT_S = 1.5

# How long a thread of the worker's Faust process may hold the interpreter while another
# waits (Python's default: 5 ms).  A batch reaches the database process, and its result
# comes back, through two helper threads of the process pool, each of which waits that
# long for the event loop's thread when it is busy handing a fetch over to the streams:
# measured (20,000 backlogged events, the throughput run of bench/stream.py) up to 30 ms
# from submitting a batch to the database process starting it, the database process
# idle meanwhile.  At 0.5 ms the throughput was 10,970 events/s on average over nine
# runs, against 10,600 at 5 ms (the machine's spread: 10,000-11,500).
SWITCH_INTERVAL_S = 0.0005


def _pauses() -> Iterator[float]:
    """Seconds to wait before each new try: 0.5, doubling, at most 30, never ending."""
    pause = 0.5
    while True:
        yield pause
        pause = min(pause * 2, 30.0)


@dataclass(frozen=True)
class WorkerSettings:
    broker: str  # host:port[,host:port]
    store: Store
    config: Config
    prefix: str = ""
    partitions: int = 4
    # At most this many messages a batch; only a backlog fills one.  The database process
    # decides each touched contact once a batch (a contact's clicks and answers of one batch
    # share that decision) and publishes one engagement value per contact and batch, so
    # larger batches cost less an event: 20,000 backlogged mixed events (bench/stream.py,
    # in turns, the same hour) took 8,900-9,100 events/s in batches of 500, 10,100 in
    # batches of 1,000 and 11,300-11,600 in batches of 2,000.  A burst is not slower for
    # it: 10,000 new contacts within a second reached their changes after p50 0.93-0.95 s,
    # p99 1.13-1.23 s with any of the three (the queue, not the batch, sets that).
    batch_size: int = 2000
    # A batch is taken as soon as the agent is free and its events are in (ready_batches);
    # at the latest this long after its first event.
    batch_linger_s: float = 0.05
    # 03:30 exists on every day, DST changes included; None: no automatic sweep.
    sweep_cron: str | None = "30 3 * * *"
    sweep_timezone: str = "America/Chicago"
    app_id: str = "mailwindow"
    # The worker's idea of today (demos and tests of past dates); None: today in sweep_timezone.
    today: date | None = None
    # Where the audit baseline's snapshot goes when the worker records one.
    snapshot_dir: Path = Path("baselines")
    extra: dict[str, Any] = field(default_factory=dict)  # more faust.App settings (they win)


def sweep_due(decision_day: date | None, now: datetime, cron: str) -> date | None:
    """The day to sweep for when the last scheduled sweep time has passed unswept, else None."""
    last_fire: datetime = croniter(cron, now).get_prev(datetime)
    day = last_fire.date()
    if decision_day is None or decision_day < day:
        return day
    return None


class Worker:
    """The app with what its agents share: the database process that stores and decides."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.database = DatabaseProcess(settings.store.target, settings.config, settings.prefix)
        # The agents announce their batches one at a time, in the order the database
        # process applied them (it returns them in that order, and the lock queues in
        # order): otherwise a slow send could let an earlier batch's change or engagement
        # value of a contact reach the broker after a later one's, and stand as the latest.
        self.in_applied_order = asyncio.Lock()
        faust_settings: dict[str, Any] = {
            "store": "memory://",
            "topic_partitions": settings.partitions,
            "key_serializer": "raw",
            "value_serializer": "raw",
            "web_enabled": False,
            "consumer_auto_offset_reset": "earliest",
            # Fewer, larger fetches; the broker's CRC checks suffice on a local network.
            "broker_check_crcs": False,
            "broker_max_poll_records": 2000,
            "stream_buffer_maxsize": 16384,
            "broker_session_timeout": SESSION_TIMEOUT_S,
            "broker_heartbeat_interval": HEARTBEAT_S,
            # How long the group coordinator waits for every member to rejoin a rebalance
            # (JoinGroup's rebalance_timeout_ms; Faust's default 60 s) before it drops those
            # that have not.  A member rejoins only after Faust's on_partitions_revoked has
            # waited for its batches in flight (stream_wait_empty), and meanwhile it goes on
            # heartbeating, so the session never expires it: a batch held up in the
            # database process (the sweep's turn on PostgreSQL, streams.store.epoch_lock; a
            # long campaign batch; a database refusing work) kept the whole group, a dead
            # worker's partitions with it, waiting the full 60 s.  That was issue 16's
            # "minute", not the session.  Measured (tests/kafka/test_many_workers.py, three
            # workers on PostgreSQL, one killed while a survivor's database process was
            # stopped with a batch in hand): 65 s until the other survivor owned the
            # partitions (6 s of session, then its JoinGroup answered exactly 60 s later);
            # 15-16 s with 10 s.  A crash with no batch stuck takes the 6 s session either
            # way (5-9 s measured).  A member dropped this way finishes its batch, its
            # offset commit is refused (UnknownMemberId) and it rejoins; the partitions'
            # new owner reads that batch again and applies it once, by event id.  10 s
            # leaves room for the batches a member normally has in hand (measured: its
            # revocation took 30 ms under load); one taking longer costs a second rebalance.
            "broker_rebalance_timeout": 10.0,
        }
        self.app = faust.App(
            settings.app_id,
            broker=",".join(f"kafka://{b}" for b in settings.broker.split(",")),
            **{**faust_settings, **settings.extra},
        )
        fetch_delivery.install(self.app)
        self.schedule_changes = self._topic(SCHEDULE_CHANGES)
        self.engagement = self._topic(ENGAGEMENT)
        self.deadletter = self._topic(DEADLETTER)
        for kind in INPUT_TOPICS:
            self.app.agent(self._topic(kind), name=f"mailwindow-{kind}")(self._agent_for(kind))
        if settings.sweep_cron is not None:
            self.app.timer(interval=30.0, on_leader=True)(self.sweep_if_due)

    def _topic(self, kind: str) -> faust.TopicT:
        return self.app.topic(
            topic_name(self.settings.prefix, kind), key_type=bytes, value_type=bytes
        )

    def _agent_for(self, kind: str) -> Any:
        settings = self.settings

        async def agent(stream: faust.StreamT) -> None:
            manual = stream.noack()  # type: ignore[attr-defined]  # faust.Stream has it, StreamT's stub not
            acknowledged: asyncio.Future[None] | None = None  # the last batch's, once announced
            try:
                async for events in ready_batches(manual, settings.batch_size, settings.batch_linger_s):
                    announced = await self.apply_then_announce(
                        checked_messages([
                            Message(kind, e.message.partition, e.message.offset, e.message.key, e.message.value)
                            for e in events
                        ])
                    )
                    acknowledged = asyncio.ensure_future(self._acknowledge_once(announced, manual, events))
            finally:
                if acknowledged is not None:
                    await asyncio.shield(acknowledged)

        agent.__name__ = f"mailwindow_{kind.replace('-', '_')}"
        return agent

    async def apply_then_announce(self, messages: list[Message]) -> asyncio.Future[None]:
        """The batch applied by the database process; its announcements under way, returned.

        The agent applies its next batch while the broker acknowledges these (a
        cycle is an apply, not an apply and a publish), but the announcements of
        all agents go out one batch at a time in the order the database process
        applied them: the turn is taken here, before the next batch is given to it.
        """
        result = await self.apply(messages)
        await self.in_applied_order.acquire()
        return asyncio.ensure_future(self._publish_in_turn(result))

    async def _publish_in_turn(self, result: BatchResult) -> None:
        try:
            await self.publish(result)
        finally:
            self.in_applied_order.release()

    @staticmethod
    async def _acknowledge_once(announced: asyncio.Future[None], stream: faust.StreamT, events: list[Any]) -> None:
        """The batch's offsets released for commit only once its announcements are on the broker."""
        await announced
        await acknowledge(stream, events)

    async def apply(self, messages: list[Message]) -> BatchResult:
        """The batch applied by the database process, however long the database is unavailable.

        Nothing here may raise: the agent would end with the batch's messages never
        acknowledged, and Faust's next rebalance or stop would wait for them.  A database that
        refuses work is waited for (the stream pauses: at-least-once holds); a
        database process that is gone ends the worker at once, without committing, and
        the restarted worker reads the batch again.
        """
        for pause in _pauses():
            try:
                return await self.database.process(messages)
            except DatabaseUnavailable as exc:
                logger.error("database unavailable (%s); batch tried again in %.1f s", exc, pause)
            except asyncio.CancelledError:
                raise  # the worker stopping: the database process finishes what it was given
            except Exception:
                logger.critical("the database process failed; the worker stops uncommitted", exc_info=True)
                logging.shutdown()
                os._exit(70)
            await asyncio.sleep(pause)
        raise AssertionError("unreachable: _pauses never ends")

    async def publish(self, result: BatchResult) -> None:
        """The batch's schedule changes, dead letters and engagement values, delivered before
        the next batch.

        Straight to the producer (one enqueue each, then one wait for all the
        acknowledgements): the batch's offsets are committed only once its
        announcements are on the broker, so a crash never loses one.  A send the
        broker refuses is tried again, the whole batch's announcements with it,
        until it goes through (like ``apply``, nothing here may raise); a record
        sent twice carries the same id, and consumers de-duplicate on it.
        """
        for pause in _pauses():
            try:
                await self._send_all(result)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.error("publishing failed (%s); tried again in %.1f s", exc, pause)
            await asyncio.sleep(pause)

    async def _send_all(self, result: BatchResult) -> None:
        producer = self.app.producer
        pending = [
            await producer.send(self.schedule_changes.get_topic_name(), key.encode(), dumps_event(record), None, None, None)
            for key, record in result.changes
        ]
        pending += [
            await producer.send(
                self.deadletter.get_topic_name(), str(record["event_id"]).encode(), dumps_event(record), None, None, None
            )
            for record in result.deadletters
        ]
        pending += [
            # the contact id as the input topics key it: same partition as its events
            await producer.send(self.engagement.get_topic_name(), str(cid).encode(), dumps_event(value), None, None, None)
            for cid, value in result.engagement.items()
        ]
        await asyncio.gather(*pending)

    def today(self) -> date:
        return self.settings.today or datetime.now(ZoneInfo(self.settings.sweep_timezone)).date()

    async def sweep_if_due(self) -> None:
        """The daily sweep, once its time has come and no sweep has decided that day yet."""
        assert self.settings.sweep_cron is not None
        decision_day = await self.database.decision_day()
        if self.settings.today is not None:  # a fixed day: swept once
            due = self.settings.today if decision_day is None or decision_day < self.settings.today else None
        else:
            now = datetime.now(ZoneInfo(self.settings.sweep_timezone))
            due = sweep_due(decision_day, now, self.settings.sweep_cron)
        if due is not None:
            await self.sweep(due)

    async def sweep_today(self) -> None:
        # No argument: Faust gives a timer's function the app when it takes one.
        await self.sweep(self.today())

    async def sweep(self, day: date) -> None:
        """A sweep (leader only), then its ``sweep-runs`` record for replay."""
        for pause in _pauses():
            try:
                summary = await self.database.sweep(day)
                break
            except DatabaseUnavailable as exc:
                logger.error("database unavailable (%s); sweep of %s tried again in %.1f s", exc, day, pause)
            await asyncio.sleep(pause)
        logger.info("sweep %s as of %s done in %.1f s", summary["run_id"], day, summary["elapsed_s"])
        await self.publish_outbox()

    async def publish_outbox(self) -> None:
        """The audit records not on their topics yet (baselines, sweep runs), in order."""
        records = await self.database.unpublished()
        if not records:
            return
        producer = self.app.producer
        pending = [
            await producer.send(
                topic_name(self.settings.prefix, r.topic), r.key.encode(), dumps_event(r.record), None, None, None
            )
            for r in records
        ]
        await asyncio.gather(*pending)
        await self.database.mark_published([r.seq for r in records])


# A stop (SIGTERM) taking longer than this ends the process (exit 1): a batch the database
# cannot take, a sweep under way.  docker-compose.yml's stop_grace_period is a little longer.
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class HealthEndpoint:
    """Where ``run_worker`` serves ``/health/live`` and ``/health/ready`` (streams.worker.health)."""

    port: int  # 0: any free port (printed at start)
    host: str = "127.0.0.1"
    limits: Limits = field(default_factory=Limits)


class _WorkerLife:
    """What ``run_worker`` knows of the worker's life, observed for the health endpoints."""

    def __init__(self) -> None:
        self.started_at = time.monotonic()
        self.stage = "topics"
        self.worker: Worker | None = None
        self.database_started = False  # its process answers: the health tick may ask it
        self.app_started = False  # App.start called: App.stop is due at the end
        self.app_running = False  # App.start returned: its consumer can be asked
        self.last_tick: float | None = None
        self.stopping_since: float | None = None

    def observe(self) -> Observation:
        now = time.monotonic()
        base = Observation(
            now=now, started_at=self.started_at, stage=self.stage, last_tick=self.last_tick,
            stopping_since=self.stopping_since,
        )
        if self.worker is None:
            return base
        calls = self.worker.database.calls
        app = self.worker.app
        assigned: dict[str, list[int]] = {}
        leader = False
        if self.app_running:
            leader_topic = f"{app.conf.id}-__assignor-__leader"
            try:
                tps = app.consumer.assignment()
            except Exception:  # noqa: BLE001 - a consumer not started yet, or stopped
                tps = set()
            for tp in tps:
                if tp.topic == leader_topic:
                    leader = True
                else:
                    assigned.setdefault(tp.topic, []).append(tp.partition)
        return replace(
            base,
            database_alive=self.worker.database.alive(),
            running=calls.running,
            queued=calls.queued,
            database_error=calls.error,
            last_batch_done=calls.last_batch_done,
            joined=self.app_running and app.consumer_generation_id > 0,
            rebalancing=bool(app.rebalancing),
            assigned=assigned,
            leader=leader,
        )


def _end_now(why: str, code: int = 1) -> None:
    """End the process at once (from the loop or the stop timer's thread): nothing more is
    committed; the database process sees its parent gone and ends, rolling back."""
    logger.error("%s", why)
    print(f"mailwindow worker: {why}", file=sys.stderr, flush=True)
    logging.shutdown()
    os._exit(code)


async def _unless_stopped(stop: asyncio.Event, step: Awaitable[Any]) -> tuple[bool, Any]:
    """``step`` awaited unless the stop comes first (then ``step`` is cancelled): (done, result)."""
    doing = asyncio.ensure_future(step)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({doing, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not doing.done():
        doing.cancel()
        return False, None
    return True, doing.result()


async def _health_tick(life: _WorkerLife, limits: Limits) -> None:
    """Marks the loop as turning; when the database process has nothing to do, asks the
    database a trivial question (readiness: does it answer?; liveness: is the process there?)."""
    unavailable = False
    while True:
        life.last_tick = time.monotonic()
        worker = life.worker
        if worker is not None and life.database_started and life.stopping_since is None and worker.database.calls.idle:
            try:
                await worker.database.ping()
                if unavailable:
                    logger.warning("the database answers again")
                unavailable = False
            except DatabaseUnavailable as exc:
                if not unavailable:
                    logger.error("the database does not answer (%s); readiness is 503 until it does", exc)
                unavailable = True
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.critical("the database process failed; the worker stops uncommitted", exc_info=True)
                _end_now("the database process is gone", code=70)
        await asyncio.sleep(limits.tick_s)


def run_worker(
    settings: WorkerSettings,
    sweep_interval_s: float | None = None,
    *,
    health: HealthEndpoint | None = None,
    stop_timeout_s: float = STOP_TIMEOUT_S,
) -> None:
    """Run the worker until SIGTERM or Ctrl-C: topics made sure of, agents started, then wait.

    ``sweep_interval_s`` adds a sweep every so many seconds (leader only), for
    demos and tests; the daily sweep is there unless ``settings.sweep_cron`` is None.
    ``health``: serve ``/health/live`` and ``/health/ready`` (streams.worker.health).

    SIGTERM (or SIGINT): readiness is 503 from that moment.  Faust's own stop
    then does the rest, in this order (App.stop with ``stream_wait_empty``, its
    default): it stops fetching and pauses the partitions, waits until every
    message the agents took is acknowledged (the batch in hand is applied and
    its announcements are on the broker: ``Worker.apply_then_announce``), commits their
    offsets, stops the agents and closes the consumer, which sends LeaveGroup:
    the other members get its partitions at once, not after the session timeout
    (tests/kafka/test_worker_health.py measures both).  The database process then
    finishes its call and ends, and the process exits 0.  A second SIGTERM, or a
    stop longer than ``stop_timeout_s`` (a batch the database cannot take, a
    sweep under way), ends the process at once with exit code 1: what was not
    committed is read again by the partitions' next owner.
    """
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    asyncio.run(_run_worker(settings, sweep_interval_s, health, stop_timeout_s))


async def _run_worker(
    settings: WorkerSettings,
    sweep_interval_s: float | None,
    health: HealthEndpoint | None,
    stop_timeout_s: float,
) -> None:
    life = _WorkerLife()
    limits = health.limits if health is not None else Limits()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(name: str) -> None:
        if stop.is_set():
            _end_now(f"a second {name} while stopping: ending now")
        life.stopping_since = time.monotonic()
        life.stage = "stopping"
        logger.warning("%s: stopping (the batch in hand is finished, then the group left)", name)
        stop.set()
        timer = threading.Timer(
            stop_timeout_s, _end_now, args=(f"the stop took longer than {stop_timeout_s:g} s: ending now",)
        )
        timer.daemon = True
        timer.start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)
    server: asyncio.Server | None = None
    if health is not None:
        server = await serve_health(
            health.host,
            health.port,
            {
                LIVE_PATH: lambda: liveness(life.observe(), limits),
                READY_PATH: lambda: readiness(life.observe(), limits),
            },
        )
        port = server.sockets[0].getsockname()[1]
        # (not the word the tests wait for before "ready" itself)
        print(f"mailwindow worker: health on http://{health.host}:{port}/health/ (live, readiness)", flush=True)
    worker: Worker | None = None
    ticking = asyncio.ensure_future(_health_tick(life, limits))
    try:
        done, _ = await _unless_stopped(
            stop, ensure_topics(settings.broker, settings.prefix, settings.partitions)
        )
        if not done:
            return
        worker = Worker(settings)
        life.worker = worker
        if sweep_interval_s:
            worker.app.timer(interval=sweep_interval_s, on_leader=True)(worker.sweep_today)
        if life.stopping_since is None:
            life.stage = "database"
        done, prepared = await _unless_stopped(
            stop, worker.database.start(worker.today(), settings.snapshot_dir)
        )
        if not done:
            return
        life.database_started = True
        if prepared.get("baseline"):
            logger.warning("recorded the audit baseline %s (snapshot in %s)", prepared["baseline"], settings.snapshot_dir)
        if life.stopping_since is None:
            life.stage = "app"
        # SIGTERM is heard while the app starts too (a broker refusing to let it join).
        life.app_started = True  # from here on the app is stopped at the end
        done, _ = await _unless_stopped(stop, worker.app.start())
        if not done:
            return
        life.app_running = True
        if life.stopping_since is None:
            life.stage = "outbox"
        done, _ = await _unless_stopped(stop, worker.publish_outbox())
        if not done:
            return
        if life.stopping_since is None:
            life.stage = "running"
        gc.freeze()  # the app's start-up objects out of the collector's sight (database_process says why)
        print(
            f"mailwindow worker: ready (broker {settings.broker}, prefix {settings.prefix!r}, "
            f"{settings.partitions} partitions)",
            flush=True,
        )
        await stop.wait()
    finally:
        if worker is not None:
            if life.app_started:
                try:
                    await worker.app.stop()
                except Exception:  # noqa: BLE001 - the database process must still be closed
                    logger.exception("stopping the Faust app failed")
            # In a thread: the loop still answers the health endpoints and a second SIGTERM
            # while the database process finishes its call (a sweep may take long).
            await asyncio.to_thread(worker.database.close)
        ticking.cancel()
        if server is not None:
            server.close()
