"""A simulated year of daily sweeps, each checked against a full re-decision (SPEC section 9).

Which contacts a sweep decides (the pre-filter, or anything narrower) is an
optimisation, never a change of result: after every morning's sweep, a ``--full-scan``
sweep as of the same day, on a copy of the database, must change nothing.  Unit tests compare the two on one day; the defects that matter show
across days, after a day of events decided by the agents as of the previous sweep's
day.  So this test runs an agency every day from 2027-12-20 to 2028-12-31 (New Year
twice in the range, February 29 of a leap year, the AEP season of September 15, 2028)
the way it is really run:

- morning: the sweep (``run_sweep``), then the check: the database copied with SQLite's
  backup API, a full-scan sweep of the copy as of the same day, and the two
  ``schedule_checksum`` values compared; on a difference the message names the day
  and the first differing rows, by occurrence key;
- during the day, through the worker's own per-batch step (``BatchProcessor``, one
  for the whole run as in the worker's database process): contact edits (birth date,
  state and ZIP, effective date, a broken email address), deletes, contacts brought
  back, new contacts, the sending side's statuses, clicks and health answers, a
  cancellation of campaign targets;
- the sending side sends the day's ``pre-scheduled`` rows: most reported at once through
  ``email-status`` events or written by a direct UPDATE of ``status`` and
  ``actual_send_datetime`` (as an agency's sender software does); some reported a day
  or two late, some failed (half of them sent again the next day), some sent a day
  late, a few never; a few bounce one to three days later;
- on a few days, campaign work as ``mailwindow campaign`` does it
  (``streams.admin.campaigns``): new instances, targets imported from a CSV file,
  date changes (with ``--apply``'s partial sweep, and without), type changes.  The
  worker's campaign book is not reloaded for them (as in a running worker).

The agency is a generated one (``synthetic.generate``: 300 contacts with the dirt of
real data, campaign instances, initial emails awaiting follow-ups) plus crafted
contacts: February 29 birthdays (TX, CA, NV), CA and NV windows around New Year, NY
and CT (year-round), effective dates on December 31 and January 1 (one in MO).

Random changes come from ``random.Random(seed)``; the seed is in the test's id.  The
sweeps run in this process (``workers=1``; the result is the same for any number).

Also here: days without a sweep (the first sweep after a gap must still equal a full
re-decision), and proof that the check can fail: sweeps that leave out some of the
contacts they chose to decide are caught on the first day they do.
"""

from __future__ import annotations

import csv
import itertools
import random
import re
import sqlite3
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from rules.config import DEFAULT_CONFIG
from streams.admin import campaigns as admin
from streams.store.checksum import CHECKSUM_COLUMNS, schedule_checksum
from streams.store.engine import Store, open_store
from streams.sweep import run as sweep_run
from streams.sweep.run import run_sweep
from streams.sweep.summary import SweepOptions
from streams.worker.batch import BatchProcessor, Message
from synthetic.generate import generate_database
from tests.legacy_db import add_contacts, copy_database

# The year's random changes.  One seed keeps the test near 100 s on a 2-core machine (a
# full-scan sweep every day is most of it); each seed added costs as much again (915
# passes too).
SEEDS = (20280229,)
START = date(2027, 12, 20)  # the generated agency's as-of date, and the first sweep
END = date(2028, 12, 31)
CONTACTS = 300
SHOWN_DIFFERENCES = 10
# Days the sweep does not run in test_days_without_a_sweep.
OUTAGES = frozenset(
    {date(2027, 12, 25), date(2028, 1, 1), *(date(2028, 1, 12) + timedelta(days=i) for i in range(6))}
)

# (ZIP, state column) a contact can move to: states with windows, year-round ones, none.
PLACES = (
    ("90210", "CA"), ("94103", "CA"), ("89501", "NV"), ("89101", "NV"), ("10001", "NY"),
    ("06103", "CT"), ("02108", "MA"), ("98101", "WA"), ("63101", "MO"), ("97201", "OR"),
    ("23219", "VA"), ("83702", "ID"), ("40202", "KY"), ("21201", "MD"), ("73102", "OK"),
    ("75201", "TX"), ("33101", "FL"), (None, "ca"), ("", "NV"), ("12207", None),
)  # fmt: skip

# Crafted contacts (ids after the generated ones).
CRAFTED = [
    {"id": 301, "zip_code": "75201", "state": "TX", "birth_date": "1952-02-29"},
    {"id": 302, "zip_code": "90210", "state": "CA", "birth_date": "1956-02-29",
     "effective_date": "2016-03-01", "phone_number": "310-555-0102"},
    {"id": 303, "zip_code": "89501", "state": "NV", "birth_date": "1948-02-29"},
    {"id": 304, "zip_code": "89101", "state": "NV", "birth_date": "1950-03-20",
     "effective_date": "2018-01-01"},
    {"id": 305, "zip_code": "94103", "state": "CA", "birth_date": "1958-01-01",
     "effective_date": "2015-12-31"},
    {"id": 306, "zip_code": "10001", "state": "NY", "birth_date": "1955-06-10",
     "effective_date": "2015-01-01"},
    {"id": 307, "zip_code": "06103", "state": "CT", "birth_date": "1949-12-31",
     "effective_date": "2020-12-31"},
    {"id": 308, "zip_code": "75201", "state": "TX", "birth_date": "1951-07-04",
     "effective_date": "2019-12-31"},
    {"id": 309, "zip_code": "63101", "state": "MO", "birth_date": "1953-10-02",
     "effective_date": "2018-01-01"},
    {"id": 310, "zip_code": "33101", "state": "FL", "birth_date": "1947-12-25",
     "effective_date": "2021-01-01"},
    {"id": 311, "zip_code": "90210", "state": "CA", "birth_date": "1957-12-31",
     "effective_date": "2017-01-01"},
    {"id": 312, "zip_code": "89501", "state": "NV", "birth_date": "1954-01-15",
     "effective_date": "2016-02-29"},
]  # fmt: skip
CRAFTED_IDS = [int(str(c["id"])) for c in CRAFTED]


def days(first: date, last: date) -> Iterator[date]:
    d = first
    while d <= last:
        yield d
        d += timedelta(days=1)


# -- the check ----------------------------------------------------------------------


def owned_rows(db: Path) -> dict[str, tuple[object, ...]]:
    """The owned rows' checksum columns, by occurrence key (a legacy row without one: by id)."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            f"SELECT id, {', '.join(CHECKSUM_COLUMNS)} FROM email_schedules "
            "WHERE status IN ('pre-scheduled', 'skipped')"
        ).fetchall()
    finally:
        con.close()
    out: dict[str, tuple[object, ...]] = {}
    for row_id, *values in rows:
        key = values[0] if values[0] is not None else f"(no key) row {row_id}"
        out[str(key)] = tuple(values)
    return out


def differences(daily: Path, full: Path) -> list[str]:
    """One line per occurrence key whose owned row differs, in key order."""
    a, b = owned_rows(daily), owned_rows(full)
    lines = []
    for key in sorted(a.keys() | b.keys()):
        if a.get(key) != b.get(key):
            lines.append(f"  {key}:\n    daily sweep: {a.get(key)}\n    full scan:   {b.get(key)}")
    return lines


def check_against_full_scan(store: Store, db: Path, copy: Path, day: date, label: str) -> None:
    """A full-scan sweep as of ``day`` on a copy of ``db`` changes nothing."""
    copy_database(db, copy)
    other = open_store(str(copy))
    try:
        run_sweep(other, DEFAULT_CONFIG, SweepOptions(as_of=day, full_scan=True, workers=1))
        with other.engine.connect() as conn:
            full = schedule_checksum(conn)
    finally:
        other.close()
    with store.engine.connect() as conn:
        daily = schedule_checksum(conn)
    if daily != full:
        diff = differences(db, copy)
        shown = "\n".join(diff[:SHOWN_DIFFERENCES])
        raise AssertionError(
            f"{label}, day {day}: the daily sweep left rows a --full-scan re-decision changes "
            f"({len(diff)} occurrence keys differ; first {min(len(diff), SHOWN_DIFFERENCES)}, "
            f"columns {CHECKSUM_COLUMNS}):\n{shown}"
        )


# -- the agency and its year ------------------------------------------------------------


def make_agency(db: Path, seed: int) -> None:
    generate_database(
        str(db), CONTACTS, seed=seed, as_of=START, campaign_instances=5, campaign_share=0.15,
        followup_initials=20,
    )
    add_contacts(db, [{"email": f"crafted{c['id']}@example.com", **c} for c in CRAFTED])


def _iso_date(raw: object) -> str | None:
    """A stored date as the contacts topic carries it: YYYY-MM-DD, or null when unusable."""
    if raw is None:
        return None
    try:
        return date.fromisoformat(str(raw).strip()[:10]).isoformat()
    except ValueError:
        return None


def _anniversary_near(rng: random.Random, day: date, first: int, last: int, years: range) -> str:
    """A date of a year in ``years`` whose month and day fall ``first..last`` days after ``day``."""
    target = day + timedelta(days=rng.randint(first, last))
    year = rng.choice(list(years))
    if (target.month, target.day) == (2, 29) and year % 4:
        year -= year % 4  # a leap year: February 29 stays possible
    return target.replace(year=year).isoformat()


class Year:
    """The agency's days: sweeps, events, sends and campaign work, all from one seed."""

    def __init__(self, db: Path, work: Path, seed: int) -> None:
        self.db = db
        self.work = work
        self.copy = work / "full-scan-copy.db"
        self.seed = seed
        self.rng = random.Random(seed)
        self.store = open_store(str(db))
        self.store.migrate()
        self.processor: BatchProcessor | None = None  # the worker, once a sweep started a day
        self.offsets = itertools.count()
        self.event_ids = itertools.count(1)
        self.minute = 0
        self.new_ids = itertools.count(1001)
        self.deleted: list[int] = []
        self.instances: dict[str, int] = {}
        # day -> what the sending side does or reports that day about an earlier row:
        # (event or sql, row id, contact, occurrence key, status, send time or None)
        self.later: dict[date, list[tuple[str, int, int, str | None, str, str | None]]] = {}
        self.stats: dict[str, int] = dict.fromkeys(
            ("edits", "deletes", "returns", "new", "sent by event", "sent by sql", "reported late",
             "failed", "sent late", "unsent", "bounced", "clicks", "answers", "campaign changes",
             "days checked"), 0,
        )  # fmt: skip

    def close(self) -> None:
        self.store.close()

    # -- one day ---------------------------------------------------------------

    def run(self, first: date, last: date, outages: frozenset[date] = frozenset()) -> None:
        """Every day from ``first`` to ``last``; on ``outages`` no sweep runs (nor the check),
        the rest of the day goes on (the agents decide as of the last sweep's day)."""
        for day in days(first, last):
            if day not in outages:
                run_sweep(self.store, DEFAULT_CONFIG, SweepOptions(as_of=day, workers=1))
                check_against_full_scan(self.store, self.db, self.copy, day, f"seed {self.seed}")
                self.stats["days checked"] += 1
            if self.processor is None:
                self.processor = BatchProcessor(self.store, DEFAULT_CONFIG)
            self.minute = 0
            self.late_news(day)
            self.contact_changes(day, self.rng.choice((0, 1, 1, 2, 3)))
            sent = self.send(day)
            self.behaviour(day, sent)
            self.contact_changes(day, self.rng.choice((0, 0, 1, 2)))
            self.campaign_work(day)

    # -- events through the worker's step ----------------------------------------------

    def at(self, day: date, hour: int = 9) -> str:
        """The next event time of the day (Central standard time; each later than the last)."""
        self.minute += 1
        h, m = divmod(hour * 60 + self.minute, 60)
        return f"{day.isoformat()}T{min(h, 23):02d}:{m:02d}:00-06:00"

    def publish(self, topic: str, key: int, *values: dict[str, object]) -> None:
        assert self.processor is not None
        messages = [
            Message(topic, 0, next(self.offsets), str(key).encode(), orjson.dumps(v)) for v in values
        ]
        result = self.processor.process(messages)
        assert result.deadletters == [], result.deadletters

    def event_id(self) -> str:
        return f"sim-{self.seed}-{next(self.event_ids)}"

    def upsert(self, day: date, contact_id: int, contact: dict[str, object]) -> None:
        self.publish(
            "contacts", contact_id,
            {"event_id": self.event_id(), "occurred_at": self.at(day), "op": "upsert",
             "contact_id": contact_id, "contact": contact},
        )  # fmt: skip

    def rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self.store.engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql, params).fetchall()]

    def contact_changes(self, day: date, count: int) -> None:
        rng = self.rng
        for _ in range(count):
            roll = rng.random()
            if roll < 0.12:
                self.new_contact(day)
            elif roll < 0.2:
                self.delete(day)
            elif roll < 0.24 and self.deleted:
                self.bring_back(day)
            else:
                self.edit(day)

    def edit(self, day: date) -> None:
        rng = self.rng
        ids = [r[0] for r in self.rows("SELECT id FROM contacts ORDER BY id")]
        # the crafted contacts change more often than the others
        cid: int = rng.choice(CRAFTED_IDS) if rng.random() < 0.25 else rng.choice(ids)
        if cid not in ids:  # deleted
            cid = rng.choice(ids)
        (row,) = self.rows(
            "SELECT email, zip_code, state, birth_date, effective_date, phone_number, first_name, "
            "last_name FROM contacts WHERE id = ?",
            (cid,),
        )
        email, zip_code, state, birth, effective, phone, first, last = row
        contact: dict[str, object] = {
            "email": email if isinstance(email, str) else f"c{cid}@example.com",
            "zip_code": zip_code, "state": state, "birth_date": _iso_date(birth),
            "effective_date": _iso_date(effective), "phone_number": phone,
            "first_name": first, "last_name": last,
        }  # fmt: skip
        what = rng.random()
        if what < 0.35:  # a birthday soon, or just past (a catch-up), or a leap day
            contact["birth_date"] = (
                f"{rng.choice((1948, 1952, 1956))}-02-29"
                if rng.random() < 0.1
                else _anniversary_near(rng, day, -10, 75, range(1940, 1961))
            )
        elif what < 0.65:
            contact["zip_code"], contact["state"] = rng.choice(PLACES)
        elif what < 0.9:  # an anniversary soon, a policy starting next year, or none
            r = rng.random()
            contact["effective_date"] = (
                None if r < 0.1
                else (day + timedelta(days=rng.randint(20, 200))).isoformat() if r < 0.2
                else _anniversary_near(rng, day, -5, 80, range(2005, 2027))
            )  # fmt: skip
        elif what < 0.95:  # an unusable address: the contact becomes invalid
            contact["email"] = f"broken-{cid}"
        else:  # fixed again
            contact["email"] = f"fixed{cid}@example.com"
        self.upsert(day, cid, contact)
        self.stats["edits"] += 1

    def new_contact(self, day: date) -> None:
        rng = self.rng
        cid = next(self.new_ids)
        zip_code, state = rng.choice(PLACES)
        self.upsert(day, cid, {
            "email": f"new{cid}@example.com", "zip_code": zip_code, "state": state,
            "birth_date": _anniversary_near(rng, day, -12, 120, range(1940, 1961)),
            "effective_date": (
                None if rng.random() < 0.2 else _anniversary_near(rng, day, -40, 300, range(2008, 2027))
            ),
            "phone_number": "555-0100" if rng.random() < 0.5 else None,
            "first_name": "New", "last_name": f"Contact{cid}",
        })  # fmt: skip
        self.stats["new"] += 1

    def delete(self, day: date) -> None:
        ids = [r[0] for r in self.rows("SELECT id FROM contacts ORDER BY id")]
        cid = self.rng.choice(ids)
        self.publish(
            "contacts", cid,
            {"event_id": self.event_id(), "occurred_at": self.at(day), "op": "delete", "contact_id": cid},
        )  # fmt: skip
        self.deleted.append(cid)
        self.stats["deletes"] += 1

    def bring_back(self, day: date) -> None:
        rng = self.rng
        cid = self.deleted.pop(rng.randrange(len(self.deleted)))
        zip_code, state = rng.choice(PLACES)
        self.upsert(day, cid, {
            "email": f"back{cid}-{day:%Y%m%d}@example.com", "zip_code": zip_code, "state": state,
            "birth_date": _anniversary_near(rng, day, -8, 60, range(1940, 1961)),
            "effective_date": _anniversary_near(rng, day, 0, 365, range(2008, 2027)),
            "phone_number": None, "first_name": "Back", "last_name": f"Again{cid}",
        })  # fmt: skip
        self.stats["returns"] += 1

    # -- the sending side ----------------------------------------------------------

    def send(self, day: date) -> list[tuple[int, int]]:
        """The day's rows go out: (row id, contact) of those sent today.

        Reported at once by an event, or written by the sender software itself; a few
        reported a day or two late (a delayed webhook), failed (half retried the next
        day), sent a day late (the sender was down) or never; a few bounce later.
        """
        rng = self.rng
        due = self.rows(
            "SELECT id, contact_id, occurrence_key FROM email_schedules "
            "WHERE status = 'pre-scheduled' AND scheduled_send_date = ? ORDER BY id",
            (day.isoformat(),),
        )
        sent: list[tuple[int, int]] = []
        by_sql: list[tuple[str, str, int]] = []
        events: list[tuple[int, dict[str, object]]] = []
        for row_id, cid, key in due:
            roll = rng.random()
            hhmm = f"08:{30 + rng.randrange(20):02d}"
            moment, stamp = f"{day.isoformat()}T{hhmm}:00-06:00", f"{day.isoformat()} {hhmm}:00"
            if key is not None and roll < 0.40:
                events.append((cid, self.status_event(day, cid, key, "sent", moment)))
                if rng.random() < 0.5:
                    events.append((cid, self.status_event(day, cid, key, "delivered", moment)))
                self.maybe_bounce(day, "event", row_id, cid, key)
                sent.append((row_id, cid))
                self.stats["sent by event"] += 1
            elif key is not None and roll < 0.45:  # sent now, reported later
                self.later.setdefault(day + timedelta(days=rng.randint(1, 2)), []).append(
                    ("event", row_id, cid, key, "sent", moment)
                )
                sent.append((row_id, cid))
                self.stats["reported late"] += 1
            elif key is not None and roll < 0.49:
                events.append((cid, self.status_event(day, cid, key, "failed", None)))
                if rng.random() < 0.5:  # sent again tomorrow
                    self.later.setdefault(day + timedelta(days=1), []).append(
                        ("event", row_id, cid, key, "sent", None)
                    )
                self.stats["failed"] += 1
            elif roll < 0.95:
                by_sql.append(("sent" if rng.random() < 0.5 else "delivered", stamp, row_id))
                self.maybe_bounce(day, "sql", row_id, cid, key)
                sent.append((row_id, cid))
                self.stats["sent by sql"] += 1
            elif roll < 0.98:  # the sender was down: out tomorrow
                self.later.setdefault(day + timedelta(days=1), []).append(
                    ("sql", row_id, cid, key, "sent", None)
                )
                self.stats["sent late"] += 1
            else:
                self.stats["unsent"] += 1
        self.write_statuses(by_sql)
        self.report(events)
        return sent

    def maybe_bounce(self, day: date, way: str, row_id: int, cid: int, key: str | None) -> None:
        if self.rng.random() < 0.03:
            when = day + timedelta(days=self.rng.randint(1, 3))
            self.later.setdefault(when, []).append((way, row_id, cid, key, "bounced", None))
            self.stats["bounced"] += 1

    def write_statuses(self, updates: Sequence[tuple[str, str | None, int]]) -> None:
        """The agency's sender software writes the rows itself (a bounce keeps the send time)."""
        if updates:
            with self.store.engine.begin() as conn:
                conn.exec_driver_sql(
                    "UPDATE email_schedules SET status = ?, "
                    "actual_send_datetime = coalesce(?, actual_send_datetime) WHERE id = ?",
                    updates,
                )

    def report(self, events: list[tuple[int, dict[str, object]]]) -> None:
        for start in range(0, len(events), 40):  # the worker takes them in batches
            part = events[start : start + 40]
            self.publish("email-status", part[0][0], *(v for _, v in part))

    def late_news(self, day: date) -> None:
        """What the sending side does or reports today about earlier rows."""
        by_sql: list[tuple[str, str | None, int]] = []
        events: list[tuple[int, dict[str, object]]] = []
        for way, row_id, cid, key, status, sent_at in self.later.pop(day, []):
            now = f"{day.isoformat()}T08:{40 + self.rng.randrange(15):02d}:00-06:00"
            if status == "sent" and sent_at is None:  # sent today, a day late
                sent_at = now
            if way == "event":
                assert key is not None
                events.append((cid, self.status_event(day, cid, key, status, sent_at)))
            else:
                stamp = None if sent_at is None else sent_at[:16].replace("T", " ") + ":00"
                by_sql.append((status, stamp, row_id))
        self.write_statuses(by_sql)
        self.report(events)

    def status_event(
        self, day: date, cid: int, key: str, status: str, sent_at: str | None
    ) -> dict[str, object]:
        event: dict[str, object] = {
            "event_id": self.event_id(), "occurred_at": self.at(day, 8), "contact_id": cid,
            "occurrence_key": key, "status": status,
        }  # fmt: skip
        if sent_at is not None:
            event["actual_send_datetime"] = sent_at
        return event

    def behaviour(self, day: date, sent: list[tuple[int, int]]) -> None:
        """Some contacts who got an email today click it, some answer the health questions."""
        rng = self.rng
        ids = [r[0] for r in self.rows("SELECT id FROM contacts ORDER BY id")]
        for cid in rng.sample(ids, rng.choice((0, 0, 1, 2))):  # on an older email, or a web page
            self.publish("clicks", cid, {
                "event_id": self.event_id(), "occurred_at": self.at(day, 7), "contact_id": cid,
                "tracking_id": f"web-{self.seed}-{self.minute}-{day:%Y%m%d}",
            })  # fmt: skip
            self.stats["clicks"] += 1
        for row_id, cid in sent:
            if rng.random() < 0.2:
                self.publish("clicks", cid, {
                    "event_id": self.event_id(), "occurred_at": self.at(day, 13), "contact_id": cid,
                    "tracking_id": f"trk-{row_id}",
                })  # fmt: skip
                self.stats["clicks"] += 1
            if rng.random() < 0.08:
                condition = rng.random() < 0.4
                self.publish("health", cid, {
                    "event_id": self.event_id(), "occurred_at": self.at(day, 15), "contact_id": cid,
                    "answers": {"has_medical_conditions": condition,
                                "main_questions_yes_count": rng.randint(1, 3) if condition else 0,
                                "answers_count": 7},
                })  # fmt: skip
                self.stats["answers"] += 1

    # -- campaign work, as `mailwindow campaign` does it ---------------------------------

    def targets_csv(self, day: date, lines: list[tuple[int, str]]) -> Path:
        path = self.work / f"targets-{day.isoformat()}.csv"
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["contact_id", "trigger_date"])
            w.writerows(lines)
        return path

    def some_contacts(self, n: int) -> list[int]:
        ids = [r[0] for r in self.rows("SELECT id FROM contacts ORDER BY id")]
        return sorted(self.rng.sample(ids, min(n, len(ids))))

    def new_instance(
        self, day: date, name: str, kind: str, start: date | None, end: date | None,
        targets: int, triggers: tuple[int, int] | None,
    ) -> None:  # fmt: skip
        inst = admin.create_instance(
            self.store, DEFAULT_CONFIG, kind, name, start=start, end=end,
            email_template=f"{name}_email", sms_template=f"{name}_sms" if kind != "promotion" else None,
        )  # fmt: skip
        self.instances[name] = inst.id
        if targets:
            lines = [
                (cid, "" if triggers is None else
                 (day + timedelta(days=self.rng.randint(*triggers))).isoformat())
                for cid in self.some_contacts(targets)
            ]  # fmt: skip
            result = admin.import_targets(self.store, inst.id, self.targets_csv(day, lines))
            assert result.problems == [] and result.imported == len(lines), result
        self.stats["campaign changes"] += 1

    def change_dates(
        self, day: date, instance_id: int, given: dict[str, date | None], apply: bool
    ) -> None:
        r = admin.change_dates(self.store, instance_id, given, "simulated-ops")
        assert r.changes, (instance_id, given)
        if apply:  # `mailwindow campaign dates --apply`: a sweep of its targets now
            with self.store.engine.connect() as conn:
                contacts = admin.reschedule_targets(conn, DEFAULT_CONFIG, r.instance)
            options = SweepOptions(as_of=day, contact_ids=contacts, workers=1)
            run_sweep(self.store, DEFAULT_CONFIG, options)
            admin.clear_rescheduling(self.store, r.log_ids)
        self.stats["campaign changes"] += 1

    def change_type(self, name: str, given: dict[str, int | bool]) -> None:
        r = admin.set_campaign_type(self.store, DEFAULT_CONFIG, name, given)
        assert r.changes and not r.created, r
        self.stats["campaign changes"] += 1

    def cancel_targets(self, day: date, instance_id: int, n: int) -> None:
        """Targets cancelled through the campaigns topic (the worker takes it)."""
        found = self.rows(
            "SELECT contact_id, trigger_date FROM contact_campaigns WHERE campaign_instance_id = ? "
            "ORDER BY contact_id LIMIT ?",
            (instance_id, n),
        )
        if not found:
            return
        self.publish("campaigns", instance_id, {
            "event_id": self.event_id(), "occurred_at": self.at(day, 11), "op": "targets",
            "instance_id": instance_id, "changed_by": "simulated-ops",
            "targets": [{"contact_id": c, "trigger_date": t, "status": "cancelled"} for c, t in found],
        })  # fmt: skip
        self.stats["campaign changes"] += 1

    def campaign_work(self, day: date) -> None:
        d = date.fromisoformat
        if day == d("2027-12-28"):  # generated instances (1: started 2027-10-31, 4: open-ended)
            self.change_dates(day, 1, {admin.END_FIELD: d("2028-01-20")}, apply=False)
            self.change_dates(day, 4, {admin.END_FIELD: d("2028-02-15")}, apply=True)
        elif day == d("2028-01-10"):
            self.new_instance(day, "q1_rates", "rate_increase", d("2028-01-15"), d("2028-03-31"),
                              40, (5, 90))  # fmt: skip
        elif day == d("2028-02-20"):
            q1 = self.instances["q1_rates"]
            self.change_dates(day, q1, {admin.END_FIELD: d("2028-03-10")}, apply=True)
        elif day == d("2028-03-02"):
            self.cancel_targets(day, self.instances["q1_rates"], 8)
        elif day == d("2028-05-01"):  # ignores windows; no trigger dates: out on the start date
            self.new_instance(day, "notice", "regulatory_notice", d("2028-05-25"), None, 60, None)
        elif day == d("2028-05-10"):  # the notice (out on its start date) now respects windows
            self.change_type("regulatory_notice", {"respect_exclusion_windows": True})
        elif day == d("2028-05-15"):
            notice = self.instances["notice"]
            self.change_dates(day, notice, {admin.START_FIELD: d("2028-05-18")}, apply=False)
        elif day == d("2028-06-20"):  # every contact, two weeks from now
            self.new_instance(day, "review", "annual_review", d("2028-07-05"), d("2028-07-20"),
                              0, None)  # fmt: skip
        elif day == d("2028-08-05"):
            self.new_instance(day, "fall_promo", "promotion", d("2028-08-10"), d("2028-11-30"),
                              50, (0, 100))  # fmt: skip
        elif day == d("2028-09-01"):
            promo = self.instances["fall_promo"]
            self.change_dates(day, promo, {admin.START_FIELD: d("2028-09-20")}, apply=True)
        elif day == d("2028-10-10"):
            self.change_type("promotion", {"priority": 4})
        elif day == d("2028-11-20"):
            self.new_instance(day, "q1_2029", "rate_increase", d("2028-12-01"), d("2029-03-31"),
                              40, (10, 80))  # fmt: skip


def simulate(
    tmp_path: Path, seed: int, first: date = START, last: date = END, outages: frozenset[date] = frozenset()
) -> Year:
    db = tmp_path / "agency.db"
    make_agency(db, seed)
    year = Year(db, tmp_path, seed)
    try:
        year.run(first, last, outages)
    finally:
        year.close()
    return year


@pytest.mark.parametrize("seed", SEEDS)
def test_every_daily_sweep_equals_a_full_re_decision(tmp_path: Path, seed: int) -> None:
    year = simulate(tmp_path, seed)
    s = year.stats
    # the year exercised what it is about
    assert s["edits"] > 200 and s["deletes"] > 10 and s["new"] > 30 and s["returns"] > 0, s
    assert s["sent by event"] > 500 and s["sent by sql"] > 500 and s["clicks"] > 100, s
    assert s["campaign changes"] == 13 and s["days checked"] == (END - START).days + 1, s
    con = sqlite3.connect(tmp_path / "agency.db")
    try:
        kinds = dict(con.execute(
            "SELECT email_type, count(*) FROM email_schedules WHERE scheduled_send_date >= ? "
            "GROUP BY email_type", (START.isoformat(),),
        ).fetchall())  # fmt: skip
        leap = con.execute(  # February 29 birthdays of 2028 (crafted, and generated ones)
            "SELECT count(*) FROM email_schedules WHERE email_type = 'birthday' "
            "AND event_year = 2028 AND event_month = 2 AND event_day = 29"
        ).fetchone()[0]
    finally:
        con.close()
    for kind in ("birthday", "effective_date", "aep", "post_window", "followup_1_cold",
                 "campaign_rate_increase", "campaign_regulatory_notice", "campaign_annual_review"):
        assert kinds.get(kind, 0) > 0, (kind, kinds)
    assert leap >= 2, leap


def test_days_without_a_sweep(tmp_path: Path) -> None:
    """The sweep down for a day (Christmas, New Year) and for six days in January, while
    events, sends and the agents go on (deciding as of the last sweep's day): the first
    sweep after each gap, and every one after, equals a full re-decision."""
    last = date(2028, 1, 31)
    year = simulate(tmp_path, SEEDS[0], START, last, OUTAGES)
    assert year.stats["days checked"] == (last - START).days + 1 - len(OUTAGES)


def test_the_check_catches_a_sweep_that_skipped_contacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Daily sweeps that leave out a third of the contacts they chose to decide, from
    2028-01-05 on (whatever chose them: the pre-filter or anything that narrows it): the
    check fails, naming the day and showing the rows."""
    broken_from, last = date(2028, 1, 5), date(2028, 1, 25)
    original = sweep_run.prepare

    def dropping(store, config, options, run_id, summary):  # type: ignore[no-untyped-def]
        prepared = original(store, config, options, run_id, summary)
        if options.full_scan or options.contact_ids is not None or options.as_of < broken_from:
            return prepared
        return replace(prepared, ids=array("q", [i for i in prepared.ids if i % 3]))

    monkeypatch.setattr(sweep_run, "prepare", dropping)
    with pytest.raises(AssertionError) as caught:
        simulate(tmp_path, SEEDS[0], START, last)
    message = str(caught.value)
    found = re.search(r"^seed \d+, day (\d{4}-\d\d-\d\d): the daily sweep left rows", message)
    assert found is not None, message
    assert broken_from <= date.fromisoformat(found.group(1)) <= last, message
    assert "daily sweep:" in message and "full scan:" in message, message
