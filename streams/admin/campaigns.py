"""Campaign management services (SPEC section 8), behind ``mailwindow campaign``.

Types, instances, their active dates and their targets live in the agency's
tables ``campaign_types``, ``campaign_instances``, ``contact_campaigns`` and
``campaign_change_log``; this module checks what is asked and creates and
changes those rows through ``streams.store.campaigns``, which holds the SQL.
No argparse here: ``streams/cli/campaign.py`` has the flags and the printing.

Every write is one ``BEGIN IMMEDIATE`` transaction (retried while the database
is locked), so what it reads to decide (old dates, existing targets) cannot
change under it.

Choices written down here (the SPEC and the brief are silent on them):

- ``type``: a new table row takes, for the fields not given, the config's
  values when the config (``--config``) defines the type, else the defaults of
  ``rules.config.CampaignType``.  The table wins over the config by name, so a
  row started from bare defaults would silently change a configured type.
  Only given fields that differ are written; when none differs nothing is
  written (``updated_at`` keeps meaning "last real change").  Booleans are
  written as 1/0.  ``days_before_event`` lies within
  ``-MAX_DAYS_BEFORE_EVENT..MAX_DAYS_BEFORE_EVENT`` (366: a year, the bound of
  ``rules.campaign``, which a stored row beyond it fails too); ``priority``
  is a whole number in ``0..MAX_PRIORITY`` (1000, as the config allows).  A row
  already holding a value beyond these is read as it is, so this command can
  fix it.
- ``instance``: a type known only from the config is accepted and NOT copied
  into the table (a copy would freeze today's config values and win over
  later config edits).  An inactive type is accepted with a warning.
  Dates are strictly ``YYYY-MM-DD`` within ``FIRST_DATE..LAST_DATE``
  (``rules.bounds``; the same for ``dates``); metadata must be strict JSON
  (RFC 8259: ``NaN`` is refused) of any shape and is stored as given.
- ``dates``: a flag whose value equals the stored one is not a change and is
  not logged; when nothing changes nothing is written and no sweep runs.  The
  order check (end not before start) uses the new value of a given flag and
  the stored value of the other; a stored value that is not a date cannot be
  checked against and is ignored by that check.  ``old_value`` is the stored
  text as it was.  ``changed_by`` defaults to the OS user (``getpass``), or
  ``uid N`` where the user has no name.  If the ``--apply`` sweep fails, the
  date change stays (it is committed and logged first) and its log rows keep
  ``requires_rescheduling = 1``, so the next sweep still owes them.
- ``targets`` CSV: read whole, as UTF-8 (a leading byte-order mark, as Excel
  writes, is dropped).  Cells are trimmed.  Blank lines (every cell blank)
  are skipped silently.  Only the first non-blank row can be a header, and
  only when its first cell is literally ``contact_id``; any other non-integer
  first cell is a bad row.  A row has 2 or 3 cells; an empty trigger date is
  NULL (the SPEC's default), an empty metadata cell means "no metadata".
  An existing row of the same (contact, instance, trigger date) -- compared
  with ``IS`` so NULL matches NULL, which SQLite's UNIQUE does not -- gets the
  row's metadata when it gives some and differs (counted "updated"); its
  status is left alone (a cancelled target stays cancelled: cancelling is
  deliberate).  Rows are applied in file order, so a key repeated within a
  file updates the row its first line inserted.  Line numbers are physical
  line numbers (a quoted cell spanning lines reports the line it starts on).
  A contact id outside ``1..MAX_ID`` or a trigger date outside
  ``FIRST_DATE..LAST_DATE`` is a bad row (the line is skipped and named, the
  others are imported): the database could not store the id, and the rules
  could not compute with the date.
  Exit code 1 whenever a row was skipped, even if no row was good.
- Every value a message quotes goes through ``rules.bounds.excerpt``.
- ``list``: a target counts unless its status is ``cancelled``/``canceled``
  (any case, trimmed: the same rule as ``rules.campaign``).
"""

from __future__ import annotations

import csv
import getpass
import io
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection

from rules.bounds import FIRST_DATE, LAST_DATE, MAX_ID, date_in_range, excerpt, id_in_range
from rules.campaign import MAX_DAYS_BEFORE_EVENT, days_before_in_range, merge_campaign_types
from rules.config import MAX_PRIORITY, CampaignType, Config
from streams.store import campaigns as campaign_tables
from streams.store.campaigns import TYPE_COLUMNS, campaign_type_from_row
from streams.store.contacts import present_contacts
from streams.store.engine import Store, run_with_retry

T = TypeVar("T")

NAME_RE = re.compile(r"[a-z0-9_]+")  # rules/config.py _campaign_types: the same rule
_DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INT_RE = re.compile(r"[+-]?\d+")
START_FIELD = "active_start_date"
END_FIELD = "active_end_date"
CSV_HEADER = "contact_id"
_FLAG_OF = {"active_start_date": "--start", "active_end_date": "--end"}

# The type fields the table holds, in table order; CampaignType carries the same names.
TYPE_FIELDS = TYPE_COLUMNS
_BOOL_FIELDS = frozenset(
    {"respect_exclusion_windows", "enable_followups", "target_all_contacts", "active"}
)


class CampaignError(ValueError):
    """A campaign command that cannot be done; one line naming the problem."""


# --- small parsers --------------------------------------------------------------


def check_type_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise CampaignError(
            f"campaign type name {excerpt(name)}: use lower-case letters, digits and _ only"
        )
    return name


def parse_day(raw: str, what: str) -> date:
    """A strict ``YYYY-MM-DD`` date; ``what`` names the flag or cell in the error."""
    value = raw.strip()
    if not _DAY_RE.fullmatch(value):
        raise CampaignError(f"{what} {excerpt(raw)} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CampaignError(f"{what} {excerpt(raw)} is an impossible date") from None


def check_day(day: date | None, what: str) -> None:
    """Refuse a date the rules cannot compute with; ``what`` names the flag or cell."""
    if day is not None and not date_in_range(day):
        raise CampaignError(f"{what} {day} is outside {FIRST_DATE}..{LAST_DATE}")


def check_id(value: int, what: str) -> None:
    """Refuse an id the database cannot store; ``what`` names it."""
    if not id_in_range(value):
        raise CampaignError(f"{what} {excerpt(value)} is outside 1..{MAX_ID}")


def parse_day_or_none(raw: str, what: str) -> date | None:
    """A date, or None for ``none`` (any case): clears the field."""
    if raw.strip().lower() == "none":
        return None
    return parse_day(raw, what)


def parse_json(raw: str, what: str) -> str:
    """The text itself when it is strict JSON."""
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CampaignError(f"{what} is not valid JSON: {exc}") from None
    return raw


def _stored_day(raw: object) -> date | None:
    """A stored date column read leniently (a time part is tolerated); None if not a date."""
    if raw is None:
        return None
    try:
        return date.fromisoformat(str(raw).strip()[:10])
    except ValueError:
        return None


def _stored_value(value: int | bool) -> int:
    return int(value)  # booleans as 1/0: what SQLite itself stores for TRUE


def default_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # a container user without a passwd entry or $USER
        return f"uid {os.getuid()}"


def _write(store: Store, fn: Callable[[Connection], T]) -> T:
    """``fn(conn)`` in one BEGIN IMMEDIATE transaction, retried while locked.

    ``fn`` must have no effect outside the database: it may run again.
    """

    def attempt() -> T:
        with store.engine.connect() as conn:
            # The write lock first: what fn reads stays true until it commits.
            conn.execution_options(sqlite_begin="IMMEDIATE")
            result = fn(conn)
            conn.commit()
            return result

    return run_with_retry(attempt)


def _read(store: Store, fn: Callable[[Connection], T]) -> T:
    def attempt() -> T:
        with store.engine.connect() as conn:
            return fn(conn)

    return run_with_retry(attempt)


# --- types ----------------------------------------------------------------------


def _type_from_row(row: Sequence[Any]) -> CampaignType:
    try:
        return campaign_type_from_row(tuple(row))
    except ValueError as exc:
        raise CampaignError(f"campaign_types row {excerpt(row[0])}: {exc}: fix the row first") from None


def table_types(conn: Connection) -> list[CampaignType]:
    return [_type_from_row(r) for r in campaign_tables.type_rows(conn)]


def _table_type(conn: Connection, name: str) -> CampaignType | None:
    row = campaign_tables.type_row(conn, name)
    return _type_from_row(row) if row is not None else None


def known_types(conn: Connection, config: Config) -> Mapping[str, CampaignType]:
    """Every type by name, the table winning over the config (as the sweep does)."""
    return merge_campaign_types(config.campaign_types, table_types(conn))


@dataclass(frozen=True)
class TypeResult:
    name: str
    created: bool
    # field -> (old, new); on creation old is None and every field is listed
    changes: dict[str, tuple[int | bool | None, int | bool]]
    base: str = ""  # where a new row's unspecified fields came from


def set_campaign_type(
    store: Store, config: Config, name: str, given: Mapping[str, int | bool]
) -> TypeResult:
    """Create the type's table row, or change only the given fields of it."""
    check_type_name(name)
    unknown = set(given) - set(TYPE_FIELDS)
    if unknown:
        raise CampaignError(f"unknown campaign type field(s): {', '.join(sorted(unknown))}")
    if "priority" in given and not 0 <= int(given["priority"]) <= MAX_PRIORITY:
        raise CampaignError(f"--priority {excerpt(given['priority'])} is outside 0..{MAX_PRIORITY}")
    if "days_before_event" in given and not days_before_in_range(int(given["days_before_event"])):
        raise CampaignError(
            f"--days-before {excerpt(given['days_before_event'])} is outside "
            f"-{MAX_DAYS_BEFORE_EVENT}..{MAX_DAYS_BEFORE_EVENT} days"
        )

    def go(conn: Connection) -> TypeResult:
        current = _table_type(conn, name)
        if current is None:
            configured = config.campaign_types.get(name)
            base = configured if configured is not None else CampaignType(name)
            new = replace(base, **given)  # type: ignore[arg-type]
            values = {f: _stored_value(getattr(new, f)) for f in TYPE_FIELDS}
            campaign_tables.add_type(conn, name, values)
            return TypeResult(
                name,
                True,
                {f: (None, getattr(new, f)) for f in TYPE_FIELDS},
                "the config" if configured is not None else "the defaults",
            )
        changes: dict[str, tuple[int | bool | None, int | bool]] = {
            f: (getattr(current, f), v) for f, v in given.items() if getattr(current, f) != v
        }
        if changes:
            values = {f: _stored_value(new) for f, (_, new) in changes.items()}
            campaign_tables.change_type(conn, name, values)
        return TypeResult(name, False, changes)

    return _write(store, go)


# --- instances ------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceRow:
    id: int
    campaign_type: str
    instance_name: str
    email_template: str | None
    sms_template: str | None
    active_start_date: str | None  # stored text, as found
    active_end_date: str | None
    metadata: str | None


def _instance_from_row(r: Sequence[Any]) -> InstanceRow:
    def opt(v: object) -> str | None:
        return None if v is None else str(v)

    return InstanceRow(
        int(r[0]), str(r[1]), str(r[2]), opt(r[3]), opt(r[4]), opt(r[5]), opt(r[6]), opt(r[7])
    )


def get_instance(conn: Connection, instance_id: int) -> InstanceRow:
    check_id(instance_id, "campaign instance id")
    row = campaign_tables.instance_row(conn, instance_id)
    if row is None:
        raise CampaignError(f"no campaign instance with id {instance_id}")
    return _instance_from_row(row)


@dataclass(frozen=True)
class NewInstance:
    id: int
    campaign_type: str
    instance_name: str
    start: date | None
    end: date | None
    type_source: str  # 'table' or 'config'
    type_active: bool


def create_instance(
    store: Store,
    config: Config,
    type_name: str,
    instance_name: str,
    *,
    start: date | None = None,
    end: date | None = None,
    email_template: str | None = None,
    sms_template: str | None = None,
    metadata: str | None = None,
) -> NewInstance:
    check_type_name(type_name)
    name = instance_name.strip()
    if not name:
        raise CampaignError("the instance name is empty")
    check_day(start, "--start")
    check_day(end, "--end")
    if start is not None and end is not None and end < start:
        raise CampaignError(f"--end {end} is before --start {start}")
    for flag, template in (("--email-template", email_template), ("--sms-template", sms_template)):
        if template is not None and not template.strip():
            raise CampaignError(f"{flag} is empty")
    if metadata is not None:
        parse_json(metadata, "--metadata")

    def go(conn: Connection) -> NewInstance:
        in_table = _table_type(conn, type_name)
        ctype = in_table or config.campaign_types.get(type_name)
        if ctype is None:
            raise CampaignError(
                f"unknown campaign type {excerpt(type_name)}: not in table campaign_types nor in the "
                "config's campaign_types (create it with `mailwindow campaign type`)"
            )
        clash = campaign_tables.instance_named(conn, type_name, name)
        if clash is not None:
            raise CampaignError(
                f"campaign {excerpt(type_name)} already has an instance named {excerpt(name)} (id {clash})"
            )
        new_id = campaign_tables.add_instance(
            conn,
            {
                "campaign_type": type_name,
                "instance_name": name,
                "email_template": email_template.strip() if email_template else None,
                "sms_template": sms_template.strip() if sms_template else None,
                "active_start_date": start.isoformat() if start else None,
                "active_end_date": end.isoformat() if end else None,
                "metadata": metadata,
            },
        )
        return NewInstance(
            new_id,
            type_name,
            name,
            start,
            end,
            "table" if in_table is not None else "config",
            ctype.active,
        )

    return _write(store, go)


# --- dates ----------------------------------------------------------------------


@dataclass(frozen=True)
class DateChange:
    field: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class DatesResult:
    instance: InstanceRow
    changes: list[DateChange]
    log_ids: list[int]


def change_dates(
    store: Store,
    instance_id: int,
    given: Mapping[str, date | None],
    changed_by: str,
) -> DatesResult:
    """Set the instance's active dates and log each changed field, in one transaction."""
    if not given:
        raise CampaignError("nothing to change: give --start and/or --end")
    unknown = set(given) - {START_FIELD, END_FIELD}
    if unknown:
        raise CampaignError(f"not a date field: {', '.join(excerpt(f) for f in sorted(unknown))}")
    for f, day in given.items():
        check_day(day, _FLAG_OF[f])

    def go(conn: Connection) -> DatesResult:
        inst = get_instance(conn, instance_id)
        stored = {START_FIELD: inst.active_start_date, END_FIELD: inst.active_end_date}
        merged = {
            f: (given[f] if f in given else _stored_day(stored[f])) for f in (START_FIELD, END_FIELD)
        }
        start, end = merged[START_FIELD], merged[END_FIELD]
        if start is not None and end is not None and end < start:
            raise CampaignError(
                f"campaign instance {instance_id}: end {end} would be before start {start}"
            )
        changes: list[DateChange] = []
        for f in (START_FIELD, END_FIELD):
            if f not in given:
                continue
            new = given[f]
            new_text = new.isoformat() if new is not None else None
            if stored[f] == new_text:
                continue  # the same value: not a change
            changes.append(DateChange(f, stored[f], new_text))
        log_ids: list[int] = []
        if changes:
            campaign_tables.change_instance_dates(conn, instance_id, {c.field: c.new for c in changes})
            log_ids += [
                campaign_tables.log_date_change(conn, instance_id, c.field, c.old, c.new, changed_by)
                for c in changes
            ]
        return DatesResult(inst, changes, log_ids)

    return _write(store, go)


def reschedule_targets(conn: Connection, config: Config, instance: InstanceRow) -> tuple[int, ...] | None:
    """The contacts a date change of this instance touches; None: every contact.

    Its target rows (cancelled ones too: a cancelled target may still own a
    row to delete) and the contacts owning schedule rows of the instance.
    """
    ctype = known_types(conn, config).get(instance.campaign_type)
    if ctype is not None and ctype.target_all_contacts:
        return None
    return campaign_tables.usable_instance_contacts(conn, instance.id)


def clear_rescheduling(store: Store, log_ids: Sequence[int]) -> None:
    def go(conn: Connection) -> None:
        campaign_tables.clear_rescheduling(conn, list(log_ids))

    if log_ids:
        _write(store, go)


# --- targets (CSV import) ---------------------------------------------------------


@dataclass(frozen=True)
class TargetRow:
    line: int
    contact_id: int
    trigger_date: date | None
    metadata: str | None


@dataclass
class ImportResult:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, problem)

    @property
    def skipped(self) -> int:
        return len(self.problems)


def read_csv_text(path: Path) -> str:
    """The file's whole text, or one CampaignError naming the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CampaignError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise CampaignError(f"{path}: is a directory, not a CSV file") from None
    except OSError as exc:
        raise CampaignError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CampaignError(
            f"{path}: not UTF-8 text (byte {exc.start}: {raw[exc.start : exc.start + 1]!r})"
        ) from None


def parse_target_rows(content: str) -> tuple[list[TargetRow], list[tuple[int, str]]]:
    """The well-formed rows and the problems (line, problem) of a targets CSV text.

    Checks the shape of each row only; whether its contact exists is the
    database's to say (``import_targets``).
    """
    rows: list[TargetRow] = []
    problems: list[tuple[int, str]] = []
    reader = csv.reader(io.StringIO(content, newline=""))
    seen_first = False
    next_line = 1  # the physical line the next record starts on
    while True:
        line = next_line
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            next_line = reader.line_num + 1
            problems.append((line, f"malformed CSV: {exc}"))
            continue
        next_line = reader.line_num + 1
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue  # a blank line
        first_row, seen_first = not seen_first, True
        if first_row and cells[0] == CSV_HEADER:
            continue  # the header row
        if len(cells) not in (2, 3):
            problems.append(
                (line, f"expected 2 or 3 columns (contact_id,trigger_date[,metadata]), got {len(cells)}")
            )
            continue
        try:
            contact_id = _contact_id_cell(cells[0])
            trigger = parse_day(cells[1], "trigger_date") if cells[1] else None
            check_day(trigger, "trigger date")
        except CampaignError as exc:
            problems.append((line, str(exc)))
            continue
        metadata = cells[2] if len(cells) == 3 and cells[2] else None
        if metadata is not None:
            try:
                parse_json(metadata, "metadata")
            except CampaignError as exc:
                problems.append((line, str(exc)))
                continue
        rows.append(TargetRow(line, contact_id, trigger, metadata))
    return rows, problems


def _contact_id_cell(cell: str) -> int:
    """The contact id of a CSV cell: an integer in ``1..MAX_ID``."""
    if not _INT_RE.fullmatch(cell):
        raise CampaignError(f"contact_id {excerpt(cell)} is not an integer")
    try:
        value = int(cell)
    except ValueError:  # more digits than int() reads: far beyond MAX_ID
        raise CampaignError(f"contact id {excerpt(cell)} is outside 1..{MAX_ID}") from None
    check_id(value, "contact id")
    return value


def instance_exists(store: Store, instance_id: int) -> InstanceRow:
    return _read(store, lambda conn: get_instance(conn, instance_id))


def import_targets(store: Store, instance_id: int, path: Path) -> ImportResult:
    """Import a targets CSV into ``contact_campaigns``: good rows in one transaction."""
    instance_exists(store, instance_id)  # an unknown instance fails before the file is read
    content = read_csv_text(path)
    rows, shape_problems = parse_target_rows(content)

    def go(conn: Connection) -> ImportResult:
        result = ImportResult(problems=list(shape_problems))
        get_instance(conn, instance_id)  # still there, under the write lock
        known = set(present_contacts(conn, sorted({r.contact_id for r in rows})))
        for row in rows:
            if row.contact_id not in known:
                result.problems.append((row.line, f"unknown contact id {row.contact_id}"))
                continue
            trigger = row.trigger_date.isoformat() if row.trigger_date else None
            # A NULL trigger date matches a NULL one (UNIQUE would not).
            existing = campaign_tables.find_target(conn, row.contact_id, instance_id, trigger)
            if existing is None:
                campaign_tables.add_target(
                    conn, row.contact_id, instance_id, trigger, "pending", row.metadata, stamp_now=True
                )
                result.imported += 1
            elif row.metadata is not None and row.metadata != existing[1]:
                campaign_tables.set_target_metadata(conn, existing[0], row.metadata)
                result.updated += 1
            else:
                result.unchanged += 1
        result.problems.sort()
        return result

    return _write(store, go)


# --- list -----------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    types: list[tuple[CampaignType, str]]  # (type, 'table' or 'config')
    instances: list[tuple[InstanceRow, int]]  # (instance, non-cancelled targets)


def list_campaigns(store: Store, config: Config) -> Listing:
    def go(conn: Connection) -> Listing:
        # Read-only, so nothing adds what an old database lacks: a missing table lists nothing.
        if not campaign_tables.has_campaign_tables(conn):
            return Listing([(t, "config") for t in config.campaign_types.values()], [])
        in_table = {t.name for t in table_types(conn)}
        merged = known_types(conn, config)
        types = [(t, "table" if n in in_table else "config") for n, t in merged.items()]
        counts = campaign_tables.live_target_counts(conn)
        instances = [
            (inst, counts.get(inst.id, 0))
            for inst in map(_instance_from_row, campaign_tables.instance_rows(conn))
        ]
        return Listing(types, instances)

    return _read(store, go)
