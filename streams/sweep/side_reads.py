"""What a run reads beside its work: unless the run builds on the last one, the invalid
contacts (``streams.sweep.valid_contacts``), in a process of their own.

They take a read of the whole agency (about 2.5 us a contact); read in line they
were a large part of a run that decides little.  The side process takes its read
snapshot before the run's first write (the run waits for that), so it sees the
contacts as they were before the run, as when read in line; the run takes the
figures when it balances, and by then they are mostly ready.  (The checksum before
the run was read here too, until it was kept up to date instead:
``streams.store.checksum.kept_checksum``.)

Where no other process can open the database (an in-memory SQLite database) or
fork is missing, or the agency is small enough that starting a process costs more
than it saves (under ``SIDE_PROCESS_FROM`` contacts), they are read in line, at once.
"""

from __future__ import annotations

import multiprocessing
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe
from typing import Any

from sqlalchemy import Connection

from streams.store.engine import Store, open_store
from streams.sweep.prefilter import invalid_contact_ids
from streams.sweep.summary import SweepError
from streams.watchdog import end_with_parent

# Contacts from which the reads go to a process of their own: they cost about 2.5 us a
# contact (measured at 1M), so about 0.05 s at 20,000, what starting a process costs.
SIDE_PROCESS_FROM = 20_000


@dataclass(frozen=True)
class SideFigures:
    invalid_contacts: list[int] | None  # when asked: every invalid contact (a usable id)


class SideReads:
    """The figures, read in a side process started by ``start`` (or in line)."""

    def __init__(self, figures: SideFigures | None, process: Any = None, pipe: Pipe | None = None) -> None:
        self._figures = figures
        self._process = process
        self._pipe = pipe

    @classmethod
    def start(cls, store: Store, find_invalid: bool, contacts: int) -> SideReads:
        """Reads under way from a snapshot taken now: the run may write once this returns.
        ``contacts``: how many the agency has."""
        if not find_invalid:
            return cls(SideFigures(None))
        target = store.reopen_target()
        if target is None or contacts < SIDE_PROCESS_FROM or "fork" not in multiprocessing.get_all_start_methods():
            with store.engine.connect() as conn:
                return cls(_read(conn))
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        store.engine.dispose()  # no open SQLite connection crosses the fork
        process = context.Process(target=_side_process, args=(target, send), name="sweep-side-reads", daemon=True)
        process.start()
        send.close()
        side = cls(None, process, receive)
        side._receive("pinned")
        return side

    def figures(self) -> SideFigures:
        """The figures, once read (waits for the side process)."""
        if self._figures is None:
            self._figures = self._receive("figures")
            self.close()
        return self._figures

    def close(self) -> None:
        """The side process ended (a run that fails does not wait for its figures)."""
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join()
            self._process = None
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None

    def _receive(self, expected: str) -> Any:
        assert self._pipe is not None
        try:
            kind, value = self._pipe.recv()
        except EOFError:
            self.close()
            raise SweepError("the sweep's side read (invalid contacts) stopped without an answer") from None
        if kind == "error":
            self.close()
            raise SweepError(f"reading the invalid contacts failed: {value}")
        assert kind == expected, (kind, expected)
        return value


def _read(conn: Connection) -> SideFigures:
    return SideFigures(invalid_contact_ids(conn))


def _side_process(target: str, send: Pipe) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle
    end_with_parent(exit_code=1)
    try:
        store = open_store(target)
        with store.engine.connect() as conn:
            if conn.dialect.name != "sqlite":
                # One snapshot for every statement of the transaction.
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                # SQLite's snapshot starts with the transaction's first read of the file.
                conn.exec_driver_sql("SELECT count(*) FROM (SELECT 1 FROM email_schedules LIMIT 1) AS pin").scalar_one()
                send.send(("pinned", None))
                figures = _read(conn)
        store.close()
        send.send(("figures", figures))
    except BaseException as exc:  # noqa: BLE001 - told to the run, which reports it
        send.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        send.close()
