"""A sweep's dry run (``mailwindow sweep --dry-run``, the console's ``/preview``): what the
sweep would change in the stored schedule, with nothing written to the database.

How: the database is copied to a private SQLite file in a temporary directory
(``snapshot_to_sqlite``: ``VACUUM INTO`` from SQLite, one repeatable-read read
from PostgreSQL), the owned schedule rows of the copy are kept in a table of the
copy (``preview_before``), the real sweep (``run_sweep``) runs on the copy, and
the owned rows before and after are compared inside the copy with SQL joins.
Both sides are the copy, so both are one moment of the database.  The original
is only read: it is opened read-only by the command, it is never migrated (the
copy is), no sweep checkpoint is written to it and its sweep lock (a ``started``
checkpoint) is never taken.  The temporary directory (in ``scratch``, default
tempfile's directory) needs room for a copy of the database, and goes when the
preview is closed, also after an error.

What is a change (choices written down here):

- Owned rows (``rules.statuses.OWNED_STATUSES``) are matched by
  ``(contact_id, occurrence_key)`` (the key names its contact); owned rows
  without a key (legacy rows) by their id, also when the sweep adopted one (gave
  it a key, ``rules.contact_schedule``).
- ``created``: a key (or row) the stored schedule does not have; ``deleted``: a
  stored one the sweep removes; ``skipped``: a row that becomes ``skipped``;
  ``unskipped``: a ``skipped`` row that no longer is; ``moved``: a row of the
  same status whose ``scheduled_send_date`` changes.  A row that stays
  ``skipped`` with another ``skip_reason`` (another window blocks it, or the
  same window with other dates) is a ``skipped`` change with both ``from`` and
  ``to`` skipped: the five kinds are those of issue 15.
- Bookkeeping is no change: ``scheduler_run_id``, ``updated_at``,
  ``batch_id``, ``placed_run_id``, ``metadata``, ``catchup_note``,
  ``ideal_send_date``.
- A row whose date, status and reason stay but another decision column the
  schedule checksum digests changes (its type: a follow-up upgraded in place;
  its send time, priority, templates, campaign instance or event date) is none
  of the five kinds: it is not listed, but counted in ``other_changes``
  (rows, and rows per column), so that a config change of the send time or the
  priorities does not look like no change.
- Each change's ``reason``: for ``skipped`` the new ``skip_reason`` (which
  names the window or limit that blocks); for ``created`` its skip reason when
  it is created skipped, else its catch-up or balancing note, else "new
  occurrence in play"; for ``unskipped`` and ``moved`` the new row's note when
  it has one, else "no longer blocked (was: <old reason>)", or for a move
  "ideal send date <old> -> <new>" when its ideal date changed, else "placed again";
  for ``deleted`` "no longer in play".  ``state`` is the contact's state as the
  rules read it (``rules.contact.resolve_state``: ZIP first), None when it has
  none or is gone.

Memory: the pre-sweep rows are a table of the copy, the diff is read from the
joins a page at a time into another table of the copy (``preview_changes``),
from which the counts are grouped and the changes read in order: the schedules
are never held in Python.  The two tables are the preview's own: the scheduler,
its migration and its checksum read only the tables they name.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, Self

import orjson
from sqlalchemy.exc import DBAPIError

from rules.config import Config
from rules.contact import resolve_state
from rules.statuses import SKIPPED
from streams.store.engine import Store, StoreError, is_disk_full, open_store
from streams.store.schedules import OWNED_SQL
from streams.store.snapshot import snapshot_to_sqlite
from streams.sweep.run import run_sweep
from streams.sweep.summary import SweepError, SweepOptions, SweepSummary

CREATED, DELETED, SKIPPED_CHANGE, UNSKIPPED, MOVED = "created", "deleted", "skipped", "unskipped", "moved"
CHANGE_KINDS = (CREATED, DELETED, SKIPPED_CHANGE, UNSKIPPED, MOVED)
EXAMPLES = 10  # per change kind, in the text output and the console
NO_STATE = "(none)"  # the by_state key of changes whose contact has no state

# The decision columns a change is told by, and those only counted (``other_changes``).
_TOLD = ("scheduled_send_date", "status", "skip_reason")
_OTHER = (
    "email_type",
    "scheduled_send_time",
    "priority",
    "campaign_instance_id",
    "email_template",
    "sms_template",
    "event_year",
    "event_month",
    "event_day",
)
# Read, not compared: the new row's note and the ideal dates say why a row moved.
_BEFORE_COLUMNS = ("id", "contact_id", "occurrence_key", *_TOLD, *_OTHER, "catchup_note", "ideal_send_date")
_PAGE = 5000


class PreviewError(SweepError):
    """A dry run that cannot be made (its scratch directory, its copy), in one line."""


@dataclass(frozen=True)
class Side:
    """A row's side of a change: its date, status and skip reason."""

    date: str | None
    status: str
    reason: str | None

    def as_json(self) -> dict[str, object]:
        return {"date": self.date, "status": self.status, "reason": self.reason}


@dataclass
class Counts:
    by_change: dict[str, int] = field(default_factory=dict)
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)
    by_state: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_change.values())

    def as_json(self) -> dict[str, object]:
        return {"by_change": self.by_change, "by_type": self.by_type, "by_state": self.by_state}


def classify(before: Side | None, after: Side | None) -> str | None:
    """The kind of change from ``before`` to ``after`` (None: none of the five kinds)."""
    if before is None:
        return CREATED if after is not None else None
    if after is None:
        return DELETED
    was, now = before.status == SKIPPED, after.status == SKIPPED
    if now and (not was or before.reason != after.reason):
        return SKIPPED_CHANGE
    if was and not now:
        return UNSKIPPED
    if before.date != after.date:
        return MOVED
    return None


def change_reason(
    kind: str, before: Side | None, after: Side | None, note: str | None = None, ideal: tuple[object, object] = (None, None)
) -> str:
    """The short reason of a change (module docstring); ``note``: the new row's catch-up or
    balancing note; ``ideal``: the ideal send date before and after."""
    if kind == DELETED:
        return "no longer in play"
    assert after is not None
    if kind == SKIPPED_CHANGE or (kind == CREATED and after.status == SKIPPED):
        return after.reason or "skipped"
    if note:
        return note
    if kind == CREATED:
        return "new occurrence in play"
    if kind == UNSKIPPED:
        return f"no longer blocked (was: {before.reason if before else None})"
    if ideal[0] != ideal[1] and None not in ideal:
        return f"ideal send date {ideal[0]} -> {ideal[1]}"
    return "placed again"


class SweepPreview:
    """A dry run's result; its copy stays open for ``changes()`` until ``close()``."""

    def __init__(self, work: Path, copy: Path, summary: SweepSummary, counts: Counts, other: dict[str, Any]) -> None:
        self._work = work
        self._copy = copy
        self.summary = summary
        self.counts = counts
        self.other_changes = other  # {"rows": n, "by_column": {column: n}}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self._work, ignore_errors=True)

    def changes(self, kind: str | None = None, limit: int | None = None) -> Iterator[dict[str, object]]:
        """Every change (or those of ``kind``, at most ``limit``), by (contact_id, occurrence_key)."""
        where, params = ("WHERE change = ?", (kind,)) if kind is not None else ("", ())
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        con = sqlite3.connect(self._copy)
        try:
            cursor = con.execute(
                "SELECT contact_id, occurrence_key, email_type, change, from_date, from_status, from_reason, "
                f"to_date, to_status, to_reason, reason, state FROM preview_changes {where} "
                f"ORDER BY contact_id, occurrence_key, row_id{tail}",
                params,
            )
            while rows := cursor.fetchmany(_PAGE):
                for r in rows:
                    yield {
                        "contact_id": r[0],
                        "occurrence_key": r[1],
                        "email_type": r[2],
                        "change": r[3],
                        "from": None if r[5] is None else Side(r[4], r[5], r[6]).as_json(),
                        "to": None if r[8] is None else Side(r[7], r[8], r[9]).as_json(),
                        "reason": r[10],
                        "state": r[11],
                    }
        finally:
            con.close()

    def examples(self, per_kind: int = EXAMPLES) -> dict[str, list[dict[str, object]]]:
        """The first ``per_kind`` changes of each kind there is."""
        return {k: list(self.changes(k, per_kind)) for k in CHANGE_KINDS if self.counts.by_change.get(k)}

    def head(self) -> dict[str, object]:
        """Everything but the list of changes (the console's twin, the JSON's start)."""
        return {
            "dry_run": True,
            "summary": self.summary.to_dict(),
            "counts": self.counts.as_json(),
            "other_changes": self.other_changes,
        }

    def write_json(self, out: IO[str]) -> None:
        """One JSON object: ``head()`` and ``changes``, every change, written as read."""
        head = orjson.dumps(self.head()).decode()
        out.write(head[:-1] + ',"changes":[')
        first = True
        for change in self.changes():
            out.write(("" if first else ",") + orjson.dumps(change).decode())
            first = False
        out.write("]}\n")

    def text_lines(self, database: str) -> Iterator[str]:
        """The human report: counts, then the first examples of each kind."""
        c = self.counts
        yield (
            f"dry run: nothing written to {database}; the sweep as of {self.summary.as_of} "
            f"would make {c.total:,} changes to the stored schedule"
        )
        yield "  by change: " + ", ".join(f"{k} {c.by_change.get(k, 0):,}" for k in CHANGE_KINDS)
        for title, groups in (("by email type", c.by_type), ("by state", c.by_state)):
            if not groups:
                continue
            yield f"  {title}:"
            width = max(len(g) for g in groups)
            for name, kinds in sorted(groups.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
                detail = ", ".join(f"{k} {kinds[k]:,}" for k in CHANGE_KINDS if kinds.get(k))
                yield f"    {name:<{width}} {sum(kinds.values()):>9,}  ({detail})"
        other = self.other_changes
        if other["rows"]:
            cols = ", ".join(f"{k} {n:,}" for k, n in sorted(other["by_column"].items()))
            yield (
                f"  not listed: {other['rows']:,} rows whose date, status and reason stay but "
                f"other decision columns change ({cols})"
            )
        for kind, changes in self.examples().items():
            yield f"{kind} ({min(EXAMPLES, c.by_change[kind])} of {c.by_change[kind]:,}):"
            for ch in changes:
                yield (
                    f"  contact {ch['contact_id']} {ch['occurrence_key'] or ch['email_type']}: "
                    f"{_side_text(ch['from'])} -> {_side_text(ch['to'])}; {ch['reason']}"
                )


def _side_text(side: object) -> str:
    if not isinstance(side, dict):
        return "-"
    return f"{side['date']} {side['status']}"


def preview_sweep(
    store: Store,
    config: Config,
    options: SweepOptions,
    *,
    scratch: Path | None = None,
    progress: bool = False,
) -> SweepPreview:
    """The sweep ``options`` asks for, run on a copy of ``store`` (which may be read-only):
    what it would change.  Close the result (a context manager) to remove the copy."""
    where = Path(scratch) if scratch is not None else Path(tempfile.gettempdir())
    _check_scratch(where, store)
    try:
        work = Path(tempfile.mkdtemp(prefix="mailwindow-preview-", dir=where))
    except OSError as exc:
        raise PreviewError(f"cannot make the dry run's copy in {where}: {exc.strerror or exc}") from None
    copy = work / "copy.db"
    try:
        summary, counts, other = _run(store, config, options, copy, progress)
        return SweepPreview(work, copy, summary, counts, other)
    except BaseException as exc:
        shutil.rmtree(work, ignore_errors=True)
        error = _one_line(exc, where, store.target, copy)
        if error is None:
            raise
        raise error from exc


def _check_scratch(where: Path, store: Store) -> None:
    if not where.is_dir():
        what = "not a directory" if where.exists() else "not found"
        raise PreviewError(f"scratch directory {where} is {what} (the dry run copies the database there)")
    size = _database_bytes(store)
    try:
        free = shutil.disk_usage(where).free
    except OSError as exc:
        raise PreviewError(f"scratch directory {where} cannot be used: {exc.strerror or exc}") from None
    if size is not None and free < size:
        raise PreviewError(
            f"no room in scratch directory {where} for a copy of the database: {free / 1e6:,.1f} MB free, "
            f"the database is {size / 1e6:,.1f} MB (give another with --scratch DIR)"
        )


def _database_bytes(store: Store) -> int | None:
    """An SQLite database's size (its file and WAL); None when unknown (PostgreSQL: its copy
    has no indexes of its own to speak of, its size on disk says little)."""
    if not store.is_sqlite or store.path is None or not store.path.exists():
        return None
    wal = store.path.with_name(store.path.name + "-wal")
    return store.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def _one_line(exc: BaseException, where: Path, database: str, copy: Path) -> PreviewError | None:
    """The one line a failed dry run ends with; None: ``exc`` as raised."""
    if isinstance(exc, PreviewError):
        return exc
    full = (isinstance(exc, DBAPIError) and is_disk_full(exc)) or (
        isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL
    ) or (isinstance(exc, OSError) and exc.errno == 28) or "disk is full" in str(exc) or "disk full" in str(exc)
    if full:
        return PreviewError(
            f"no room in scratch directory {where} for the dry run's copy of {database} "
            "(give another with --scratch DIR)"
        )
    if isinstance(exc, (SweepError, StoreError)):
        # The sweep ran on the copy: its words name the copy, the reader knows the database.
        return PreviewError(str(exc).replace(str(copy), f"{database} (the dry run's copy)"))
    if isinstance(exc, (sqlite3.Error, OSError)):
        return PreviewError(f"the dry run's copy of {database} in {where} failed: {exc}")
    return None


def _run(
    store: Store, config: Config, options: SweepOptions, copy: Path, progress: bool
) -> tuple[SweepSummary, Counts, dict[str, Any]]:
    snapshot_to_sqlite(store, copy)
    _keep_before(copy)
    with open_store(str(copy)) as copy_store:
        summary = run_sweep(copy_store, config, options, progress=progress)
    other = _diff(copy)
    return summary, _counts(copy), other


def _keep_before(copy: Path) -> None:
    """The owned rows as stored, in ``preview_before`` (columns an old database lacks: NULL)."""
    con = sqlite3.connect(copy)
    try:
        have = {r[1] for r in con.execute("PRAGMA table_info(email_schedules)")}
        columns = ", ".join(c if c in have else f"NULL AS {c}" for c in _BEFORE_COLUMNS)
        source = f"FROM email_schedules WHERE status IN {OWNED_SQL}" if have else "WHERE 0"
        con.execute(f"CREATE TABLE preview_before AS SELECT {columns} {source}")
        con.execute("CREATE INDEX preview_before_key ON preview_before (occurrence_key)")
        con.execute("CREATE INDEX preview_before_id ON preview_before (id)")
        con.commit()
    finally:
        con.close()


def _pairs_sql() -> str:
    """Every (before, after) pair of owned rows that differ in a compared column, or have no
    other side: matched by key, keyless stored rows by id (module docstring)."""
    cols = _BEFORE_COLUMNS
    # Named in the first SELECT (a union's columns are named after it): b_<col>, a_<col>.
    named = ", ".join([*(f"b.{c} AS b_{c}" for c in cols), *(f"a.{c} AS a_{c}" for c in cols)])
    b = ", ".join(f"b.{c}" for c in cols)
    a = ", ".join(f"a.{c}" for c in cols)
    nulls = ", ".join("NULL" for _ in cols)
    differs = " OR ".join(f"b.{c} IS NOT a.{c}" for c in (*_TOLD, *_OTHER))
    keyless_before = "SELECT 1 FROM preview_before k WHERE k.id = a.id AND k.occurrence_key IS NULL"
    return (
        f"SELECT {named} FROM preview_before b LEFT JOIN email_schedules a "
        f"ON a.occurrence_key = b.occurrence_key AND a.status IN {OWNED_SQL} "
        f"WHERE b.occurrence_key IS NOT NULL AND (a.id IS NULL OR {differs}) "
        f"UNION ALL SELECT {b}, {a} FROM preview_before b LEFT JOIN email_schedules a "
        f"ON a.id = b.id AND a.status IN {OWNED_SQL} "
        f"WHERE b.occurrence_key IS NULL AND (a.id IS NULL OR {differs}) "
        f"UNION ALL SELECT {nulls}, {a} FROM email_schedules a WHERE a.status IN {OWNED_SQL} "
        f"AND a.occurrence_key IS NOT NULL "
        f"AND NOT EXISTS (SELECT 1 FROM preview_before k WHERE k.occurrence_key = a.occurrence_key) "
        f"AND NOT EXISTS ({keyless_before}) "
        f"UNION ALL SELECT {nulls}, {a} FROM email_schedules a WHERE a.status IN {OWNED_SQL} "
        f"AND a.occurrence_key IS NULL AND NOT EXISTS ({keyless_before})"
    )


_N = len(_BEFORE_COLUMNS)
_AT = {c: i for i, c in enumerate(_BEFORE_COLUMNS)}


def _side(row: tuple[Any, ...], offset: int) -> Side | None:
    if row[offset + _AT["id"]] is None:
        return None
    status = row[offset + _AT["status"]]
    return Side(row[offset + _AT["scheduled_send_date"]], str(status), row[offset + _AT["skip_reason"]])


@lru_cache(maxsize=65536)
def _state(zip_code: object, state: object) -> str | None:
    return resolve_state(None if zip_code is None else str(zip_code), None if state is None else str(state))[0]


def _diff(copy: Path) -> dict[str, Any]:
    """``preview_changes`` filled from the pairs; what is only counted (``other_changes``)."""
    other_rows = 0
    by_column: dict[str, int] = {}
    con = sqlite3.connect(copy)
    try:
        con.execute(
            "CREATE TABLE preview_changes (contact_id, occurrence_key, row_id, email_type, change, "
            "from_date, from_status, from_reason, to_date, to_status, to_reason, reason, state)"
        )
        reader = con.execute(
            f"SELECT d.*, c.zip_code, c.state FROM ({_pairs_sql()}) AS d "
            "LEFT JOIN contacts c ON c.id = coalesce(d.a_contact_id, d.b_contact_id)"
        )
        insert = f"INSERT INTO preview_changes VALUES ({', '.join('?' for _ in range(13))})"
        while rows := reader.fetchmany(_PAGE):
            staged: list[tuple[object, ...]] = []
            for row in rows:
                before, after = _side(row, 0), _side(row, _N)
                kind = classify(before, after)
                if kind is None:
                    if before is not None and after is not None:
                        changed = [c for c in _OTHER if row[_AT[c]] != row[_N + _AT[c]]]
                        if changed:
                            other_rows += 1
                            for c in changed:
                                by_column[c] = by_column.get(c, 0) + 1
                    continue
                at = _N if after is not None else 0
                staged.append(
                    (
                        row[at + _AT["contact_id"]],
                        row[at + _AT["occurrence_key"]],
                        row[at + _AT["id"]],
                        row[at + _AT["email_type"]],
                        kind,
                        *_values(before),
                        *_values(after),
                        change_reason(
                            kind,
                            before,
                            after,
                            row[_N + _AT["catchup_note"]],
                            (row[_AT["ideal_send_date"]], row[_N + _AT["ideal_send_date"]]),
                        ),
                        _state(row[2 * _N], row[2 * _N + 1]),
                    )
                )
            con.executemany(insert, staged)
        con.execute("CREATE INDEX preview_changes_order ON preview_changes (contact_id, occurrence_key, row_id)")
        con.execute(
            "CREATE INDEX preview_changes_kind ON preview_changes (change, contact_id, occurrence_key, row_id)"
        )
        con.commit()
    finally:
        con.close()
    return {"rows": other_rows, "by_column": dict(sorted(by_column.items()))}


def _values(side: Side | None) -> tuple[object, object, object]:
    return (None, None, None) if side is None else (side.date, side.status, side.reason)


def _counts(copy: Path) -> Counts:
    counts = Counts()
    con = sqlite3.connect(copy)
    try:
        for kind, email_type, state, n in con.execute(
            "SELECT change, email_type, state, count(*) FROM preview_changes GROUP BY 1, 2, 3"
        ):
            counts.by_change[kind] = counts.by_change.get(kind, 0) + n
            t = counts.by_type.setdefault(str(email_type), {})
            t[kind] = t.get(kind, 0) + n
            s = counts.by_state.setdefault(state if state is not None else NO_STATE, {})
            s[kind] = s.get(kind, 0) + n
    finally:
        con.close()
    counts.by_change = {k: counts.by_change.get(k, 0) for k in CHANGE_KINDS}  # every kind, 0 too
    counts.by_type = dict(sorted(counts.by_type.items()))
    counts.by_state = dict(sorted(counts.by_state.items()))
    return counts


__all__ = ["CHANGE_KINDS", "PreviewError", "SweepPreview", "classify", "preview_sweep"]
