"""Newly placed emails (the movables) packed in arrays from the moment they are decided
(phase 1) until they are balanced (phase 2) and written (phase 3).

Millions of them fit in memory this way: a few numbers each, their profile (type,
priority, templates, campaign) and the tail of their occurrence key numbered once.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import fields
from datetime import date
from typing import Generic, TypeVar

from rules.catch_up import stable_hash
from rules.config import EFFECTIVE_DATE, Config
from rules.contact import Contact
from rules.contact_schedule import Decision
from rules.exclusion_window import contact_windows
from rules.load_balancing import (
    FLAG_AEP,
    FLAG_CATCH_UP,
    FLAG_EFFECTIVE_DATE,
    FLAG_KEPT,
    MOVED_DAILY_CAP,
    MOVED_SMOOTHING,
    NewPlacements,
)
from rules.occurrence import AEP, Occurrence
from rules.unexcluded import is_free_state
from rules.zip_state import USPS_CODES
from streams.store.schedules import ScheduleRow

_STATES = sorted(USPS_CODES)
_STATE_INDEX = {s: i for i, s in enumerate(_STATES)}

V = TypeVar("V")

# Profile: the email type, priority, email and SMS templates and campaign instance.
Profile = tuple[object, ...]

# Movables.packed(): placement arrays, column arrays, profile numbers and
# profiles, suffix numbers and suffixes, stored rows by index.
PackedMovables = tuple[
    tuple[array, ...],
    tuple[array, ...],
    array,
    list[Profile],
    array,
    list[str],
    dict[int, ScheduleRow],
]


class _Numbered(Generic[V]):
    """Values numbered in the order first seen: a few distinct ones, shared by many emails."""

    def __init__(self) -> None:
        self.numbers: dict[V, int] = {}
        self.values: list[V] = []

    def number(self, value: V) -> int:
        n = self.numbers.get(value)
        if n is None:
            n = self.numbers[value] = len(self.values)
            self.values.append(value)
        return n


class Movables:
    """Newly placed emails kept in arrays until balanced (phase 2), then written."""

    def __init__(self) -> None:
        self.p = NewPlacements()
        self.contact = array("q")
        self.existing = array("q")  # row id to update, 0 to insert
        self.profile = array("H")
        self.suffix = array("I")
        self.state = array("B")
        self.birth = array("i")  # ordinals, 0 when missing
        self.effective = array("i")
        self.profiles: _Numbered[Profile] = _Numbered()
        self.suffixes: _Numbered[str] = _Numbered()  # occurrence keys after the contact id
        # Stored rows of the movables that have one, for no-op checks.
        self.stored: dict[int, ScheduleRow] = {}
        self._iso_days: dict[int, str] = {}  # day ordinal -> 'YYYY-MM-DD' (rows)
        self._days: dict[int, tuple[int, int, int]] = {}  # day ordinal -> (year, month, day)

    def __len__(self) -> int:
        return len(self.p)

    def add(self, contact: Contact, d: Decision, stored: ScheduleRow | None) -> int:
        i = self.add_placed(contact, d.occurrence, d.send_date, d.catch_up, d.kept, d.existing_row_id)
        if stored is not None:
            self.stored[i] = stored
        return i

    def add_placed(
        self,
        contact: Contact,
        occ: Occurrence,
        send_date: date,
        catch_up: bool,
        kept: bool = False,
        existing_row_id: int | None = None,
    ) -> int:
        """An email placed on ``send_date`` (``add`` without a decision: ``rules.unexcluded``)."""
        pi = self.profiles.number(
            (occ.email_type, occ.priority, occ.email_template, occ.sms_template, occ.campaign_instance_id)
        )
        si = self.suffixes.number(occ.key[len(str(contact.id)) :])
        flags = (
            (FLAG_CATCH_UP if catch_up else 0)
            | (FLAG_EFFECTIVE_DATE if occ.email_type == EFFECTIVE_DATE else 0)
            | (FLAG_AEP if occ.email_type == AEP else 0)
            | (FLAG_KEPT if kept else 0)
        )
        i = self.p.add(
            send_date.toordinal(),
            occ.ideal_send_date.toordinal(),
            occ.event_date.toordinal(),
            occ.priority,
            stable_hash(occ.key),
            flags,
        )
        self.contact.append(contact.id)
        self.existing.append(existing_row_id or 0)
        self.profile.append(pi)
        self.suffix.append(si)
        self.state.append(_STATE_INDEX[contact.state])
        self.birth.append(contact.birth_date.toordinal() if contact.birth_date else 0)
        self.effective.append(contact.effective_date.toordinal() if contact.effective_date else 0)
        return i

    _COLUMNS = ("contact", "existing", "state", "birth", "effective")

    def packed(self) -> PackedMovables:
        """These emails as plain values (arrays, lists), for ``extend`` in another process."""
        return (
            tuple(getattr(self.p, f.name) for f in fields(NewPlacements)),
            tuple(getattr(self, name) for name in self._COLUMNS),
            self.profile,
            self.profiles.values,
            self.suffix,
            self.suffixes.values,
            self.stored,
        )

    def extend(self, packed: PackedMovables) -> int:
        """Append the emails of another ``Movables.packed()``; returns the index of the first."""
        placements, columns, profile, profile_list, suffix, suffix_list, stored = packed
        first = len(self.p)
        for f, placement_array in zip(fields(NewPlacements), placements, strict=True):
            getattr(self.p, f.name).extend(placement_array)
        for name, column in zip(self._COLUMNS, columns, strict=True):
            getattr(self, name).extend(column)
        # Their profile and suffix numbers are theirs: renumber into ours.
        profiles = [self.profiles.number(x) for x in profile_list]
        self.profile.extend(array("H", [profiles[i] for i in profile]))
        suffixes = [self.suffixes.number(x) for x in suffix_list]
        self.suffix.extend(array("I", [suffixes[i] for i in suffix]))
        for i, values in stored.items():
            self.stored[first + i] = values
        return first

    def key(self, i: int) -> str:
        return f"{self.contact[i]}{self.suffixes.values[self.suffix[i]]}"

    def email_type(self, i: int) -> str:
        return str(self.profiles.values[self.profile[i]][0])

    def excluded_fn(self, config: Config) -> Callable[[int, int], bool]:
        # States without a window or year-round rule, dated or not, exclude no day: most of
        # an AEP season's cap moves are theirs, and need no calendar.
        free = [is_free_state(s, config) for s in _STATES]

        def excluded(i: int, day: int) -> bool:
            if free[self.state[i]]:
                return False
            b, e = self.birth[i], self.effective[i]
            windows = contact_windows(
                _STATES[self.state[i]],
                date.fromordinal(b) if b else None,
                date.fromordinal(e) if e else None,
                config,
            )
            return windows.exclusion_on(date.fromordinal(day)) is not None

        return excluded

    def row(self, i: int, send_time: str, run_id: str, status: str, skip_reason: str | None) -> ScheduleRow:
        """The row email ``i`` is written as, placed where balancing left it."""
        email_type, priority, email_tpl, sms_tpl, instance = self.profiles.values[self.profile[i]]
        note: str | None = self._note(i)
        placed_run: str | None = run_id
        stored = self.stored.get(i)
        if self.p.flags[i] & FLAG_KEPT and stored is not None:
            # A kept placement (here only for the frequency limit) keeps its origin.
            note, placed_run = stored.catchup_note, stored.placed_run_id
        year, month, day = self._ymd(self.p.events[i])
        # In field order: phase 3 builds one per newly placed email (tests/streams/store/test_schedule_rows.py).
        return ScheduleRow._make(
            (
                self.key(i),
                self.contact[i],
                str(email_type),
                self._iso(self.p.dates[i]),
                send_time,
                status,
                skip_reason,
                int(priority),  # type: ignore[call-overload]
                instance,
                email_tpl,
                sms_tpl,
                year,
                month,
                day,
                note,
                None,  # metadata: newly placed emails carry none
                self._iso(self.p.ideal[i]),
                placed_run,
            )
        )

    def _iso(self, ordinal: int) -> str:
        """A day ordinal's ISO text, made once: a sweep's millions of rows fall on a few
        hundred days (3.5 µs a row went to building rows at 3M in AEP season)."""
        text = self._iso_days.get(ordinal)
        if text is None:
            text = self._iso_days[ordinal] = date.fromordinal(ordinal).isoformat()
        return text

    def _ymd(self, ordinal: int) -> tuple[int, int, int]:
        found = self._days.get(ordinal)
        if found is None:
            d = date.fromordinal(ordinal)
            found = self._days[ordinal] = (d.year, d.month, d.day)
        return found

    def _note(self, i: int) -> str | None:
        """Why email ``i`` is not on its ideal date, when it is not."""
        p = self.p
        moved = p.moved[i]
        if moved == MOVED_SMOOTHING:
            why = "moved by effective-date smoothing"
        elif moved == MOVED_DAILY_CAP:
            why = "moved by daily cap"
        elif p.flags[i] & FLAG_CATCH_UP:
            why = "catch-up"
        else:
            return None
        return f"{why}: ideal {self._iso(p.ideal[i])}, placed {self._iso(p.dates[i])}"
