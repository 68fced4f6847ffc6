"""Synthetic agency databases in the exact legacy schema, for tests and benchmarks.

The data imitate what agencies really hold (SPEC section 2 and the comments of
legacy/schema.sql): mostly clean contacts, plus the dirt the scheduler must
survive - ZIP+4 codes, blank ZIPs, lower-case or padded or wrong state
columns, dates with a time part, junk dates, February 29 birthdays, invalid
e-mail addresses - and a sending history with legacy upper-case rows.

The output depends only on (contacts, seed, as_of).  The clock is read only
to report how long the load took.
"""

from __future__ import annotations

import bisect
import calendar
import multiprocessing
import multiprocessing.context
import multiprocessing.queues
import os
import queue
import random
import sqlite3
import time
from collections.abc import Generator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from rules.anniversary import anniversary
from rules.zip_state import USPS_CODES, zip_states
from streams.store import StoreError, legacy_ddl

DEFAULT_AS_OF = date(2026, 3, 10)

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

CONTACT_COLUMNS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "current_carrier",
    "current_premium",
    "plan_type",
    "effective_date",
    "birth_date",
    "tobacco_user",
    "gender",
    "state",
    "zip_code",
    "agent_id",
    "phone_number",
    "status",
    "created_at",
    "updated_at",
)
SCHEDULE_COLUMNS = (
    "contact_id",
    "email_type",
    "scheduled_send_date",
    "scheduled_send_time",
    "status",
    "skip_reason",
    "created_at",
    "updated_at",
    "batch_id",
    "event_year",
    "event_month",
    "event_day",
    "actual_send_datetime",
    "priority",
    "email_template",
    "scheduler_run_id",
)

ContactRow = tuple[
    int, str, str, str, str | None, str | None, str | None, str | None, str | None, int, str,
    str | None, str | None, int, str | None, str, str, str
]  # fmt: skip
ScheduleRow = tuple[
    int, str, str, str, str, None, str, str, str, int | None, int | None, int | None, str |
    None, int, str, str
]  # fmt: skip


# Chunks of contact rows, each with the history rows of those contacts.
Chunks = Generator[tuple[list[ContactRow], list[ScheduleRow]], None, None]


@dataclass(frozen=True)
class GenerateSummary:
    contacts: int
    invalid_contacts: int
    history_rows: int
    elapsed_s: float


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


def _contact_rows(
    count: int, seed: int, as_of: date, pop: _Population, stats: dict[str, int]
) -> Chunks:
    """Chunks of contact rows with the history rows of those contacts."""
    rng = random.Random(f"mailwindow:{seed}:{count}:{as_of.isoformat()}")
    r = rng.random
    last_year = as_of.year - 1
    # Spread one contact of each USPS code through the table so that any
    # database of a few thousand contacts exercises every state's rules.
    stride = max(1, count // len(pop.codes))
    forced_state = {1 + j * stride: code for j, code in enumerate(pop.codes) if j * stride < count}

    contacts: list[ContactRow] = []
    history: list[ScheduleRow] = []
    n_first, n_last, n_dom = len(FIRST_NAMES), len(LAST_NAMES), len(DOMAINS)
    n_bd, n_ed, n_edf = len(pop.birth_days), len(pop.ed_days), len(pop.ed_firsts)
    cum, total, states = pop.state_cumulative, pop.state_total, pop.states
    # Local names: this loop runs millions of times.
    firsts_lower = [name.lower() for name in FIRST_NAMES]
    lasts_lower = [name.lower() for name in LAST_NAMES]
    zips_by_state, bisect_right = pop.zips_by_state, bisect.bisect_right
    birth_days, birth_isos = pop.birth_days, pop.birth_isos
    ed_days, ed_isos, ed_firsts, ed_first_isos = (
        pop.ed_days,
        pop.ed_isos,
        pop.ed_firsts,
        pop.ed_first_isos,
    )
    created_ats, premiums = pop.created_ats, pop.premiums
    n_created, n_premiums = len(created_ats), len(premiums)

    for cid in range(1, count + 1):
        i_first, i_last = int(r() * n_first), int(r() * n_last)
        first, last = FIRST_NAMES[i_first], LAST_NAMES[i_last]
        domain = DOMAINS[int(r() * n_dom)]

        forced = forced_state.get(cid)
        state = forced or states[bisect_right(cum, r() * total)]
        zips = zips_by_state[state]
        zip5 = zips[int(r() * len(zips))]

        # One draw chooses the data-quality case; the cases are exclusive.
        q = 0.99 if forced else r()
        email = f"{firsts_lower[i_first]}.{lasts_lower[i_last]}{cid}@{domain}"
        zip_code: str | None = zip5
        state_col: str | None = state
        if q < 0.005:  # invalid: no usable location at all
            zip_code = "" if r() < 0.5 else None
            state_col = JUNK_STATES[int(r() * len(JUNK_STATES))]
            stats["invalid"] += 1
        elif q < 0.010:  # invalid: unusable e-mail address
            email = f"no-at-sign{cid}" if r() < 0.7 else f"{firsts_lower[i_first]}{cid}@"
            stats["invalid"] += 1
        elif q < 0.013:  # the state column contradicts the ZIP (the ZIP wins)
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
        elif q < 0.170:
            email = f" {first}.{last}{cid}@{domain.upper()} "  # usable once trimmed

        b = r()
        birth: date | None
        if cid % 400 == 200:  # enough leap-day birthdays even in small databases
            year = LEAP_BIRTH_YEARS[(cid // 400) % len(LEAP_BIRTH_YEARS)]
            birth = date(year, 2, 29)
            birth_raw: str | None = birth.isoformat()
        elif b < 0.003:
            birth, birth_raw = None, None
        elif b < 0.006:
            birth, birth_raw = None, JUNK_BIRTH_DATES[int(r() * len(JUNK_BIRTH_DATES))]
        else:
            i = int(r() * n_bd)
            birth, birth_raw = birth_days[i], birth_isos[i]
            if b > 0.97:
                birth_raw += " 00:00:00"

        e = r()
        effective: date | None
        if e < 0.05:
            effective, effective_raw = None, None
        elif e < 0.053:
            effective = None
            effective_raw = JUNK_EFFECTIVE_DATES[int(r() * len(JUNK_EFFECTIVE_DATES))]
        elif e < 0.72:  # policies mostly start on the first of a month
            i = int(r() * n_edf)
            effective, effective_raw = ed_firsts[i], ed_first_isos[i]
        else:
            i = int(r() * n_ed)
            effective, effective_raw = ed_days[i], ed_isos[i]
        if effective_raw is not None and e > 0.985:
            effective_raw += " 00:00:00"

        phone = None
        if r() < 0.5:
            phone = f"{AREA_CODES[int(r() * len(AREA_CODES))]}{2000000 + int(r() * 7999999)}"
        g = r()
        created = created_ats[int(r() * n_created)]
        contacts.append(
            (
                cid,
                first,
                last,
                email,
                CARRIERS[int(g * 1000) % len(CARRIERS)],
                premiums[int(r() * n_premiums)],
                PLAN_TYPES[int(g * 10000) % len(PLAN_TYPES)],
                effective_raw,
                birth_raw,
                1 if g < 0.12 else 0,
                "F" if int(g * 100) % 100 < 54 else "M",
                state_col,
                zip_code,
                1 + int(g * 1_000_000) % 40,
                phone,
                "",
                created,
                created,
            )
        )

        h = r()
        if h < 0.11:
            row = _last_year_send(cid, birth, effective, last_year, r())
            if row is not None:
                history.append(row)
        h = r()
        if h < 0.012:
            history.append(_legacy_upper_case_send(cid, as_of, r()))
        elif h < 0.016:
            history.append(_failed_aep(cid, last_year, r()))
        elif h < 0.019 and birth is not None:
            history.append(_scheduled_birthday(cid, birth, as_of))

        if len(contacts) >= CHUNK_ROWS:
            yield contacts, history
            contacts, history = [], []
    if contacts:
        yield contacts, history


def _produce_chunks(
    count: int, seed: int, as_of: date, out: multiprocessing.queues.Queue[tuple[object, ...]]
) -> None:
    """The generating process: chunks, then the invalid count, or the error."""
    try:
        stats = {"invalid": 0}
        for contacts, history in _contact_rows(count, seed, as_of, _Population(as_of), stats):
            out.put(("rows", contacts, history))
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
) -> ScheduleRow | None:
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
    return (
        cid,
        kind,
        send_iso,
        "08:30:00",
        "delivered" if x * 10 % 1 < 0.6 else "sent",
        None,
        f"{(send - TWENTY_DAYS).isoformat()} {CREATED_TIME}",
        sent_at,
        f"batch_{send_iso.replace('-', '')}",
        event.year,
        event.month,
        event.day,
        sent_at,
        5,
        f"{kind}_email",
        f"legacy-{send_iso.replace('-', '')}",
    )


def _legacy_upper_case_send(cid: int, as_of: date, x: float) -> ScheduleRow:
    """A row of the old scheduler: upper-case type, no event year."""
    kind = "BIRTHDAY" if x < 0.7 else "POST_WINDOW_BIRTHDAY"
    send_iso = (as_of - timedelta(days=400 + int(x * 300))).isoformat()
    stamp = f"{send_iso} {SEND_TIMES[0]}"
    return (
        cid,
        kind,
        send_iso,
        "08:30:00",
        "sent",
        None,
        stamp,
        stamp,
        f"batch_{send_iso.replace('-', '')}",
        None,
        None,
        None,
        stamp,
        10,
        kind.lower(),
        f"legacy-{send_iso.replace('-', '')}",
    )


def _failed_aep(cid: int, year: int, x: float) -> ScheduleRow:
    send_iso = f"{year:04d}-09-15"
    stamp = f"{send_iso} {SEND_TIMES[0]}"
    return (
        cid,
        "aep",
        send_iso,
        "08:30:00",
        "bounced" if x < 0.5 else "failed",
        None,
        stamp,
        stamp,
        f"batch_{year:04d}0915",
        year,
        9,
        15,
        None,
        3,
        "aep_email",
        f"legacy-{year:04d}0915",
    )


def _scheduled_birthday(cid: int, birth: date, as_of: date) -> ScheduleRow:
    """A birthday email the sending side has already taken over."""
    event = anniversary(birth, as_of.year)
    if event - TWO_WEEKS < as_of:
        event = anniversary(birth, as_of.year + 1)
    as_of_compact = as_of.isoformat().replace("-", "")
    stamp = f"{(as_of - ONE_DAY).isoformat()} {CREATED_TIME}"
    return (
        cid,
        "birthday",
        (event - TWO_WEEKS).isoformat(),
        "08:30:00",
        "scheduled",
        None,
        stamp,
        stamp,
        f"batch_{as_of_compact}",
        event.year,
        event.month,
        event.day,
        None,
        5,
        "birthday_email",
        f"legacy-{as_of_compact}",
    )


def generate_database(
    path: str, contacts: int, seed: int = 1, as_of: date | None = None
) -> GenerateSummary:
    """Write a new SQLite database of ``contacts`` synthetic contacts at ``path``.

    The schema is the legacy DDL as it is.  An existing file is never
    overwritten.  The same (contacts, seed, as_of) give the same rows.
    """
    started = time.perf_counter()
    if contacts < 0:
        raise ValueError("contacts must not be negative")
    as_of = as_of or DEFAULT_AS_OF
    target = Path(path)
    if target.exists():
        raise StoreError(f"refusing to overwrite existing file: {target}")
    if not target.parent.is_dir():
        raise StoreError(f"directory not found for new database: {target}")
    # Built beside the target and renamed at the end, so an interrupted run
    # never leaves a half-filled file under the requested name.
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)

    statements = legacy_ddl()
    stats = {"invalid": 0}
    history_rows = 0
    if contacts >= PARALLEL_MIN_CONTACTS:
        chunks = _chunks_from_process(contacts, seed, as_of, stats)
    else:
        chunks = _contact_rows(contacts, seed, as_of, _Population(as_of), stats)
    conn = sqlite3.connect(partial, isolation_level=None)
    try:
        # A fresh file nobody else reads: durability during the load buys nothing.
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
        conn.execute("BEGIN")
        for s in statements:
            if s.kind != "index":
                conn.execute(s.sql)
        insert_contact = (
            f"INSERT INTO contacts ({', '.join(CONTACT_COLUMNS)})"
            f" VALUES ({', '.join('?' * len(CONTACT_COLUMNS))})"
        )
        insert_schedule = (
            f"INSERT INTO email_schedules ({', '.join(SCHEDULE_COLUMNS)})"
            f" VALUES ({', '.join('?' * len(SCHEDULE_COLUMNS))})"
        )
        for contact_chunk, history_chunk in chunks:
            conn.executemany(insert_contact, contact_chunk)
            conn.executemany(insert_schedule, history_chunk)
            history_rows += len(history_chunk)
        # Indexes built once over the loaded rows are far cheaper than
        # maintained row by row.
        for s in statements:
            if s.kind == "index":
                conn.execute(s.sql)
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
    )
