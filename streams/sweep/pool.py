"""Chunks decided in this process or in worker processes, their results in chunk order.

Workers (``SweepOptions.workers``, 'fork' start method) are used when there
are several chunks: each reads its chunks over its own connection and returns
plain values (``ChunkResult``); the main process applies them in chunk order
and does every write, so the result, the counters and the summary are those
of a run in one process.
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager

from rules.zip_state import zip_states
from streams.store.engine import Store, open_store
from streams.sweep.chunks import ChunkDecider, ChunkResult, DecideContext
from streams.sweep.summary import SweepOptions
from streams.watchdog import end_with_parent

# Worker processes are forked ('fork' start method): they inherit this context,
# set by the main process just before, since the config cannot be pickled.
_FORK_CONTEXT: DecideContext | None = None
_worker: tuple[ChunkDecider, Store] | None = None


@contextmanager
def decided_chunks(
    store: Store, context: DecideContext, ids: Sequence[int], options: SweepOptions
) -> Iterator[Iterator[tuple[int, ChunkResult]]]:
    """Each chunk's (size, result) in chunk order, decided here or in worker processes."""
    global _FORK_CONTEXT
    chunks = chunked(ids, options.chunk_size)
    target = store.reopen_target()
    if (
        options.workers <= 1
        or len(ids) <= options.chunk_size
        or target is None
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        decider = ChunkDecider(context)
        yield ((len(chunk), decider.decide_chunk(store, chunk)) for chunk in chunks)
        return
    zip_states()  # loaded once, here, for every worker
    store.engine.dispose()  # no open SQLite connection crosses the fork
    _FORK_CONTEXT = context
    # What the workers inherit is never collected there: a full collection would walk it
    # and so copy every page of it into each worker (copy-on-write).
    gc.freeze()
    pool = ProcessPoolExecutor(
        max_workers=options.workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_worker,
        initargs=(target,),
    )
    try:
        yield _in_order(pool, chunks, ahead=2 * options.workers)
    finally:
        # On an error or Ctrl-C: drop the chunks not started, wait for the
        # running ones (workers ignore Ctrl-C), then let the run record it.
        pool.shutdown(wait=True, cancel_futures=True)
        _FORK_CONTEXT = None
        gc.unfreeze()


def chunked(ids: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _start_worker(target: str) -> None:
    """A worker's start: its own connections; Ctrl-C is the main process's to handle."""
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    end_with_parent(exit_code=1)
    assert _FORK_CONTEXT is not None, "sweep workers need the 'fork' start method"
    _worker = (ChunkDecider(_FORK_CONTEXT), open_store(target))


def _decide_in_worker(ids: Sequence[int]) -> ChunkResult:
    assert _worker is not None
    decider, store = _worker
    return decider.decide_chunk(store, ids)


def _in_order(
    pool: ProcessPoolExecutor, chunks: Iterator[Sequence[int]], ahead: int
) -> Iterator[tuple[int, ChunkResult]]:
    """(size, result) of each chunk, in chunk order; at most ``ahead`` chunks in flight."""
    pending: deque[tuple[int, Future[ChunkResult]]] = deque()
    for chunk in chunks:
        pending.append((len(chunk), pool.submit(_decide_in_worker, chunk)))
        if len(pending) >= ahead:
            n, future = pending.popleft()
            yield n, future.result()
    while pending:
        n, future = pending.popleft()
        yield n, future.result()
