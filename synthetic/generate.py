"""Synthetic agency databases in the exact legacy schema, for tests and benchmarks.

The data imitate what agencies really hold (SPEC section 2 and the comments of
legacy/schema.sql): mostly clean contacts, plus the dirt the scheduler must
survive - ZIP+4 codes, blank ZIPs, lower-case or padded or wrong state
columns, dates with a time part, junk dates, February 29 birthdays, invalid
e-mail addresses - and a sending history with legacy upper-case rows.

On request it adds campaigns (types, instances, targets) and follow-up
material: initial emails sent in the 35 days before as_of, with the clicks and
health answers that decide their follow-ups.

The output depends only on the arguments (contacts, seed, as_of and the
campaign and follow-up sizes).  The clock is read only to report how long the
load took.

Arguments it cannot work with are refused with a ValueError naming the
argument and its allowed range (issue 11), before any file is created.
Choices written down here: ``as_of`` lies in ``FIRST_AS_OF..LAST_DATE``:
effective dates are drawn from 2000-01-01 to the end of the year after
``as_of`` (``_Population``), so before 1999 there would be none to draw, and
``rules.bounds.LAST_DATE`` is the last date the scheduler decides about.  ``contacts`` lies in ``0..MAX_ID`` (contact ids are
``1..contacts``), ``followup_initials`` in ``0..contacts`` (one initial email
per contact).
"""

from __future__ import annotations

import bisect
import calendar
import json
import multiprocessing
import multiprocessing.context
import multiprocessing.queues
import os
import queue
import random
import sqlite3
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from operator import itemgetter
from pathlib import Path
from typing import NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from rules.anniversary import anniversary, parse_iso_date
from rules.bounds import LAST_DATE, MAX_ID
from rules.config import CampaignType
from rules.zip_state import BLANKS, USPS_CODES, zip_states
from streams.store import tables
from streams.store.campaigns import TYPE_COLUMNS
from streams.store.ddl import add_column_sql
from streams.store.engine import StoreError

DEFAULT_AS_OF = date(2026, 3, 10)
FIRST_AS_OF = date(1999, 1, 1)  # module docstring

# Rows per executemany: large enough to amortise the call, small enough that
# memory stays flat however many contacts are asked for.
CHUNK_ROWS = 20_000

# From this size on, rows are generated in a second process while this one
# writes them: generating and inserting each take about half of the time.
PARALLEL_MIN_CONTACTS = 200_000
# Chunks in flight between the processes: bounds the memory of a large run.
QUEUE_CHUNKS = 4

# Approximate resident population in thousands (2020 census and estimates):
# Medicare contacts follow population, so big states get more of them.
STATE_WEIGHTS: dict[str, int] = {
    "AL": 5024, "AK": 733, "AZ": 7152, "AR": 3012, "CA": 39538, "CO": 5774, "CT": 3606,
    "DE": 990, "FL": 21538, "GA": 10712, "HI": 1455, "ID": 1839, "IL": 12813, "IN": 6786,
    "IA": 3190, "KS": 2938, "KY": 4506, "LA": 4658, "ME": 1362, "MD": 6177, "MA": 7030,
    "MI": 10077, "MN": 5706, "MS": 2961, "MO": 6155, "MT": 1084, "NE": 1962, "NV": 3105,
    "NH": 1377, "NJ": 9289, "NM": 2118, "NY": 20201, "NC": 10439, "ND": 779, "OH": 11799,
    "OK": 3959, "OR": 4237, "PA": 13003, "RI": 1097, "SC": 5119, "SD": 887, "TN": 6911,
    "TX": 29146, "UT": 3272, "VT": 643, "VA": 8631, "WA": 7705, "WV": 1794, "WI": 5894,
    "WY": 577, "DC": 690, "PR": 3286, "GU": 154, "VI": 87, "AS": 50, "MP": 48, "FM": 105,
    "MH": 42, "PW": 18, "AA": 20, "AE": 40, "AP": 30,
}  # fmt: skip

FIRST_NAMES = (
    "Mary", "Patricia", "Linda", "Barbara", "Elizabeth", "Jennifer", "Maria", "Susan",
    "Margaret", "Dorothy", "Lisa", "Nancy", "Karen", "Betty", "Helen", "Sandra", "Donna",
    "Carol", "Ruth", "Sharon", "Michelle", "Laura", "Sarah", "Kimberly", "Deborah", "Jessica",
    "Shirley", "Cynthia", "Angela", "Melissa", "Brenda", "Amy", "Anna", "Rebecca", "Virginia",
    "Kathleen", "Pamela", "Martha", "Debra", "Amanda", "Stephanie", "Carolyn", "Christine",
    "Marie", "Janet", "Catherine", "Frances", "Ann", "Joyce", "Diane", "James", "John",
    "Robert", "Michael", "William", "David", "Richard", "Charles", "Joseph", "Thomas",
    "Christopher", "Daniel", "Paul", "Mark", "Donald", "George", "Kenneth", "Steven", "Edward",
    "Brian", "Ronald", "Anthony", "Kevin", "Jason", "Matthew", "Gary", "Timothy", "Jose",
    "Larry", "Jeffrey", "Frank", "Scott", "Eric", "Stephen", "Andrew", "Raymond", "Gregory",
    "Joshua", "Jerry", "Dennis", "Walter", "Patrick", "Peter", "Harold", "Douglas", "Henry",
    "Carl", "Arthur", "Ryan", "Roger"
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans",
    "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris",
    "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson",
    "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson",
    "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes",
    "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster",
    "Jimenez"
)  # fmt: skip
# Repeats weight the common providers.
DOMAINS = (
    ["gmail.com"] * 8
    + ["yahoo.com"] * 4
    + ["aol.com"] * 3
    + ["hotmail.com"] * 2
    + [
        "outlook.com",
        "comcast.net",
        "att.net",
        "icloud.com",
        "verizon.net",
        "msn.com",
        "sbcglobal.net",
    ]
    + ["bellsouth.net", "charter.net", "cox.net", "earthlink.net"]
)
CARRIERS = (
    "Aetna",
    "Humana",
    "UnitedHealthcare",
    "Cigna",
    "Mutual of Omaha",
    "Blue Cross Blue Shield",
    "Anthem",
    "WellCare",
    "Aflac",
    None,
)
PLAN_TYPES = ("Plan G", "Plan G", "Plan N", "Plan F", "High Deductible G", "Advantage", None)
AREA_CODES = (
    "205", "907", "602", "501", "213", "310", "415", "619", "714", "303", "203", "302", "202",
    "305", "407", "813", "404", "808", "208", "312", "317", "515", "316", "502", "504", "207",
    "410", "617", "313", "612", "601", "314", "406", "402", "702", "603", "201", "505", "212",
    "718", "704", "701", "216", "405", "503", "215", "412", "401", "803", "605", "615", "214",
    "512", "713", "801", "802", "804", "206", "304", "414", "307"
)  # fmt: skip
JUNK_STATES = (None, "", "XX", "Texas", "N/A", "  ")
# Unparseable dates as found in the field: treated as missing by the rules.
JUNK_BIRTH_DATES = ("", "unknown", "1955-02-30", "0000-00-00", "N/A", "1957-13-01", "05/01/1955")
JUNK_EFFECTIVE_DATES = ("", "TBD", "2019-02-30", "0000-00-00")
UNKNOWN_ZIPS = ("00000", "99999", "00001", "09999")
LEAP_BIRTH_YEARS = tuple(y for y in range(1936, 1961) if calendar.isleap(y))

# A row of one of the agency's tables, by column name (streams.store.tables); the
# rows of one insert name the same columns.
Row = dict[str, object]


# Chunks of contact rows, each with the history rows of those contacts.
Chunks = Generator[tuple[list[Row], list[Row]], None, None]


@dataclass(frozen=True)
class GenerateSummary:
    contacts: int
    invalid_contacts: int
    history_rows: int  # the legacy history; follow-up rows are counted below
    elapsed_s: float
    campaign_instances: int = 0
    campaign_targets: int = 0  # contact_campaigns rows
    followup_initials: int = 0  # sent/delivered initial emails in [as_of - 35, as_of]
    existing_followups: int = 0  # follow-ups already sent for some of them
    tracking_clicks: int = 0
    contact_events: int = 0


def _days(first: date, last: date) -> list[date]:
    return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]


class _Population:
    """The lookup tables one generation draws from (built once per call)."""

    def __init__(self, as_of: date) -> None:
        by_state: dict[str, list[str]] = {}
        for zip5, state in zip_states().items():
            by_state.setdefault(state, []).append(zip5)
        self.zips_by_state = {s: sorted(zs) for s, zs in sorted(by_state.items())}
        self.codes = sorted(USPS_CODES)
        self.states = sorted(STATE_WEIGHTS)
        cumulative, total = [], 0
        for state in self.states:
            total += STATE_WEIGHTS[state]
            cumulative.append(total)
        self.state_cumulative = cumulative
        self.state_total = total

        self.birth_days = _days(date(1935, 1, 1), date(1961, 12, 31))
        self.birth_isos = [d.isoformat() for d in self.birth_days]
        ed_days = _days(date(2000, 1, 1), date(as_of.year + 1, 12, 31))
        self.ed_days = ed_days
        self.ed_isos = [d.isoformat() for d in ed_days]
        self.ed_firsts = [d for d in ed_days if d.day == 1]
        self.ed_first_isos = [d.isoformat() for d in self.ed_firsts]
        # Contacts were entered over the eight years before as_of.
        start = datetime(as_of.year - 8, 1, 1, 9, 0, 0)
        span = (datetime(as_of.year, as_of.month, as_of.day) - start).total_seconds()
        rng = random.Random(f"created_at:{as_of.isoformat()}")
        self.created_ats = sorted(
            (start + timedelta(seconds=int(rng.random() * span))).isoformat(sep=" ")
            for _ in range(4096)
        )
        self.premiums = [f"{80 + n * 0.37:.2f}" for n in range(700)]


# Lower-case names for the e-mail addresses, built once: the contact loop runs
# millions of times.
FIRST_NAMES_LOWER = tuple(name.lower() for name in FIRST_NAMES)
LAST_NAMES_LOWER = tuple(name.lower() for name in LAST_NAMES)


def _contact_rows(
    count: int, seed: int, as_of: date, pop: _Population, stats: dict[str, int]
) -> Chunks:
    """Chunks of contact rows with the history rows of those contacts."""
    maker = _ContactMaker(count, seed, as_of, pop, stats)
    contact_rows: list[Row] = []
    history: list[Row] = []
    for cid in range(1, count + 1):
        row, birth, effective = maker.contact(cid)
        contact_rows.append(row)
        maker.add_history(history, cid, birth, effective)
        # CHUNK_ROWS is read here, not bound once: tests shrink it.
        if len(contact_rows) >= CHUNK_ROWS:
            yield contact_rows, history
            contact_rows, history = [], []
    if contact_rows:
        yield contact_rows, history


class _ContactMaker:
    """Draws an agency's contacts and their sending history, contact by contact.

    Every value comes from one random stream in a fixed order: the same
    arguments give the same rows, inline or in the generating process.
    """

    def __init__(
        self, count: int, seed: int, as_of: date, pop: _Population, stats: dict[str, int]
    ) -> None:
        rng = random.Random(f"mailwindow:{seed}:{count}:{as_of.isoformat()}")
        self.r = rng.random
        self.pop = pop
        self.stats = stats
        self.as_of = as_of
        self.last_year = as_of.year - 1
        # Spread one contact of each USPS code through the table so that any
        # database of a few thousand contacts exercises every state's rules.
        stride = max(1, count // len(pop.codes))
        self.forced_state = {
            1 + j * stride: code for j, code in enumerate(pop.codes) if j * stride < count
        }

    def contact(self, cid: int) -> tuple[Row, date | None, date | None]:
        """The contacts row, with the birth and effective dates its history is built on."""
        r, pop = self.r, self.pop
        i_first, i_last = int(r() * len(FIRST_NAMES)), int(r() * len(LAST_NAMES))
        domain = DOMAINS[int(r() * len(DOMAINS))]
        forced = self.forced_state.get(cid)
        state = forced or pop.states[
            bisect.bisect_right(pop.state_cumulative, r() * pop.state_total)
        ]
        zips = pop.zips_by_state[state]
        zip5 = zips[int(r() * len(zips))]
        email, zip_code, state_col = self._email_and_location(
            cid, i_first, i_last, domain, state, zip5, forced is not None
        )
        birth, birth_raw = self._birth_date(cid)
        effective, effective_raw = self._effective_date()
        phone = self._phone_number()
        # Carrier, plan, tobacco, gender and agent read different digits of one
        # draw; drawing them apart would change every generated database.
        g = r()
        created = pop.created_ats[int(r() * len(pop.created_ats))]
        premium = pop.premiums[int(r() * len(pop.premiums))]
        row: Row = {
            "id": cid,
            "first_name": FIRST_NAMES[i_first],
            "last_name": LAST_NAMES[i_last],
            "email": email,
            "current_carrier": CARRIERS[int(g * 1000) % len(CARRIERS)],
            "current_premium": premium,
            "plan_type": PLAN_TYPES[int(g * 10000) % len(PLAN_TYPES)],
            "effective_date": effective_raw,
            "birth_date": birth_raw,
            "tobacco_user": 1 if g < 0.12 else 0,
            "gender": "F" if int(g * 100) % 100 < 54 else "M",
            "state": state_col,
            "zip_code": zip_code,
            "agent_id": 1 + int(g * 1_000_000) % 40,
            "phone_number": phone,
            "status": "",
            "created_at": created,
            "updated_at": created,
        }
        return row, birth, effective

    def _email_and_location(
        self, cid: int, i_first: int, i_last: int, domain: str, state: str, zip5: str, forced: bool
    ) -> tuple[str, str | None, str | None]:
        """(email, zip_code, state) columns, with the dirt agencies' data really has."""
        r = self.r
        email = f"{FIRST_NAMES_LOWER[i_first]}.{LAST_NAMES_LOWER[i_last]}{cid}@{domain}"
        zip_code: str | None = zip5
        state_col: str | None = state
        # One draw chooses the data-quality case; the cases are exclusive.  A
        # contact forced into a state stays clean so that the state is usable.
        q = 0.99 if forced else r()
        if q < 0.005:  # invalid: no usable location at all
            zip_code = "" if r() < 0.5 else None
            state_col = JUNK_STATES[int(r() * len(JUNK_STATES))]
            self.stats["invalid"] += 1
        elif q < 0.010:  # invalid: unusable e-mail address
            email = f"no-at-sign{cid}" if r() < 0.7 else f"{FIRST_NAMES_LOWER[i_first]}{cid}@"
            self.stats["invalid"] += 1
        elif q < 0.013:  # the state column contradicts the ZIP (the ZIP wins)
            states = self.pop.states
            other = states[int(r() * len(states))]
            state_col = other if other != state else ("TX" if state != "TX" else "CA")
        elif q < 0.043:
            state_col = state.lower()
        elif q < 0.058:
            state_col = f" {state} " if r() < 0.7 else f"{state.lower()}\n"
        elif q < 0.078:  # no state column: the ZIP alone says where
            state_col = "" if r() < 0.5 else None
        elif q < 0.108:  # no ZIP: the state column alone says where
            zip_code = "" if r() < 0.5 else None
        elif q < 0.113:  # a ZIP missing from the dataset: the column decides
            zip_code = UNKNOWN_ZIPS[int(r() * len(UNKNOWN_ZIPS))]
        elif q < 0.163:
            zip_code = f"{zip5}-{1000 + int(r() * 9000)}"
        elif q < 0.170:  # usable once trimmed
            email = f" {FIRST_NAMES[i_first]}.{LAST_NAMES[i_last]}{cid}@{domain.upper()} "
        return email, zip_code, state_col

    def _birth_date(self, cid: int) -> tuple[date | None, str | None]:
        """(the date the rules read, the birth_date column): missing, junk, or with a time part."""
        r, pop = self.r, self.pop
        b = r()  # drawn for every contact, leap-day ones too, to keep the stream aligned
        if cid % 400 == 200:  # enough leap-day birthdays even in small databases
            year = LEAP_BIRTH_YEARS[(cid // 400) % len(LEAP_BIRTH_YEARS)]
            birth = date(year, 2, 29)
            return birth, birth.isoformat()
        if b < 0.003:
            return None, None
        if b < 0.006:
            return None, JUNK_BIRTH_DATES[int(r() * len(JUNK_BIRTH_DATES))]
        i = int(r() * len(pop.birth_days))
        birth_raw = pop.birth_isos[i]
        if b > 0.97:
            birth_raw += " 00:00:00"
        return pop.birth_days[i], birth_raw

    def _effective_date(self) -> tuple[date | None, str | None]:
        """(the date the rules read, the effective_date column) of the contact's policy."""
        r, pop = self.r, self.pop
        e = r()
        if e < 0.05:
            return None, None
        if e < 0.053:
            return None, JUNK_EFFECTIVE_DATES[int(r() * len(JUNK_EFFECTIVE_DATES))]
        if e < 0.72:  # policies mostly start on the first of a month
            i = int(r() * len(pop.ed_firsts))
            effective, effective_raw = pop.ed_firsts[i], pop.ed_first_isos[i]
        else:
            i = int(r() * len(pop.ed_days))
            effective, effective_raw = pop.ed_days[i], pop.ed_isos[i]
        if e > 0.985:
            effective_raw += " 00:00:00"
        return effective, effective_raw

    def _phone_number(self) -> str | None:
        r = self.r
        if r() < 0.5:
            return f"{AREA_CODES[int(r() * len(AREA_CODES))]}{2000000 + int(r() * 7999999)}"
        return None

    def add_history(
        self, history: list[Row], cid: int, birth: date | None, effective: date | None
    ) -> None:
        """Append the contact's sending history: what the scheduler finds already written."""
        r = self.r
        if r() < 0.11:
            row = _last_year_send(cid, birth, effective, self.last_year, r())
            if row is not None:
                history.append(row)
        h = r()
        if h < 0.012:
            history.append(_legacy_upper_case_send(cid, self.as_of, r()))
        elif h < 0.016:
            history.append(_failed_aep(cid, self.last_year, r()))
        elif h < 0.019 and birth is not None:
            history.append(_scheduled_birthday(cid, birth, self.as_of))


def _produce_chunks(
    count: int, seed: int, as_of: date, out: multiprocessing.queues.Queue[tuple[object, ...]]
) -> None:
    """The generating process: chunks, then the invalid count, or the error."""
    try:
        stats = {"invalid": 0}
        for contact_rows, history in _contact_rows(count, seed, as_of, _Population(as_of), stats):
            out.put(("rows", contact_rows, history))
        out.put(("done", stats["invalid"]))
    except BaseException as exc:
        out.put(("error", f"{type(exc).__name__}: {exc}"))
        raise


def _chunks_from_process(count: int, seed: int, as_of: date, stats: dict[str, int]) -> Chunks:
    """The chunks of _contact_rows, generated by a second process.

    One process draws every row from one random stream, so the rows are the
    same as when generated inline.
    """
    # fork where there is one: spawn would re-run the caller's main module,
    # which fails for a script read from stdin.  The child never touches the
    # SQLite connection it inherits.
    methods = multiprocessing.get_all_start_methods()
    context: multiprocessing.context.ForkContext | multiprocessing.context.SpawnContext = (
        multiprocessing.get_context("fork")
        if "fork" in methods
        else multiprocessing.get_context("spawn")
    )
    channel: multiprocessing.queues.Queue[tuple[object, ...]] = context.Queue(QUEUE_CHUNKS)
    worker = context.Process(
        target=_produce_chunks, args=(count, seed, as_of, channel), daemon=True
    )
    worker.start()
    try:
        while True:
            try:
                message = channel.get(timeout=5.0)
            except queue.Empty:
                if not worker.is_alive():
                    raise RuntimeError(
                        f"the generating process stopped (exit code {worker.exitcode})"
                    ) from None
                continue
            if message[0] == "rows":
                yield message[1], message[2]  # type: ignore[misc]
            elif message[0] == "done":
                stats["invalid"] = int(message[1])  # type: ignore[call-overload]
                return
            else:
                raise RuntimeError(f"the generating process failed: {message[1]}")
    finally:
        if worker.is_alive():
            worker.terminate()
        worker.join()


# Times of day as text, built once: strftime and timedelta() cost more than
# the rest of a history row together.
SEND_TIMES = tuple(f"08:{30 + n // 60}:{n % 60:02d}" for n in range(600))
CREATED_TIME = "03:30:00"
ONE_DAY, TWO_WEEKS, TWENTY_DAYS, THIRTY_DAYS = (timedelta(days=n) for n in (1, 14, 20, 30))


def _last_year_send(
    cid: int, birth: date | None, effective: date | None, year: int, x: float
) -> Row | None:
    """A birthday or effective-date email sent last year, in the current format."""
    if birth is not None and (x < 0.6 or effective is None or effective.year >= year):
        kind, event, before = "birthday", anniversary(birth, year), TWO_WEEKS
    elif effective is not None and effective.year < year:
        kind, event, before = "effective_date", anniversary(effective, year), THIRTY_DAYS
    else:
        return None
    send = event - before
    send_iso = send.isoformat()
    sent_at = f"{send_iso} {SEND_TIMES[int(x * 600)]}"
    return {
        "contact_id": cid,
        "email_type": kind,
        "scheduled_send_date": send_iso,
        "scheduled_send_time": "08:30:00",
        "status": "delivered" if x * 10 % 1 < 0.6 else "sent",
        "skip_reason": None,
        "created_at": f"{(send - TWENTY_DAYS).isoformat()} {CREATED_TIME}",
        "updated_at": sent_at,
        "batch_id": f"batch_{send_iso.replace('-', '')}",
        "event_year": event.year,
        "event_month": event.month,
        "event_day": event.day,
        "actual_send_datetime": sent_at,
        "priority": 5,
        "email_template": f"{kind}_email",
        "scheduler_run_id": f"legacy-{send_iso.replace('-', '')}",
    }


def _legacy_upper_case_send(cid: int, as_of: date, x: float) -> Row:
    """A row of the old scheduler: upper-case type, no event year."""
    kind = "BIRTHDAY" if x < 0.7 else "POST_WINDOW_BIRTHDAY"
    send_iso = (as_of - timedelta(days=400 + int(x * 300))).isoformat()
    stamp = f"{send_iso} {SEND_TIMES[0]}"
    return {
        "contact_id": cid,
        "email_type": kind,
        "scheduled_send_date": send_iso,
        "scheduled_send_time": "08:30:00",
        "status": "sent",
        "skip_reason": None,
        "created_at": stamp,
        "updated_at": stamp,
        "batch_id": f"batch_{send_iso.replace('-', '')}",
        "event_year": None,
        "event_month": None,
        "event_day": None,
        "actual_send_datetime": stamp,
        "priority": 10,
        "email_template": kind.lower(),
        "scheduler_run_id": f"legacy-{send_iso.replace('-', '')}",
    }


def _failed_aep(cid: int, year: int, x: float) -> Row:
    send_iso = f"{year:04d}-09-15"
    stamp = f"{send_iso} {SEND_TIMES[0]}"
    return {
        "contact_id": cid,
        "email_type": "aep",
        "scheduled_send_date": send_iso,
        "scheduled_send_time": "08:30:00",
        "status": "bounced" if x < 0.5 else "failed",
        "skip_reason": None,
        "created_at": stamp,
        "updated_at": stamp,
        "batch_id": f"batch_{year:04d}0915",
        "event_year": year,
        "event_month": 9,
        "event_day": 15,
        "actual_send_datetime": None,
        "priority": 3,
        "email_template": "aep_email",
        "scheduler_run_id": f"legacy-{year:04d}0915",
    }


def _scheduled_birthday(cid: int, birth: date, as_of: date) -> Row:
    """A birthday email the sending side has already taken over."""
    event = anniversary(birth, as_of.year)
    if event - TWO_WEEKS < as_of:
        event = anniversary(birth, as_of.year + 1)
    as_of_compact = as_of.isoformat().replace("-", "")
    stamp = f"{(as_of - ONE_DAY).isoformat()} {CREATED_TIME}"
    return {
        "contact_id": cid,
        "email_type": "birthday",
        "scheduled_send_date": (event - TWO_WEEKS).isoformat(),
        "scheduled_send_time": "08:30:00",
        "status": "scheduled",
        "skip_reason": None,
        "created_at": stamp,
        "updated_at": stamp,
        "batch_id": f"batch_{as_of_compact}",
        "event_year": event.year,
        "event_month": event.month,
        "event_day": event.day,
        "actual_send_datetime": None,
        "priority": 5,
        "email_template": "birthday_email",
        "scheduler_run_id": f"legacy-{as_of_compact}",
    }


# --- campaigns and follow-ups (optional: generate_database(campaign_instances=,
# followup_initials=)).  Drawn after the contacts, from random streams of
# their own, so asking for them never changes the contacts or their history.

# The campaign_types rows written.
CAMPAIGN_TYPES: tuple[CampaignType, ...] = (
    CampaignType("rate_increase", days_before_event=14, priority=1),
    CampaignType(
        "regulatory_notice", respect_exclusion_windows=False, enable_followups=False, priority=2
    ),
    CampaignType("promotion", enable_followups=False, days_before_event=-3, priority=6),
    # Targets every contact, but its one instance (the last, from 8 instances
    # on) ended months before as_of: no email of it is ever in play, so a
    # sweep need not scan every contact for it.  It ignores windows, so it
    # blocks no window either (no post-window emails from it).
    CampaignType(
        "annual_review",
        respect_exclusion_windows=False,
        enable_followups=False,
        target_all_contacts=True,
        priority=7,
    ),
)
ANNUAL_REVIEW_FROM = 8  # instances: from this many, the last one is annual_review
# The order types are given to instances 1, 2, 3, ... (annual_review aside).
INSTANCE_TYPE_CYCLE = (
    "rate_increase",
    "regulatory_notice",
    "promotion",
    "rate_increase",
    "promotion",
)
# The active dates of instances 1, 2, 3, ...: most are open in the next 30
# days; from 4 instances on some are open-ended, from 7 on some are over.
INSTANCE_DATE_CYCLE = (
    "open",
    "open",
    "open",
    "open-ended",
    "open",
    "open",
    "over",
    "open",
    "no start",
    "later",
)

# Follow-up initial emails: type and share ("campaign": emails of the types
# that enable follow-ups, i.e. campaign_rate_increase; the share they cannot
# fill goes to post-window and AEP emails).
INITIAL_MIX: tuple[tuple[str, float], ...] = (
    ("birthday", 0.30),
    ("effective_date", 0.25),
    ("campaign", 0.20),
    ("post_window", 0.15),
    ("aep", 0.10),
)
INITIAL_LOOKBACK = 35  # initial emails are sent in [as_of - 35, as_of]
INITIAL_PRIORITY = {"birthday": 5, "effective_date": 5, "aep": 3, "post_window": 8}
CAMPAIGN_PRIORITY = {t.name: t.priority for t in CAMPAIGN_TYPES}
HEALTH_ANSWERS = (
    '{"answers_count":7,"main_questions_yes_count":0,"has_medical_conditions":false}',
    '{"answers_count":5,"main_questions_yes_count":0,"has_medical_conditions":false}',
)
MALFORMED_HEALTH_ANSWERS = (
    '{"answers_count":7,"main_questions_yes_count":',
    "answers_count=7",
    "{answers_count: 7, has_medical_conditions: true}",
    "",
)
@dataclass(frozen=True)
class _Instance:
    id: int
    kind: str
    days_before: int
    start: date | None
    end: date | None
    email_template: str
    followups: bool
    target_all: bool

    def allows(self, ideal: date) -> bool:
        return (self.start is None or self.start <= ideal) and (
            self.end is None or ideal <= self.end
        )


@dataclass
class _Target:
    """A contact_campaigns row (its status may still change before it is written)."""

    id: int
    contact_id: int
    instance: _Instance
    trigger: date | None
    status: str
    metadata: str | None
    created_at: str

    def row(self) -> Row:
        return {
            "id": self.id,
            "contact_id": self.contact_id,
            "campaign_instance_id": self.instance.id,
            "trigger_date": _iso(self.trigger),
            "status": self.status,
            "metadata": self.metadata,
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }


def _iso(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def _stamp(d: date, seconds: int = 36000) -> str:
    """'YYYY-MM-DD HH:MM:SS' at ``seconds`` after midnight of ``d``."""
    return f"{d.isoformat()} {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _at(moment: datetime) -> str:
    return moment.isoformat(sep=" ")


def _click(tracking_id: str, cid: int | None, quote: str | None, moment: datetime) -> Row:
    return {"tracking_id": tracking_id, "contact_id": cid, "quote_id": quote, "clicked_at": _at(moment)}


def _event(cid: int, lead: int | None, kind: str, metadata: str | None, moment: datetime) -> Row:
    return {
        "contact_id": cid,
        "lead_id": lead,
        "event_type": kind,
        "metadata": metadata,
        "created_at": _at(moment),
    }


_SQLITE = sqlite.dialect()


@lru_cache(maxsize=32)
def _insert_sql(
    table: sa.Table, columns: tuple[str, ...]
) -> tuple[str, Callable[[Row], tuple[object, ...]]]:
    """The INSERT of these columns of one of streams.store.tables' tables, and what takes a
    row's values in the order of its parameters."""
    compiled = sa.insert(table).compile(dialect=_SQLITE, column_keys=list(columns))
    order = compiled.positiontup or []
    # itemgetter of one key returns the value itself, not a tuple of it
    return str(compiled), itemgetter(*order) if len(order) > 1 else lambda row: (row[order[0]],)


def _insert(conn: sqlite3.Connection, table: sa.Table, rows: Sequence[Row]) -> None:
    """Insert rows that name the same columns, in one executemany.

    Through the bare sqlite3 connection the load runs on (journal off, one
    transaction); the statement is SQLAlchemy's, from the table object.  Values
    are bound by position: sqlite3 binds a dict by name at a third more cost.
    """
    if rows:
        sql, values = _insert_sql(table, tuple(rows[0]))
        conn.executemany(sql, map(values, rows))


def _campaign_instances(count: int, as_of: date, rng: random.Random) -> list[_Instance]:
    """``count`` instances, most of them open at some point of the next 30 days."""
    types = {t.name: t for t in CAMPAIGN_TYPES}
    day = timedelta
    found: list[_Instance] = []
    for n in range(1, count + 1):
        if count >= ANNUAL_REVIEW_FROM and n == count:
            kind = "annual_review"
            start: date | None = as_of - day(200)
            end: date | None = as_of - day(170)
        else:
            kind = INSTANCE_TYPE_CYCLE[(n - 1) % len(INSTANCE_TYPE_CYCLE)]
            dates = INSTANCE_DATE_CYCLE[(n - 1) % len(INSTANCE_DATE_CYCLE)]
            if dates == "open":  # open now or soon, for a while
                # The first one opened before the 35 days of follow-up initials.
                start = as_of + day(rng.randint(-60, 10) if n > 1 else -50)
                end = as_of + day(rng.randint(20, 120))
            elif dates == "open-ended":
                start, end = as_of - day(rng.randint(20, 90)), None
            elif dates == "over":  # ended before as_of
                start = as_of - day(rng.randint(60, 120))
                end = as_of - day(rng.randint(1, 20))
            elif dates == "no start":
                start, end = None, as_of + day(rng.randint(15, 60))
            else:  # starts within the next 30 days
                start = as_of + day(rng.randint(5, 25))
                end = as_of + day(rng.randint(40, 90))
        t = types[kind]
        found.append(
            _Instance(
                n,
                kind,
                t.days_before_event,
                start,
                end,
                f"{kind}_{n:02d}_email",
                followups=t.enable_followups,
                target_all=t.target_all_contacts,
            )
        )
    return found


def _instance_rows(instances: list[_Instance], as_of: date) -> list[Row]:
    """The campaign_instances rows (they draw nothing at random)."""
    instance_rows: list[Row] = []
    for i in instances:
        opened = i.start or (i.end - timedelta(days=60) if i.end else as_of)
        created = _stamp(min(opened, as_of) - timedelta(days=10), 34200)
        instance_rows.append(
            {
                "id": i.id,
                "campaign_type": i.kind,
                "instance_name": f"{i.kind}_{(i.start or i.end or as_of).strftime('%Y_%m')}_{i.id:02d}",
                "email_template": i.email_template,
                "sms_template": f"{i.kind}_{i.id:02d}_sms" if i.id % 2 else None,
                "active_start_date": _iso(i.start),
                "active_end_date": _iso(i.end),
                "metadata": (
                    None if i.id % 3 else f'{{"owner":"agent{i.id % 7 + 1}","notes":"generated"}}'
                ),
                "created_at": created,
                "updated_at": created,
            }
        )
    return instance_rows


def _campaign_rows(
    count: int, instances: list[_Instance], share: float, as_of: date, rng: random.Random
) -> tuple[list[Row], list[_Target]]:
    """(campaign_instances rows, contact_campaigns rows)."""
    r = rng.random
    instance_rows = _instance_rows(instances, as_of)
    targetable = [i for i in instances if not i.target_all]
    targeted = round(share * count)
    if not targetable or targeted <= 0:
        return instance_rows, []
    # Uneven instance sizes: weights 1, 2, 3, 1, 2, 3, ...
    cumulative, total = [], 0
    for n, _ in enumerate(targetable):
        total += 1 + n % 3
        cumulative.append(total)
    bisect_right, day = bisect.bisect_right, timedelta
    rows: list[_Target] = []

    def add(cid: int, inst: _Instance, trigger: date | None, status: str) -> None:
        created = _stamp(as_of - day(1 + int(r() * 90)), 36000 + int(r() * 28800))
        metadata = '{"source":"csv_import"}' if r() < 0.1 else None
        rows.append(_Target(len(rows) + 1, cid, inst, trigger, status, metadata, created))

    for cid in sorted(rng.sample(range(1, count + 1), targeted)):
        inst = targetable[bisect_right(cumulative, r() * total)]
        u = r()
        ideal: date | None
        if u < 0.03:  # no trigger date: the instance's start date stands in
            ideal = None
        elif u < 0.63:
            ideal = as_of + day(rng.randint(-7, 30))
        elif u < 0.88:
            ideal = as_of + day(rng.randint(31, 120))
        else:  # already past: some of these were sent (follow-up initials)
            ideal = as_of - day(rng.randint(8, 40))
        s = r()
        status = "cancelled" if s < 0.01 else "scheduled" if s < 0.07 else "pending"
        trigger = None if ideal is None else ideal + day(inst.days_before)
        add(cid, inst, trigger, status)
        # About 1% get a second instance on the same ideal send date: a conflict.
        if ideal is not None and len(targetable) > 1 and r() < 0.01:
            other = targetable[int(r() * (len(targetable) - 1))]
            other = other if other.id != inst.id else targetable[-1]
            add(cid, other, ideal + day(other.days_before), "pending")
    return instance_rows, rows


class _DueDates:
    """While the contacts stream by: those whose birthday or effective-date email
    may have been due in [as_of - 35, as_of] (month-day only; decided later)."""

    OFFSETS = {"birthday": 14, "effective_date": 30}

    def __init__(self, as_of: date) -> None:
        first = as_of - timedelta(days=INITIAL_LOOKBACK)
        self.wanted: dict[str, set[str]] = {}
        for kind, before in self.OFFSETS.items():
            days = _days(first + timedelta(days=before), as_of + timedelta(days=before))
            md = {d.strftime("%m-%d") for d in days}
            if "02-28" in md:
                md.add("02-29")
            self.wanted[kind] = md
        self.rows: list[tuple[int, str | None, str | None]] = []

    def scan(self, chunk: list[Row]) -> None:
        wb, we = self.wanted["birthday"], self.wanted["effective_date"]
        for row in chunk:
            birth = cast("str | None", row["birth_date"])
            effective = cast("str | None", row["effective_date"])
            if (birth is not None and birth.lstrip(BLANKS)[5:10] in wb) or (
                effective is not None and effective.lstrip(BLANKS)[5:10] in we
            ):
                self.rows.append((cast(int, row["id"]), birth, effective))

    def pools(
        self, as_of: date, taken: set[tuple[int, str, int]]
    ) -> dict[str, list[tuple[int, date, date]]]:
        """Type -> [(contact, send date, event date)] of the emails due in
        [as_of - 35, as_of], without the (contact, type, event year) of rows
        already written (the legacy unique index)."""
        first = as_of - timedelta(days=INITIAL_LOOKBACK)
        years = sorted({first.year, as_of.year, (as_of + timedelta(days=30)).year})
        pools: dict[str, list[tuple[int, date, date]]] = {k: [] for k in self.OFFSETS}
        for cid, birth_raw, effective_raw in self.rows:
            for kind, raw in (("birthday", birth_raw), ("effective_date", effective_raw)):
                if not raw or raw.lstrip(BLANKS)[5:10] not in self.wanted[kind]:
                    continue
                base = parse_iso_date(raw)
                if base is None:
                    continue
                for year in years:
                    if year <= base.year:
                        continue
                    event = anniversary(base, year)
                    send = event - timedelta(days=self.OFFSETS[kind])
                    if first <= send <= as_of and (cid, kind, year) not in taken:
                        pools[kind].append((cid, send, event))
                        break
        return pools


class _Initial(NamedTuple):
    """An initial email the sending side sent in [as_of - 35, as_of]."""

    contact_id: int
    email_type: str
    send: date
    event: date  # the anniversary or campaign trigger; AEP and post-window: the send date
    instance: _Instance | None  # campaign emails only


@dataclass(frozen=True)
class _SentInitial:
    """An initial email as written: what its follow-up and the behaviour after it refer to."""

    initial: _Initial
    row_id: int
    key: str | None  # None: written before the scheduler had keys (legacy)
    priority: int
    moment: datetime  # 08:30 on the send date when the sending side kept no time


def _followup_rows(
    conn: sqlite3.Connection,
    due: _DueDates,
    count: int,
    wanted: int,
    as_of: date,
    first_id: int,
    targets: list[_Target],
    rng: random.Random,
) -> tuple[list[Row], int, list[Row], list[Row]]:
    """(email_schedules rows: initials then existing follow-ups, number of initials,
    tracking_clicks rows, contact_events rows)."""
    first = as_of - timedelta(days=INITIAL_LOOKBACK)
    taken = _taken_occurrences(conn)
    plan = _plan_initials(
        due.pools(as_of, taken),
        _campaign_candidates(targets, first, as_of),
        count,
        wanted,
        first,
        taken,
        rng,
    )
    initials: list[Row] = []
    followups: list[Row] = []
    behaviour = _Behaviour(as_of, rng)
    # Each initial draws its row, its follow-up, then the behaviour after it:
    # interleaved, in this order, as the databases were always generated.
    for n, initial in enumerate(plan):
        sent, row = _send_initial(initial, first_id + n, as_of, rng.random)
        initials.append(row)
        followup = _existing_followup(sent, as_of, rng.random)
        if followup is not None:
            followups.append(followup)
        behaviour.react_to(sent)
    behaviour.add_unattributed_clicks(first)
    # Follow-ups were written after every initial, so their ids come after.
    first_followup_id = first_id + len(initials)
    schedules = initials + [{"id": first_followup_id + n, **row} for n, row in enumerate(followups)]
    return schedules, len(plan), behaviour.clicks, behaviour.events


def _taken_occurrences(conn: sqlite3.Connection) -> set[tuple[int, str, int]]:
    """(contact, type, event year) of the history already written: the legacy
    unique index allows no second row of one."""
    return {
        (cid, kind, year)
        for cid, kind, year in conn.execute(
            "SELECT contact_id, email_type, event_year FROM email_schedules"
            " WHERE event_year IS NOT NULL"
        )
    }


def _campaign_candidates(
    targets: list[_Target], first: date, as_of: date
) -> list[tuple[_Initial, _Target]]:
    """Campaign emails sent in [first, as_of] to targets of an instance that follows up,
    with their target; the first of each contact only."""
    found: list[tuple[_Initial, _Target]] = []
    seen: set[int] = set()
    for target in targets:
        trigger, cid, inst = target.trigger, target.contact_id, target.instance
        if trigger is None or not inst.followups or target.status == "cancelled":
            continue
        send = trigger - timedelta(days=inst.days_before)
        if cid not in seen and first <= send <= as_of and inst.allows(send):
            seen.add(cid)
            found.append((_Initial(cid, f"campaign_{inst.kind}", send, trigger, inst), target))
    return found


def _plan_initials(
    anniversaries: dict[str, list[tuple[int, date, date]]],
    campaigns: list[tuple[_Initial, _Target]],
    count: int,
    wanted: int,
    first: date,
    taken: set[tuple[int, str, int]],
    rng: random.Random,
) -> list[_Initial]:
    """Who gets which initial email (one per contact), in the shares of INITIAL_MIX."""
    quotas = {kind: int(wanted * share) for kind, share in INITIAL_MIX}
    chosen: set[int] = set()
    plan = _anniversary_initials(anniversaries, quotas, chosen, rng)
    plan += _campaign_initials(campaigns, quotas["campaign"], chosen, rng)
    # The rest, whatever the others could not fill: post-window and AEP emails.
    plan += _other_initials(count, wanted - len(plan), chosen, first, taken, rng)
    plan.sort(key=lambda p: (p.send, p.contact_id))  # as the sending side wrote them
    return plan


def _anniversary_initials(
    pools: dict[str, list[tuple[int, date, date]]],
    quotas: dict[str, int],
    chosen: set[int],
    rng: random.Random,
) -> list[_Initial]:
    """Birthday, then effective-date initials, among the emails that were due; adds
    their contacts to ``chosen``."""
    plan: list[_Initial] = []
    for kind in ("birthday", "effective_date"):
        pool = [p for p in pools[kind] if p[0] not in chosen]
        for cid, send, event in rng.sample(pool, min(quotas[kind], len(pool))):
            plan.append(_Initial(cid, kind, send, event, None))
            chosen.add(cid)
    return plan


def _campaign_initials(
    candidates: list[tuple[_Initial, _Target]],
    quota: int,
    chosen: set[int],
    rng: random.Random,
) -> list[_Initial]:
    """Campaign initials among the candidates; adds their contacts to ``chosen``."""
    pool = [c for c in candidates if c[0].contact_id not in chosen]
    plan: list[_Initial] = []
    for initial, target in rng.sample(pool, min(quota, len(pool))):
        plan.append(initial)
        chosen.add(initial.contact_id)
        target.status = "scheduled"  # the scheduler wrote its decision back
    return plan


def _other_initials(
    count: int,
    wanted: int,
    chosen: set[int],
    first: date,
    taken: set[tuple[int, str, int]],
    rng: random.Random,
) -> list[_Initial]:
    """Post-window and AEP initials to contacts without an initial yet."""
    r = rng.random
    plan: list[_Initial] = []
    for cid in _other_contacts(count, wanted, chosen, rng):
        send = first + timedelta(days=int(r() * (INITIAL_LOOKBACK + 1)))
        kind = "aep" if r() < 0.4 else "post_window"
        if (cid, kind, send.year) in taken:
            kind = "post_window"  # no legacy rows of that type
        plan.append(_Initial(cid, kind, send, send, None))
    return plan


def _other_contacts(count: int, wanted: int, chosen: set[int], rng: random.Random) -> list[int]:
    """``wanted`` contacts outside ``chosen``, at random while there are enough."""
    # Drawing as many extra as are chosen leaves enough once those are dropped.
    others = [
        c
        for c in rng.sample(range(1, count + 1), min(count, wanted + len(chosen)))
        if c not in chosen
    ]
    if len(others) < wanted:  # nearly every contact has one: take the rest in order
        have = chosen | set(others)
        others += [c for c in range(1, count + 1) if c not in have]
    return others[:wanted]


def _send_initial(
    initial: _Initial, row_id: int, as_of: date, r: Callable[[], float]
) -> tuple[_SentInitial, Row]:
    """The initial email as the sending side recorded it, and its email_schedules row."""
    legacy = r() < 0.1  # written before keys: no key, half without event year
    inst = initial.instance
    priority = (
        CAMPAIGN_PRIORITY[inst.kind] if inst is not None else INITIAL_PRIORITY[initial.email_type]
    )
    with_event = not (legacy and r() < 0.5)
    send = initial.send
    actual = send if send == as_of or r() >= 0.05 else send + ONE_DAY  # sent a day late
    sent_at = f"{actual.isoformat()} {SEND_TIMES[int(r() * 600)]}"
    has_actual = r() < 0.9
    status = "delivered" if r() < 0.6 else "sent"
    moment = (
        datetime.fromisoformat(sent_at)
        if has_actual
        else datetime.combine(send, datetime.min.time()).replace(hour=8, minute=30)
    )
    key = None if legacy else _occurrence_key(initial)
    sent = _SentInitial(initial, row_id, key, priority, moment)
    return sent, _initial_row(sent, status, sent_at if has_actual else None, with_event)


def _occurrence_key(initial: _Initial) -> str:
    """The scheduler's key of the email: one email per contact and occurrence."""
    cid, kind, event, inst = (
        initial.contact_id,
        initial.email_type,
        initial.event,
        initial.instance,
    )
    if kind in ("birthday", "effective_date"):
        return f"{cid}:{kind}:{event.year}"
    if inst is not None:  # a campaign
        return f"{cid}:campaign:{inst.id}:{event.isoformat()}"
    if kind == "aep":
        return f"{cid}:aep:{event.isoformat()}"
    # post_window: keyed by the end date of the window, the day before
    return f"{cid}:post_window:{(initial.send - ONE_DAY).isoformat()}"


def _initial_row(sent: _SentInitial, status: str, sent_at: str | None, with_event: bool) -> Row:
    """The email_schedules row of an initial email; ``sent_at`` None: no time recorded."""
    initial, inst = sent.initial, sent.initial.instance
    kind, send, event = initial.email_type, initial.send, initial.event
    send_iso, compact = send.isoformat(), send.isoformat().replace("-", "")
    return {
        "id": sent.row_id,
        "contact_id": initial.contact_id,
        "email_type": kind,
        "scheduled_send_date": send_iso,
        "scheduled_send_time": "08:30:00",
        "status": status,
        "skip_reason": None,
        "created_at": f"{(send - TWENTY_DAYS).isoformat()} {CREATED_TIME}",
        "updated_at": sent_at if sent_at is not None else f"{send_iso} 08:30:00",
        "batch_id": f"batch_{compact}",
        "event_year": event.year if with_event else None,
        "event_month": event.month if with_event else None,
        "event_day": event.day if with_event else None,
        "actual_send_datetime": sent_at,
        "priority": sent.priority,
        "email_template": inst.email_template if inst is not None else f"{kind}_email",
        "scheduler_run_id": f"legacy-{compact}" if sent.key is None else f"sweep-{compact}",
        "campaign_instance_id": inst.id if inst is not None else None,
        "sms_template": None,
        "metadata": None,
        "occurrence_key": sent.key,
    }


def _existing_followup(sent: _SentInitial, as_of: date, r: Callable[[], float]) -> Row | None:
    """The cold follow-up already sent, two days after the initial, for about 3% of them."""
    send = sent.initial.send
    # Only initials two days old or more can have one; the others draw nothing.
    if send > as_of - timedelta(days=2) or r() >= 0.03:
        return None
    sent_on = send + timedelta(days=2)
    sent_at = f"{sent_on.isoformat()} {SEND_TIMES[int(r() * 600)]}"
    if sent.key is None or r() < 0.5:  # a legacy follow-up: no key, no metadata
        return _followup_row(sent, sent_on, sent_at, None, None)
    key = f"{sent.initial.contact_id}:followup:{sent.key}"
    return _followup_row(sent, sent_on, sent_at, key, _cold_followup_metadata(sent, sent.key))


def _cold_followup_metadata(sent: _SentInitial, initial_key: str) -> str:
    """What the scheduler records of a cold follow-up: its initial and the behaviour."""
    return json.dumps(
        {
            "initial_key": initial_key,
            "initial_row_id": sent.row_id,
            "initial_type": sent.initial.email_type,
            "initial_send_at": sent.moment.isoformat(),
            "followup_type": "followup_1_cold",
            "behaviour": {
                "clicks": 0,
                "health_answers": 0,
                "health_answers_with_condition": 0,
                "decided_by": "no click or health answer since the initial email",
            },
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def _followup_row(
    sent: _SentInitial, sent_on: date, sent_at: str, key: str | None, metadata: str | None
) -> Row:
    """The email_schedules row of a sent cold follow-up (its id is given later)."""
    initial, inst = sent.initial, sent.initial.instance
    event = initial.event
    sent_on_iso = sent_on.isoformat()
    compact = sent_on_iso.replace("-", "")
    return {
        "contact_id": initial.contact_id,
        "email_type": "followup_1_cold",
        "scheduled_send_date": sent_on_iso,
        "scheduled_send_time": "08:30:00",
        "status": "sent",
        "skip_reason": None,
        "created_at": f"{initial.send.isoformat()} {CREATED_TIME}",
        "updated_at": sent_at,
        "batch_id": f"batch_{compact}",
        "event_year": None if key is None else event.year,
        "event_month": None if key is None else event.month,
        "event_day": None if key is None else event.day,
        "actual_send_datetime": sent_at,
        "priority": sent.priority,
        "email_template": "followup_1_cold_email",
        "scheduler_run_id": f"{'legacy' if key is None else 'sweep'}-{compact}",
        "campaign_instance_id": inst.id if inst is not None else None,
        "sms_template": None,
        "metadata": metadata,
        "occurrence_key": key,
    }


class _Behaviour:
    """What contacts did around the initial emails: the clicks and health answers that
    decide the follow-ups, and other events that decide nothing."""

    def __init__(self, as_of: date, rng: random.Random) -> None:
        self.rng = rng
        self.r = rng.random
        # The sweep runs on as_of: nothing it reads happened later.
        self.last_moment = datetime.combine(as_of, datetime.max.time()).replace(microsecond=0)
        self.clicks: list[Row] = []
        self.events: list[Row] = []
        self.health_answers = 0  # so far: the count picks the malformed ones

    def react_to(self, sent: _SentInitial) -> None:
        """Clicks for about 30% of the initials, health answers for about 10%."""
        r = self.r
        if r() < 0.3:
            self._add_clicks(sent)
        if r() < 0.1:
            self._add_health_answer(sent)
        if r() < 0.05:  # other events, which decide nothing
            moment = min(sent.moment + timedelta(minutes=1 + int(r() * 600)), self.last_moment)
            self.events.append(_event(sent.initial.contact_id, None, "email_opened", None, moment))

    def add_unattributed_clicks(self, first: date) -> None:
        """About one click in a hundred that nobody can be tied to."""
        start = datetime.combine(first, datetime.min.time())
        for _ in range(len(self.clicks) // 100):
            moment = start + timedelta(minutes=int(self.r() * 50000))
            self.clicks.append(_click(self._tracking_id(), None, None, moment))

    def _add_clicks(self, sent: _SentInitial) -> None:
        r = self.r
        for _ in range(1 if r() < 0.7 else 2 if r() < 0.67 else 3):
            moment = self._reaction_moment(sent.moment, earliest=5, span=4320)
            quote = f"Q{100000 + int(r() * 900000)}" if r() < 0.4 else None
            self.clicks.append(_click(self._tracking_id(), sent.initial.contact_id, quote, moment))

    def _add_health_answer(self, sent: _SentInitial) -> None:
        cid = sent.initial.contact_id
        moment = self._reaction_moment(sent.moment, earliest=10, span=7200)
        self.health_answers += 1
        metadata = self._health_answer_metadata()
        lead = 500000 + cid if self.r() < 0.3 else None
        self.events.append(_event(cid, lead, "eligibility_answered", metadata, moment))

    def _health_answer_metadata(self) -> str:
        """The answers as the web form stored them: some show a condition, a few are
        malformed (the rules must survive them)."""
        r = self.r
        m = r()  # drawn for the malformed ones too, to keep the stream aligned
        if self.health_answers % 100 == 50:  # 1%, from the 50th answer on
            return MALFORMED_HEALTH_ANSWERS[
                (self.health_answers // 100) % len(MALFORMED_HEALTH_ANSWERS)
            ]
        if m < 0.26:  # a condition, flagged
            return (
                f'{{"answers_count":7,"main_questions_yes_count":{1 + int(r() * 3)},'
                '"has_medical_conditions":true}'
            )
        if m < 0.36:  # a condition by the yes count alone
            return (
                f'{{"answers_count":7,"main_questions_yes_count":{1 + int(r() * 2)},'
                '"has_medical_conditions":false}'
            )
        return HEALTH_ANSWERS[0 if r() < 0.8 else 1]

    def _reaction_moment(self, sent_at: datetime, earliest: int, span: int) -> datetime:
        """Mostly within ``span`` minutes after the email, which counts; 15% before it,
        which must not count."""
        r = self.r
        if r() < 0.85:
            moment = sent_at + timedelta(minutes=earliest + int(r() * span))
            if moment > self.last_moment:  # the sweep on as_of cannot have seen it
                moment = sent_at + timedelta(minutes=earliest + int(r() * 120))
            return moment
        return sent_at - timedelta(minutes=60 + int(r() * 43200))

    def _tracking_id(self) -> str:
        return f"trk_{self.rng.getrandbits(64):016x}"


def _add_campaigns_and_followups(
    conn: sqlite3.Connection,
    contacts: int,
    seed: int,
    as_of: date,
    campaign_instances: int,
    campaign_share: float,
    followup_initials: int,
    first_schedule_id: int,
    due: _DueDates | None,
) -> dict[str, int]:
    """Write the campaign and follow-up data; the counts written."""
    counts = {"instances": 0, "targets": 0, "initials": 0, "followups": 0, "clicks": 0, "events": 0}
    instances_written = 0
    targets: list[_Target] = []
    if campaign_instances > 0:
        instances_written, targets = _add_campaigns(
            conn, contacts, seed, as_of, campaign_instances, campaign_share
        )
    if followup_initials > 0:
        assert due is not None
        counts.update(
            _add_followups(
                conn, due, contacts, seed, as_of, followup_initials, first_schedule_id, targets
            )
        )
    # Written last: choosing the follow-up initials marks some targets scheduled.
    _insert(conn, tables.contact_campaigns, [t.row() for t in targets])
    counts.update(instances=instances_written, targets=len(targets))
    return counts


def _add_campaigns(
    conn: sqlite3.Connection,
    contacts: int,
    seed: int,
    as_of: date,
    campaign_instances: int,
    campaign_share: float,
) -> tuple[int, list[_Target]]:
    """Write the campaign types and instances; (instances written, their targets to write)."""
    rng = random.Random(
        f"mailwindow:campaigns:{seed}:{contacts}:{as_of.isoformat()}:"
        f"{campaign_instances}:{campaign_share!r}"
    )
    instances = _campaign_instances(campaign_instances, as_of, rng)
    instance_rows, targets = _campaign_rows(contacts, instances, campaign_share, as_of, rng)
    created = _stamp(date(as_of.year - 1, 1, 15), 36000)
    type_rows: list[Row] = [
        {
            "name": t.name,
            **{field: int(getattr(t, field)) for field in TYPE_COLUMNS},
            "created_at": created,
            "updated_at": created,
        }
        for t in CAMPAIGN_TYPES
    ]
    _insert(conn, tables.campaign_types, type_rows)
    _insert(conn, tables.campaign_instances, instance_rows)
    return len(instance_rows), targets


def _add_followups(
    conn: sqlite3.Connection,
    due: _DueDates,
    contacts: int,
    seed: int,
    as_of: date,
    followup_initials: int,
    first_schedule_id: int,
    targets: list[_Target],
) -> dict[str, int]:
    """Write the initial emails, existing follow-ups, clicks and events; their counts."""
    # Rows the scheduler wrote carry its key; a legacy database has no
    # column for it yet, so add it the way the scheduler's migration does.
    conn.execute(add_column_sql(tables.email_schedules.c.occurrence_key))
    rng = random.Random(
        f"mailwindow:followups:{seed}:{contacts}:{as_of.isoformat()}:{followup_initials}"
    )
    schedules, initials, clicks, events = _followup_rows(
        conn,
        due,
        contacts,
        followup_initials,
        as_of,
        first_schedule_id,
        targets,
        rng,
    )
    _insert(conn, tables.email_schedules, schedules)
    _insert(conn, tables.tracking_clicks, clicks)
    _insert(conn, tables.contact_events, events)
    return {
        "initials": initials,
        "followups": len(schedules) - initials,
        "clicks": len(clicks),
        "events": len(events),
    }


# The schema of a database as found in the field, word for word: sqlite_master keeps
# the text of each CREATE statement, comments included, and a generated database
# must be an agency's.  The product declares the same schema in streams.store.tables.
FIELD_SCHEMA = resources.files("streams").joinpath("sql/legacy_schema.sql")


def _create_field_schema(conn: sqlite3.Connection) -> list[str]:
    """Create the field schema, its indexes taken off again; their CREATE statements, in order.

    Indexes built once over the loaded rows are far cheaper than maintained
    row by row; created again last, they come last in the schema too.
    """
    conn.executescript(FIELD_SCHEMA.read_text("utf-8"))
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY rowid"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    return [str(sql) for _, sql in indexes]


def _check_arguments(
    contacts: int, as_of: date, campaign_instances: int, campaign_share: float, followup_initials: int
) -> None:
    """ValueError naming the first argument outside its range (module docstring)."""
    if not 0 <= contacts <= MAX_ID:
        raise ValueError(f"contacts {contacts} is outside 0..{MAX_ID}")
    if not FIRST_AS_OF <= as_of <= LAST_DATE:
        raise ValueError(f"as_of {as_of} is outside {FIRST_AS_OF}..{LAST_DATE}")
    if not 0 <= campaign_instances <= MAX_ID:
        raise ValueError(f"campaign_instances {campaign_instances} is outside 0..{MAX_ID}")
    if not 0.0 <= campaign_share <= 1.0:  # NaN fails too
        raise ValueError(f"campaign_share {campaign_share} is outside 0..1")
    if not 0 <= followup_initials <= contacts:
        raise ValueError(
            f"followup_initials {followup_initials} is outside 0..{contacts} "
            "(at most one initial email per contact)"
        )


def _new_file_paths(path: str) -> tuple[Path, Path]:
    """(the database asked for, the file it is built in); StoreError if it cannot be."""
    target = Path(path)
    if target.exists():
        raise StoreError(f"refusing to overwrite existing file: {target}")
    if not target.parent.is_dir():
        raise StoreError(f"directory not found for new database: {target}")
    # Built beside the target and renamed at the end, so an interrupted run
    # never leaves a half-filled file under the requested name.
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    return target, partial


def _begin_bulk_load(conn: sqlite3.Connection) -> list[str]:
    """Create the schema and open the load's transaction; the CREATE INDEX statements
    to run once the rows are in."""
    # A fresh file nobody else reads: durability during the load buys nothing.
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    indexes = _create_field_schema(conn)
    conn.execute("BEGIN")
    return indexes


def _load_contacts(conn: sqlite3.Connection, chunks: Chunks, due: _DueDates | None) -> int:
    """Insert the contacts and their history; the number of history rows."""
    history_rows = 0
    for contact_chunk, history_chunk in chunks:
        if due is not None:  # noted while the chunk is at hand: the contacts are not kept
            due.scan(contact_chunk)
        _insert(conn, tables.contacts, contact_chunk)
        _insert(conn, tables.email_schedules, history_chunk)
        history_rows += len(history_chunk)
    return history_rows


def generate_database(
    path: str,
    contacts: int,
    seed: int = 1,
    as_of: date | None = None,
    *,
    campaign_instances: int = 0,
    campaign_share: float = 0.10,
    followup_initials: int = 0,
) -> GenerateSummary:
    """Write a new SQLite database of ``contacts`` synthetic contacts at ``path``.

    The schema is the agencies' own, word for word (``FIELD_SCHEMA``).  An
    existing file is never overwritten.  The same arguments give the same rows.

    ``campaign_instances``: instances of the campaign types of CAMPAIGN_TYPES
    (types written only when > 0), targeting ``campaign_share`` of the
    contacts in total.  ``followup_initials``: that many sent or delivered
    initial emails (one per contact) in [as_of - 35, as_of], with clicks and
    health answers; email_schedules then gains the scheduler's
    ``occurrence_key`` column, set on most of them.  With the defaults the
    database is exactly what it was before these options existed.
    """
    started = time.perf_counter()
    as_of = as_of or DEFAULT_AS_OF
    _check_arguments(contacts, as_of, campaign_instances, campaign_share, followup_initials)
    target, partial = _new_file_paths(path)
    stats = {"invalid": 0}
    due = _DueDates(as_of) if followup_initials > 0 else None
    if contacts >= PARALLEL_MIN_CONTACTS:
        chunks = _chunks_from_process(contacts, seed, as_of, stats)
    else:
        chunks = _contact_rows(contacts, seed, as_of, _Population(as_of), stats)
    conn = sqlite3.connect(partial, isolation_level=None)
    try:
        indexes = _begin_bulk_load(conn)
        history_rows = _load_contacts(conn, chunks, due)
        extra = _add_campaigns_and_followups(
            conn,
            contacts,
            seed,
            as_of,
            campaign_instances,
            campaign_share,
            followup_initials,
            first_schedule_id=history_rows + 1,
            due=due,
        )
        for sql in indexes:
            conn.execute(sql)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.close()
        os.replace(partial, target)
    except BaseException:
        conn.close()
        partial.unlink(missing_ok=True)
        raise
    finally:
        chunks.close()  # stops the generating process if the load failed
    return GenerateSummary(
        contacts=contacts,
        invalid_contacts=stats["invalid"],
        history_rows=history_rows,
        elapsed_s=time.perf_counter() - started,
        campaign_instances=extra["instances"],
        campaign_targets=extra["targets"],
        followup_initials=extra["initials"],
        existing_followups=extra["followups"],
        tracking_clicks=extra["clicks"],
        contact_events=extra["events"],
    )
