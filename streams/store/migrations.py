"""What an agency database lacks for the scheduler, found and added (``Store.migrate``).

The schema is ``streams.store.tables``: a missing agency table is created as
agencies have it (its legacy columns, trigger and indexes), then every
column the scheduler writes is added where missing, then the scheduler's own
``mw_*`` tables and indexes, the change-mark triggers on the tables a decision reads
(``tables.CHANGE_MARKS``), then the ZIP reference table and its rows.  The
statements are the tables' objects compiled for the database's dialect
(``streams.store.ddl``).  Existing rows of agency tables are never touched.

The legacy unique index cannot hold the keys of SPEC section 9 (two
instances of one campaign type for one contact in one year), so it goes.
"""

from __future__ import annotations

import os
import sqlite3
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from rules.zip_state import zip_states
from streams.store.applied_events import count_applied_sql
from streams.store.ddl import (
    add_column_sql,
    change_mark_sql,
    column_type_sql,
    create_index_sql,
    create_table_sql,
    drop_mark_sql,
    legacy_indexes_of,
    schedule_delta_sql,
    stored_trigger_sql,
    trigger_sql,
    triggers_of,
)
from streams.store.dialects import POSTGRESQL, SQLITE
from streams.store.engine import StoreError, error_line, is_disk_full, run_with_retry
from streams.store.schedules import CONTACT_FIELDS
from streams.store.tables import (
    AGENCY_TABLES,
    CHANGE_MARKS,
    LEGACY_UNIQUE_INDEX,
    OWN_INDEXES,
    OWN_TABLES,
    RETIRED_INDEXES,
    RETIRED_MARKS,
    SCHEDULE_DELTAS,
    STOOD_IN_FOR,
    added_columns,
    email_schedules,
    is_legacy,
    mw_applied_counts,
    mw_applied_events,
    mw_zip_states,
)

if TYPE_CHECKING:
    from streams.store.engine import Store

# The contact fields the rules read (SPEC section 2); the rest may vary.
CONTACT_COLUMNS = frozenset(CONTACT_FIELDS)

# Any constant: the key of the advisory lock that serializes PostgreSQL migrations.
_PG_MIGRATION_LOCK = 0x6D77_6D69


def migrate(store: Store) -> list[str]:
    """Add what the scheduler needs; one line per change, [] when up to date.

    Idempotent, and never deletes or rewrites a row of an agency table.
    A database that is not recognised as an agency's is refused before
    anything is written to it, the switch to WAL journaling included.
    """
    if store.read_only:
        raise StoreError(f"{store.target} is opened read-only: it cannot be migrated")
    if store.engine.dialect.name not in (SQLITE, POSTGRESQL):
        raise StoreError(f"{store.target}: migrating is implemented for SQLite and PostgreSQL only")
    try:
        planned = run_with_retry(lambda: _plan_readonly(store))  # raises StoreError when refused
        if store.is_sqlite:
            # Before the tables and indexes: a long index build then blocks no reader.
            run_with_retry(lambda: _use_wal(store))
        if not planned:
            return []
        return run_with_retry(lambda: _migrate_locked(store))
    except DBAPIError as exc:  # a lock held past the retries, a read-only file, ...
        if is_disk_full(exc):
            raise StoreError(f"disk full writing {store.target}: {error_line(exc)}") from exc
        raise StoreError(f"cannot migrate {store.target}: {error_line(exc)}") from exc


def _use_wal(store: Store) -> None:
    """Switch the file to WAL journaling (readers and the writer do not block each other)."""
    # Not through a Connection: SQLAlchemy would begin a transaction, and the
    # journal mode cannot change inside one.
    raw = store.engine.raw_connection()
    statement = "PRAGMA journal_mode"
    try:
        cursor = raw.cursor()
        try:
            mode = str(cursor.execute(statement).fetchone()[0]).lower()
            # An in-memory database has the journal mode 'memory' for good.
            if mode not in ("wal", "memory"):
                statement = "PRAGMA journal_mode=WAL"
                cursor.execute(statement)
        finally:
            cursor.close()
    except sqlite3.Error as exc:
        # As SQLAlchemy would raise it, so run_with_retry knows a lock.
        raise DBAPIError.instance(statement, None, exc, sqlite3.Error) from exc
    finally:
        raw.close()


def _migration(store: Store, conn: Connection) -> _SqliteMigration:
    if store.is_sqlite:
        return _SqliteMigration(conn, store.target)
    return _PostgresMigration(conn, store.target)


def _plan_readonly(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return _migration(store, conn).plan()


def _migrate_locked(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        # Take the write lock first so two workers starting together
        # cannot both decide to create the same table.
        conn.execution_options(sqlite_begin="IMMEDIATE")
        migration = _migration(store, conn)
        migration.lock()
        done = migration.apply()
        conn.commit()
        return done


class _SqliteMigration:
    """What an SQLite database lacks, found and added over one connection."""

    dialect = SQLITE
    # An SQLite database is the agency's own: one without contacts is a wrong path.
    creates_agency_tables = False

    def __init__(self, conn: Connection, target: str) -> None:
        self.conn = conn
        self.target = target

    def _names(self, kind: str) -> set[str]:
        rows = self.conn.execute(
            sa.text("SELECT name FROM sqlite_master WHERE type = :kind"), {"kind": kind}
        )
        return {row[0] for row in rows}

    def _trigger_sql(self, name: str) -> str | None:
        return stored_trigger_sql(self.conn, name)

    def _columns(self, table: str) -> set[str]:
        # PRAGMA takes no parameters; table names come from tables.py.
        return {row[1] for row in self.conn.exec_driver_sql(f"PRAGMA table_info({table})")}

    def lock(self) -> None:
        """Nothing to do: BEGIN IMMEDIATE took the write lock."""

    def plan(self) -> list[str]:
        """The changes apply() would make, without making them."""
        return self._run(dry=True)

    def apply(self) -> list[str]:
        # Helper threads for the sorts of CREATE INDEX (SQLite's multi-threaded sorter):
        # the two month-day indexes on 1M contacts took 8.0 s with none, 5.5 with two.
        # A setting of this connection, back to none once done.
        self.conn.exec_driver_sql(f"PRAGMA threads={min(os.cpu_count() or 1, 4):d}")
        try:
            return self._run(dry=False)
        finally:
            self.conn.exec_driver_sql("PRAGMA threads=0")

    def _exec(self, dry: bool, *statements: str) -> None:
        if not dry:
            for sql in statements:
                self.conn.exec_driver_sql(sql)

    def _run(self, dry: bool) -> list[str]:
        done: list[str] = []
        tables = self._names("table")
        if "contacts" not in tables and not self.creates_agency_tables:
            raise StoreError(f"{self.target} has no 'contacts' table: not an agency database")
        lacking = sorted(CONTACT_COLUMNS - self._columns("contacts")) if "contacts" in tables else []
        if lacking:
            raise StoreError(
                f"{self.target}: table 'contacts' lacks column(s) {', '.join(lacking)}"
                ": not an agency database"
            )

        missing = {t.name for t in AGENCY_TABLES if t.name not in tables}
        for table in AGENCY_TABLES:
            if table.name in missing:
                done += self._create_agency_table(dry, table)

        for column in added_columns():
            table = column.table
            if dry and table.name in missing:
                # Not created yet in a dry run: it will have its legacy columns.
                have = {c.name for c in table.columns if is_legacy(c)}
            else:
                have = self._columns(table.name)
            if column.name in have:
                continue
            self._exec(dry, add_column_sql(column, self.dialect))
            # The SQLite type names the column on both dialects, as it always has.
            done.append(f"added column {table.name}.{column.name} {column_type_sql(column, SQLITE)}")

        for table in OWN_TABLES:
            if table.name not in tables:
                self._exec(dry, create_table_sql(table, self.dialect))
                done.append(f"created table {table.name}")
        triggers = self._names("trigger")
        for name, table_name in RETIRED_MARKS:
            if name in triggers:
                self._exec(dry, *drop_mark_sql(name, table_name, self.dialect))
                done.append(f"dropped trigger {name} on {table_name} (replaced)")
        for mark in CHANGE_MARKS:
            if mark.name not in triggers:
                present = None if dry and mark.table.name not in tables else self._columns(mark.table.name)
                self._exec(dry, *change_mark_sql(mark, self.dialect, present))
                done.append(f"created trigger {mark.name} on {mark.table.name}")
        for name, event in SCHEDULE_DELTAS:
            wanted = schedule_delta_sql(name, event, self.dialect)
            if name not in triggers:
                self._exec(dry, *wanted)
                done.append(f"created trigger {name} on email_schedules")
            elif self._trigger_sql(name) not in (None, wanted[-1]):
                # A definition of an earlier version (the insert trigger learned to leave
                # a sweep's own inserts out): the same changes, appended anew from here on.
                self._exec(dry, f"DROP TRIGGER {name}", *wanted)
                done.append(f"replaced trigger {name} on email_schedules")
        if mw_applied_counts.name not in tables and mw_applied_events.name in tables:
            # A database from before the counts: they start from the events it applied.
            if not dry:
                self.conn.execute(count_applied_sql())
            done.append(f"filled {mw_applied_counts.name} from {mw_applied_events.name}")

        indexes = self._names("index")
        if LEGACY_UNIQUE_INDEX in indexes:
            self._exec(dry, f"DROP INDEX {LEGACY_UNIQUE_INDEX}")
            done.append(
                f"dropped legacy unique index {LEGACY_UNIQUE_INDEX}"
                " (contact_id, email_type, event_year): replaced by mw_email_schedules_key"
            )
        for name in RETIRED_INDEXES:
            if name in indexes:
                self._exec(dry, f"DROP INDEX IF EXISTS {name}")
                done.append(f"dropped index {name} (no longer needed)")
        for index in OWN_INDEXES:
            stand_in = STOOD_IN_FOR.get(str(index.name))
            if stand_in is not None and self._has_contact_index(stand_in, indexes, created=missing):
                if index.name in indexes:
                    self._exec(dry, f"DROP INDEX IF EXISTS {index.name}")
                    done.append(f"dropped index {index.name} (the agency's {stand_in} serves its reads)")
                continue
            if index.name not in indexes:
                self._exec(dry, create_index_sql(index, self.dialect))
                done.append(f"created index {index.name}")

        expected = len(zip_states())
        if mw_zip_states.name not in tables:
            self._exec(dry, create_table_sql(mw_zip_states, self.dialect))
            done.append(f"created table {mw_zip_states.name}")
            have_rows = 0
        else:
            have_rows = self._zip_rows_count()
        if have_rows != expected:
            if not dry:
                self._fill_zip_states()
            done.append(f"filled {mw_zip_states.name} with {expected} ZIP codes")
        return done

    def _has_contact_index(self, name: str, indexes: set[str], created: set[str]) -> bool:
        """Whether email_schedules has index ``name`` led by contact_id (as the legacy schema
        declares it; an agency's index of that name may differ), or gets it now."""
        if name not in indexes:
            return "email_schedules" in created and any(i.name == name for i in legacy_indexes_of(email_schedules))
        found = [i for i in sa.inspect(self.conn).get_indexes("email_schedules") if i["name"] == name]
        return bool(found) and list(found[0]["column_names"][:1]) == ["contact_id"]

    def _create_agency_table(self, dry: bool, table: sa.Table) -> list[str]:
        """The table as agencies have it, with its trigger and indexes (not the legacy unique one)."""
        self._exec(dry, create_table_sql(table, self.dialect, legacy=True))
        done = [f"created table {table.name}"]
        for trigger in triggers_of(table):
            self._exec(dry, *trigger_sql(trigger, self.dialect))
            done.append(f"created trigger {trigger.name} on {table.name}")
        for index in legacy_indexes_of(table):
            if index.name != LEGACY_UNIQUE_INDEX:
                self._exec(dry, create_index_sql(index, self.dialect))
                done.append(f"created index {index.name} on {table.name}")
        return done

    def _zip_rows_count(self) -> int:
        return int(self.conn.execute(sa.select(sa.func.count()).select_from(mw_zip_states)).scalar_one())

    def _fill_zip_states(self) -> None:
        # Our own reference table, not agency data: replacing it is safe.
        self.conn.execute(sa.delete(mw_zip_states))
        rows = [{"zip5": z, "state": s} for z, s in sorted(zip_states().items())]
        self.conn.execute(sa.insert(mw_zip_states), rows)


class _PostgresMigration(_SqliteMigration):
    """What a PostgreSQL database (its current schema) lacks, found and added over one connection."""

    dialect = POSTGRESQL
    # No agency has a PostgreSQL database of its own yet: an empty one gets every table.
    creates_agency_tables = True

    def apply(self) -> list[str]:
        # No PRAGMA here: the server chooses its own parallel workers for CREATE INDEX.
        return self._run(dry=False)

    def lock(self) -> None:
        # Held until commit: a second worker waits, then finds nothing to do.
        self.conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})

    def _trigger_sql(self, name: str) -> str | None:
        """Not compared on PostgreSQL: its trigger functions have not changed."""
        return None

    def _names(self, kind: str) -> set[str]:
        sql = {
            "table": "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()",
            "index": "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()",
            "trigger": "SELECT DISTINCT trigger_name FROM information_schema.triggers"
            " WHERE trigger_schema = current_schema()",
        }[kind]
        return {row[0] for row in self.conn.execute(sa.text(sql))}

    def _columns(self, table: str) -> set[str]:
        rows = self.conn.execute(
            sa.text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = :t"
            ),
            {"t": table},
        )
        return {row[0] for row in rows}
