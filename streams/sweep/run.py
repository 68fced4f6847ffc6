"""The periodic sweep (SPEC section 9): pre-filter, per-contact rules, load
balancing, batch writes, checkpoint.

Phases, each bounded in memory:
1. for the pre-filtered contacts, a chunk at a time: read contacts and their
   rows, decide each contact (``rules.contact_schedule``), write at once what
   cannot move (kept placements, skips, deletes), and keep the newly placed
   emails in compact arrays;
2. balance the newly placed emails across contacts (``rules.load_balancing``)
   and apply the frequency limit to the few contacts where it can bind;
3. write the newly placed emails in batches.

Phase 1 decides chunks in worker processes (``SweepOptions.workers``, 'fork'
start method) when there are several chunks: each worker reads its chunks
over its own connection and returns plain values; the main process applies
them in chunk order and does every write, so the result, the counters and
the summary are those of a run in one process.

Every batch is one transaction.  A run that stops half way leaves whole
batches; its placements are not "kept" by the next run (its checkpoint is
not ``completed``), so the rerun decides as an uninterrupted run would have.

Checkpoints and failures (choices the SPEC leaves open, issue 11):

- **Is a ``started`` run still alive?**  Its checkpoint records the pid, the
  process's start (``process_start``: the boot id and field 22 of
  ``/proc/<pid>/stat``) and the host.  On the same host the run is alive only
  while that pid exists *and* started at that moment: a pid the system has
  since given to another process no longer blocks sweeps.  On another host
  (no way to look at its processes) the run is alive while its heartbeat is
  younger than ``STALE_HEARTBEAT_S`` (10 minutes).  A run heartbeats with
  every batch it writes, after each chunk decided and after each phase, at
  most every ``HEARTBEAT_EVERY_S`` (30 s) when nothing else wrote; the
  longest gap is one phase without chunks (the pre-filter, balancing or the
  final checksum), a part of a sweep, and the limit is longer than the
  longest whole sweep measured (491 s: 3M contacts in AEP season, README),
  with room left for clocks of hosts that disagree by a minute or two.  A
  checkpoint written by an older version (no process start) counts as
  alive on the same host while its pid exists and its heartbeat is younger
  than the limit.  The checkpoint of this very process (same pid and start)
  is not alive: a process runs one sweep at a time.  A run that is not
  alive is marked ``failed`` ("interrupted: ...") by the next run.
- **``SweepOptions.take_over``** (``--take-over``): the operator's override
  when a run is wrongly believed alive (a host that no longer exists, a
  clock far ahead): every ``started`` checkpoint is marked ``failed``
  ("taken over by an operator") and the sweep proceeds.  The operator
  answers for no other sweep of the database running then: the rows stay
  correct (keys are unique and each batch is a transaction), but two live
  sweeps would balance the same days twice.
- **The write lock first.**  Every write transaction of a sweep begins
  IMMEDIATE on SQLite: one that reads first would ask for the lock midway,
  and SQLite in WAL mode then fails at once instead of waiting the busy
  timeout, so a program holding the database for a few seconds stopped the
  sweep.
- **One line for what a user can cause.**  A full disk, a lock held past the
  retries or another operational database error ends as a
  ``SweepDatabaseError`` naming the database and the run (still an
  ``OperationalError``, so the stream worker waits for the database and
  tries again as before); a decide worker process that dies (the OOM
  killer) ends as a ``SweepError``.  The run is marked ``failed`` when the
  database still takes that write; otherwise it stays ``started`` and the
  next run marks it interrupted.  Either way the next sweep completes the
  job (SPEC section 9).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import socket
import threading
import time
import uuid
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, OperationalError

from rules.bounds import excerpt
from rules.campaign import (
    EMPTY_BOOK,
    CampaignBook,
    CampaignTarget,
    instance_problems,
    written_targets,
)
from rules.catch_up import stable_hash
from rules.config import EFFECTIVE_DATE, Config
from rules.contact import Contact, ContactRecord, validate_contact
from rules.contact_schedule import Decision, ExistingRow, schedule_contact
from rules.exclusion_window import contact_windows
from rules.followup import NO_BEHAVIOUR, Behaviour
from rules.frequency_limit import FREQUENCY_LIMIT_REASON, NewEmail, could_break, frequency_skips
from rules.load_balancing import (
    FLAG_AEP,
    FLAG_CATCH_UP,
    FLAG_EFFECTIVE_DATE,
    FLAG_KEPT,
    MOVED_DAILY_CAP,
    MOVED_SMOOTHING,
    NewPlacements,
    apply_daily_cap,
    daily_cap,
    ed_daily_limit,
    smooth_effective_dates,
)
from rules.occurrence import AEP
from rules.placement import Horizon
from rules.prefilter import prefilter_plan
from rules.statuses import PRE_SCHEDULED, SKIPPED
from rules.zip_state import USPS_CODES, zip_states
from streams.events.codec import SWEEP_RUNS, format_datetime
from streams.store import outbox
from streams.store.campaigns import (
    behaviour_since,
    campaign_candidate_ids,
    fetch_behaviour,
    fetch_targets,
    load_campaign_book,
    write_target_statuses,
)
from streams.store.checksum import schedule_checksum
from streams.store.engine import (
    Store,
    error_line,
    flag_set_sql,
    is_disk_full,
    is_lock_error,
    open_store,
    run_with_retry,
)
from streams.store.epochs import fetch_full_rows, start_epoch
from streams.store.schedules import (
    DECISION_COLUMNS,
    ContactFields,
    RowValues,
    StoredRow,
    WriteBatch,
    fetch_contact_fields,
    fetch_rows_reported,
    placed_values,
    row_values,
    rows_by_id,
    stage_values,
    stage_write,
    write_batch,
)
from streams.sweep.prefilter import (
    all_contact_ids,
    candidate_contact_ids,
    count_valid_contacts,
    followup_candidate_ids,
    unusable_contacts,
)
from streams.watchdog import end_with_parent
from streams.worker.ingest import applied_offsets, apply_status_facts, status_facts_of

EXAMPLES_KEPT = 20
_CATCHUP_NOTE = DECISION_COLUMNS.index("catchup_note")
_PLACED_RUN = DECISION_COLUMNS.index("placed_run_id")
_STATES = sorted(USPS_CODES)
_STATE_INDEX = {s: i for i, s in enumerate(_STATES)}


class SweepError(RuntimeError):
    """A sweep that cannot start or finish; the message says why."""


class SweepDatabaseError(SweepError, OperationalError):
    """A sweep its database stopped (a full disk, a lock held too long, ...), in one line.

    Also an ``OperationalError``: callers that wait for the database and try
    again (``streams.worker.database_process``) go on doing so.
    """

    def __init__(self, message: str, cause: DBAPIError | None = None) -> None:
        OperationalError.__init__(
            self,
            cause.statement if cause is not None else None,
            None,
            cause.orig if cause is not None else None,  # type: ignore[arg-type]
            hide_parameters=True,
        )
        self.message = message
        self.args = (message,)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # The one line crosses a process boundary; the driver's error need not.
        return (type(self), (self.message,))


def default_workers() -> int:
    return min(2, os.cpu_count() or 1)


@dataclass(frozen=True)
class SweepOptions:
    as_of: date
    lookahead_days: int = 30
    lookback_days: int = 7
    full_scan: bool = False
    chunk_size: int = 1000
    batch_rows: int = 20000
    # Processes deciding chunks (phase 1); 1 decides in this process.  The
    # result is the same for any number.
    workers: int = field(default_factory=default_workers)
    # Decide only these contacts (``mailwindow campaign ... --apply``): the
    # rules are the same, only the set of contacts processed is narrower.
    contact_ids: tuple[int, ...] | None = None
    # The operator's override (``--take-over``): every ``started`` checkpoint is
    # marked failed, alive or not (module docstring).
    take_over: bool = False

    @property
    def horizon(self) -> Horizon:
        return Horizon(self.as_of, self.lookahead_days, self.lookback_days)


@dataclass
class SweepSummary:
    run_id: str
    as_of: str
    full_scan: bool = False
    prefilter: str = ""
    contacts_scanned: int = 0
    contacts_processed: int = 0
    contacts_invalid: int = 0
    emails_scheduled: int = 0
    emails_skipped: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_deleted: int = 0
    moved_by_smoothing: int = 0
    moved_by_daily_cap: int = 0
    skipped_by_frequency_limit: int = 0
    campaign_targets_updated: int = 0
    valid_contacts: int = 0
    daily_cap: int = 0
    per_type: dict[str, dict[str, int]] = field(default_factory=dict)
    invalid_examples: list[dict[str, object]] = field(default_factory=list)
    warnings: int = 0
    warning_examples: list[str] = field(default_factory=list)
    contacts_checksum: str = ""
    schedules_before_checksum: str = ""
    schedules_after_checksum: str = ""
    elapsed_s: float = 0.0
    phase_s: dict[str, float] = field(default_factory=dict)
    status: str = "started"
    partial: bool = False  # only the contacts the caller named (no new decision day)

    def count(self, email_type: str, status: str, n: int = 1) -> None:
        t = self.per_type.get(email_type)
        if t is None:
            t = self.per_type[email_type] = {PRE_SCHEDULED: 0, SKIPPED: 0}
        t[status] = t.get(status, 0) + n
        if status == PRE_SCHEDULED:
            self.emails_scheduled += n
        else:
            self.emails_skipped += n

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


# _Movables.packed(): placement arrays, column arrays, profile numbers and
# profiles, suffix numbers and suffixes, stored values by index.
PackedMovables = tuple[
    tuple[array, ...],
    tuple[array, ...],
    array,
    list[tuple[object, ...]],
    array,
    list[str],
    dict[int, RowValues],
]


class _Movables:
    """Newly placed emails kept in arrays until balanced (phase 2), then written."""

    def __init__(self) -> None:
        self.p = NewPlacements()
        self.contact = array("q")
        self.existing = array("q")  # row id to update, 0 to insert
        self.profile = array("H")
        self.suffix = array("I")
        self.state = array("B")
        self.birth = array("i")  # ordinals, 0 when missing
        self.effective = array("i")
        self.profiles: dict[tuple[object, ...], int] = {}
        self.profile_list: list[tuple[object, ...]] = []
        self.suffixes: dict[str, int] = {}
        self.suffix_list: list[str] = []
        # Stored values of the existing rows of movables, for no-op checks.
        self.stored: dict[int, RowValues] = {}

    def __len__(self) -> int:
        return len(self.p)

    def _profile_index(self, profile: tuple[object, ...]) -> int:
        pi = self.profiles.get(profile)
        if pi is None:
            pi = self.profiles[profile] = len(self.profile_list)
            self.profile_list.append(profile)
        return pi

    def _suffix_index(self, suffix: str) -> int:
        si = self.suffixes.get(suffix)
        if si is None:
            si = self.suffixes[suffix] = len(self.suffix_list)
            self.suffix_list.append(suffix)
        return si

    def add(self, contact: Contact, d: Decision, stored: RowValues | None) -> int:
        occ = d.occurrence
        pi = self._profile_index(
            (occ.email_type, occ.priority, occ.email_template, occ.sms_template, occ.campaign_instance_id)
        )
        si = self._suffix_index(occ.key[len(str(contact.id)) :])
        flags = (
            (FLAG_CATCH_UP if d.catch_up else 0)
            | (FLAG_EFFECTIVE_DATE if occ.email_type == EFFECTIVE_DATE else 0)
            | (FLAG_AEP if occ.email_type == AEP else 0)
            | (FLAG_KEPT if d.kept else 0)
        )
        i = self.p.add(
            d.send_date.toordinal(),
            occ.ideal_send_date.toordinal(),
            occ.event_date.toordinal(),
            occ.priority,
            stable_hash(occ.key),
            flags,
        )
        self.contact.append(contact.id)
        self.existing.append(d.existing_row_id or 0)
        self.profile.append(pi)
        self.suffix.append(si)
        self.state.append(_STATE_INDEX[contact.state])
        self.birth.append(contact.birth_date.toordinal() if contact.birth_date else 0)
        self.effective.append(contact.effective_date.toordinal() if contact.effective_date else 0)
        if stored is not None:
            self.stored[i] = stored
        return i

    _COLUMNS = ("contact", "existing", "state", "birth", "effective")

    def packed(self) -> PackedMovables:
        """These emails as plain values (arrays, lists), for ``extend`` in another process."""
        return (
            tuple(getattr(self.p, f.name) for f in fields(NewPlacements)),
            tuple(getattr(self, name) for name in self._COLUMNS),
            self.profile,
            self.profile_list,
            self.suffix,
            self.suffix_list,
            self.stored,
        )

    def extend(self, packed: PackedMovables) -> int:
        """Append the emails of another ``_Movables.packed()``; returns the index of the first."""
        placements, columns, profile, profile_list, suffix, suffix_list, stored = packed
        first = len(self.p)
        for f, placement_array in zip(fields(NewPlacements), placements, strict=True):
            getattr(self.p, f.name).extend(placement_array)
        for name, column in zip(self._COLUMNS, columns, strict=True):
            getattr(self, name).extend(column)
        # Their profile and suffix numbers are theirs: renumber into ours.
        profiles = [self._profile_index(x) for x in profile_list]
        self.profile.extend(array("H", [profiles[i] for i in profile]))
        suffixes = [self._suffix_index(x) for x in suffix_list]
        self.suffix.extend(array("I", [suffixes[i] for i in suffix]))
        for i, values in stored.items():
            self.stored[first + i] = values
        return first

    def key(self, i: int) -> str:
        return f"{self.contact[i]}{self.suffix_list[self.suffix[i]]}"

    def excluded_fn(self, config: Config) -> Callable[[int, int], bool]:
        def excluded(i: int, day: int) -> bool:
            b, e = self.birth[i], self.effective[i]
            windows = contact_windows(
                _STATES[self.state[i]],
                date.fromordinal(b) if b else None,
                date.fromordinal(e) if e else None,
                config,
            )
            return windows.exclusion_on(date.fromordinal(day)) is not None

        return excluded


def _note(m: _Movables, i: int) -> str | None:
    p = m.p
    moved = p.moved[i]
    ideal = date.fromordinal(p.ideal[i])
    placed = date.fromordinal(p.dates[i])
    if moved == MOVED_SMOOTHING:
        return f"moved by effective-date smoothing: ideal {ideal}, placed {placed}"
    if moved == MOVED_DAILY_CAP:
        return f"moved by daily cap: ideal {ideal}, placed {placed}"
    if p.flags[i] & FLAG_CATCH_UP:
        return f"catch-up: ideal {ideal}, placed {placed}"
    return None


def _movable_values(
    m: _Movables, i: int, send_time: str, run_id: str, status: str, skip_reason: str | None
) -> RowValues:
    email_type, priority, email_tpl, sms_tpl, instance = m.profile_list[m.profile[i]]
    note, placed_run = _note(m, i), run_id
    stored = m.stored.get(i)
    if m.p.flags[i] & FLAG_KEPT and stored is not None:
        # A kept placement (here only for the frequency limit) keeps its origin.
        note = stored[_CATCHUP_NOTE]  # type: ignore[assignment]
        placed_run = stored[_PLACED_RUN]  # type: ignore[assignment]
    return row_values(
        contact_id=m.contact[i],
        email_type=str(email_type),
        send_date=date.fromordinal(m.p.dates[i]),
        send_time=send_time,
        status=status,
        skip_reason=skip_reason,
        event_date=date.fromordinal(m.p.events[i]),
        catchup_note=note,
        priority=int(priority),  # type: ignore[call-overload]
        campaign_instance_id=instance,  # type: ignore[arg-type]
        email_template=email_tpl,  # type: ignore[arg-type]
        sms_template=sms_tpl,  # type: ignore[arg-type]
        metadata=None,
        key=m.key(i),
        ideal_send_date=date.fromordinal(m.p.ideal[i]),
        placed_run_id=placed_run,
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


# A run on another host is alive while its heartbeat is younger than this; a run
# heartbeats at least every HEARTBEAT_EVERY_S while it works (module docstring).
STALE_HEARTBEAT_S = 600
HEARTBEAT_EVERY_S = 30

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_HAVE_PROC = Path("/proc/self/stat").exists()


def process_start(pid: int) -> str | None:
    """When process ``pid`` started: ``"<boot id>:<clock ticks since boot>"``.

    Linux: field 22 of ``/proc/<pid>/stat``; the boot id tells two boots apart.
    None when no such process runs (a zombie has ended) or there is no /proc.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = _BOOT_ID.read_text().strip()
    except OSError:
        return None
    # Field 2, the command name, may hold spaces and parentheses: count from its end.
    fields = stat[stat.rfind(")") + 1 :].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # fields[0] is field 3, the state
        return None
    return f"{boot}:{fields[19]}"


def _heartbeat_age_s(heartbeat: object, now: datetime) -> float | None:
    try:
        last = datetime.strptime(str(heartbeat), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return (now - last).total_seconds()


def _as_pid(value: object) -> int | None:
    """A stored pid; None for anything else (another program may have written the row)."""
    try:
        pid = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return pid if pid > 0 else None


def run_alive(pid: int | None, pid_started: str | None, host: str | None, heartbeat: object) -> bool:
    """Whether the run a ``started`` checkpoint records may still be running (module docstring)."""
    age = _heartbeat_age_s(heartbeat, datetime.now(UTC))
    fresh = age is not None and age < STALE_HEARTBEAT_S
    if host != socket.gethostname() or pid is None:
        return fresh
    if pid == os.getpid() and (pid_started is None or pid_started == process_start(pid)):
        return False  # this process, starting a sweep: its earlier run stopped
    if pid_started is not None and _HAVE_PROC:
        return process_start(pid) == pid_started
    # Recorded by an older version (or no /proc): the pid may be another process by now.
    return _pid_alive(pid) and fresh


def mark_interrupted_runs(conn: Connection, *, take_over: bool = False, database: str = "") -> list[str]:
    """Mark ``started`` checkpoints of runs that are no longer alive as failed.

    Alive: ``run_alive``.  Raises SweepError when a live sweep is still
    running, unless ``take_over``: then every ``started`` checkpoint is
    marked failed ("taken over by an operator").
    """
    marked: list[str] = []
    rows = conn.execute(
        text(
            "SELECT scheduler_run_id, pid, pid_started, host, heartbeat_at FROM scheduler_checkpoints "
            "WHERE status = 'started'"
        )
    ).all()
    for run_id, pid, pid_started, run_host, heartbeat in rows:
        if take_over:
            error = "taken over by an operator"
        elif run_alive(
            _as_pid(pid),
            None if pid_started is None else str(pid_started),
            None if run_host is None else str(run_host),
            heartbeat,
        ):
            where = f" on {database}" if database else ""
            raise SweepError(
                f"another sweep is running{where}: run {excerpt(run_id)} (pid {pid} on "
                f"{excerpt(run_host)}, last heartbeat {excerpt(heartbeat)} UTC); "
                "if it is not, run the sweep with --take-over"
            )
        else:
            error = "interrupted: the run stopped without finishing"
        conn.execute(
            text(
                "UPDATE scheduler_checkpoints SET status = 'failed', error_message = :err, "
                "completed_at = :now WHERE scheduler_run_id = :run_id AND status = 'started'"
            ),
            {"err": error, "now": _now(), "run_id": run_id},
        )
        marked.append(str(run_id))
    return marked


def owed_sweep(conn: Connection) -> date | None:
    """The as-of date of the latest full sweep when it did not complete (a worker owes it).

    A worker runs it again before anything else: the rows it wrote in part
    would otherwise stay beside decisions replay makes without them.
    """
    row = conn.execute(
        text("SELECT as_of, status, summary FROM scheduler_checkpoints ORDER BY id DESC LIMIT 1")
    ).first()
    if row is None or row[1] == "completed" or row[0] is None:
        return None
    try:
        partial = bool(orjson.loads(row[2] or "{}").get("partial", False))
    except orjson.JSONDecodeError:
        partial = False
    return None if partial else date.fromisoformat(str(row[0]))


def unfinished_runs(conn: Connection) -> frozenset[str]:
    return frozenset(
        str(r[0])
        for r in conn.execute(
            text("SELECT scheduler_run_id FROM scheduler_checkpoints WHERE status != 'completed'")
        )
    )


def _day_volumes(conn: Connection, as_of: date) -> tuple[dict[int, int], dict[int, int]]:
    """Per day from ``T`` on: rows that count toward volume (follow-ups excluded), and ED rows."""
    volume: dict[int, int] = {}
    ed_volume: dict[int, int] = {}
    rows = conn.execute(
        text(
            "SELECT scheduled_send_date, lower(email_type) = 'effective_date', count(*) "
            "FROM email_schedules WHERE scheduled_send_date >= :t "
            "AND (status = 'pre-scheduled' OR lower(status) IN "
            "('scheduled', 'processing', 'sent', 'delivered', 'accepted')) "
            "AND lower(email_type) NOT LIKE 'followup%' GROUP BY 1, 2"
        ),
        {"t": as_of.isoformat()},
    )
    for day_text, is_ed, n in rows:
        try:
            day = date.fromisoformat(str(day_text)[:10]).toordinal()
        except ValueError:
            continue
        volume[day] = volume.get(day, 0) + int(n)
        if is_ed:
            ed_volume[day] = ed_volume.get(day, 0) + int(n)
    return volume, ed_volume


def _chunks(ids: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


# -- phase 1: deciding chunks of contacts ---------------------------------------


class ChunkResult(NamedTuple):
    """A chunk's decisions as plain values: what the main process applies, in chunk order."""

    contacts: int
    contacts_json: bytes  # one JSON array per contact read, in id order (contacts checksum)
    invalid: int
    invalid_examples: list[tuple[int, tuple[str, ...]]]
    warnings: int
    warning_examples: list[str]
    inserts: list[RowValues]  # rows that cannot move: kept placements, skips
    updates: list[tuple[int, RowValues]]
    deletes: list[int]
    unchanged: int
    counts: dict[tuple[str, str], int]  # (email type, status) -> emails, first seen first
    volume: dict[int, int]  # day ordinal -> change of the day's volume
    ed_volume: dict[int, int]
    movables: PackedMovables  # the newly placed emails
    # (contact, its fixed counted dates, its movables as indices into this chunk's)
    frequency_watch: list[tuple[int, tuple[date, ...], list[int]]]
    # (contact_campaigns id, occurrence key) of the targets decided: statuses written back
    campaign_targets: list[tuple[int, str]]


@dataclass(frozen=True)
class _DecideContext:
    """What deciding a chunk needs, the same in the main process and in every worker."""

    config: Config
    horizon: Horizon
    failed_runs: frozenset[str]
    run_id: str
    campaigns: CampaignBook = EMPTY_BOOK


class _Chunk:
    """A chunk's outcome while its contacts are decided one by one."""

    def __init__(self) -> None:
        self.invalid = 0
        self.invalid_examples: list[tuple[int, tuple[str, ...]]] = []
        self.warnings = 0
        self.warning_examples: list[str] = []
        self.batch = WriteBatch.empty()
        self.unchanged = 0
        self.counts: dict[tuple[str, str], int] = {}
        self.volume: dict[int, int] = {}
        self.ed_volume: dict[int, int] = {}
        self.movables = _Movables()
        self.frequency_watch: list[tuple[int, tuple[date, ...], list[int]]] = []
        self.campaign_targets: list[tuple[int, str]] = []

    def count_day(self, day: date, email_type: str, change: int) -> None:
        d = day.toordinal()
        self.volume[d] = self.volume.get(d, 0) + change
        if email_type == EFFECTIVE_DATE:
            self.ed_volume[d] = self.ed_volume.get(d, 0) + change


class _ChunkDecider:
    """Runs the per-contact rules for chunks of contacts (in the main process or a worker)."""

    def __init__(self, context: _DecideContext) -> None:
        self.config = context.config
        self.horizon = context.horizon
        self.as_of = context.horizon.as_of
        self.failed_runs = context.failed_runs
        self.run_id = context.run_id
        self.send_time = context.config.timing.send_time
        lb = context.config.load_balancing
        self.limit, self.period = lb.max_emails_per_contact_per_period, lb.period_days
        self.campaigns = context.campaigns
        self.behaviour_since = behaviour_since(self.as_of)

    def decide_chunk(self, store: Store, ids: Sequence[int]) -> ChunkResult:
        with store.engine.connect() as conn:
            contacts = fetch_contact_fields(conn, ids)
            rows, row_problems = fetch_rows_reported(conn, ids)
            targets, problems = fetch_targets(conn, ids, self.campaigns.active_by_id)
            behaviour = fetch_behaviour(conn, ids, self.behaviour_since)
        return self.decide_contacts(contacts, rows, targets, behaviour, [*row_problems, *problems])

    def decide_contacts(
        self,
        contacts: list[ContactFields],
        rows: dict[int, list[StoredRow]],
        targets: dict[int, list[CampaignTarget]] | None = None,
        behaviour: dict[int, Behaviour] | None = None,
        problems: Sequence[str] = (),
    ) -> ChunkResult:
        chunk = _Chunk()
        chunk.warnings += len(problems)
        chunk.warning_examples.extend(problems[:EXAMPLES_KEPT])
        targets = targets or {}
        behaviour = behaviour or {}
        for c in contacts:
            self.decide_contact(
                ContactRecord(*c), rows[c[0]], chunk, targets.get(c[0], ()), behaviour.get(c[0], NO_BEHAVIOUR)
            )
        batch = chunk.batch
        return ChunkResult(
            contacts=len(contacts),
            contacts_json=b"".join(map(orjson.dumps, contacts)),
            invalid=chunk.invalid,
            invalid_examples=chunk.invalid_examples,
            warnings=chunk.warnings,
            warning_examples=chunk.warning_examples,
            inserts=batch.inserts,
            updates=batch.updates,
            deletes=batch.deletes,
            unchanged=chunk.unchanged,
            counts=chunk.counts,
            volume=chunk.volume,
            ed_volume=chunk.ed_volume,
            movables=chunk.movables.packed(),
            frequency_watch=chunk.frequency_watch,
            campaign_targets=chunk.campaign_targets,
        )

    def _uncount(self, chunk: _Chunk, row: ExistingRow) -> None:
        """A stored row this contact's decisions replace or delete leaves its day's volume."""
        if (
            row.status == PRE_SCHEDULED
            and row.send_date is not None
            and row.send_date >= self.as_of
            and not row.is_followup
        ):
            chunk.count_day(row.send_date, row.email_type.lower(), -1)

    def decide_contact(
        self,
        record: ContactRecord,
        stored_rows: list[StoredRow],
        chunk: _Chunk,
        targets: Sequence[CampaignTarget] = (),
        behaviour: Behaviour = NO_BEHAVIOUR,
    ) -> None:
        contact = validate_contact(record)
        plan = schedule_contact(
            contact,
            [r.existing for r in stored_rows],
            self.config,
            self.horizon,
            self.failed_runs,
            campaigns=self.campaigns,
            targets=targets,
            behaviour=behaviour,
        )
        if targets and plan.decisions:
            chunk.campaign_targets.extend(
                written_targets(
                    contact.id, targets, self.campaigns, (d.occurrence.key for d in plan.decisions)
                )
            )
        if plan.warnings:
            chunk.warnings += len(plan.warnings)
            for w in plan.warnings:
                if len(chunk.warning_examples) < EXAMPLES_KEPT:
                    chunk.warning_examples.append(f"contact {plan.contact_id}: {w}")
        by_id: dict[int, StoredRow] = {}
        if stored_rows:
            by_id = rows_by_id(stored_rows)
            claimed = {d.existing_row_id for d in plan.decisions if d.existing_row_id is not None}
            for row_id in (*claimed, *plan.deletes):
                self._uncount(chunk, by_id[row_id].existing)
        if plan.invalid_reasons:
            chunk.invalid += 1
            if len(chunk.invalid_examples) < EXAMPLES_KEPT:
                chunk.invalid_examples.append((plan.contact_id, plan.invalid_reasons))
        chunk.batch.deletes.extend(plan.deletes)
        if not isinstance(contact, Contact):
            return
        movables = chunk.movables
        first_new = len(movables)
        for d in plan.decisions:
            stored = by_id.get(d.existing_row_id) if d.existing_row_id is not None else None
            if d.frequency_candidate:
                movables.add(contact, d, stored.values if stored is not None else None)
                continue
            values = placed_values(d, stored, self.send_time, self.run_id)
            if stage_write(chunk.batch, values, stored) == "unchanged":
                chunk.unchanged += 1
            email_type = d.occurrence.email_type
            key = (email_type, d.status)
            chunk.counts[key] = chunk.counts.get(key, 0) + 1
            if d.status == PRE_SCHEDULED and not d.occurrence.is_followup:
                chunk.count_day(d.send_date, email_type, +1)
        if len(movables) > first_new:
            p = movables.p
            for i in range(first_new, len(movables)):
                day = p.dates[i]
                chunk.volume[day] = chunk.volume.get(day, 0) + 1
                if p.flags[i] & FLAG_EFFECTIVE_DATE:
                    chunk.ed_volume[day] = chunk.ed_volume.get(day, 0) + 1
            new = list(range(first_new, len(movables)))
            if could_break(plan.fixed_counted_dates, len(new), self.as_of, self.limit, self.period):
                chunk.frequency_watch.append((contact.id, plan.fixed_counted_dates, new))


# Worker processes are forked ('fork' start method): they inherit this context,
# set by the main process just before, since the config cannot be pickled.
_FORK_CONTEXT: _DecideContext | None = None
_worker: tuple[_ChunkDecider, Store] | None = None


def _start_worker(target: str) -> None:
    """A worker's start: its own connections; Ctrl-C is the main process's to handle."""
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    end_with_parent(exit_code=1)
    assert _FORK_CONTEXT is not None, "sweep workers need the 'fork' start method"
    _worker = (_ChunkDecider(_FORK_CONTEXT), open_store(target))


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


@contextmanager
def _ctrl_c_deferred() -> Iterator[None]:
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


class _Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="contacts", desc="sweep", leave=False)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Sweep:
    def __init__(self, store: Store, config: Config, options: SweepOptions, run_id: str, progress: bool) -> None:
        self.store = store
        self.config = config
        self.options = options
        self.horizon = options.horizon
        self.run_id = run_id
        self.progress = progress
        self.send_time = config.timing.send_time
        self.summary = SweepSummary(
            run_id=run_id,
            as_of=options.as_of.isoformat(),
            full_scan=options.full_scan,
            partial=options.contact_ids is not None,
        )
        self.movables = _Movables()
        self.frequency_watch: dict[int, tuple[tuple[date, ...], list[int]]] = {}
        self.contacts_hash = hashlib.sha256()
        self.failed_runs: frozenset[str] = frozenset()
        self.volume: dict[int, int] = {}
        self.ed_volume: dict[int, int] = {}
        self.campaigns: CampaignBook = EMPTY_BOOK
        self.campaign_targets: list[tuple[int, str]] = []
        self.started_at = _now()
        # The input offsets applied before this sweep (streams.worker.ingest.applied_offsets).
        self.offsets: dict[str, dict[str, int]] = {}
        self.last_heartbeat = time.monotonic()

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction that takes the write lock at its BEGIN (IMMEDIATE on SQLite).

        One that reads first asks for the lock midway, and SQLite in WAL mode
        then fails at once instead of waiting the busy timeout (waiting could
        deadlock two such transactions), so a lock another program held for
        a few seconds stopped the sweep.
        """
        with self.store.engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    # -- checkpoint -------------------------------------------------------
    def start_checkpoint(self) -> None:
        def go() -> None:
            # One transaction with the write lock from its start: two sweeps
            # starting together cannot both find no live run.
            with self._writing() as conn:
                mark_interrupted_runs(conn, take_over=self.options.take_over, database=self.store.target)
                self.offsets = applied_offsets(conn)
                conn.execute(
                    text(
                        "INSERT INTO scheduler_checkpoints (run_timestamp, scheduler_run_id, "
                        "contacts_checksum, status, as_of, pid, pid_started, host, heartbeat_at, "
                        "summary) VALUES "
                        "(:ts, :run_id, '', 'started', :as_of, :pid, :pid_started, :host, :ts, :summary)"
                    ),
                    {
                        "summary": orjson.dumps(self.summary.to_dict()).decode(),
                        "ts": _now(),
                        "run_id": self.run_id,
                        "as_of": self.options.as_of.isoformat(),
                        "pid": os.getpid(),
                        "pid_started": process_start(os.getpid()),
                        "host": socket.gethostname(),
                    },
                )

        run_with_retry(go)
        self.last_heartbeat = time.monotonic()

    def heartbeat(self, conn: Connection) -> None:
        conn.execute(
            text("UPDATE scheduler_checkpoints SET heartbeat_at = :ts WHERE scheduler_run_id = :run_id"),
            {"ts": _now(), "run_id": self.run_id},
        )
        self.last_heartbeat = time.monotonic()

    def heartbeat_if_due(self) -> None:
        """A heartbeat of its own when no batch write brought one for HEARTBEAT_EVERY_S."""
        if time.monotonic() - self.last_heartbeat < HEARTBEAT_EVERY_S:
            return

        def go() -> None:
            with _ctrl_c_deferred(), self._writing() as conn:
                self.heartbeat(conn)

        run_with_retry(go)

    def finish_checkpoint(self, status: str, error: str | None) -> None:
        s = self.summary
        s.status = status

        def go() -> None:
            with self._writing() as conn:
                conn.execute(
                    text(
                        "UPDATE scheduler_checkpoints SET status = :status, error_message = :error, "
                        "completed_at = :ts, heartbeat_at = :ts, contacts_checksum = :cc, "
                        "schedules_before_checksum = :before, schedules_after_checksum = :after, "
                        "contacts_processed = :processed, contacts_scanned = :scanned, "
                        "contacts_invalid = :invalid, emails_scheduled = :scheduled, "
                        "emails_skipped = :skipped, summary = :summary "
                        "WHERE scheduler_run_id = :run_id"
                    ),
                    {
                        "status": status,
                        "error": error,
                        "ts": _now(),
                        "cc": s.contacts_checksum,
                        "before": s.schedules_before_checksum or None,
                        "after": s.schedules_after_checksum or None,
                        "processed": s.contacts_processed,
                        "scanned": s.contacts_scanned,
                        "invalid": s.contacts_invalid,
                        "scheduled": s.emails_scheduled,
                        "skipped": s.emails_skipped,
                        "summary": orjson.dumps(s.to_dict()).decode(),
                        "run_id": self.run_id,
                    },
                )
                if status == "completed" and self.options.contact_ids is None:
                    # A full sweep starts the next decision day, and says so to the audit
                    # in the same transaction (streams.store.epochs, streams.store.outbox).
                    start_epoch(conn, self.options.as_of, "sweep", self.run_id)
                    record = sweep_run_record(s, self.config, self.offsets, datetime.now(UTC))
                    outbox.put(conn, SWEEP_RUNS, self.run_id, record)

        run_with_retry(go)

    # -- phases -----------------------------------------------------------
    def prepare(self) -> array:
        s, opts = self.summary, self.options
        with self.store.engine.connect() as conn:
            self.failed_runs = unfinished_runs(conn) - {self.run_id}
            s.schedules_before_checksum = schedule_checksum(conn)
            s.valid_contacts = count_valid_contacts(conn)
            s.daily_cap = daily_cap(s.valid_contacts, self.config.load_balancing)
            self.volume, self.ed_volume = _day_volumes(conn, opts.as_of)
            s.contacts_scanned = int(conn.execute(text("SELECT count(*) FROM contacts")).scalar_one())
            if opts.contact_ids is None:  # ids the rules cannot key on: never decided, reported (issue 11)
                for shown, reason in unusable_contacts(conn):
                    s.contacts_invalid += 1
                    if len(s.invalid_examples) < EXAMPLES_KEPT:
                        s.invalid_examples.append({"contact_id": shown, "reasons": [reason]})
            loaded = load_campaign_book(conn, self.config)
            self.campaigns = loaded.book
            for problem in [*loaded.problems, *instance_problems(loaded.book.instances, loaded.book.types)]:
                s.warnings += 1
                if len(s.warning_examples) < EXAMPLES_KEPT:
                    s.warning_examples.append(problem)
            plan = prefilter_plan(self.config, self.horizon)
            first, last = self.horizon.lookback_start, self.horizon.range_end
            everyone = [
                i for i in self.campaigns.targets_all
                if i.active_start_date is not None and first <= i.active_start_date <= last
            ]
            ids = array("q")
            if opts.contact_ids is not None:
                s.prefilter = f"{len(opts.contact_ids)} contacts named by the caller"
                ids.extend(sorted(set(opts.contact_ids)))
            elif opts.full_scan or plan.every_contact or everyone:
                if opts.full_scan:
                    s.prefilter = "full scan (--full-scan)"
                elif plan.every_contact:
                    s.prefilter = plan.why
                else:
                    names = ", ".join(f"{i.id} ({i.instance_name})" for i in everyone)
                    s.prefilter = f"every contact: campaign instance(s) {names} target all contacts and start in range"
                ids.extend(all_contact_ids(conn))
            else:
                s.prefilter = plan.why + "; plus campaign targets and initial emails awaiting follow-ups"
                found = set(
                    candidate_contact_ids(
                        conn, plan, self.horizon.as_of.isoformat(), self.horizon.range_end.isoformat()
                    )
                )
                found |= campaign_candidate_ids(conn, self.campaigns, first, last)
                found |= followup_candidate_ids(conn, self.horizon.as_of)
                ids.extend(sorted(found))
        return ids

    def _tally(self, outcome: str) -> None:
        if outcome == "inserted":
            self.summary.rows_inserted += 1
        elif outcome == "updated":
            self.summary.rows_updated += 1
        else:
            self.summary.rows_unchanged += 1

    def decide_all(self, ids: array) -> None:
        progress = _Progress(len(ids), self.progress)
        try:
            with self._chunk_results(ids) as results:
                for n, result in results:
                    self.apply(result)
                    self.heartbeat_if_due()  # chunks whose rows are all unchanged write nothing
                    progress.update(n)
        finally:
            progress.close()

    @contextmanager
    def _chunk_results(self, ids: array) -> Iterator[Iterator[tuple[int, ChunkResult]]]:
        """Each chunk's (size, result) in chunk order, decided here or in worker processes."""
        global _FORK_CONTEXT
        opts = self.options
        context = _DecideContext(self.config, self.horizon, self.failed_runs, self.run_id, self.campaigns)
        chunks = _chunks(ids, opts.chunk_size)
        target = self.store.reopen_target()
        if (
            opts.workers <= 1
            or len(ids) <= opts.chunk_size
            or target is None
            or "fork" not in multiprocessing.get_all_start_methods()
        ):
            decider = _ChunkDecider(context)
            yield ((len(chunk), decider.decide_chunk(self.store, chunk)) for chunk in chunks)
            return
        zip_states()  # loaded once, here, for every worker
        self.store.engine.dispose()  # no open SQLite connection crosses the fork
        _FORK_CONTEXT = context
        pool = ProcessPoolExecutor(
            max_workers=opts.workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_worker,
            initargs=(target,),
        )
        try:
            yield _in_order(pool, chunks, ahead=2 * opts.workers)
        finally:
            # On an error or Ctrl-C: drop the chunks not started, wait for the
            # running ones (workers ignore Ctrl-C), then let run() record it.
            pool.shutdown(wait=True, cancel_futures=True)
            _FORK_CONTEXT = None

    def apply(self, r: ChunkResult) -> None:
        """Take a chunk's result into the run: counters, volumes, movables, then its writes."""
        s = self.summary
        self.contacts_hash.update(r.contacts_json)
        s.contacts_processed += r.contacts
        s.contacts_invalid += r.invalid
        for cid, reasons in r.invalid_examples[: max(0, EXAMPLES_KEPT - len(s.invalid_examples))]:
            s.invalid_examples.append({"contact_id": cid, "reasons": list(reasons)})
        s.warnings += r.warnings
        s.warning_examples.extend(r.warning_examples[: max(0, EXAMPLES_KEPT - len(s.warning_examples))])
        s.rows_inserted += len(r.inserts)
        s.rows_updated += len(r.updates)
        s.rows_unchanged += r.unchanged
        s.rows_deleted += len(r.deletes)
        for (email_type, status), n in r.counts.items():
            s.count(email_type, status, n)
        for volume, change in ((self.volume, r.volume), (self.ed_volume, r.ed_volume)):
            for day, n in change.items():
                volume[day] = volume.get(day, 0) + n
        first = self.movables.extend(r.movables)
        for cid, fixed, indices in r.frequency_watch:
            self.frequency_watch[cid] = (fixed, [first + i for i in indices])
        self.campaign_targets.extend(r.campaign_targets)
        self._write(WriteBatch(r.inserts, r.updates, r.deletes))

    def _write(self, batch: WriteBatch) -> None:
        def go() -> None:
            with _ctrl_c_deferred(), self._writing() as conn:
                write_batch(conn, batch, self.run_id)
                self.heartbeat(conn)

        if len(batch):
            run_with_retry(go)

    def balance(self) -> None:
        lb = self.config.load_balancing
        m, s = self.movables, self.summary
        excluded = m.excluded_fn(self.config)
        as_of = self.options.as_of.toordinal()
        if lb.enabled and len(m.p):
            s.moved_by_smoothing = smooth_effective_dates(
                m.p, self.ed_volume, self.volume, ed_daily_limit(s.daily_cap, lb),
                lb.ed_smoothing_window_days, as_of, excluded,
            )
            s.moved_by_daily_cap = apply_daily_cap(
                m.p, self.volume, s.daily_cap, lb.overage_threshold, as_of, excluded
            )

    def frequency_limit(self) -> set[int]:
        lb = self.config.load_balancing
        m = self.movables
        skipped: set[int] = set()
        for fixed, indices in self.frequency_watch.values():
            new = [
                NewEmail(i, date.fromordinal(m.p.dates[i]), m.p.priority[i], m.key(i)) for i in indices
            ]
            for e in frequency_skips(fixed, new, lb.max_emails_per_contact_per_period, lb.period_days):
                skipped.add(int(e.ref))  # type: ignore[call-overload]
        self.summary.skipped_by_frequency_limit = len(skipped)
        return skipped

    def write_movables(self, skipped: set[int]) -> None:
        m, s = self.movables, self.summary
        batch = WriteBatch.empty()
        for i in range(len(m.p)):
            status, reason = (SKIPPED, FREQUENCY_LIMIT_REASON) if i in skipped else (PRE_SCHEDULED, None)
            values = _movable_values(m, i, self.send_time, self.run_id, status, reason)
            self._tally(stage_values(batch, values, m.existing[i], m.stored.get(i)))
            s.count(str(m.profile_list[m.profile[i]][0]), status)
            if len(batch) >= self.options.batch_rows:
                self._write(batch)
                batch = WriteBatch.empty()
        self._write(batch)

    def apply_status_facts(self) -> None:
        """The sending side's statuses of rows this sweep created (they came before their row)."""

        def go() -> None:
            with _ctrl_c_deferred(), self._writing() as conn:
                waiting = [
                    int(r[0])
                    for r in conn.execute(
                        text(
                            "SELECT DISTINCT f.contact_id FROM mw_status_facts f JOIN email_schedules e "
                            "ON e.occurrence_key = f.occurrence_key WHERE e.status != f.status"
                        )
                    )
                ]
                for start in range(0, len(waiting), 500):
                    part = waiting[start : start + 500]
                    apply_status_facts(conn, fetch_full_rows(conn, part), status_facts_of(conn, part))

        run_with_retry(go)

    def write_campaign_statuses(self) -> None:
        """Targets follow what was written (SPEC section 8); the logged date changes are done."""
        applied_before = self.started_at

        def go() -> None:
            with _ctrl_c_deferred(), self._writing() as conn:
                self.summary.campaign_targets_updated = write_target_statuses(conn, self.campaign_targets)
                if self.options.contact_ids is None:
                    conn.execute(
                        text(
                            "UPDATE campaign_change_log SET requires_rescheduling = 0 WHERE "
                            f"{flag_set_sql('requires_rescheduling', conn.dialect.name)} "
                            "AND changed_at <= :t"
                        ),
                        {"t": applied_before},
                    )

        run_with_retry(go)

    def run(self) -> SweepSummary:
        started = time.perf_counter()
        phases = self.summary.phase_s
        mark = started

        def lap(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            phases[name] = round(now - mark, 3)
            mark = now
            self.heartbeat_if_due()

        try:
            self.start_checkpoint()
        except OperationalError as exc:
            raise self.database_error(exc, "no run was started") from exc
        try:
            ids = self.prepare()
            lap("prepare")
            self.decide_all(ids)
            lap("decide")
            self.balance()
            skipped = self.frequency_limit()
            lap("balance")
            self.write_movables(skipped)
            self.write_campaign_statuses()
            self.apply_status_facts()
            lap("write")
            with self.store.engine.connect() as conn:
                self.summary.schedules_after_checksum = schedule_checksum(conn)
            lap("checksum")
            self.summary.contacts_checksum = "sha256:" + self.contacts_hash.hexdigest()
            self.summary.elapsed_s = round(time.perf_counter() - started, 3)
            self.finish_checkpoint("completed", None)
        except BaseException as exc:
            self.summary.elapsed_s = round(time.perf_counter() - started, 3)
            try:
                self.finish_checkpoint("failed", _failure_reason(exc))
                outcome = f"run {self.run_id} marked failed"
            except Exception:  # noqa: BLE001 - the original error matters more
                outcome = f"run {self.run_id} left started (the next sweep marks it interrupted)"
            if isinstance(exc, BrokenProcessPool):
                raise SweepError(
                    f"sweep of {self.store.target}: a decide worker process died (killed?); "
                    f"{outcome}; run the sweep again"
                ) from exc
            if isinstance(exc, OperationalError):
                raise self.database_error(exc, outcome) from exc
            raise
        return self.summary

    def database_error(self, exc: OperationalError, outcome: str) -> SweepDatabaseError:
        """The one line for a database that stopped the run (``outcome``: what became of it)."""
        db, reason = self.store.target, error_line(exc)
        if is_disk_full(exc):
            message = f"disk full writing {db}: {reason}; {outcome}; free space, then run the sweep again"
        elif is_lock_error(exc):
            message = (
                f"{db} stayed locked by another program: {reason}; {outcome}; "
                "run the sweep again once it is free"
            )
        else:
            message = f"database error in the sweep of {db}: {reason}; {outcome}"
        return SweepDatabaseError(message, exc)


def _failure_reason(exc: BaseException) -> str:
    """What a failed checkpoint records as its error."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(exc, BrokenProcessPool):
        return "a decide worker process died (killed?)"
    if isinstance(exc, DBAPIError):
        # The driver's own line: SQLAlchemy's text adds the statement and its parameters.
        what = "disk full" if is_disk_full(exc) else type(exc).__name__
        return f"{what}: {error_line(exc)}"
    return f"{type(exc).__name__}: {exc}"


def sweep_run_record(
    summary: SweepSummary, config: Config, offsets: dict[str, dict[str, int]], now: datetime
) -> dict[str, object]:
    """The ``sweep-runs`` record of a completed sweep: what replay needs to run it again."""
    return {
        "event_id": summary.run_id,
        "occurred_at": format_datetime(now),
        "run_id": summary.run_id,
        "as_of": summary.as_of,
        "config": config.to_dict(),
        "offsets": offsets,
        "summary": {
            "contacts_processed": summary.contacts_processed,
            "emails_scheduled": summary.emails_scheduled,
            "emails_skipped": summary.emails_skipped,
            "schedules_after_checksum": summary.schedules_after_checksum,
        },
    }


def new_run_id(as_of: date) -> str:
    return f"sweep-{as_of.isoformat()}-{uuid.uuid4().hex[:12]}"


def run_sweep(
    store: Store,
    config: Config,
    options: SweepOptions,
    *,
    run_id: str | None = None,
    progress: bool = False,
) -> SweepSummary:
    """Run one sweep as of ``options.as_of`` and return its summary."""
    store.migrate()
    sweep = _Sweep(store, config, options, run_id or new_run_id(options.as_of), progress)
    return sweep.run()
