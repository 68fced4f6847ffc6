"""An agent's batches: what its stream has ready, taken as soon as the last batch is done.

Faust's ``take_events(max, within)`` waits, after every batch, until ``max``
events are buffered or ``within`` seconds have passed, even when events are
already waiting.  Every cycle of an agent that keeps up paid that wait on top of
applying and announcing its batch, and events arriving during a cycle waited for
the next one: at 2,000 events/s and ``within`` = 50 ms, p50 122-125 ms and p99
242-252 ms from produce to schedule change (bench/stream.py, README).

Here a reader task moves the stream's events into a buffer while the agent
works, and the agent takes the whole buffer the moment it is ready: once the
stream's queue has nothing more in it (the events of one fetch arrive
together), at ``max_events``, or at the latest ``linger_s`` after its first
event.  An idle agent takes a single event at once; a busy one takes
everything that arrived while it worked, so batches grow with the load and
their fixed costs are shared by more events, with no timer in the way.

The reader never holds an event back: when Faust revokes partitions it clears
its queues and then waits for every event taken from them to be acknowledged,
so an event kept by a reader blocked on an empty queue would stall the
rebalance.  The buffer is always handed on within ``linger_s``.  The events are
acknowledged (their offsets released for Faust's next commit) only by
``acknowledge``, once the agent has applied and announced them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import faust
from faust.types import EventT


async def ready_batches(
    stream: faust.StreamT, max_events: int, linger_s: float = 0.05
) -> AsyncGenerator[list[EventT], None]:
    """Batches of at most ``max_events`` of ``stream``'s events, in their order.

    ``stream`` must not acknowledge by itself (``stream.noack()``): the caller
    acknowledges each batch with ``acknowledge`` once it is done with it.
    """
    queue = stream.channel.queue  # type: ignore[attr-defined]  # a topic's channel has one
    buffer: list[EventT] = []
    arrived = asyncio.Event()  # the buffer has an event
    ready = asyncio.Event()  # ... and the queue had no more, or the buffer is full
    room = asyncio.Event()  # the buffer is below max_events
    room.set()

    async def read() -> None:
        async for event in stream.events():
            buffer.append(event)
            arrived.set()
            full = len(buffer) >= max_events
            if full or queue.empty():
                ready.set()
            if full:
                room.clear()
                await room.wait()

    reader = asyncio.ensure_future(read())
    try:
        while True:
            await _wait(reader, arrived)
            await _wait(reader, ready, linger_s)
            if not buffer:  # the reader ended: the worker stopping, or the stream failed
                reader.result()
                return
            batch = buffer[:]
            buffer.clear()
            arrived.clear()
            ready.clear()
            room.set()
            yield batch
    finally:
        reader.cancel()
        await asyncio.wait({reader})
        if not reader.cancelled():
            reader.exception()  # seen (raised above, or lost to what ends the agent)


async def _wait(reader: asyncio.Future[None], event: asyncio.Event, timeout: float | None = None) -> None:
    """``event`` awaited, at most ``timeout`` seconds, and no longer than the reader runs."""
    waiting = asyncio.ensure_future(event.wait())
    either: set[asyncio.Future[Any]] = {reader, waiting}
    try:
        await asyncio.wait(either, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()


async def acknowledge(stream: faust.StreamT, events: list[EventT]) -> None:
    """The batch's offsets released for Faust's next commit."""
    for event in events:
        await stream.ack(event)
