"""What phase 1 leaves for phases 2 and 3: the chunks' results, taken in chunk order.

Taking them in chunk order, whichever process decided them, is what makes a run
with worker processes give the rows, counters and summary of a run in one.
"""

from __future__ import annotations

import hashlib

from streams.store.schedules import WriteBatch
from streams.sweep.balance import WatchedContact
from streams.sweep.chunks import ChunkResult
from streams.sweep.movables import Movables
from streams.sweep.summary import SweepSummary


class Decided:
    """The newly placed emails and what balancing and the final writes need of phase 1."""

    def __init__(self, volume: dict[int, int], ed_volume: dict[int, int]) -> None:
        self.volume = volume  # day ordinal -> emails counting toward the daily cap
        self.ed_volume = ed_volume
        self.movables = Movables()
        self.frequency_watch: dict[int, WatchedContact] = {}  # by contact
        self.campaign_targets: list[tuple[int, str]] = []
        self._contacts_hash = hashlib.sha256()

    def take(self, r: ChunkResult, summary: SweepSummary) -> WriteBatch:
        """A chunk's counters, volumes and movables into the run; the writes it needs."""
        self._contacts_hash.update(r.contacts_json)
        summary.contacts_processed += r.contacts
        summary.add_invalid(r.invalid, r.invalid_examples)
        summary.add_warnings(r.warnings, r.warning_examples)
        summary.rows_inserted += len(r.inserts)
        summary.rows_updated += len(r.updates)
        summary.rows_unchanged += r.unchanged
        summary.rows_deleted += len(r.deletes)
        for (email_type, status), n in r.counts.items():
            summary.count(email_type, status, n)
        for volume, change in ((self.volume, r.volume), (self.ed_volume, r.ed_volume)):
            for day, n in change.items():
                volume[day] = volume.get(day, 0) + n
        first = self.movables.extend(r.movables)
        for contact_id, fixed, indices in r.frequency_watch:
            self.frequency_watch[contact_id] = (fixed, [first + i for i in indices])
        self.campaign_targets.extend(r.campaign_targets)
        return WriteBatch(r.inserts, r.updates, r.deletes)

    def contacts_checksum(self) -> str:
        """The digest of every contact read, in the order read."""
        return "sha256:" + self._contacts_hash.hexdigest()
