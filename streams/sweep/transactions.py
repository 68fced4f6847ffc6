"""The sweep's write transactions: each takes the write lock at its start, lets Ctrl-C
take effect at its end, and is tried again while another program holds the lock.

Every write transaction of a sweep begins IMMEDIATE on SQLite (issue 11): one
that reads first would ask for the lock midway, and SQLite in WAL mode then
fails at once instead of waiting the busy timeout (waiting could deadlock two
such transactions), so a program holding the database for a few seconds
stopped the sweep.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TypeVar

from sqlalchemy import Connection

from streams.store.engine import Store, run_with_retry

T = TypeVar("T")


def write_transaction(
    store: Store, work: Callable[[Connection], T], *, defer_ctrl_c: bool = True
) -> T:
    """``work`` in one write transaction (the lock first), again while the database is locked.

    ``defer_ctrl_c``: a Ctrl-C during the transaction takes effect when it ends
    (``ctrl_c_deferred``); a checkpoint's own writes do without, since one is
    what records a Ctrl-C.
    """

    def attempt() -> T:
        with ctrl_c_deferred() if defer_ctrl_c else nullcontext(), _writing(store) as conn:
            return work(conn)

    return run_with_retry(attempt)


@contextmanager
def _writing(store: Store) -> Iterator[Connection]:
    """A transaction that takes the write lock at its BEGIN (IMMEDIATE on SQLite)."""
    with store.engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn


@contextmanager
def ctrl_c_deferred() -> Iterator[None]:
    """Ctrl-C during the block takes effect when it ends.

    For write transactions: a KeyboardInterrupt inside the driver's executemany
    leaves the SQLite connection unable to close while the traceback holds its
    cursor, so its write lock would block the run's own failed checkpoint.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield  # Ctrl-C is not ours to handle here
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt
