"""The worker's hand-over to its database process and to the broker, without a broker:
nothing lost when the database is unavailable for a while (the batch waits) or the broker
refuses the announcements (sent again), the worker ends uncommitted when the database
process itself is gone."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rules.config import DEFAULT_CONFIG
from streams.store.engine import open_store
from streams.worker import app as app_module
from streams.worker.app import Worker, WorkerSettings
from streams.worker.batch import BatchResult, Message
from streams.worker.database_process import DatabaseUnavailable
from streams.worker.fetch_delivery import FetchDeliveringConsumer
from tests.legacy_db import make_legacy_db


class FlakyDatabaseProcess:
    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures
        self.calls = 0

    async def process(self, messages: list[Message]) -> BatchResult:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return BatchResult(applied=len(messages))

    def close(self) -> None:
        pass


def worker(tmp_path: Path) -> Worker:
    store = open_store(str(make_legacy_db(tmp_path / "w.db")))
    w = Worker(WorkerSettings(broker="127.0.0.1:9", store=store, config=DEFAULT_CONFIG))
    w.database.close()
    return w


def replace_settings(w: Worker, **changes: Any) -> Worker:
    w.settings = replace(w.settings, **changes)
    return w


def test_a_batch_waits_while_the_database_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []

    async def no_sleep(seconds: float) -> None:
        pauses.append(seconds)

    w = worker(tmp_path)
    flaky = FlakyDatabaseProcess([DatabaseUnavailable("database is locked")] * 3)
    w.database = flaky  # type: ignore[assignment]
    monkeypatch.setattr(app_module.asyncio, "sleep", no_sleep)
    batch = [Message("clicks", 0, 7, b"1", b"{}")]
    result = asyncio.run(w.apply(batch))
    assert result.applied == 1 and flaky.calls == 4
    assert pauses == [0.5, 1.0, 2.0]  # growing pauses, then the batch goes through


def test_the_worker_ends_uncommitted_when_the_database_process_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exits: list[int] = []

    def fake_exit(code: int) -> Any:
        exits.append(code)
        raise SystemExit(code)

    w = worker(tmp_path)
    w.database = FlakyDatabaseProcess([RuntimeError("process pool broken")])  # type: ignore[assignment]
    monkeypatch.setattr(app_module.os, "_exit", fake_exit)
    with pytest.raises(SystemExit):
        asyncio.run(w.apply([Message("clicks", 0, 7, b"1", b"{}")]))
    assert exits == [70]


def test_announcements_are_sent_again_until_the_broker_takes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = worker(tmp_path)
    attempts: list[int] = []

    async def flaky_send_all(result: BatchResult) -> None:
        attempts.append(len(result.changes))
        if len(attempts) < 3:
            raise ConnectionError("broker not available")

    async def no_sleep(seconds: float) -> None:
        pass

    monkeypatch.setattr(w, "_send_all", flaky_send_all)
    monkeypatch.setattr(app_module.asyncio, "sleep", no_sleep)
    result = BatchResult(changes=[("1", {"event_id": "x"})])
    asyncio.run(w.publish(result))
    assert attempts == [1, 1, 1]  # the whole batch's announcements each time, until sent


def test_batches_are_announced_in_the_order_the_database_process_applied_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two agents' batches: the first one's announcements are slow to send. The second one's
    must still go out after them, or an older change or engagement value of a contact would
    stand as its latest on the broker."""
    w = worker(tmp_path)
    w.database = FlakyDatabaseProcess([])  # type: ignore[assignment]  # answers at once, in call order
    sent: list[str] = []

    async def send_all(result: BatchResult) -> None:
        name = result.changes[0][0] if result.changes else "?"
        if name == "first":
            await asyncio.sleep(0.2)  # a slow broker for the first batch only
        sent.append(name)

    async def applied(messages: list[Message]) -> BatchResult:
        return BatchResult(changes=[(messages[0].topic_kind, {})])

    monkeypatch.setattr(w, "_send_all", send_all)
    monkeypatch.setattr(w.database, "process", applied)

    async def agent(kind: str) -> None:
        await (await w.apply_then_announce([Message(kind, 0, 0, b"1", b"{}")]))

    async def two_agents() -> None:
        await asyncio.gather(agent("first"), agent("second"))

    asyncio.run(two_agents())
    assert sent == ["first", "second"]


class _Offsets:
    """A stand-in for a Faust stream of one partition's messages: what the agent uses of it."""

    def __init__(self, count: int) -> None:
        self.pending: asyncio.Queue[Any] = asyncio.Queue()
        for offset in range(count):
            message = SimpleNamespace(partition=0, offset=offset, key=b"1", value=b"{}")
            self.pending.put_nowait(SimpleNamespace(message=message))
        self.pending.put_nowait(None)  # the end of the stream
        self.channel = SimpleNamespace(queue=self)
        self.acked: list[int] = []

    def noack(self) -> _Offsets:
        return self

    def empty(self) -> bool:
        return self.pending.empty()

    async def events(self) -> Any:
        while (event := await self.pending.get()) is not None:
            yield event

    async def ack(self, event: Any) -> None:
        self.acked.append(event.message.offset)


def test_the_next_batch_is_applied_while_the_last_ones_announcements_are_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent's cycle is an apply, not an apply and a publish; but a batch's offsets are
    released for commit only once its own announcements are on the broker."""
    w = replace_settings(worker(tmp_path), batch_size=2)
    log: list[str] = []
    stream = _Offsets(4)  # two batches of two
    broker_took: dict[int, asyncio.Event] = {0: asyncio.Event(), 2: asyncio.Event()}

    async def applied(messages: list[Message]) -> BatchResult:
        first = messages[0].offset
        assert first is not None
        log.append(f"applied {first}; acknowledged so far {stream.acked}")
        if first == 2:
            broker_took[0].set()  # the first batch's announcements are acknowledged only now
        return BatchResult(changes=[(str(first), {})])

    async def send_all(result: BatchResult) -> None:
        first = int(result.changes[0][0])
        await broker_took[first].wait()
        log.append(f"announced {first}")

    monkeypatch.setattr(w, "_send_all", send_all)
    w.database = FlakyDatabaseProcess([])  # type: ignore[assignment]
    monkeypatch.setattr(w.database, "process", applied)
    broker_took[2].set()

    async def run_agent() -> None:
        await asyncio.wait_for(w._agent_for("contacts")(stream), 60)

    asyncio.run(run_agent())
    assert log == [
        "applied 0; acknowledged so far []",
        "applied 2; acknowledged so far []",  # before batch 0's announcements were acknowledged
        "announced 0",
        "announced 2",
    ]
    assert stream.acked == [0, 1, 2, 3]


def test_the_worker_hands_each_fetch_over_in_one_task(tmp_path: Path) -> None:
    # Faust's own consumer spends four tasks on every record (streams.worker.fetch_delivery).
    w = worker(tmp_path)
    assert type(w.app.consumer) is FetchDeliveringConsumer
    assert w.app.transport.Consumer is FetchDeliveringConsumer
