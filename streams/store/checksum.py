"""The schedule checksum (SPEC section 9): a digest of the scheduler's decisions.

Two databases whose owned rows decide the same emails have the same checksum,
whatever their row ids, run ids, timestamps, metadata or insertion order.
`mailwindow replay` relies on it to prove a rebuilt database equals the live one.
"""

from __future__ import annotations

import hashlib

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rules.statuses import OWNED_STATUSES
from streams.store.schedules import DECISION_COLUMNS

# What a checksum leaves out of a row: how it came to be placed (its catch-up
# note, ideal date and placing run) and its metadata.
NOT_DIGESTED = frozenset({"catchup_note", "metadata", "ideal_send_date", "placed_run_id"})
# The decision columns that say what the email is, in digest and sort order: the key
# first (``ScheduleRow`` keeps them in this order; reordering them changes every checksum).
CHECKSUM_COLUMNS: tuple[str, ...] = tuple(c for c in DECISION_COLUMNS if c not in NOT_DIGESTED)

# Rows fetched per round trip: the digest never holds the table in memory.
FETCH_ROWS = 5_000


def schedule_checksum(conn: Connection) -> str:
    """``"sha256:<hex>"`` over the ``CHECKSUM_COLUMNS`` of the owned schedule rows.

    Rows are read in the order of those columns (NULLs first), each
    encoded as an orjson list.  A column the database lacks (an unmigrated
    legacy database has no occurrence_key) reads as NULL, so migrating does
    not change the checksum.
    """
    present = {c["name"] for c in sa.inspect(conn).get_columns("email_schedules")}
    schedules = sa.table(
        "email_schedules", *(sa.column(name) for name in CHECKSUM_COLUMNS if name in present)
    )
    selected = [
        schedules.c[name] if name in present else sa.null().label(name) for name in CHECKSUM_COLUMNS
    ]
    query = (
        sa.select(*selected)
        .where(schedules.c.status.in_(sorted(OWNED_STATUSES)))  # exact case, like rules.statuses
        # A missing column is the same NULL on every row: nothing to sort by.
        .order_by(*(schedules.c[n].asc().nulls_first() for n in CHECKSUM_COLUMNS if n in present))
    )
    digest = hashlib.sha256()
    result = conn.execution_options(yield_per=FETCH_ROWS).execute(query)
    for partition in result.partitions():
        for row in partition:
            digest.update(orjson.dumps(list(row)))
    return f"sha256:{digest.hexdigest()}"
