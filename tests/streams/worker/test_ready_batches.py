"""How an agent takes its batches (streams.worker.ready_batches), on a stream stand-in.

The stand-in has what ``ready_batches`` uses of a Faust stream: its channel's queue
(``empty``), its events, and ``ack``.  The worker with a real broker is in tests/kafka/.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from types import SimpleNamespace
from typing import Any, TypeVar

from streams.worker.ready_batches import acknowledge, ready_batches

T = TypeVar("T")
HANG_GUARD_S = 60.0  # only a broken implementation waits this long: the linger in these tests is an hour
HOUR = 3600.0


class StandInStream:
    """Events put in arrive in order; ``None`` ends the stream."""

    def __init__(self) -> None:
        self.pending: asyncio.Queue[int | None] = asyncio.Queue()
        self.channel = SimpleNamespace(queue=self)
        self.acked: list[int] = []
        self.claims_more = False  # empty() says False although nothing will come (a cleared queue)

    def put(self, *events: int | None) -> None:
        for e in events:
            self.pending.put_nowait(e)

    def empty(self) -> bool:
        return self.pending.empty() and not self.claims_more

    async def events(self) -> AsyncIterator[int]:
        while (event := await self.pending.get()) is not None:
            yield event

    async def ack(self, event: int) -> None:
        self.acked.append(event)


def run(step: Awaitable[T]) -> T:
    async def guarded() -> T:
        return await asyncio.wait_for(step, HANG_GUARD_S)

    return asyncio.run(guarded())


async def first_batch_of_one_event(s: StandInStream, linger_s: float) -> list[Any]:
    batches = ready_batches(s, max_events=500, linger_s=linger_s)  # type: ignore[arg-type]
    s.put(1)
    first = await anext(batches)
    await batches.aclose()
    return first


def test_an_idle_agent_takes_a_single_event_at_once_not_after_the_linger() -> None:
    assert run(first_batch_of_one_event(StandInStream(), linger_s=HOUR)) == [1]


def test_events_arriving_during_a_batch_are_the_next_batch_in_order_and_at_most_max() -> None:
    async def scenario() -> list[list[Any]]:
        s = StandInStream()
        batches = ready_batches(s, max_events=5, linger_s=HOUR)  # type: ignore[arg-type]
        s.put(1)
        taken = [await anext(batches)]
        s.put(2, 3, 4, 5, 6, 7)  # while the agent applies [1]
        taken.append(await anext(batches))
        taken.append(await anext(batches))
        await batches.aclose()
        return taken

    assert run(scenario()) == [[1], [2, 3, 4, 5, 6], [7]]


def test_an_event_in_hand_is_handed_on_within_the_linger_when_the_queue_lied() -> None:
    """Faust clears its queues when partitions are revoked, then waits for every event taken to
    be acknowledged: an event kept back until the next one arrives would stall the rebalance."""

    s = StandInStream()
    s.claims_more = True
    assert run(first_batch_of_one_event(s, linger_s=0.05)) == [1]


def test_nothing_is_acknowledged_until_the_agent_says_its_batch_is_done() -> None:
    async def scenario() -> tuple[list[int], list[int]]:
        s = StandInStream()
        batches = ready_batches(s, max_events=500, linger_s=HOUR)  # type: ignore[arg-type]
        s.put(1, 2, 3)
        batch = await anext(batches)
        before = list(s.acked)
        await acknowledge(s, batch)  # type: ignore[arg-type]
        await batches.aclose()
        return before, s.acked

    before, after = run(scenario())
    assert before == []
    assert after == [1, 2, 3]


def test_a_stream_that_ends_hands_on_what_it_read_then_ends() -> None:
    async def scenario() -> list[list[Any]]:
        s = StandInStream()
        s.put(1, 2, None)
        return [b async for b in ready_batches(s, max_events=500, linger_s=HOUR)]  # type: ignore[arg-type]

    assert run(scenario()) == [[1, 2]]


def test_a_reader_that_fails_fails_the_agent() -> None:
    class Broken(StandInStream):
        async def events(self) -> AsyncIterator[int]:
            yield await self.pending.get()  # type: ignore[misc]
            raise ValueError("the stream broke")

    async def scenario() -> str:
        s = Broken()
        batches = ready_batches(s, max_events=500, linger_s=HOUR)  # type: ignore[arg-type]
        s.put(1)
        assert await anext(batches) == [1]
        try:
            await anext(batches)
        except ValueError as exc:
            return str(exc)
        return "no error"

    assert run(scenario()) == "the stream broke"
