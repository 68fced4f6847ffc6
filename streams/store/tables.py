"""Every table the scheduler reads or writes, declared once (SQLAlchemy ``Table`` objects).

The agency's tables are declared exactly as legacy/schema.sql has them (types,
NOT NULL, defaults, AUTOINCREMENT, UNIQUE, foreign keys, indexes and the
``updated_at`` trigger), plus the columns the scheduler adds to them; then the
scheduler's own ``mw_*`` tables.  ``streams.store.ddl`` writes the CREATE
statements of both dialects from these objects and ``streams.store.migrations``
adds what a database lacks; column types and defaults are those of
``streams.store.dialects`` (the legacy words on SQLite).

A column the legacy schema lacks is marked ``ADDED`` in its ``info``; a legacy
column some agencies' databases lack is marked ``MAY_BE_MISSING``.  The
migration adds both kinds when missing, in declaration order.

Two SQLite details are kept on purpose: a bare ``PRIMARY KEY`` column is not
declared NOT NULL (PRAGMA table_info says notnull 0, as in the agencies'
databases; PostgreSQL makes a key NOT NULL anyway), and an INTEGER key is
SQLite's rowid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, MetaData, Table, UniqueConstraint, text

from streams.store.dialects import (
    BYTES,
    DAY,
    FLAG,
    ROW_ID,
    STAMP,
    TEXT,
    WHOLE,
    MonthDayOf,
    as_stored,
    flag_default,
    now_default,
)
from streams.store.schedules import CHECKSUM_COLUMNS, CONTACT_FIELDS, OWNED_SQL

METADATA = MetaData()

ADDED = "added"  # Column.info key: not in the legacy schema, the scheduler adds it
MAY_BE_MISSING = "may_be_missing"  # Column.info key: legacy, but missing in some databases
_ADDED = {ADDED: True}
_MAY_BE_MISSING = {MAY_BE_MISSING: True}
_ZERO = text("0")


def _row_id() -> Column[Any]:
    """``id INTEGER PRIMARY KEY AUTOINCREMENT`` (an identity column on PostgreSQL)."""
    return Column("id", ROW_ID, primary_key=True, nullable=True, autoincrement=False)


def _key(name: str, type_: Any) -> Column[Any]:
    """``name TYPE PRIMARY KEY``: the one key column of a table; an INTEGER one is the rowid."""
    return Column(name, type_, primary_key=True, nullable=True, autoincrement=False)


def _stamps() -> tuple[Column[Any], Column[Any]]:
    """``created_at`` and ``updated_at DATETIME DEFAULT CURRENT_TIMESTAMP``."""
    return (
        Column("created_at", STAMP, server_default=now_default()),
        Column("updated_at", STAMP, server_default=now_default()),
    )


# --- the agency's tables (legacy/schema.sql), in its order ----------------------------------

contacts = Table(
    "contacts",
    METADATA,
    _row_id(),
    Column("first_name", TEXT, nullable=False),
    Column("last_name", TEXT, nullable=False),
    Column("email", TEXT, nullable=False, unique=True),
    Column("current_carrier", TEXT),
    Column("current_premium", TEXT),
    Column("plan_type", TEXT),
    Column("effective_date", TEXT),  # 'YYYY-MM-DD', sometimes with a time part, NULL or junk
    Column("birth_date", TEXT),  # same
    Column("tobacco_user", WHOLE, nullable=False, server_default=_ZERO),
    Column("gender", TEXT),
    Column("state", TEXT),  # often right, sometimes lower case, blank or wrong
    Column("zip_code", TEXT),  # '75201', '95046-1234', '', NULL
    Column("agent_id", WHOLE),
    Column("last_emailed", STAMP),
    Column("phone_number", TEXT),
    Column("status", TEXT, nullable=False, server_default=""),
    *_stamps(),
    Column("aep_request", FLAG, server_default=flag_default(False)),
    Column("aep_request_date", STAMP),
    sqlite_autoincrement=True,
)

# Where a removed contact is kept for billing.
deleted_contacts = Table(
    "deleted_contacts",
    METADATA,
    Column("original_contact_id", WHOLE, nullable=False),
    Column("first_name", TEXT),
    Column("last_name", TEXT),
    Column("email", TEXT, nullable=False),
    Column("current_carrier", TEXT),
    Column("plan_type", TEXT),
    Column("effective_date", TEXT),
    Column("birth_date", TEXT),
    Column("tobacco_user", WHOLE),
    Column("gender", TEXT),
    Column("state", TEXT),
    Column("zip_code", TEXT),
    Column("agent_id", WHOLE),
    Column("phone_number", TEXT),
    Column("deleted_at", STAMP, nullable=False, server_default=now_default()),
)

email_schedules = Table(
    "email_schedules",
    METADATA,
    _row_id(),
    # With foreign keys on, deleting a contact would delete its sent history too.
    Column("contact_id", WHOLE, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    Column("email_type", TEXT, nullable=False),  # 'birthday', 'followup_1_cold', legacy 'BIRTHDAY', ...
    Column("scheduled_send_date", TEXT, nullable=False),  # 'YYYY-MM-DD'
    Column("scheduled_send_time", TEXT, nullable=False, server_default="08:30:00"),
    # Mind the default: a status is always written explicitly.
    Column("status", TEXT, nullable=False, server_default="scheduled"),
    Column("skip_reason", TEXT),
    Column("created_at", TEXT, nullable=False, server_default=now_default("(datetime('now'))")),
    Column("updated_at", TEXT, nullable=False, server_default=now_default("(datetime('now'))")),
    Column("batch_id", TEXT),
    Column("event_year", WHOLE),  # often NULL on old rows
    Column("event_month", WHOLE),
    Column("event_day", WHOLE),
    Column("catchup_note", TEXT),
    Column("actual_send_datetime", TEXT),  # set by the sending side
    Column("priority", WHOLE, server_default=text("10")),
    Column("campaign_instance_id", WHOLE),
    Column("email_template", TEXT),
    Column("sms_template", TEXT),
    Column("scheduler_run_id", TEXT, info=_MAY_BE_MISSING),
    Column("metadata", TEXT, info=_MAY_BE_MISSING),  # JSON
    # The scheduler's: the row's identity (SPEC section 9), its ideal date, the run that placed it.
    Column("occurrence_key", TEXT, info=_ADDED),
    Column("ideal_send_date", TEXT, info=_ADDED),
    Column("placed_run_id", TEXT, info=_ADDED),
    sqlite_autoincrement=True,
)

campaign_types = Table(
    "campaign_types",
    METADATA,
    _key("name", TEXT),
    Column("respect_exclusion_windows", FLAG, server_default=flag_default(True)),
    Column("enable_followups", FLAG, server_default=flag_default(True)),
    Column("days_before_event", WHOLE, server_default=_ZERO),
    Column("target_all_contacts", FLAG, server_default=flag_default(False)),
    Column("priority", WHOLE, server_default=text("10")),
    Column("active", FLAG, server_default=flag_default(True)),
    *_stamps(),
)

campaign_instances = Table(
    "campaign_instances",
    METADATA,
    _row_id(),
    Column("campaign_type", TEXT, ForeignKey("campaign_types.name"), nullable=False),
    Column("instance_name", TEXT, nullable=False),
    Column("email_template", TEXT),
    Column("sms_template", TEXT),
    Column("active_start_date", DAY),
    Column("active_end_date", DAY),
    Column("metadata", TEXT),
    *_stamps(),
    UniqueConstraint("campaign_type", "instance_name"),
    sqlite_autoincrement=True,
)

contact_campaigns = Table(
    "contact_campaigns",
    METADATA,
    _row_id(),
    Column("contact_id", WHOLE, ForeignKey("contacts.id"), nullable=False),
    Column("campaign_instance_id", WHOLE, ForeignKey("campaign_instances.id"), nullable=False),
    Column("trigger_date", DAY),
    Column("status", TEXT, server_default="pending"),
    Column("metadata", TEXT),
    *_stamps(),
    UniqueConstraint("contact_id", "campaign_instance_id", "trigger_date"),
    sqlite_autoincrement=True,
)

campaign_change_log = Table(
    "campaign_change_log",
    METADATA,
    _row_id(),
    Column("campaign_instance_id", WHOLE, ForeignKey("campaign_instances.id"), nullable=False),
    Column("field_changed", TEXT, nullable=False),
    Column("old_value", TEXT),
    Column("new_value", TEXT),
    Column("changed_at", STAMP, server_default=now_default()),
    Column("changed_by", TEXT),
    Column("requires_rescheduling", FLAG, server_default=flag_default(True)),
    sqlite_autoincrement=True,
)

# A click on a tracked link in an email.
tracking_clicks = Table(
    "tracking_clicks",
    METADATA,
    _row_id(),
    Column("tracking_id", TEXT, nullable=False),
    Column("contact_id", WHOLE),
    Column("quote_id", TEXT),
    Column("clicked_at", STAMP, server_default=now_default()),
    sqlite_autoincrement=True,
)

# Health answers: event_type 'eligibility_answered'.
contact_events = Table(
    "contact_events",
    METADATA,
    _row_id(),
    Column("contact_id", WHOLE),
    Column("lead_id", WHOLE),
    Column("event_type", TEXT, nullable=False),
    Column("metadata", TEXT),  # JSON, e.g. {"answers_count":7,"has_medical_conditions":false}
    Column("created_at", STAMP, server_default=now_default()),
    sqlite_autoincrement=True,
)

scheduler_checkpoints = Table(
    "scheduler_checkpoints",
    METADATA,
    _row_id(),
    Column("run_timestamp", STAMP, nullable=False),
    Column("scheduler_run_id", TEXT, nullable=False, unique=True),
    Column("contacts_checksum", TEXT, nullable=False),
    Column("schedules_before_checksum", TEXT),
    Column("schedules_after_checksum", TEXT),
    Column("contacts_processed", WHOLE),
    Column("emails_scheduled", WHOLE),
    Column("emails_skipped", WHOLE),
    Column("status", TEXT, nullable=False),
    Column("error_message", TEXT),
    Column("completed_at", STAMP),
    # The sweep's: what it decided as of, how far it got, and who runs it.
    Column("as_of", TEXT, info=_ADDED),
    Column("contacts_scanned", WHOLE, info=_ADDED),
    Column("contacts_invalid", WHOLE, info=_ADDED),
    Column("pid", WHOLE, info=_ADDED),
    Column("host", TEXT, info=_ADDED),
    # The start of the process ``pid`` names (streams.sweep.liveness.process_start): a pid
    # alone may belong to another process by now.
    Column("pid_started", TEXT, info=_ADDED),
    Column("heartbeat_at", TEXT, info=_ADDED),
    Column("summary", TEXT, info=_ADDED),
    sqlite_autoincrement=True,
)

AGENCY_TABLES: tuple[Table, ...] = (
    contacts,
    deleted_contacts,
    email_schedules,
    campaign_types,
    campaign_instances,
    contact_campaigns,
    campaign_change_log,
    tracking_clicks,
    contact_events,
    scheduler_checkpoints,
)

# The legacy indexes, in legacy/schema.sql's order.
LEGACY_INDEXES: tuple[Index, ...] = (
    Index("idx_contacts_state", contacts.c.state),
    Index("idx_contacts_zip_code", contacts.c.zip_code),
    # Cannot hold the keys of SPEC section 9 (two instances of one campaign type for
    # one contact in one year): the migration drops it.
    Index(
        "idx_email_schedules_unique_event",
        email_schedules.c.contact_id,
        email_schedules.c.email_type,
        email_schedules.c.event_year,
        unique=True,
    ),
    Index("idx_email_schedules_status", email_schedules.c.status),
    Index(
        "idx_schedules_lookup",
        email_schedules.c.contact_id,
        email_schedules.c.email_type,
        email_schedules.c.scheduled_send_date,
    ),
)
LEGACY_UNIQUE_INDEX = "idx_email_schedules_unique_event"


@dataclass(frozen=True)
class StampTrigger:
    """A trigger that stamps ``column`` of a row with the time of every update of it."""

    name: str
    table: Table
    column: str
    key: str = "id"


# Fires on every UPDATE: mind it on bulk paths.
LEGACY_TRIGGERS: tuple[StampTrigger, ...] = (
    StampTrigger("update_email_schedules_updated_at", email_schedules, "updated_at"),
)


def is_legacy(column: Column[Any]) -> bool:
    """Whether the column is in legacy/schema.sql (a table created as agencies have it has it)."""
    return not column.info.get(ADDED, False)


def added_columns() -> tuple[Column[Any], ...]:
    """The columns the migration adds where missing, in table and declaration order."""
    return tuple(
        column
        for table in AGENCY_TABLES
        for column in table.columns
        if column.info.get(ADDED) or column.info.get(MAY_BE_MISSING)
    )


# --- the scheduler's own tables (not agency data) -------------------------------------------
# The stream agents' bookkeeping: which events were applied (at-least-once delivery
# made idempotent), the event time of each contact's current version (last write wins
# by occurred_at), and events parked until their contact arrives.

mw_applied_events = Table(
    "mw_applied_events",
    METADATA,
    _key("event_id", TEXT),
    Column("topic", TEXT, nullable=False),
    Column("occurred_at", TEXT, nullable=False),
    Column("source_partition", WHOLE),
    Column("source_offset", WHOLE),
)

# Events applied per topic, kept with each record above (streams.store.applied_events):
# the console's /metrics reads a handful of rows instead of counting every event.
mw_applied_counts = Table(
    "mw_applied_counts",
    METADATA,
    _key("topic", TEXT),
    Column("applied", WHOLE, nullable=False),
)

mw_contact_versions = Table(
    "mw_contact_versions",
    METADATA,
    _key("contact_id", WHOLE),
    Column("occurred_at", TEXT, nullable=False),
    Column("event_id", TEXT, nullable=False),
    Column("deleted", WHOLE, nullable=False, server_default=_ZERO),
)

# Events of contacts not known yet, as an older worker kept them; adopted as facts
# at start (streams.store.parked_events).
mw_parked_events = Table(
    "mw_parked_events",
    METADATA,
    _key("event_id", TEXT),
    Column("contact_id", WHOLE, nullable=False),
    Column("topic", TEXT, nullable=False),
    Column("occurred_at", TEXT, nullable=False),
    Column("payload", BYTES, nullable=False),
)

# The sending side's latest status of each occurrence key (last write wins by
# occurred_at): a fact, applied to the row of that key whenever the row exists.
mw_status_facts = Table(
    "mw_status_facts",
    METADATA,
    _key("occurrence_key", TEXT),
    Column("contact_id", WHOLE, nullable=False),
    Column("status", TEXT, nullable=False),
    Column("actual_send_datetime", TEXT),
    Column("occurred_at", TEXT, nullable=False),
    Column("event_id", TEXT, nullable=False),
)

# Decision days: the baseline's, then each completed full sweep's (streams.store.epochs).
mw_epochs = Table(
    "mw_epochs",
    METADATA,
    _key("epoch_id", WHOLE),
    Column("as_of", TEXT, nullable=False),
    Column("kind", TEXT, nullable=False),
    Column("run_id", TEXT),
    Column("started_at", TEXT, nullable=False),
)

# Each contact's rows as the current decision day found them (streams.store.epochs).
mw_epoch_base = Table(
    "mw_epoch_base",
    METADATA,
    Column("contact_id", WHOLE, primary_key=True, autoincrement=False),
    Column("epoch_id", WHOLE, primary_key=True, autoincrement=False),
    Column("row_columns", TEXT, nullable=False),
    Column("row_values", TEXT, nullable=False),
)

# Records for the audit topics (sweep-runs, baselines), written with what they
# record and published by the worker (streams.store.outbox).
mw_outbox = Table(
    "mw_outbox",
    METADATA,
    _key("seq", WHOLE),
    Column("topic", TEXT, nullable=False),
    Column("record_key", TEXT, nullable=False),
    Column("record", TEXT, nullable=False),
    Column("published", WHOLE, nullable=False, server_default=_ZERO),
)

# The audit baselines this database was recorded as (streams.worker.baseline).
mw_baselines = Table(
    "mw_baselines",
    METADATA,
    _key("baseline_id", TEXT),
    Column("as_of", TEXT, nullable=False),
    Column("recorded_at", TEXT, nullable=False),
    Column("record", TEXT, nullable=False),
)

# The decision ledger (streams.store.ledger): for each contact a sweep decided, when,
# from what (a digest of its inputs), and the first day on which, with the same inputs,
# its decision could differ.  The next sweep decides only contacts whose day has come,
# whose inputs changed (mw_changed) or whose occurrences enter the range.
mw_decided = Table(
    "mw_decided",
    METADATA,
    _key("contact_id", WHOLE),
    Column("due", TEXT, nullable=False),  # ISO date
    Column("inputs", TEXT, nullable=False),  # digest of what the decision read
    Column("decided_on", TEXT, nullable=False),  # the run's as-of date
    Column("run_id", TEXT, nullable=False),
)

# Contacts whose decision inputs a write changed since the last sweep, appended by the
# triggers CHANGE_MARKS declares (so every writer is seen: the worker, the admin
# commands, the agency's own software).  seq orders them: a sweep clears only the
# marks it saw when it started.
mw_changed = Table(
    "mw_changed",
    METADATA,
    Column("seq", ROW_ID, primary_key=True, nullable=True, autoincrement=False),
    # Nullable: a trigger must never make the agency's own write fail (a row without a
    # contact id is nobody's input); readers skip what is not a contact id.
    Column("contact_id", WHOLE),
)

# The contacts (usable ids) without a usable email or a state, as the last completed
# sweep of the whole agency found them (streams.sweep.valid_contacts): the next one
# counts the valid contacts, the daily cap's base, from these and the marked contacts.
mw_invalid_contacts = Table(
    "mw_invalid_contacts",
    METADATA,
    _key("contact_id", WHOLE),
)

# The owned rows' checksum, kept up to date instead of read from every row
# (streams.store.checksum.kept_checksum).  Every change of an owned row, whoever writes
# it, appends its checksum columns as they were (sign -1) and as they are (sign +1),
# from the triggers SCHEDULE_DELTAS names; the next kept checksum adds those rows' hashes
# to the sum mw_schedule_sum holds and deletes them.  Declared without affinity on
# SQLite (``as_stored``): a value is hashed exactly as email_schedules stores it.
mw_schedule_deltas = Table(
    "mw_schedule_deltas",
    METADATA,
    Column("seq", ROW_ID, primary_key=True, nullable=True, autoincrement=False),
    Column("sign", WHOLE, nullable=False),  # +1: the row now; -1: the row before
    *(Column(c, as_stored(email_schedules.c[c].type)) for c in CHECKSUM_COLUMNS),
)

# One row: the sum of the owned rows' hashes up to the deltas it took (hex, 2048 bits);
# and, while a sweep sums its own inserts, a row named QUIET_PREFIX and its run id
# (streams.store.own_inserts).
mw_schedule_sum = Table(
    "mw_schedule_sum",
    METADATA,
    _key("name", TEXT),
    Column("total", TEXT, nullable=False),
    Column("rows", WHOLE, nullable=False),  # owned rows counted in it
)

QUIET_PREFIX = "quiet:"

# The triggers on email_schedules that append to mw_schedule_deltas (streams.store.ddl).
SCHEDULE_DELTAS: tuple[tuple[str, str], ...] = (
    ("mw_delta_email_schedules_insert", "INSERT"),
    ("mw_delta_email_schedules_update", "UPDATE"),
    ("mw_delta_email_schedules_delete", "DELETE"),
)

# ZIP code -> state (rules.zip_state), for the sweep's SQL; filled by the migration.
mw_zip_states = Table(
    "mw_zip_states",
    METADATA,
    _key("zip5", TEXT),
    Column("state", TEXT, nullable=False),
)

# A copy of another agency database into this one (streams.store.copy, `mailwindow copy`):
# one row per table copied (how far, a digest of the source rows copied) and one named '*'
# for the copy as a whole (its source, when it started and finished).  Created by the copy
# on its target, not by the migration, and never copied itself.
mw_copy_progress = Table(
    "mw_copy_progress",
    METADATA,
    _key("table_name", TEXT),
    Column("source", TEXT),  # '*' row: the source's identity
    Column("rows_copied", WHOLE, nullable=False, server_default=_ZERO),
    Column("last_key", TEXT),  # JSON list: the key of the last row copied; NULL before the first
    Column("digest", TEXT),  # sha256 of the source rows copied, in key order
    Column("started_at", TEXT),
    Column("finished_at", TEXT),
)

@dataclass(frozen=True)
class ChangeMark:
    """A trigger appending to ``mw_changed`` the contact whose decision inputs a write of
    ``table`` changed (``event``: INSERT, UPDATE or DELETE; ``when``: a condition on
    NEW/OLD, or None)."""

    name: str
    table: Table
    event: str
    contact_column: str
    when: str | None = None
    columns: tuple[str, ...] = ()  # UPDATE OF these only
    # UPDATE: only when one of these columns changed (those the table has; none: any update)
    changed: tuple[str, ...] = ()
    # UPDATE: (column, condition on NEW/OLD): a change of that column alone does not mark
    # when the condition holds
    unless: tuple[tuple[str, str], ...] = ()


# The inputs a contact's decision reads, by table.  email_schedules: only the sending
# side's writes (a status outside the scheduler's own, or a real send time); the
# scheduler's own placements are its output, not its input.  Campaign types and
# instances are few and change the run's basis instead (streams.sweep.incremental).
# contact_campaigns: the target columns streams.store.campaigns reads.
TARGET_FIELDS: tuple[str, ...] = ("contact_id", "campaign_instance_id", "trigger_date", "status", "metadata")

CHANGE_MARKS: tuple[ChangeMark, ...] = (
    ChangeMark("mw_mark_contacts_insert", contacts, "INSERT", "id"),
    # An agency's nightly re-import rewrites every contact with the same values: only a
    # change of what the rules read marks one.
    ChangeMark("mw_mark_contacts_update", contacts, "UPDATE", "id", changed=CONTACT_FIELDS),
    ChangeMark("mw_mark_contacts_delete", contacts, "DELETE", "id"),
    ChangeMark("mw_mark_contact_campaigns_insert", contact_campaigns, "INSERT", "contact_id"),
    # The sweep's and the agents' write-back of a target's status (SPEC section 8) changes
    # nothing the rules read (of a status, only whether it is a cancellation): it marks
    # nobody, or every campaign's targets were decided again the next day.
    ChangeMark(
        "mw_mark_contact_campaigns_change", contact_campaigns, "UPDATE", "contact_id", changed=TARGET_FIELDS,
        unless=((
            "status",
            "NEW.status IN ('scheduled', 'skipped') AND "
            "(OLD.status IS NULL OR lower(trim(OLD.status)) IN ('pending', 'scheduled', 'skipped', ''))",
        ),),
    ),
    ChangeMark("mw_mark_contact_campaigns_delete", contact_campaigns, "DELETE", "contact_id"),
    *(
        ChangeMark(f"mw_mark_{t.name}_{e.lower()}", t, e, "contact_id")
        for t in (tracking_clicks, contact_events)
        for e in ("INSERT", "UPDATE", "DELETE")
    ),
    ChangeMark(
        "mw_mark_email_schedules_insert", email_schedules, "INSERT", "contact_id",
        f"NEW.status NOT IN {OWNED_SQL} OR NEW.actual_send_datetime IS NOT NULL",
    ),
    ChangeMark(
        "mw_mark_email_schedules_update", email_schedules, "UPDATE", "contact_id",
        f"NEW.status NOT IN {OWNED_SQL} OR OLD.status NOT IN {OWNED_SQL}"
        " OR NEW.actual_send_datetime IS NOT OLD.actual_send_datetime OR NEW.contact_id IS NOT OLD.contact_id",
        ("status", "actual_send_datetime", "contact_id"),
    ),
    ChangeMark(
        "mw_mark_email_schedules_delete", email_schedules, "DELETE", "contact_id",
        f"OLD.status NOT IN {OWNED_SQL}",
    ),
)

# Indexes an earlier version created and a later one does without: the migration drops them.
RETIRED_INDEXES: tuple[str, ...] = (
    # (scheduled_send_date, status): a prefix of mw_email_schedules_day_mix, which serves
    # the same range reads; one index fewer to keep costs every schedule write 15% less.
    "mw_email_schedules_date",
)

# (trigger, table) an earlier version created and a later one replaced: the migration drops them.
RETIRED_MARKS: tuple[tuple[str, str], ...] = (
    ("mw_mark_contact_campaigns_update", "contact_campaigns"),  # marked on the status write-back
)

# In creation order; mw_zip_states comes last, after the indexes, with its rows.
OWN_TABLES: tuple[Table, ...] = (
    mw_applied_events,
    mw_applied_counts,
    mw_contact_versions,
    mw_parked_events,
    mw_status_facts,
    mw_epochs,
    mw_epoch_base,
    mw_outbox,
    mw_baselines,
    mw_decided,
    mw_changed,
    mw_invalid_contacts,
    mw_schedule_deltas,
    mw_schedule_sum,
)

# Unique on occurrence_key: an owned row per key, and the checksum's order (streams.store.checksum).
KEY_INDEX = "mw_email_schedules_key"

# Own indexes an agency's legacy index stands in for, when it has that one: the legacy
# idx_schedules_lookup (contact_id, email_type, scheduled_send_date) serves every read of
# a contact's rows, and a second index led by contact_id cost every schedule write one
# more page at a random place (the migration drops ours then).
STOOD_IN_FOR: dict[str, str] = {"mw_email_schedules_contact": "idx_schedules_lookup"}

# The indexes the sweep's and the agents' queries need, in creation order.
OWN_INDEXES: tuple[Index, ...] = (
    Index(KEY_INDEX, email_schedules.c.occurrence_key, unique=True),
    Index("mw_email_schedules_contact", email_schedules.c.contact_id, email_schedules.c.scheduled_send_date),
    # zip_code, state and the date itself ride along so the pre-filter reads the
    # index alone (SQLite 3.40 needs every column in it to call it covering; a
    # table lookup per row costs seconds at 3M contacts).
    Index(
        "mw_contacts_birth_md",
        MonthDayOf(contacts.c.birth_date),
        contacts.c.zip_code,
        contacts.c.state,
        contacts.c.birth_date,
    ),
    Index(
        "mw_contacts_effective_md",
        MonthDayOf(contacts.c.effective_date),
        contacts.c.zip_code,
        contacts.c.state,
        contacts.c.effective_date,
    ),
    # Initial emails awaiting follow-ups, found by when they were really sent.
    Index("mw_email_schedules_actual_send", email_schedules.c.actual_send_datetime),
    Index("mw_tracking_clicks_contact", tracking_clicks.c.contact_id, tracking_clicks.c.clicked_at),
    Index(
        "mw_contact_events_contact",
        contact_events.c.contact_id,
        contact_events.c.event_type,
        contact_events.c.created_at,
    ),
    Index("mw_contact_campaigns_contact", contact_campaigns.c.contact_id),
    Index("mw_status_facts_contact", mw_status_facts.c.contact_id),
    Index("mw_parked_events_contact", mw_parked_events.c.contact_id, mw_parked_events.c.occurred_at),
    Index("mw_checkpoints_status", scheduler_checkpoints.c.status),
    Index("mw_decided_due", mw_decided.c.due),
    # The console's dashboard (streams.console.queries.day_mix): the next 60 days by date,
    # status, type, skip reason and move note, read from the index alone (no row lookups:
    # at 1M contacts a lookup per row is the difference between 0.1 s and 1 s).
    Index(
        "mw_email_schedules_day_mix",
        email_schedules.c.scheduled_send_date,
        email_schedules.c.status,
        email_schedules.c.email_type,
        email_schedules.c.skip_reason,
        email_schedules.c.catchup_note,
    ),
)
