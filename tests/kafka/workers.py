"""The worker as a separate process (``mailwindow worker``) for the tests against the real
broker, and the counts they wait on: shared by tests/kafka/test_worker.py, test_cli_kafka.py
and test_event_order_broker.py."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

ROOT = Path(__file__).resolve().parents[2]
WAIT = 180.0
PARTITIONS = 2
DAY = date(2026, 3, 10)  # the sample events' day: the workers' "today"


class WorkerProcess:
    """One ``mailwindow worker``; its log (stdout and stderr) in ``tmp/worker.log``, appended to
    on each start: give each of several workers a ``tmp`` of its own."""

    def __init__(
        self, broker: str, prefix: str, db: Path | str, tmp: Path, *extra: str, partitions: int = PARTITIONS
    ) -> None:
        self.args = [
            sys.executable, "-m", "streams.cli", "worker", "--broker", broker, "--db", str(db),
            "--prefix", prefix, "--partitions", str(partitions), "--app-id", f"{prefix}app",
            "--datadir", str(tmp / "faust"), "--today", DAY.isoformat(), *extra,
        ]
        self.log = tmp / "worker.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """The process started, not waited for (``wait_ready``): several workers start together."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_start = self.log.stat().st_size if self.log.exists() else 0
        out = self.log.open("ab")
        self.proc = subprocess.Popen(self.args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + WAIT
        while b"ready" not in self.log.read_bytes()[self._log_start :]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


def count(db: Path, sql: str) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute(sql).fetchone()[0])
    finally:
        con.close()


def read_until(
    broker: str,
    topic: str,
    done: Callable[[list[Any]], bool],
    decode: Callable[[Any], Any] = lambda m: orjson.loads(m.value),
) -> list[Any]:
    """The topic's records from its start, each ``decode``d (its value, by default), once ``done``."""

    async def go() -> list[Any]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker, auto_offset_reset="earliest")
        await consumer.start()
        seen: list[Any] = []
        try:
            deadline = time.monotonic() + WAIT
            while not done(seen):
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out on {topic}; got {len(seen)} records: {seen[-3:]}")
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    seen.extend(decode(m) for m in messages)
        finally:
            await consumer.stop()
        return seen

    return asyncio.run(go())
