"""The schedule checksum (SPEC section 9): a digest of the scheduler's decisions.

Two databases whose owned rows decide the same emails have the same checksum,
whatever their row ids, run ids, timestamps, metadata or insertion order.
`mailwindow replay` relies on it to prove a rebuilt database equals the live one.

The digest is ``rowsum:`` and the SHA-256 of a sum: each owned row's checksum
columns, encoded as an orjson list, hashed to 2048 bits (SHAKE-256), the hashes
added modulo 2**2048 (an additive multiset hash).  Keys are unique, so the set of
rows fixes their key order and this digest decides what a digest in key order
would; unlike one, it can be kept up to date from the changes alone.  The
triggers on email_schedules (``tables.SCHEDULE_DELTAS``) append every change of
an owned row, by any writer, to mw_schedule_deltas; ``kept_checksum`` adds those
to the sum it keeps, so a sweep's checksums cost what changed, not a read of
every row (2 to 3 s each at 3M contacts, twice a run).  ``schedule_checksum``
computes the same digest from the rows themselves, read-only.

A run about to write most of the schedule (a first sweep, an AEP season) drops the
kept sum instead (``changes_coming``): the triggers append nothing while there is
none.  Before its phase 3 it keeps the sum again and sums the rows it inserts itself
(``streams.store.own_inserts``), so the checksum after reads no row; where it cannot
(PostgreSQL, few inserts), the checksum after the run reads the rows once.

Two writes pass the triggers by: SQLite's REPLACE deletes the row it replaces
without firing delete triggers (unless the writer turned recursive_triggers on), and
PostgreSQL's TRUNCATE fires no row trigger.  Both leave the kept count of owned rows
above the table's, and every kept checksum compares the two (a count over the status
index): on a difference it says so in the log and computes the sum from the rows.

``key_order_checksum`` is the digest before this one (``sha256:`` over the rows
in key order), for comparing with checksums recorded by earlier versions.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rules.statuses import OWNED_STATUSES
from streams.store.bulk import driver_pages
from streams.store.row_sums import Meanwhile, sum_in_two
from streams.store.schedules import CHECKSUM_COLUMNS, placeholder
from streams.store.tables import KEY_INDEX, QUIET_PREFIX, mw_schedule_deltas, mw_schedule_sum

_log = logging.getLogger(__name__)

PREFIX = "rowsum:"
_HASH_BYTES = 256  # 2048 bits: sums of this width resist the known attacks on additive hashes
_MODULUS = 1 << (8 * _HASH_BYTES)
# Rows fetched per round trip: the digest never holds the table in memory.
FETCH_ROWS = 5_000
# Pending changes from which the sum is computed again from the rows (when they
# outnumber the owned rows, or this many).
REBUILD_FROM = 20_000
# mw_schedule_sum's one row
_OWNED = "owned"


def digest_of_sum(total: int) -> str:
    return PREFIX + hashlib.sha256((total % _MODULUS).to_bytes(_HASH_BYTES, "little")).hexdigest()


EMPTY_CHECKSUM = digest_of_sum(0)  # no owned rows


def row_hash(row: Sequence[object]) -> int:
    """A row's checksum columns (in ``CHECKSUM_COLUMNS`` order, as the driver reads them)
    as a 2048-bit number."""
    return int.from_bytes(hashlib.shake_256(orjson.dumps(row)).digest(_HASH_BYTES), "little")


def schedule_checksum(conn: Connection) -> str:
    """The checksum of the owned rows, read from every one of them (read-only).

    A column the database lacks (an unmigrated legacy database has no
    occurrence_key) reads as NULL, so migrating does not change the checksum.
    """
    total, _ = _sum_of_rows(conn)
    return digest_of_sum(total)


def kept_checksum(
    conn: Connection, changes_coming: int = 0, helper_target: str | None = None, meanwhile: Meanwhile | None = None
) -> str:
    """The checksum of the owned rows, from the sum kept in mw_schedule_sum and the
    changes appended since: in ``conn``'s transaction, which it writes (the changes
    taken are deleted, the sum updated).  A database without a kept sum yet (just
    migrated, or copied) gets one from its rows.  Equal to ``schedule_checksum``.

    ``changes_coming``: about how many rows the caller is about to write (a sweep: the
    contacts it decides).  When they outnumber the rows kept (a first sweep, an AEP
    season), the sum is dropped instead of kept: while there is none the triggers
    append nothing, and the next kept checksum reads the rows once instead of taking
    the millions of changes such a run makes (at 3M contacts in AEP season 7M changes,
    which cost more to write and take than the rows cost to read).

    ``helper_target``: the database again (``Store.reopen_target``), for a helper process
    to read half of the rows when the sum is computed from many (``streams.store.row_sums``);
    only for a transaction that has not written ``email_schedules``.

    ``meanwhile``: other work of the transaction that changes no row of ``email_schedules``
    (a sweep's deferred indexes, its balancing), called once: while helpers read the rows
    when the sum is computed from them (``row_sums.sum_in_two``), else first."""
    ph = placeholder(conn)
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        # One keeper at a time, and no writer until it commits (a sweep's agents wait for
        # it anyway): the changes, the count and the rows it reads are of one moment.
        conn.exec_driver_sql(f"LOCK TABLE {mw_schedule_sum.name} IN SHARE ROW EXCLUSIVE MODE")
        conn.exec_driver_sql("LOCK TABLE email_schedules IN SHARE MODE")
    found = _kept_sum(conn)
    first, last = conn.exec_driver_sql(f"SELECT min(seq), max(seq) FROM {mw_schedule_deltas.name}").one()
    pending = 0 if first is None else last - first + 1  # at most; read from the key alone
    # A sweep that summed its own inserts and never added them (it failed or was killed)
    # left its quiet row: which of its inserts committed, only the rows tell.
    quiet = conn.exec_driver_sql(
        f"SELECT count(*) FROM {mw_schedule_sum.name} WHERE name LIKE {ph}", (QUIET_PREFIX + "%",)
    ).scalar_one()
    # A first sweep's changes are most of the schedule: the rows are read faster than
    # their changes (which also hold the moves of the same rows).
    if found is None or quiet or pending > max(found[1], REBUILD_FROM):
        return _rebuilt(conn, changes_coming, helper_target, meanwhile)
    if meanwhile is not None:
        meanwhile(conn)
    total, rows = _with_changes(conn, *found)
    owned = owned_row_count(conn)
    if rows != owned:
        # A write the triggers do not see: SQLite's REPLACE deletes the row it replaces
        # without firing delete triggers, PostgreSQL's TRUNCATE fires none.  Each leaves
        # the count high, so comparing it (a read of the status index) finds them.
        _log.warning(
            "the kept schedule checksum counts %d owned rows, the table has %d (a write the triggers did "
            "not see, such as REPLACE or TRUNCATE): computed again from the rows", rows, owned,
        )
        return _rebuilt(conn, changes_coming, helper_target)
    _keep(conn, total, rows, changes_coming)
    return digest_of_sum(total)


def _rebuilt(
    conn: Connection, changes_coming: int, helper_target: str | None = None, meanwhile: Meanwhile | None = None
) -> str:
    """The kept sum computed again from the rows, the pending changes dropped."""
    conn.exec_driver_sql(f"DELETE FROM {mw_schedule_deltas.name}")
    total, rows = _sum_of_rows(conn, helper_target, meanwhile)
    _keep(conn, total, rows, changes_coming)
    return digest_of_sum(total)


def _keep(conn: Connection, total: int, rows: int, changes_coming: int) -> None:
    """The sum kept; or none, when more changes are coming than it counts rows."""
    ph = placeholder(conn)
    drop_kept_sum(conn)
    if changes_coming > max(rows, REBUILD_FROM):
        return  # the changes are all taken or dropped by now
    conn.exec_driver_sql(
        f"INSERT INTO {mw_schedule_sum.name} (name, total, rows) VALUES ({ph}, {ph}, {ph})",
        (_OWNED, format(total, "x"), rows),
    )


def add_to_kept_sum(conn: Connection, total: int, rows: int) -> None:
    """Rows a writer summed itself (``streams.store.own_inserts``) added to the kept sum,
    when there is one."""
    found = _kept_sum(conn)
    if found is not None:
        ph = placeholder(conn)
        conn.exec_driver_sql(
            f"UPDATE {mw_schedule_sum.name} SET total = {ph}, rows = {ph} WHERE name = {ph}",
            (format((found[0] + total) % _MODULUS, "x"), found[1] + rows, _OWNED),
        )


def _kept_sum(conn: Connection) -> tuple[int, int] | None:
    """The kept sum and the owned rows it counts, or None when there is none."""
    ph = placeholder(conn)
    found = conn.exec_driver_sql(f"SELECT total, rows FROM {mw_schedule_sum.name} WHERE name = {ph}", (_OWNED,)).first()
    return None if found is None else (int(found[0], 16), int(found[1]))


def drop_kept_sum(conn: Connection) -> None:
    """No kept sum: the next kept checksum reads the rows."""
    conn.exec_driver_sql(f"DELETE FROM {mw_schedule_sum.name}")


def _with_changes(conn: Connection, total: int, rows: int) -> tuple[int, int]:
    """The sum and count with the pending changes added, those changes deleted."""
    columns = ", ".join(CHECKSUM_COLUMNS)
    take = (
        f"DELETE FROM {mw_schedule_deltas.name} WHERE seq IN "
        f"(SELECT seq FROM {mw_schedule_deltas.name} ORDER BY seq LIMIT {FETCH_ROWS}) RETURNING sign, {columns}"
    )
    while changes := conn.exec_driver_sql(take).fetchall():
        for change in changes:
            sign = change[0]
            total += sign * row_hash(change[1:])
            rows += sign
    return total % _MODULUS, rows


def owned_row_count(conn: Connection) -> int:
    """The owned rows (pre-scheduled, skipped): a count over the status index."""
    sql = f"SELECT count(*) FROM email_schedules WHERE {_owned_sql(conn)}"
    return int(conn.exec_driver_sql(sql, _OWNED_PARAMS).scalar_one())


def _sum_of_rows(
    conn: Connection, helper_target: str | None = None, meanwhile: Meanwhile | None = None
) -> tuple[int, int]:
    """The sum of the owned rows' hashes and their number, in the table's own order.
    ``helper_target``: the database again, for a helper process to read half the rows
    when there are many (``streams.store.row_sums``)."""
    found = sum_in_two(conn, helper_target, sum_of_id_range, _MODULUS, meanwhile)
    if found is not None:
        return found
    return _sum_of_read(conn, "", ())


def sum_of_id_range(conn: Connection, start: int, end: int) -> tuple[int, int]:
    """``_sum_of_rows`` of the rows whose id is in ``[start, end)``."""
    ph = placeholder(conn)
    return _sum_of_read(conn, f" AND id >= {ph} AND id < {ph}", (start, end))


def _sum_of_read(conn: Connection, where: str, params: tuple[int, ...]) -> tuple[int, int]:
    # In the table's order: through the status index, SQLite would visit the rows at random.
    hint = " NOT INDEXED" if conn.dialect.name == "sqlite" else ""
    sql = f"SELECT {_selected(_present(conn))} FROM email_schedules{hint} WHERE {_owned_sql(conn)}{where}"
    total = rows = 0
    for page in driver_pages(conn, sql, (*_OWNED_PARAMS, *params), FETCH_ROWS):
        rows += len(page)
        total += sum(map(row_hash, page))
    return total % _MODULUS, rows


def _present(conn: Connection) -> set[str]:
    return {c["name"] for c in sa.inspect(conn).get_columns("email_schedules")}


def _selected(present: set[str]) -> str:
    """The checksum columns to select; one the database lacks (an unmigrated legacy
    database has no occurrence_key) as NULL."""
    return ", ".join(name if name in present else f"NULL AS {name}" for name in CHECKSUM_COLUMNS)


_OWNED_PARAMS = tuple(sorted(OWNED_STATUSES))  # exact case, like rules.statuses


def _owned_sql(conn: Connection) -> str:
    ph = placeholder(conn)
    return f"status IN ({', '.join(ph for _ in _OWNED_PARAMS)})"


def key_order_checksum(conn: Connection) -> str:
    """The digest of earlier versions: ``"sha256:<hex>"`` over the owned rows' checksum
    columns in key order (rows without a key first, by every column), each an orjson
    list.  For comparing with a checksum they recorded; it reads every row in key order."""
    present = _present(conn)
    digest = hashlib.sha256()
    # One update per row: joining orjson's bytes first measured ten times slower.
    update, dumps = digest.update, orjson.dumps
    for sql in _key_ordered_reads(conn, present):
        for rows in driver_pages(conn, sql, _OWNED_PARAMS, FETCH_ROWS):
            for row in rows:
                update(dumps(row))
    return f"sha256:{digest.hexdigest()}"


def _key_ordered_reads(conn: Connection, present: set[str]) -> list[str]:
    """The owned rows in key order, as one or two reads.

    Keys are unique, so rows with a key are in checksum order when in key order,
    which the key index gives without a sort; rows without one (legacy rows) sort
    first, by every column.
    """
    owned_sql = _owned_sql(conn)
    columns = _selected(present)
    # A missing column is the same NULL on every row: nothing to sort by.
    every_column = ", ".join(f"{n} ASC NULLS FIRST" for n in CHECKSUM_COLUMNS if n in present)
    if "occurrence_key" not in present:
        return [f"SELECT {columns} FROM email_schedules WHERE {owned_sql} ORDER BY {every_column}"]
    hint = ""
    if conn.dialect.name == "sqlite" and _has_index(conn, KEY_INDEX):
        hint = f" INDEXED BY {KEY_INDEX}"  # the planner prefers the status index and a sort
    return [
        f"SELECT {columns} FROM email_schedules WHERE occurrence_key IS NULL AND {owned_sql} ORDER BY {every_column}",
        f"SELECT {columns} FROM email_schedules{hint} WHERE occurrence_key IS NOT NULL "
        f"AND {owned_sql} ORDER BY occurrence_key",
    ]


def _has_index(conn: Connection, name: str) -> bool:
    return any(i.get("name") == name for i in sa.inspect(conn).get_indexes("email_schedules"))
