"""Stable hashing and catch-up dates (SPEC section 5, rule 2).

An occurrence whose ideal send date passed less than ``lookback`` days ago,
and whose event is still ahead, is caught up: spread over the next few days
by a hash of its key so that a backlog does not land on one day.  The hash
must be the same on every machine and every run (never Python's ``hash()``).
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta


def stable_hash(key: str) -> int:
    """A 32-bit unsigned hash of an occurrence key, identical everywhere."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=4).digest(), "big")


def catch_up_date(key: str, event_date: date, as_of: date, spread_days: int) -> date:
    """``T + (h mod k)`` with ``k = max(1, min(spread_days, E - T))``.

    ``k <= E - T`` keeps a catch-up before its event; a post-window email
    (whose event date is its ideal date, already past) gets ``k = 1``: today.
    """
    k = max(1, min(spread_days, (event_date - as_of).days))
    return as_of + timedelta(days=stable_hash(key) % k)
