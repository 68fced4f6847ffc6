"""Faust's Kafka consumer, handing each fetch's records to the streams in one task.

faust-streaming 0.15 hands every record to the streams under its own
``Service.wait_first(callback(record), suspend_flow.wait())``: four tasks and an
``asyncio.wait`` a record, so that a rebalance (which suspends the flow) is
never kept waiting by a record whose hand-over blocks (flow control acquired,
the producer's buffer full, a stream's queue full).  Measured with py-spy on
``bench/stream.py``'s throughput run (60,000 mixed events): that wait was a
quarter of the worker's Faust process, about 25 µs of its 100 µs an event.

Here the records of one fetch are handed over, one after the other, inside a
single ``wait_first`` against the same suspension.  What a rebalance sees is
unchanged: once the flow is suspended the hand-over stops (the task is
cancelled, as Faust cancels a record's), the records not handed over are
not marked read, and Faust seeks back to the committed offsets before the
next fetch, so they are read again.  The fetch itself stays outside the task,
where Faust has it: a fetch is never cancelled half-way.  A commit due every
``broker_commit_every`` records is shielded from that cancellation.

It is installed as the app's transport (``install``), the only change to Faust's
consumer; everything else (the consumer thread, offsets, acknowledgements,
gaps, the commit, the fetch's order across partitions) is Faust's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from mode import ServiceT

# Records handed over between two returns to the event loop: the other tasks
# (the agents, the producer, heartbeats) run between them.
YIELD_EVERY = 100


class FetchDeliveringConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with one hand-over task per fetch, not per record."""

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover - runs in the worker
        should_stop = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set  # type: ignore[attr-defined]
        try:
            while not (should_stop() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                records = self.getmany(timeout=1.0)
                await self.sleep(0)  # getmany can return at once, again and again
                if not self.should_stop:
                    first = await anext(records, None)  # the fetch, never cancelled half-way
                    if first is not None:
                        await self.wait_first(self._hand_over(first, records), self.suspend_flow.wait())
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception:
            self.log.exception("handing fetched records to the streams failed")
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _hand_over(self, first: tuple[TP, Message], rest: AsyncIterator[tuple[TP, Message]]) -> None:
        """The fetch's records to the streams, in Faust's order, each marked read once handed over."""
        read_offsets = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        callback = self.callback
        since_yield = 0
        item: tuple[TP, Message] | None = first
        while item is not None:
            tp, message = item
            since_yield += 1
            if since_yield > YIELD_EVERY:
                await asyncio.sleep(0)
                since_yield = 0
            offset = message.offset
            last_read = read_offsets[tp]
            if last_read is None or offset >= last_read:
                # a gap in the offsets (a compacted topic, transaction markers): Faust
                # records it so that the committed offset can pass over it
                if last_read and offset - last_read > 1 and acks_enabled_for(message.topic):
                    await self._add_gap(tp, last_read + 1, offset)
                commit_every = self._commit_every
                if commit_every is not None and self._n_acked >= commit_every:
                    self._n_acked = 0
                    await asyncio.shield(self.commit())
                await callback(message)
                read_offsets[tp] = offset
            item = await anext(rest, None)


class FetchDeliveringTransport(faust_aiokafka.Transport):
    Consumer = FetchDeliveringConsumer


def install(app: faust.App) -> None:
    """The app's consumer hands each fetch over in one task; call before the app makes its topics."""
    app.transport = FetchDeliveringTransport(app.conf.broker_consumer, app)
