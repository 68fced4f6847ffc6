"""The ledger's ``due`` is never late (``rules.decision_due``, ``streams.sweep.incremental``).

An incremental sweep as of ``T`` decides a contact only when its ledger entry is due
(``mw_decided.due <= T``), when a trigger marked its inputs changed (``mw_changed``), or
when one of its occurrences entered the range since the last sweep (the "slice").  So
with the same inputs, a contact whose rows a full re-decision would change on day ``D``
must have had, after the sweep of ``D - 1``, a ``due <= D``, unless the slice of ``D``
selects it (yearly occurrences entering the range are the slice's job, not the ledger's:
``rules/decision_due.py``'s docstring).

The property test builds a small agency on a real SQLite file (1-3 contacts of CA, NV,
MO, NY, TX, ID or KY with a ZIP of that state, birth and effective dates near Feb 28/29,
New Year and the days whose windows or ideal dates fall on month ends), optionally
sweeps it some days before ``T`` and marks one row sent (the sending side), then runs
the real sweep (``run_sweep`` with ``full_scan=True``, so every contact is decided every
day and the ledger is rewritten for all) as of ``T``, ``T + 1``, ... up to the last
contact's due (at most ``T + 60``) without changing any input.  On each day it compares
every contact's ``email_schedules`` rows before and after the sweep; a contact whose rows
changed on a day before the due the previous sweep recorded, and that the product's own
slice (``incremental_selection`` with the previous sweep as its base) would not select,
is a change the incremental sweep would miss: the failure names the contact, ``T``, the
day, the due, and the rows before and after.

Apart from the one row marked sent before ``T``'s sweep, nobody sends in this test: rows
dated in the past stay ``pre-scheduled`` (allowed input).

The examples: the due day of a contact whose birthday email is pre-scheduled (at most the
day after the email's date) and of one whose initial email was sent (at most 36 days
after the send), and that a send after ``T`` is decided by the next incremental sweep
whatever the due day (the sending side's write marks the contact).
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from rules.config import DEFAULT_CONFIG
from streams.store.campaigns import load_campaign_book
from streams.store.engine import Store, new_agency_database, open_store
from streams.store.ledger import last_mark
from streams.sweep.incremental import PreviousRun, incremental_selection, previous_run, run_basis
from streams.sweep.run import run_sweep
from streams.sweep.summary import SweepOptions
from tests.legacy_db import add_contacts, add_schedule_rows, copy_database, dump

CONFIG = DEFAULT_CONFIG
LOOKAHEAD = 30
MAX_DAYS_AFTER = 60  # days swept after T, at most

# A ZIP of each state (rules/zip_states.txt): CA, NV, ID, KY have birthday windows, MO an
# effective-date window, NY is year-round, TX has none.
ZIPS = {"CA": "90210", "NV": "89501", "MO": "63101", "NY": "10001", "TX": "75201", "ID": "83702", "KY": "40202"}

# The columns of a contact's rows that a decision can change.
ROW_COLUMNS = (
    "email_type", "scheduled_send_date", "scheduled_send_time", "status", "skip_reason", "priority",
    "campaign_instance_id", "email_template", "sms_template", "event_year", "event_month", "event_day",
    "ideal_send_date", "actual_send_datetime", "metadata",
)  # fmt: skip

# Month-days near which birth and effective dates are drawn: leap days and month ends,
# New Year, and the days whose ideal dates (birthday: E - 14, effective date: E - 30) or
# window ends (CA, KY: anchor + 60; ID: + 63; MO: + 33; NV: first of the month + 60)
# fall on month ends or around February 29.
MONTH_DAYS = (
    (2, 28), (2, 29), (3, 1), (12, 31), (1, 1), (1, 31), (3, 31), (4, 30), (6, 30), (9, 30), (11, 30),
    (3, 14), (3, 15), (1, 14), (3, 29), (3, 30), (1, 30), (12, 30), (11, 1), (10, 29), (1, 28), (12, 29),
    (11, 27), (1, 26), (12, 26), (7, 31), (8, 31), (10, 31), (5, 31), (9, 29), (10, 15), (9, 16), (7, 17),
)  # fmt: skip
LEAP_BIRTH_YEARS = (1944, 1948, 1952, 1956, 1960)
COMMON_BIRTH_YEARS = (1945, 1949, 1951, 1953, 1955, 1957)
EFFECTIVE_YEARS = tuple(range(2000, 2030))  # effective dates in T's future included (no anniversary yet)
AEP = (9, 15)


# -- scenarios ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    id: int
    state: str
    birth_date: str | None
    effective_date: str | None

    def row(self) -> dict[str, object]:
        return {
            "id": self.id,
            "zip_code": ZIPS[self.state],
            "state": self.state,
            "birth_date": self.birth_date,
            "effective_date": self.effective_date,
        }


@dataclass(frozen=True)
class Sent:
    """A row the sending side marked sent: inserted, or (its key already written by a
    sweep) the sweep's row updated as a sender does."""

    contact_id: int
    email_type: str
    sent_at: str  # actual_send_datetime, 'YYYY-MM-DD HH:MM:SS'
    status: str = "sent"
    keyed: bool = True


@dataclass(frozen=True)
class Scenario:
    contacts: tuple[Person, ...]
    as_of: date  # T
    earlier_sweep: date | None = None  # a sweep some days before T (rows of another day)
    sent: Sent | None = None  # marked sent after the earlier sweep, before T's

    def describe(self) -> str:
        return (
            f"T={self.as_of}, earlier sweep={self.earlier_sweep}, sent={self.sent}, contacts="
            + "; ".join(f"{p.id}: {p.state} zip {ZIPS[p.state]} birth {p.birth_date} effective {p.effective_date}"
                        for p in self.contacts)
        )


def _on(year: int, month: int, day: int) -> date:
    """``year-month-day``; February 29 of a common year is February 28."""
    if (month, day) == (2, 29) and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        return date(year, 2, 28)
    return date(year, month, day)


@st.composite
def base_dates(draw: st.DrawFn, years: tuple[int, ...]) -> date:
    """A date near an interesting month-day (or any day) of one of ``years``."""
    year = draw(st.sampled_from(years))
    if draw(st.integers(0, 9)) == 0:
        return draw(st.dates(date(year, 1, 1), date(year, 12, 31)))
    month, day = draw(st.sampled_from(MONTH_DAYS))
    jitter = draw(st.sampled_from((0, 0, 0, 0, -1, 1, -2, 2)))
    return _on(year, month, day) + timedelta(days=jitter)


@st.composite
def people(draw: st.DrawFn, contact_id: int, crowded: bool = False) -> Person:
    state = draw(st.sampled_from(tuple(ZIPS)))
    birth = draw(st.one_of(st.none(), base_dates(LEAP_BIRTH_YEARS + COMMON_BIRTH_YEARS)))
    effective = draw(st.one_of(st.none(), base_dates(EFFECTIVE_YEARS)))
    if crowded:
        # Birthday and effective-date emails due on or near AEP day (September 15), in a
        # state without windows: three emails in a fortnight, so the frequency limit
        # (2 in 14 days) skips one, and the daily cap moves some.
        state = "TX"
        birth = _on(draw(st.sampled_from(LEAP_BIRTH_YEARS + COMMON_BIRTH_YEARS)), 9, 29)
        birth += timedelta(days=draw(st.integers(-3, 3)))
        effective = date(draw(st.sampled_from(EFFECTIVE_YEARS)), 10, 15) + timedelta(days=draw(st.integers(-3, 3)))
    elif birth is not None and effective is not None and draw(st.booleans()):
        # Near the birthday, so that the two emails (and AEP, and a sent one) crowd a
        # fortnight and the frequency limit binds: +16 days puts both on one day.
        shift = draw(st.one_of(st.sampled_from((16, 16, 15, 17, 0, 30)), st.integers(-20, 45)))
        effective = _on(effective.year, birth.month, birth.day) + timedelta(days=shift)
    if birth is None and effective is None:
        birth = draw(base_dates(LEAP_BIRTH_YEARS))
    return Person(
        contact_id, state, birth.isoformat() if birth else None, effective.isoformat() if effective else None
    )


def last_ideal_date(person: Person, email_type: str, upto: date) -> date | None:
    """The ideal send date of the person's latest birthday, effective-date or AEP email
    on or before ``upto`` (None for other types, or without the date)."""
    if email_type == "aep":
        aep = date(upto.year, *AEP)
        return aep if aep <= upto else date(upto.year - 1, *AEP)
    raw, before = {"birthday": (person.birth_date, 14), "effective_date": (person.effective_date, 30)}.get(
        email_type, (None, 0)
    )
    if raw is None:
        return None
    base = date.fromisoformat(raw)
    ideals = [_on(y, base.month, base.day) - timedelta(days=before) for y in range(upto.year - 1, upto.year + 2)]
    return max((d for d in ideals if d <= upto and d.year > base.year), default=None)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    crowded = draw(st.integers(0, 3)) == 0
    contacts = tuple(draw(people(i, crowded and i == 1)) for i in range(1, draw(st.integers(1, 3)) + 1))
    # T: any day, or near a contact's yearly date or AEP, where things happen.
    anchors = [
        (d.month, d.day)
        for p in contacts
        for d in (date.fromisoformat(v) for v in (p.birth_date, p.effective_date) if v)
    ]
    anchors.append(AEP)
    if crowded:
        anchors = [AEP]
    if draw(st.integers(0, 3)) == 0 and not crowded:
        t = draw(st.dates(date(2026, 1, 1), date(2029, 12, 31)))
    else:
        month, day = draw(st.sampled_from(anchors))
        # Mostly so that an email's ideal date (14 or 30 days before, or the day itself)
        # lies in the range or about to enter it.
        near = st.integers(0, 32) if crowded else st.integers(-5, 50)
        before = draw(st.one_of(near, st.integers(-75, 110)))
        t = _on(draw(st.integers(2026, 2029)), month, day) - timedelta(days=before)
        t = min(max(t, date(2026, 1, 1)), date(2029, 12, 31))
    earlier = draw(st.one_of(st.none(), st.integers(1, 45)))
    sent = None
    if draw(st.integers(0, 2)):
        who = draw(st.sampled_from(contacts))
        email_type = draw(st.sampled_from(("birthday", "effective_date", "aep", "post_window")))
        ideal = last_ideal_date(who, email_type, t + timedelta(days=3))
        if ideal is not None and draw(st.booleans()):
            # The contact's own latest email of that type, sent on its ideal date.
            day = ideal
        else:
            # Sent 0..40 days before T: in the follow-up's reach, at its edge (35), or past
            # it; or a day or three after T (a send time recorded in UTC, a day re-run later).
            back = draw(st.one_of(st.integers(0, 40), st.sampled_from((-3, -2, -1, 0, 1, 2, 3, 33, 34, 35, 36))))
            day = t - timedelta(days=back)
        at = datetime.combine(day, datetime.min.time()) + timedelta(
            minutes=draw(st.sampled_from((0, 8 * 60 + 31, 23 * 60 + 59)))
        )
        sent = Sent(
            who.id,
            email_type,
            at.strftime("%Y-%m-%d %H:%M:%S"),
            draw(st.sampled_from(("sent", "delivered"))),
            draw(st.booleans()),
        )
    return Scenario(contacts, t, t - timedelta(days=earlier) if earlier else None, sent)


# -- the agency on a real SQLite file ---------------------------------------------------------


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty legacy database the scheduler has migrated once (copied by every example)."""
    return new_agency_database(tmp_path_factory.mktemp("due") / "template.db")


def sweep(store: Store, day: date) -> PreviousRun:
    """A full-scan sweep as of ``day``: every contact decided, the ledger rewritten."""
    summary = run_sweep(store, CONFIG, SweepOptions(as_of=day, lookahead_days=LOOKAHEAD, full_scan=True, workers=1))
    assert summary.basis
    return PreviousRun(day, summary.basis)


def mark_sent(db: Path, sent: Sent) -> None:
    """The sending side's row: a new one, or the sweep's row of that key moved to sent."""
    at = datetime.strptime(sent.sent_at, "%Y-%m-%d %H:%M:%S")
    day = at.date()
    event = {
        "birthday": day + timedelta(days=14),
        "effective_date": day + timedelta(days=30),
        "aep": date(day.year, *AEP),
        "post_window": day,
    }[sent.email_type]
    part = {
        "birthday": str(event.year),
        "effective_date": str(event.year),
        "aep": event.isoformat(),
        "post_window": (day - timedelta(days=1)).isoformat(),
    }[sent.email_type]
    key = f"{sent.contact_id}:{sent.email_type}:{part}" if sent.keyed else None
    if key is not None and dump(db, "SELECT id FROM email_schedules WHERE occurrence_key = ?", (key,)):
        con = sqlite3.connect(db)
        try:
            con.execute(
                "UPDATE email_schedules SET status = ?, actual_send_datetime = ? WHERE occurrence_key = ?",
                (sent.status, sent.sent_at, key),
            )
            con.commit()
        finally:
            con.close()
        return
    add_schedule_rows(
        db,
        [{
            "contact_id": sent.contact_id, "email_type": sent.email_type, "scheduled_send_date": day.isoformat(),
            "scheduled_send_time": "08:30:00", "status": sent.status, "actual_send_datetime": sent.sent_at,
            "event_year": event.year, "event_month": event.month, "event_day": event.day, "priority": 5,
            "occurrence_key": key, "ideal_send_date": day.isoformat() if key else None,
        }],
    )  # fmt: skip


Rows = dict[str, tuple[object, ...]]


def rows_by_contact(db: Path) -> dict[int, Rows]:
    out: dict[int, Rows] = {}
    for row_id, contact_id, key, *values in dump(
        db, f"SELECT id, contact_id, occurrence_key, {', '.join(ROW_COLUMNS)} FROM email_schedules"
    ):
        out.setdefault(int(contact_id), {})[str(key) if key is not None else f"(no key) row {row_id}"] = tuple(values)
    return out


def dues(db: Path) -> dict[int, date]:
    return {int(c): date.fromisoformat(str(d)) for c, d in dump(db, "SELECT contact_id, due FROM mw_decided")}


def selection(store: Store, day: date, previous: PreviousRun | None = None) -> tuple[set[int], str]:
    """The contacts an incremental sweep as of ``day`` would decide (the product's own
    selection: due, marked, entering the range), and why.  Without ``previous``: built
    on the last completed sweep, as the sweep itself does (before it runs).  With it:
    asked after the sweep of ``day`` (whose entries are all due after ``day`` and which
    cleared the marks), which leaves the contacts whose occurrences entered the range."""
    options = SweepOptions(as_of=day, lookahead_days=LOOKAHEAD, workers=1)
    with store.engine.connect() as conn:
        if previous is None:
            previous = previous_run(conn, "probe")
            assert previous is not None and previous.basis == run_basis(conn, CONFIG, options)
        campaigns = load_campaign_book(conn, CONFIG).book
        chosen = incremental_selection(conn, CONFIG, options, campaigns, previous, last_mark(conn))
    return chosen.ids, chosen.why


def show(rows: Rows) -> str:
    return "\n".join(f"      {k}: {dict(zip(ROW_COLUMNS, v, strict=True))}" for k, v in sorted(rows.items())) or "      (none)"


def changed_keys(before: Rows, after: Rows) -> Iterator[str]:
    for key in sorted(before.keys() | after.keys()):
        if before.get(key) != after.get(key):
            yield key


@dataclass
class Tally:
    """What the days checked saw (for tuning the strategies: ``seen`` the final rows'
    type, status and skip reason)."""

    days: int = 0
    changes: int = 0
    on_due: int = 0
    selected: int = 0
    seen: set[str] = field(default_factory=set)


def check_day(
    scenario: Scenario,
    store: Store,
    previous: PreviousRun,
    day: date,
    before: dict[int, Rows],
    due_before: dict[int, date],
    after: dict[int, Rows],
    chosen: tuple[set[int], str] | None,
    tally: Tally,
) -> None:
    """No contact's rows changed on ``day`` before the due day the sweep of ``previous``
    recorded, unless the incremental sweep of ``day`` would select it anyway."""
    tally.days += 1
    for p in scenario.contacts:
        b, a = before.get(p.id, {}), after.get(p.id, {})
        if a == b:
            continue
        tally.changes += 1
        assert p.id in due_before, f"contact {p.id}: no ledger entry after the sweep of {previous.as_of}"
        due = due_before[p.id]
        if day >= due:
            tally.on_due += 1
            continue
        if chosen is None:
            chosen = selection(store, day, previous)
        ids, why = chosen
        if p.id in ids:
            tally.selected += 1
            continue
        keys = ", ".join(changed_keys(b, a))
        raise AssertionError(
            f"contact {p.id} ({p.state}, zip {ZIPS[p.state]}, birth {p.birth_date}, "
            f"effective {p.effective_date}): its rows changed on {day}, before the due day {due} "
            f"the sweep of {previous.as_of} recorded, and the incremental sweep of {day} would not "
            f"select it ({why}).\n"
            f"  scenario: {scenario.describe()}\n"
            f"  changed keys: {keys}\n"
            f"    before:\n{show(b)}\n    after:\n{show(a)}"
        )


def run_scenario(template: Path, scenario: Scenario) -> Tally:
    """The scenario's sweeps, each day checked (``check_day``)."""
    tally = Tally()
    t = scenario.as_of
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "agency.db"
        copy_database(template, db)
        add_contacts(db, [p.row() for p in scenario.contacts])
        store = open_store(str(db))
        try:
            previous: PreviousRun | None = None
            if scenario.earlier_sweep is not None:
                previous = sweep(store, scenario.earlier_sweep)
            if scenario.sent is not None:
                mark_sent(db, scenario.sent)
            # T: after days without a sweep (the slice spans them; the sent row is a mark).
            before, due_before = rows_by_contact(db), dues(db)
            chosen = selection(store, t) if previous is not None else None
            current = sweep(store, t)
            if previous is not None:
                check_day(scenario, store, previous, t, before, due_before, rows_by_contact(db), chosen, tally)
            first_dues = dues(db)
            assert set(first_dues) == {p.id for p in scenario.contacts}, "a full scan decides every contact"
            # Then every day up to the last contact's due (at most T + 60), inputs unchanged.
            last = min(t + timedelta(days=MAX_DAYS_AFTER), max(first_dues.values()))
            day = t
            while day < last:
                day += timedelta(days=1)
                previous = current
                before, due_before = rows_by_contact(db), dues(db)
                current = sweep(store, day)
                assert current.basis == previous.basis, "same inputs, same basis"
                check_day(scenario, store, previous, day, before, due_before, rows_by_contact(db), None, tally)
            tally.seen = {
                f"{t}/{s}/{(r or '').split(' window')[0]}"
                for t, s, r in dump(db, "SELECT email_type, status, skip_reason FROM email_schedules")
            }
        finally:
            store.close()
    return tally


# Whole sweeps shrink slowly; a failing example is printed unshrunk (its own message
# names the contact, T and the day).  About 1 s per example.
@settings(
    max_examples=55,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_due_is_never_late(migrated_template: Path, scenario: Scenario) -> None:
    run_scenario(migrated_template, scenario)


# -- examples -------------------------------------------------------------------------------


T_EXAMPLE = date(2027, 3, 1)
# TX (no window), birthday 2027-03-20: its email pre-scheduled on 2027-03-06.
BIRTHDAY_PRESCHEDULED = Person(1, "TX", "1950-03-20", None)
# TX, birthday 2027-03-11: its email (ideal date 2027-02-25) sent that day at 08:31.
INITIAL_SENT = Person(2, "TX", "1950-03-11", None)
SENT_INITIAL = Sent(2, "birthday", "2027-02-25 08:31:00")


def example_agency(template: Path, tmp: Path) -> Path:
    """The two contacts above (the initial email marked sent), swept as of ``T_EXAMPLE``."""
    db = tmp / "agency.db"
    copy_database(template, db)
    add_contacts(db, [BIRTHDAY_PRESCHEDULED.row(), INITIAL_SENT.row()])
    mark_sent(db, SENT_INITIAL)
    store = open_store(str(db))
    try:
        sweep(store, T_EXAMPLE)
    finally:
        store.close()
    return db


def column(rows: Rows, key: str, name: str) -> object:
    return rows[key][ROW_COLUMNS.index(name)]


def test_a_prescheduled_email_s_date_passing_needs_no_decision(migrated_template: Path, tmp_path: Path) -> None:
    """A placement is kept until its date and final after it: its date gives no due day,
    and deciding the contact the day after that date (a full scan) changes none of its rows."""
    db = example_agency(migrated_template, tmp_path)
    before = rows_by_contact(db)[1]
    assert column(before, "1:birthday:2027", "status") == "pre-scheduled"
    send_date = date.fromisoformat(str(column(before, "1:birthday:2027", "scheduled_send_date")))
    assert dues(db)[1] > send_date + timedelta(days=1)
    store = open_store(str(db))
    try:
        run_sweep(store, CONFIG, SweepOptions(as_of=send_date + timedelta(days=1), lookahead_days=LOOKAHEAD,
                                              full_scan=True, workers=1))
    finally:
        store.close()
    assert rows_by_contact(db)[1] == before


def test_a_sent_initial_email_whose_follow_up_has_its_row_needs_no_decision(
    migrated_template: Path, tmp_path: Path
) -> None:
    """Once the follow-up has its row, neither its date nor the initial leaving the 35 days
    gives a due day, and deciding the contact every day until after both (full scans)
    changes none of its rows."""
    db = example_agency(migrated_template, tmp_path)
    rows, due = rows_by_contact(db)[2], dues(db)[2]
    sent = datetime.strptime(SENT_INITIAL.sent_at, "%Y-%m-%d %H:%M:%S").date()
    # Its follow-up (ideal 2027-02-27, passed) is placed tomorrow.
    assert column(rows, "2:followup:2:birthday:2027", "scheduled_send_date") == "2027-03-02"
    last = sent + timedelta(days=38)
    assert due > last, (due, sent)
    store = open_store(str(db))
    try:
        day = T_EXAMPLE
        while day < last:
            day += timedelta(days=1)
            sweep(store, day)
            assert rows_by_contact(db)[2] == rows, f"contact 2 changed on {day}"
    finally:
        store.close()


def test_due_of_a_sent_initial_email_without_a_keyed_follow_up(migrated_template: Path, tmp_path: Path) -> None:
    """A legacy initial email (no key): its follow-up is matched some other way, so its
    dates still give due days (the follow-up's and the end of the 35 days)."""
    db = tmp_path / "agency.db"
    copy_database(migrated_template, db)
    add_contacts(db, [INITIAL_SENT.row()])
    mark_sent(db, Sent(2, "birthday", SENT_INITIAL.sent_at, keyed=False))
    store = open_store(str(db))
    try:
        sweep(store, T_EXAMPLE)
    finally:
        store.close()
    sent = datetime.strptime(SENT_INITIAL.sent_at, "%Y-%m-%d %H:%M:%S").date()
    assert any(k.startswith("2:followup:") for k in rows_by_contact(db)[2])
    assert T_EXAMPLE < dues(db)[2] <= sent + timedelta(days=36)


def test_a_send_after_t_is_decided_by_the_incremental_sweep(migrated_template: Path, tmp_path: Path) -> None:
    """Whatever the due day of a pre-scheduled email, its send is seen: the sending side's
    write marks the contact, and the next incremental sweep places the follow-up."""
    db = example_agency(migrated_template, tmp_path)
    store = open_store(str(db))
    try:
        day = T_EXAMPLE
        while day < date(2027, 3, 7):
            day += timedelta(days=1)
            if day == date(2027, 3, 7):  # the sender sent yesterday's email
                con = sqlite3.connect(db)
                con.execute(
                    "UPDATE email_schedules SET status = 'sent', actual_send_datetime = '2027-03-06 08:31:00' "
                    "WHERE occurrence_key = '1:birthday:2027'"
                )
                con.commit()
                con.close()
            summary = run_sweep(store, CONFIG, SweepOptions(as_of=day, lookahead_days=LOOKAHEAD, workers=1))
            assert summary.incremental, summary.prefilter
    finally:
        store.close()
    rows = rows_by_contact(db)[1]
    assert column(rows, "1:followup:1:birthday:2027", "scheduled_send_date") == "2027-03-08"
    assert column(rows, "1:followup:1:birthday:2027", "status") == "pre-scheduled"
