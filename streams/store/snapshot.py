"""A copy of a whole agency database as an SQLite file: the audit baseline's snapshot.

An SQLite database is copied with ``VACUUM INTO`` (one consistent read, while
other connections go on writing).  A PostgreSQL database is copied table by
table into a fresh SQLite file with the agency schema, in one repeatable-read
transaction, so the copy is of one moment too.  Either way the copy has every
agency table and the scheduler's own (``mw_*``), history included, and the
same schedule checksum (the checksum is the same on both dialects).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from streams.store.copy import copy_whole
from streams.store.engine import Store, StoreError, new_agency_database, open_store


def snapshot_to_sqlite(store: Store, path: Path) -> None:
    """Write the database behind ``store`` to the new SQLite file ``path``; ``store`` may be
    opened read-only (``open_store(..., read_only=True)``): nothing is written to it."""
    if path.exists():
        raise StoreError(f"{path} exists: a snapshot is written to a new file")
    path.parent.mkdir(parents=True, exist_ok=True)
    if store.is_sqlite:
        raw = store.engine.raw_connection()  # VACUUM runs outside any transaction
        driver = raw.driver_connection
        assert driver is not None
        try:
            if store.read_only:
                # query_only refuses VACUUM INTO (it writes, if only to the new file); the
                # store's file stays opened mode=ro, so SQLite still cannot write to it.
                driver.execute("PRAGMA query_only=OFF")
            try:
                driver.execute("VACUUM INTO ?", (str(path),))
            finally:
                if store.read_only:
                    driver.execute("PRAGMA query_only=ON")
        finally:
            raw.close()
        return
    new_agency_database(path)
    with open_store(str(path)) as target:
        copy_whole(store, target)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"
