"""Stream benchmark: one worker (``mailwindow worker``) on a real local Kafka broker.

    .venv/bin/python bench/stream.py                       # starts its own broker
    .venv/bin/python bench/stream.py --broker 127.0.0.1:19092

1. Throughput: N mixed events (contacts, clicks, health answers) are produced
   first, then a worker is started; events per second = N / time until the
   database has applied them all (from the worker's first read, its start-up
   excluded).
2. Latency: contact upserts are produced at a fixed rate (default 1,000/s);
   each one places a birthday email, so each has a schedule change; latency
   is the time from its produce call to the arrival of the change that names
   it as cause (p50, p99, max).  The producer lingers 5 ms (Kafka 4.0's
   default; ``--producer-linger-ms 0`` makes every event a request of its own,
   which on this 2-core machine kept the broker at about a core); the first
   ``--warmup-seconds`` (default 2) after the worker's start are reported apart.
Peak memory of the worker (VmHWM) is printed too.  Not part of the tests.

    .venv/bin/python bench/stream.py --workers 2           # N workers, one PostgreSQL database

With ``--workers N`` (issue 16) the throughput run starts N ``mailwindow worker``
processes in one consumer group on a PostgreSQL database (a throwaway server from
``scripts/pg-local``; ``--postgres`` for one worker on it too), and the events are
spread over ``--partitions`` (default 4) partitions.  On this 2-core machine the
broker, PostgreSQL, the workers and their database processes share the two cores:
the figure says what one machine does, not how N machines scale.

Each figure is printed beside a baseline taken in the same run on the same broker:
a process of aiokafka alone (``--echo``) that reads the same records, parses each
value's JSON and produces one record per input record (what any Kafka application
must at least do), measured the same way.  This machine's figures swing threefold
with its load; the ratio to the baseline moves much less.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streams.worker.topics import ensure_topics, topic_name  # noqa: E402
from synthetic.sample_events import mixed_events  # noqa: E402

PARTITIONS = 2  # set from --partitions in main()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_broker(state: Path) -> tuple[str, dict[str, str]]:
    port, cport = free_port(), free_port()
    env = {**os.environ, "KAFKA_STATE": str(state), "KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(cport)}
    subprocess.run([str(ROOT / "scripts" / "kafka-local"), "start"], env=env, check=True)
    return f"127.0.0.1:{port}", env


def fresh_db(path: Path) -> None:
    from streams.store.engine import new_agency_database

    new_agency_database(path)


def start_worker(broker: str, prefix: str, db: Path | str, tmp: Path, n: int = 0) -> subprocess.Popen[bytes]:
    log_path = tmp / f"{prefix}worker{n}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker", "--broker", broker, "--db", str(db),
         "--prefix", prefix, "--partitions", str(PARTITIONS), "--app-id", f"{prefix}app",
         "--datadir", str(tmp / f"faust{n}"), "--today", "2026-03-10", "--sweep-cron", "off"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    while b"ready" not in log_path.read_bytes():
        if proc.poll() is not None:
            raise SystemExit(log_path.read_text()[-2000:])
        time.sleep(0.1)
    return proc


def peak_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of the worker and its database process, together."""
    total = 0.0
    for p in (p for group in worker_pids(pid).values() for p in group):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) / 1024
    return total


def _per_group(pids: dict[str, list[int]], of_process: Callable[[int], float]) -> dict[str, float]:
    """``of_process`` summed over each group's processes; one that has ended counts nothing."""
    summed: dict[str, float] = {}
    for label, group in pids.items():
        total = 0.0
        for pid in group:
            try:
                total += of_process(pid)
            except OSError:
                continue  # ended
        summed[label] = total
    return summed


def _run_delay_s(pid: int) -> float:
    """Seconds the process's threads have waited for a core while ready to run (schedstat)."""
    waited = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            waited += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError):
            continue  # a thread that ended meanwhile
    return waited / 1e9


def _cpu_s(pid: int) -> float:
    """CPU time (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_delay(pids: dict[str, list[int]]) -> dict[str, float]:
    return _per_group(pids, _run_delay_s)


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    return _per_group(pids, _cpu_s)


def worker_pids(pid: int) -> dict[str, list[int]]:
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return {"the worker's Faust process": [pid], "its database process": children}


_APPLIED = "SELECT coalesce(sum(applied), 0) FROM mw_applied_counts"


def applied(db: Path | str) -> int:
    # the per-topic counts the worker keeps: polling them costs it nothing (counting events would)
    if isinstance(db, str):
        import sqlalchemy as sa

        engine = _engines.get(db) or _engines.setdefault(db, sa.create_engine(db, poolclass=sa.pool.NullPool))
        with engine.connect() as conn:
            return int(conn.exec_driver_sql(_APPLIED).scalar_one())
    con = sqlite3.connect(db)
    try:
        return int(con.execute(_APPLIED).fetchone()[0])
    finally:
        con.close()


_engines: dict[str, Any] = {}  # a SQLAlchemy engine per PostgreSQL URL


def start_postgres(state: Path) -> tuple[str, dict[str, str]]:
    """A throwaway PostgreSQL server (scripts/pg-local); its URL without a database."""
    port = free_port()
    env = {**os.environ, "PG_STATE": str(state), "PG_PORT": str(port)}
    subprocess.run([str(ROOT / "scripts" / "pg-local"), "start"], env=env, check=True, capture_output=True)
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}", env


def fresh_pg_db(server: str, name: str) -> str:
    import sqlalchemy as sa

    from streams.store.engine import open_store

    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")  # our own name
    admin.dispose()
    url = f"{server}/{name}"
    with open_store(url) as store:
        store.migrate()
    return url


async def produce_all(broker: str, prefix: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker, linger_ms=10, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(topic_name(prefix, e.topic), value=e.value, key=e.key)
            for e in mixed_events(count, seed=21, malformed_share=0.0)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def echo(broker: str, prefix: str, until: int, linger_ms: int) -> None:
    """The baseline: read the input topics, parse each value, produce one record naming
    it as cause onto ``schedule-changes``.  With ``until``, stop after that many and
    print the rate from the first read to the last acknowledgement."""
    inputs = [topic_name(prefix, t) for t in ("contacts", "clicks", "health", "email-status")]
    consumer = AIOKafkaConsumer(*inputs, bootstrap_servers=broker, group_id=f"{prefix}echo",
                                auto_offset_reset="earliest", enable_auto_commit=True)
    producer = AIOKafkaProducer(bootstrap_servers=broker, linger_ms=linger_ms, acks=1)
    await consumer.start()
    await producer.start()
    print("ready", flush=True)
    out = topic_name(prefix, "schedule-changes")
    seen = 0
    started = 0.0
    pending: list[asyncio.Future[object]] = []
    try:
        while not until or seen < until:
            batches = await consumer.getmany(timeout_ms=100, max_records=500)
            for messages in batches.values():
                if not started:
                    started = time.perf_counter()
                for m in messages:
                    cause = {"cause": {"event_id": orjson.loads(m.value)["event_id"]}}
                    pending.append(await producer.send(out, value=orjson.dumps(cause), key=m.key))
                    seen += 1
            if len(pending) > 1000 or not until:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        if until:
            elapsed = time.perf_counter() - started
            print(f"echo {seen} {elapsed:.3f}", flush=True)
    finally:
        await producer.stop()
        await consumer.stop()


def start_echo(broker: str, prefix: str, until: int, linger_ms: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--echo", "--broker", broker, "--prefix", prefix,
         "--until", str(until), "--linger-ms", str(linger_ms)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("the aiokafka baseline did not start")
    return proc


def baseline_throughput(broker: str, count: int) -> float:
    prefix = f"bb{int(time.time())}."
    asyncio.run(ensure_topics(broker, prefix, PARTITIONS))
    asyncio.run(produce_all(broker, prefix, count))
    proc = start_echo(broker, prefix, count, linger_ms=10)
    out, _ = proc.communicate(timeout=600)
    _, seen, elapsed = out.split()[-3:]
    rate = int(seen) / float(elapsed)
    print(f"baseline (aiokafka alone, parse + produce one record each): {int(seen):,} events in "
          f"{float(elapsed):.1f} s = {rate:,.0f} events/s")
    return rate


def throughput(
    broker: str, tmp: Path, count: int, workers: int = 1, pg: str | None = None, broker_pid: int | None = None
) -> None:
    prefix = f"bt{int(time.time())}."
    asyncio.run(ensure_topics(broker, prefix, PARTITIONS))
    db: Path | str
    if pg is None:
        db = tmp / "throughput.db"
        fresh_db(db)
    else:
        db = fresh_pg_db(pg, prefix.rstrip(".").replace(".", "_"))
    if pg is None:  # one worker on its file: the backlog produced first, then the worker started
        asyncio.run(produce_all(broker, prefix, count))
        procs = [start_worker(broker, prefix, db, tmp)]
    else:
        # Every worker joined and the group settled before the first event exists: a
        # rebalance is start-up, not work.  The producer outruns the workers many times.
        procs = [start_worker(broker, prefix, db, tmp, n) for n in range(workers)]
        time.sleep(10)
        asyncio.run(produce_all(broker, prefix, count))
    try:
        # Each process's CPU over the measured interval: which one sets the rate (on two
        # cores, the worker's two processes and the broker share them).
        pids = {**({"the broker": [broker_pid]} if broker_pid else {}),
                **{label: [p for proc in procs for p in worker_pids(proc.pid)[label]]
                   for label in worker_pids(procs[0].pid)}}
        while (first := applied(db)) == 0:
            time.sleep(0.01)
        started, cpu_before, delay_before = time.perf_counter(), cpu_seconds(pids), run_delay(pids)
        while applied(db) < count:
            time.sleep(0.05)
        elapsed, cpu_after, delay_after = time.perf_counter() - started, cpu_seconds(pids), run_delay(pids)
        where = "PostgreSQL" if pg else "SQLite"
        rss = sum(peak_mb(p.pid) for p in procs)
        print(f"throughput, {workers} worker(s) on {where}, {PARTITIONS} partitions: {count:,} events in "
              f"{elapsed:.1f} s = {count / elapsed:,.0f} events/s (workers + database processes peak RSS "
              f"{rss:.0f} MB)")
        # The clock starts once the first batch is applied, so its events took no measured
        # time: counted without them, the rate is a little lower (and the batch size's
        # share in the figure above is out of it).
        print(f"  without the {first:,} events applied before the clock started: "
              f"{(count - first) / elapsed:,.0f} events/s")
        print("CPU during the throughput run, µs an event (share of one core): " + ", ".join(
            f"{label} {(cpu_after[label] - cpu_before[label]) / count * 1e6:.0f} "
            f"({(cpu_after[label] - cpu_before[label]) / elapsed:.0%})" for label in pids))
        print("waiting for a core while ready to run, share of the run: " + ", ".join(
            f"{label} {(delay_after[label] - delay_before[label]) / elapsed:.0%}" for label in pids))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
    base = baseline_throughput(broker, count)
    print(f"throughput ratio worker / baseline: {count / elapsed / base:.2f}")


def upsert(cid: int, at: datetime, day: date) -> bytes:
    birth = (day + timedelta(days=14)).replace(year=1950)  # ideal send date = that day
    return orjson.dumps({
        "event_id": f"lat-{cid}", "occurred_at": at.isoformat().replace("+00:00", "Z"),
        "op": "upsert", "contact_id": cid,
        "contact": {"email": f"l{cid}@example.com", "zip_code": "75201", "state": "TX",
                    "birth_date": birth.isoformat(), "effective_date": None},
    })


@dataclass
class Latencies:
    """Milliseconds from produce to change, sorted: the warm-up's and the measured seconds'."""

    warmup: list[float]
    measured: list[float]


async def latency_run(broker: str, prefix: str, rate: int, seconds: int, warmup_s: int, linger_ms: int) -> Latencies:
    changes = topic_name(prefix, "schedule-changes")
    consumer = AIOKafkaConsumer(changes, bootstrap_servers=broker, auto_offset_reset="latest")
    await consumer.start()
    await asyncio.sleep(2)  # the consumer's partitions assigned before the first produce
    producer = AIOKafkaProducer(bootstrap_servers=broker, linger_ms=linger_ms, acks=1)
    await producer.start()
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    warm = rate * warmup_s
    total = warm + rate * seconds
    day = date(2026, 3, 10)
    at = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)

    async def receive() -> None:
        while len(got) < total:
            batches = await consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            for messages in batches.values():
                for m in messages:
                    cause = orjson.loads(m.value)["cause"]["event_id"]
                    got.setdefault(cause, now)

    receiver = asyncio.create_task(receive())
    begin = time.perf_counter()
    for i in range(total):
        due = begin + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        event_id = f"lat-{i + 1}"
        # from the produce call: the producer's linger counts
        sent[event_id] = time.perf_counter()
        await producer.send(topic_name(prefix, "contacts"), value=upsert(i + 1, at, day), key=str(i + 1).encode())
    await producer.flush()
    try:
        await asyncio.wait_for(receiver, timeout=120)
    except TimeoutError:
        pass
    await producer.stop()
    await consumer.stop()
    ms = {k: (got[k] - sent[k]) * 1000 for k in sent if k in got}
    return Latencies(
        warmup=sorted(ms[f"lat-{i + 1}"] for i in range(warm) if f"lat-{i + 1}" in ms),
        measured=sorted(ms[f"lat-{i + 1}"] for i in range(warm, total) if f"lat-{i + 1}" in ms),
    )


def percentiles(ms: list[float]) -> str:
    p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    return f"p50 {p(0.50):.1f} ms, p99 {p(0.99):.1f} ms, max {ms[-1]:.1f} ms"


def p99(ms: list[float]) -> float:
    return ms[min(len(ms) - 1, int(0.99 * len(ms)))]


def warmup_line(lat: Latencies) -> str:
    return f"; warm-up, not counted: {percentiles(lat.warmup)}" if lat.warmup else ""


def baseline_latency(broker: str, rate: int, seconds: int, warmup_s: int, linger_ms: int) -> Latencies:
    prefix = f"bk{int(time.time())}."
    asyncio.run(ensure_topics(broker, prefix, PARTITIONS))
    proc = start_echo(broker, prefix, 0, linger_ms=0)
    try:
        lat = asyncio.run(latency_run(broker, prefix, rate, seconds, warmup_s, linger_ms))
    finally:
        proc.terminate()
        proc.wait(60)
    print(f"baseline latency at {rate:,} events/s (aiokafka alone): {len(lat.measured):,} seen; "
          + (percentiles(lat.measured) if lat.measured else "none arrived") + warmup_line(lat))
    return lat


def latency(
    broker: str, tmp: Path, rate: int, seconds: int, warmup_s: int, linger_ms: int, broker_pid: int | None
) -> None:
    prefix = f"bl{int(time.time())}."
    asyncio.run(ensure_topics(broker, prefix, PARTITIONS))
    db = tmp / "latency.db"
    fresh_db(db)
    proc = start_worker(broker, prefix, db, tmp)
    print(f"latency runs: contact upserts at {rate:,}/s, {warmup_s} s of warm-up then {seconds} s measured; "
          f"the producer's linger {linger_ms} ms")
    try:
        # Where the machine's cores go during the run: on two cores, every process here
        # competes with the worker for them.
        pids = {**({"the broker": [broker_pid]} if broker_pid else {}), **worker_pids(proc.pid),
                "this bench (producer, consumer of the changes)": [os.getpid()]}
        began, cpu_before = time.perf_counter(), cpu_seconds(pids)
        lat = asyncio.run(latency_run(broker, prefix, rate, seconds, warmup_s, linger_ms))
        wall, cpu_after = time.perf_counter() - began, cpu_seconds(pids)
        total = rate * seconds
        if not lat.measured:
            print("latency: no schedule change arrived")
            return
        print(f"latency at {rate:,} events/s for {seconds} s: {len(lat.measured):,}/{total:,} changes seen; "
              f"{percentiles(lat.measured)} (worker + database process peak RSS {peak_mb(proc.pid):.0f} MB)"
              + warmup_line(lat))
        print("CPU during the latency run (warm-up included), share of one core: " + ", ".join(
            f"{label} {(cpu_after[label] - cpu_before[label]) / wall:.0%}" for label in pids))
    finally:
        proc.terminate()
        proc.wait(60)
    base = baseline_latency(broker, rate, seconds, warmup_s, linger_ms)
    if base.measured:
        print(f"latency p99 ratio worker / baseline: {p99(lat.measured) / p99(base.measured):.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", help="use a running broker instead of starting one")
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=10, help="measured seconds of the latency run")
    ap.add_argument("--warmup-seconds", type=int, default=2,
                    help="seconds produced at the same rate before those, reported apart (default 2)")
    ap.add_argument("--producer-linger-ms", type=int, default=5,
                    help="the latency run's producer (default 5: Kafka 4.0's producer default)")
    ap.add_argument("--latency-only", action="store_true", help="skip the throughput run")
    ap.add_argument("--workers", type=int, default=1, help="workers in the throughput run (>1: PostgreSQL)")
    ap.add_argument("--postgres", action="store_true", help="the throughput run on PostgreSQL")
    ap.add_argument("--partitions", type=int, default=0, help="of the input topics (default 2; 4 with --workers/--postgres)")
    ap.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)  # the baseline's process
    ap.add_argument("--prefix", help=argparse.SUPPRESS)
    ap.add_argument("--until", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--linger-ms", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.echo:
        asyncio.run(echo(args.broker, args.prefix, args.until, args.linger_ms))
        return
    global PARTITIONS
    use_pg = args.postgres or args.workers > 1
    PARTITIONS = args.partitions or (4 if use_pg else 2)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        env = None
        pg_env = None
        broker = args.broker
        if broker is None:
            broker, env = start_broker(tmp / "kafka")
        try:
            pg = None
            if use_pg:
                pg_state = Path(tempfile.mkdtemp(prefix="mailwindow-bench-pg-"))  # reachable by postgres
                pg, pg_env = start_postgres(pg_state)
            broker_pid = int((tmp / "kafka" / "kafka.pid").read_text()) if env is not None else None
            if not args.latency_only:
                throughput(broker, tmp, args.events, args.workers, pg, broker_pid)
            if not use_pg:
                latency(broker, tmp, args.rate, args.seconds, args.warmup_seconds, args.producer_linger_ms, broker_pid)
        finally:
            if pg_env is not None:
                subprocess.run([str(ROOT / "scripts" / "pg-local"), "stop"], env=pg_env, check=False)
            if env is not None:
                subprocess.run([str(ROOT / "scripts" / "kafka-local"), "stop"], env=env, check=False)


if __name__ == "__main__":
    main()
