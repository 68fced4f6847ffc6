"""Phase 3's rows, made by a forked process while this one writes them.

After balancing, the main process writes every newly placed email.  Making a row (its
key, dates as text, note, the comparison with a stored row) is Python; inserting it is
SQLite.  Both ran on one core while the other waited: at 3M contacts in the AEP season
the writes took 31 s, of which making the rows about 7.5 s.  A thread cannot share that
work (SQLite lets go of the interpreter while it inserts, but a busy thread then keeps
the interpreter from the writer: measured, inserts became 2 to 20 times slower).

So a run with many movables forks a process that makes the batches and sends them,
pickled, through a pipe; the main process counts them into the summary and writes
them, in the same order as when it made them itself (``batches``' result is the same
either way; tests/streams/sweep/test_row_maker.py).  The fork inherits the movables
(copy-on-write), never a database connection (the engine's pool is emptied first, as
for the decide workers), and ends with its parent.  If it fails, the run fails with
its message: the batches written so far are whole transactions, and the run's
checkpoint is not completed (a rerun decides afresh).
"""

from __future__ import annotations

import gc
import multiprocessing
import pickle
import signal
from collections.abc import Iterator
from multiprocessing.connection import Connection as Pipe
from typing import NamedTuple

from rules.frequency_limit import FREQUENCY_LIMIT_REASON
from rules.statuses import PRE_SCHEDULED, SKIPPED
from streams.store.engine import Store
from streams.store.own_inserts import Summed, inserts_sum
from streams.store.schedules import WriteBatch, stage_values
from streams.sweep.movables import Movables
from streams.watchdog import end_with_parent


class MadeBatch(NamedTuple):
    """A batch of rows to write, and what the summary counts of it."""

    batch: WriteBatch
    outcomes: dict[str, int]  # 'inserted', 'updated', 'unchanged' -> rows
    per_type: dict[tuple[str, str], int]  # (email type, status) -> emails, first seen first
    # What its inserts add to the checksum's sum, when asked (streams.store.own_inserts)
    inserted_sum: Summed | None = None


class RowMaker:
    """The balanced emails as batches of ``batch_rows``; those in ``skipped`` as skipped."""

    def __init__(
        self,
        movables: Movables,
        skipped: set[int],
        send_time: str,
        run_id: str,
        batch_rows: int,
        sum_inserts: bool = False,
    ) -> None:
        self.movables, self.skipped = movables, skipped
        self.send_time, self.run_id, self.batch_rows = send_time, run_id, batch_rows
        self.sum_inserts = sum_inserts  # each batch with its ``inserted_sum``

    def batches(self, store: Store, apart_from: int) -> Iterator[MadeBatch]:
        """Made here, or by a forked process when there are at least ``apart_from`` emails."""
        if len(self.movables) < apart_from or "fork" not in multiprocessing.get_all_start_methods():
            yield from self.made()
            return
        store.engine.dispose()  # no open SQLite connection crosses the fork
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=self._make_apart, args=(send,), name="phase 3 rows", daemon=True)
        process.start()
        send.close()
        try:
            while True:
                try:
                    item = pickle.loads(receive.recv_bytes())
                except EOFError:
                    process.join()
                    raise RuntimeError(
                        f"the process making phase 3's rows ended before its last batch (exit code {process.exitcode})"
                    ) from None
                if item is None:
                    return
                if isinstance(item, str):
                    raise RuntimeError(f"making phase 3's rows failed: {item}")
                yield item
        finally:
            receive.close()
            if process.is_alive():
                process.terminate()
            process.join()

    def made(self) -> Iterator[MadeBatch]:
        m, skipped, send_time, run_id = self.movables, self.skipped, self.send_time, self.run_id
        made = MadeBatch(WriteBatch.empty(), {}, {})
        for i in range(len(m)):
            status, reason = (SKIPPED, FREQUENCY_LIMIT_REASON) if i in skipped else (PRE_SCHEDULED, None)
            row = m.row(i, send_time, run_id, status, reason)
            outcome = stage_values(made.batch, row, m.existing[i], m.stored.get(i))
            made.outcomes[outcome] = made.outcomes.get(outcome, 0) + 1
            key = (m.email_type(i), status)
            made.per_type[key] = made.per_type.get(key, 0) + 1
            if len(made.batch) >= self.batch_rows:
                yield self._summed(made)
                made = MadeBatch(WriteBatch.empty(), {}, {})
        yield self._summed(made)

    def _summed(self, made: MadeBatch) -> MadeBatch:
        if not self.sum_inserts:
            return made
        return made._replace(inserted_sum=inserts_sum(made.batch.inserts))

    def _make_apart(self, send: Pipe) -> None:
        """The forked process: every batch down the pipe, then None (or the error's text)."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
        end_with_parent(exit_code=1)
        gc.disable()  # rows hold no cycles; a collection would copy the inherited heap
        try:
            for made in self.made():
                # Plain tuples: a named tuple is rebuilt through its class when unpickled.
                batch = made.batch
                plain = WriteBatch(
                    [tuple(r) for r in batch.inserts],  # type: ignore[misc]
                    [(row_id, tuple(v)) for row_id, v in batch.updates],  # type: ignore[misc]
                    batch.deletes,
                )
                send.send_bytes(pickle.dumps(made._replace(batch=plain), pickle.HIGHEST_PROTOCOL))
            send.send_bytes(pickle.dumps(None))
        except BaseException as exc:  # noqa: BLE001 - handed to the parent, which raises it
            send.send_bytes(pickle.dumps(f"{type(exc).__name__}: {exc}"))
        finally:
            send.close()
