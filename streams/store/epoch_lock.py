"""Sweeps and the agents' batches take turns on a PostgreSQL database (issue 16).

One worker already takes them in turn: its single database process runs a batch
or the sweep, never both.  Several workers on one PostgreSQL database must keep
that, or a sweep that read a contact before another worker's batch changed it
would write its older decision over the batch's, and a batch deciding as of the
old decision day would mix its rows into the sweep's (``streams.store.epochs``).

So every batch transaction first takes a PostgreSQL advisory lock in shared mode
(``batch_turn``: batches on different workers run side by side, as their
partitions' contacts never overlap), and a sweep holds the same lock exclusively
from before it reads the applied offsets to after its checkpoint and epoch switch
are committed (``sweep_turn``, on a session of its own).  A batch arriving during
a sweep waits, then decides as of the new day: the result is the serial order
"batches committed before the sweep, the sweep, the batches after", the order a
single worker gives and ``mailwindow replay`` rebuilds (tested in
``tests/postgres/test_sweep_beside_agents.py``).

The price: the agents of every worker pause while the sweep runs (the daily
sweep at 03:30, a few seconds on a next day, up to the first sweep's minutes);
their events wait on their topics, none is lost.  Choice written down: a
finer scheme (per-contact locks with a retry of the contacts that changed under
the sweep) would let agents go on, but a contact decided by a batch as of the
old day in the middle of the sweep's run would leave rows no serial order gives.

A sweep waits at most ``SWEEP_LOCK_WAIT_S`` for the lock (batches hold it for
their transaction only; another sweep holds it for its run) and then gives up
naming who may hold it.  A dead session's locks go with it: a SIGKILLed sweep
blocks nobody.  SQLite needs none of this: one worker per file, and SQLite's own
write lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from streams.store.engine import Store, StoreError

# An advisory lock key of the scheduler's own ("mwsweep" in ASCII), one per database
# (PostgreSQL's advisory locks are per database, so agencies never share one).
EPOCH_LOCK_KEY = 0x6D7773776565_70
SWEEP_LOCK_WAIT_S = 300


def batch_turn(conn: Connection) -> None:
    """At the start of a batch's transaction: wait while a sweep runs (PostgreSQL only)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": EPOCH_LOCK_KEY})


@contextmanager
def sweep_turn(store: Store, wait_s: float = SWEEP_LOCK_WAIT_S) -> Iterator[None]:
    """The sweep's turn: no batch of any worker runs until the block ends (PostgreSQL only)."""
    if store.is_sqlite:
        yield
        return
    with store.engine.connect() as conn:  # a session of its own: the lock spans the run's transactions
        conn.execute(text(f"SET lock_timeout = '{int(wait_s * 1000)}ms'"))
        try:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": EPOCH_LOCK_KEY})
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
                raise
            raise StoreError(
                f"{store.target}: waited {wait_s:.0f} s for the sweep's turn (advisory lock "
                f"{EPOCH_LOCK_KEY}): another sweep is running, or a batch transaction is stuck "
                "(see pg_locks)"
            ) from None
        conn.commit()  # the session keeps the lock; no transaction stays open for the run
        try:
            yield
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": EPOCH_LOCK_KEY})
                conn.commit()
            except Exception:  # noqa: BLE001 - the connection's end releases it anyway
                conn.invalidate()
