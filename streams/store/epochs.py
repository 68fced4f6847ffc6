"""The decision day, and what makes the agents' result independent of how events arrive.

Every decision is made as of a day ``T`` (SPEC section 1).  The agents decide
as of the **decision day**: the as-of date of the latest completed full sweep,
or, before the first, of the deployment's audit baseline (``streams.worker.baseline``).
Each of those starts an **epoch** (``mw_epochs``), and each is on an audit
topic (``sweep-runs``, ``baselines``) with the input offsets applied before it,
so replay decides every event as of the day live did.  No decision reads the
wall clock; an event's own time says when its fact happened (a click, a
contact version), never which day the scheduler decides for.

Why not the event's own day: events of one contact arrive out of their time
order (another topic's backlog after a restart, a late webhook), and a
decision made as of an earlier day leaves rows behind (a placement kept, a
row become history) that deciding once as of the later day would not.  The
result would depend on the order of arrival.

Within an epoch, a contact's rows are a function of two things only: its rows
when the epoch first decided it (its **base**, kept in ``mw_epoch_base``) and
its facts now (contact version, clicks, answers, campaign targets, the
sending side's statuses).  Each time the agents decide a contact again, its
rows are first put back to the base (with the statuses the sender reported
since), then decided: what earlier batches of the same day decided leaves no
trace.  So the rows do not depend on how the day's events were interleaved
across topics and partitions, batched, or redelivered after a crash.  A sweep
ends the epoch; the next one starts from the rows as they are then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import orjson
from sqlalchemy import Connection, text

from streams.store.bulk import driver_read, driver_rows
from streams.store.schedules import placeholder

Row = dict[str, object]  # an email_schedules row, every column, by name

# Stamped by the legacy trigger on every update: never put back, never compared.
_STAMPED = "updated_at"


class NoDecisionDay(RuntimeError):
    """No baseline and no sweep yet: the agents do not know which day to decide for."""


@dataclass(frozen=True)
class Epoch:
    epoch_id: int
    as_of: date
    kind: str  # baseline | sweep
    run_id: str | None


def current_epoch(conn: Connection) -> Epoch | None:
    row = conn.execute(
        text("SELECT epoch_id, as_of, kind, run_id FROM mw_epochs ORDER BY epoch_id DESC LIMIT 1")
    ).first()
    if row is None:
        return None
    return Epoch(int(row[0]), date.fromisoformat(str(row[1])), str(row[2]), row[3])


def require_epoch(conn: Connection) -> Epoch:
    epoch = current_epoch(conn)
    if epoch is None:
        raise NoDecisionDay(
            "no decision day: the database has no audit baseline and no sweep yet "
            "(record one with `mailwindow baseline`; the worker records one when it starts)"
        )
    return epoch


def start_epoch(conn: Connection, as_of: date, kind: str, run_id: str | None = None) -> Epoch:
    """A new decision day; the bases of the previous one are dropped."""
    last = current_epoch(conn)
    epoch = Epoch((last.epoch_id + 1) if last else 1, as_of, kind, run_id)
    conn.execute(
        text(
            "INSERT INTO mw_epochs (epoch_id, as_of, kind, run_id, started_at) "
            "VALUES (:e, :a, :k, :r, :t)"
        ),
        {
            "e": epoch.epoch_id,
            "a": as_of.isoformat(),
            "k": kind,
            "r": run_id,
            "t": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        },
    )
    conn.execute(text("DELETE FROM mw_epoch_base"))
    return epoch


def fetch_full_rows(conn: Connection, contact_ids: Sequence[int]) -> dict[int, list[Row]]:
    """Every email_schedules row of these contacts, every column."""
    out: dict[int, list[Row]] = {cid: [] for cid in contact_ids}
    for start in range(0, len(contact_ids), 500):
        part = tuple(contact_ids[start : start + 500])
        marks = ", ".join(placeholder(conn) for _ in part)
        names, found = driver_read(conn, f"SELECT * FROM email_schedules WHERE contact_id IN ({marks}) ORDER BY id", part)
        for values in found:
            row = dict(zip(names, values, strict=True))
            out.setdefault(int(row["contact_id"]), []).append(row)  # type: ignore[call-overload]
    return out


def load_bases(conn: Connection, epoch_id: int, contact_ids: Sequence[int]) -> dict[int, list[Row]]:
    out: dict[int, list[Row]] = {}
    for start in range(0, len(contact_ids), 500):
        part = tuple(contact_ids[start : start + 500])
        marks = ", ".join(placeholder(conn) for _ in part)
        for cid, columns, values in driver_rows(
            conn,
            "SELECT contact_id, row_columns, row_values FROM mw_epoch_base "
            f"WHERE epoch_id = {placeholder(conn)} AND contact_id IN ({marks})",
            (epoch_id, *part),
        ):
            names = orjson.loads(columns)
            out[int(cid)] = [dict(zip(names, v, strict=True)) for v in orjson.loads(values)]
    return out


def save_bases(conn: Connection, epoch_id: int, bases: Mapping[int, list[Row]]) -> None:
    """The contacts' rows as this epoch first found them (a contact without rows too)."""
    if not bases:
        return
    params = []
    for cid, rows in bases.items():
        names = list(rows[0]) if rows else []
        params.append(
            (
                cid,
                epoch_id,
                orjson.dumps(names).decode(),
                orjson.dumps([[r[n] for n in names] for r in rows]).decode(),
            )
        )
    ph = placeholder(conn)
    conn.exec_driver_sql(
        "INSERT INTO mw_epoch_base (contact_id, epoch_id, row_columns, row_values) "
        f"VALUES ({ph}, {ph}, {ph}, {ph})",
        params,
    )


def put_back(conn: Connection, current: Iterable[Row], target: Iterable[Row]) -> int:
    """Make a contact's stored rows ``target`` (matched by id) with the fewest writes.

    Not a decision: it undoes the current epoch's own decisions, so no status
    guard applies (a row the sender reported on is put back as the base had it
    and the report applied again, both by the caller).  Returns the writes made.
    """
    now = {int(r["id"]): _compared(r) for r in current}  # type: ignore[call-overload]
    want = {int(r["id"]): _compared(r) for r in target}  # type: ignore[call-overload]
    ph = placeholder(conn)
    writes = 0
    gone = [(i,) for i in now if i not in want]
    if gone:
        conn.exec_driver_sql(f"DELETE FROM email_schedules WHERE id = {ph}", gone)
        writes += len(gone)
    for row_id, row in want.items():
        old = now.get(row_id)
        if old == row:
            continue
        names = list(row)
        if old is None:
            conn.exec_driver_sql(
                f"INSERT INTO email_schedules ({', '.join(names)}) VALUES ({', '.join(ph for _ in names)})",
                tuple(row[n] for n in names),
            )
        else:
            changed = [n for n in names if n != "id" and old.get(n) != row[n]]
            conn.exec_driver_sql(
                f"UPDATE email_schedules SET {', '.join(f'{n} = {ph}' for n in changed)} WHERE id = {ph}",
                (*(row[n] for n in changed), row_id),
            )
        writes += 1
    return writes


def _compared(row: Row) -> Row:
    return {n: v for n, v in row.items() if n != _STAMPED}
