"""Hostile inputs, as a careless operator or an attacker would give them (issue 11).

One table: each row is an input (a config file, a flag, a CSV file, a database
row planted by another program), the command run on it, the exit code it must
give and the words its one-line message (or its output) must contain.  After
every row: the sending side's rows are byte-identical, and a refused command
changed no decision (the schedules' checksum is the one before); a command that
carries on past a bad row (a sweep over one poisoned contact) still decides
everybody else.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from rules.config import DEFAULT_CONFIG
from streams.admin.campaigns import create_instance, set_campaign_type
from streams.store.engine import open_store
from synthetic.generate import generate_database
from tests.legacy_db import dump
from tests.sweeps import checksum
from tests.sweeps import sweep as run_sweep

ROOT = Path(__file__).resolve().parents[3]
OWNED = "('pre-scheduled', 'skipped')"
AS_OF = "2026-03-10"


@dataclass
class Agency:
    """A generated agency, swept once, and a folder for the files a case needs."""

    db: Path
    folder: Path

    def file(self, name: str, text: str) -> str:
        path = self.folder / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    def script(self, sql: str) -> None:
        con = sqlite3.connect(self.db)
        con.executescript(sql)
        con.close()

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> None:
        con = sqlite3.connect(self.db)
        con.execute(sql, params)
        con.commit()
        con.close()


@dataclass(frozen=True)
class Case:
    name: str
    argv: Callable[[Agency], list[str]]  # the command, given the agency
    exit_code: int
    words: tuple[str, ...]  # in stderr (exit 2) or stdout
    plant: Callable[[Agency], None] | None = None  # bad data put in the database first
    decisions_unchanged: bool = True  # False: the command may decide (it carries on)
    max_output: int = 2000  # characters of stdout + stderr at most
    one_line: bool = True  # a refusal is one line on stderr
    extra: tuple[str, ...] = field(default=())


def config(text: str) -> Callable[[Agency], list[str]]:
    def argv(a: Agency) -> list[str]:
        return ["sweep", "--db", str(a.db), "--as-of", AS_OF, "--config", a.file("c.yaml", text)]

    return argv


def sweep(*extra: str) -> Callable[[Agency], list[str]]:
    return lambda a: ["sweep", "--db", str(a.db), "--as-of", AS_OF, *extra]


def nested(depth: int) -> str:
    return "load_balancing:\n  x: " + "[" * depth + "]" * depth + "\n"


BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "timing_constants: {send_time: *g}\n"
)


def targets_csv(rows: str) -> Callable[[Agency], list[str]]:
    def argv(a: Agency) -> list[str]:
        return ["campaign", "targets", "--db", str(a.db), "1", a.file("t.csv", rows)]

    return argv


CASES = [
    # --- config -------------------------------------------------------------------------
    Case("duplicate key", config(
        "state_rules:\n  birthday_windows:\n    CA: {window_before_days: 30, window_after_days: 60}\n"
        "    CA: {window_before_days: 0, window_after_days: 0}\n"),
        2, ("duplicate key 'CA'", "line")),
    Case("nested 100,000 deep", config(nested(100_000)), 2, ("nested",)),
    Case("alias bomb", config(BOMB), 2, ("alias",)),
    Case("20 MB value", config("timing_constants:\n  send_time: '" + "9" * 20_000_000 + "'\n"), 2, ("c.yaml",)),
    Case("priority 10^23", config("priorities:\n  birthday: 100000000000000000000000\n"), 2, ("priorities.birthday", "at most")),
    Case("pre-window 10^12", config("timing_constants:\n  pre_window_exclusion_days: 1000000000000\n"), 2,
         ("pre_window_exclusion_days", "at most")),
    Case("window after 10^9", config(
        "state_rules:\n  birthday_windows:\n    CA: {window_before_days: 30, window_after_days: 1000000000}\n"),
        2, ("window_after_days", "at most")),
    # --- flags --------------------------------------------------------------------------
    Case("as-of 9999-12-31", sweep("--as-of", "9999-12-31"), 2, ("--as-of 9999-12-31", "outside")),
    Case("as-of 9999-11-01", sweep("--as-of", "9999-11-01"), 2, ("--as-of 9999-11-01", "outside")),
    Case("as-of 0001-01-01", sweep("--as-of", "0001-01-01"), 2, ("--as-of 0001-01-01", "outside")),
    Case("lookahead 3,000,000", sweep("--lookahead", "3000000"), 2, ("--lookahead", "more than 366")),
    Case("lookahead 100,000", sweep("--lookahead", "100000"), 2, ("--lookahead", "more than 366")),
    Case("lookback 1,000,000", sweep("--lookback", "1000000"), 2, ("--lookback", "more than 366")),
    Case("explain a huge id", lambda a: ["explain", "--db", str(a.db), "--contact", "99999999999999999999"],
         2, ("--contact", "not an id")),
    Case("campaign targets of a huge instance",
         lambda a: ["campaign", "targets", "--db", str(a.db), "99999999999999999999", a.file("t.csv", "1,2026-04-01\n")],
         2, ("instance_id", "not an id")),
    Case("campaign dates of a huge instance",
         lambda a: ["campaign", "dates", "--db", str(a.db), "99999999999999999999", "--start", "2026-04-01"],
         2, ("instance_id", "not an id")),
    Case("campaign type priority 10^23",
         lambda a: ["campaign", "type", "--db", str(a.db), "promo", "--priority", "100000000000000000000000"],
         2, ("--priority",)),
    Case("campaign type days before -3650",
         lambda a: ["campaign", "type", "--db", str(a.db), "promo", "--days-before", "-3650"],
         2, ("-3650",)),
    Case("gen on an impossible date", lambda a: ["gen", "--db", str(a.folder / "g.db"), "--contacts", "5",
                                                 "--as-of", "9999-12-31"], 2, ("--as-of",)),
    Case("gen with more follow-ups than contacts", lambda a: ["gen", "--db", str(a.folder / "g.db"),
                                                              "--contacts", "5", "--followups", "9"], 2, ("follow",)),
    Case("replay --until yesterday", lambda a: ["replay", "--broker", "127.0.0.1:1", "--db", str(a.folder / "r.db"),
                                                "--until", "yesterday"], 2, ("--until", "yesterday")),
    Case("publish to an unreachable broker", lambda a: ["publish", "--broker", "127.0.0.1:1", "--db", str(a.db)],
         2, ("cannot reach the Kafka broker",), decisions_unchanged=True),
    Case("send-test-events to an unreachable broker",
         lambda a: ["send-test-events", "--broker", "127.0.0.1:1"], 2, ("cannot reach the Kafka broker",)),
    Case("a stale checkpoint taken over", sweep("--take-over"), 0, ("completed",),
         plant=lambda a: a.execute(
             "INSERT INTO scheduler_checkpoints (run_timestamp, scheduler_run_id, contacts_checksum, status, "
             "as_of, pid, host, heartbeat_at) VALUES (datetime('now'), 'ghost', '', 'started', ?, ?, "
             "'elsewhere', datetime('now'))", (AS_OF, 1)),
         decisions_unchanged=False, one_line=False),
    Case("a live-looking checkpoint of another host", sweep(), 2, ("another sweep is running", "--take-over"),
         plant=lambda a: a.execute(
             "INSERT INTO scheduler_checkpoints (run_timestamp, scheduler_run_id, contacts_checksum, status, "
             "as_of, pid, host, heartbeat_at) VALUES (datetime('now'), 'ghost', '', 'started', ?, ?, "
             "'elsewhere', datetime('now'))", (AS_OF, 1))),
    # --- data another program wrote -------------------------------------------------------
    Case("a target dated 0001-01-01 in the table", sweep(), 0, ("completed",),
         plant=lambda a: a.execute(
             "INSERT INTO contact_campaigns (contact_id, campaign_instance_id, trigger_date) VALUES (5, 1, '0001-01-01')"),
         decisions_unchanged=False, one_line=False),
    Case("an instance starting 9999-12-31 in the table", sweep(), 0, ("completed",),
         plant=lambda a: a.execute("UPDATE campaign_instances SET active_start_date = '9999-12-31' WHERE id = 1"),
         decisions_unchanged=False, one_line=False),
    Case("a sent row whose event_year is an epoch in milliseconds", sweep("--as-of", "2026-09-01"), 0, ("completed",),
         plant=lambda a: a.execute(
             "UPDATE email_schedules SET event_year = 1718000000000 WHERE id = (SELECT min(id) FROM email_schedules "
             "WHERE status NOT IN ('pre-scheduled', 'skipped'))"),
         decisions_unchanged=False, one_line=False),
    Case("a contacts.id holding text", sweep(), 0, ("completed", "invalid contact"),
         plant=lambda a: a.script(
             # another program's contacts table, whose id is no rowid: it can hold text
             "CREATE TABLE loose AS SELECT * FROM contacts; DROP TABLE contacts; "
             "ALTER TABLE loose RENAME TO contacts; "
             "INSERT INTO contacts (id, first_name, last_name, email, zip_code, state) "
             "VALUES ('C105', 'A', 'B', 'c105@example.com', '75201', 'TX');"),
         decisions_unchanged=False, one_line=False),
    Case("a 10 MB email in the summary", lambda a: ["sweep", "--db", str(a.db), "--as-of", AS_OF, "--json"], 0,
         ('"status":"completed"',),
         plant=lambda a: a.execute("UPDATE contacts SET email = ? WHERE id = 3", ("x" * 10_000_000,)),
         decisions_unchanged=False, max_output=60_000, one_line=False),
    Case("a 10 MB email explained", lambda a: ["explain", "--db", str(a.db), "--contact", "3", "--as-of", AS_OF],
         0, ("INVALID",),
         plant=lambda a: a.execute("UPDATE contacts SET email = ? WHERE id = 3", ("x" * 10_000_000,)),
         max_output=20_000, one_line=False),
    # --- databases ----------------------------------------------------------------------
    Case("an empty file", lambda a: ["sweep", "--db", a.file("empty.db", ""), "--as-of", AS_OF], 2,
         ("not an agency database",)),
    Case("checksum of a file that is no agency database",
         lambda a: ["checksum", "--db", a.file("empty.db", "")], 2, ("not an agency database",)),
    # --- CSV files ----------------------------------------------------------------------
    Case("a target dated 0001-01-01", targets_csv("1,0001-01-01\n2,2026-04-01\n"), 1, ("t.csv:1", "outside")),
    Case("a target dated 9999-12-31", targets_csv("1,9999-12-31\n2,2026-04-01\n"), 1, ("t.csv:1", "outside")),
    Case("a huge contact id in a CSV", targets_csv("99999999999999999999999,2026-04-01\n2,2026-04-01\n"),
         1, ("t.csv:1", "contact id")),
]


@pytest.fixture(scope="module")
def agency_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("hostile") / "agency.db"
    generate_database(str(db), 400, seed=13, as_of=date(2026, 3, 10), followup_initials=40)
    store = open_store(str(db))
    set_campaign_type(store, DEFAULT_CONFIG, "promo", {"days_before_event": 7})
    create_instance(store, DEFAULT_CONFIG, "promo", "spring", start=None, end=None)
    store.close()
    run_sweep(db, date(2026, 3, 10))
    return db


@pytest.fixture
def agency(agency_template: Path, tmp_path: Path) -> Agency:
    db = tmp_path / "agency.db"
    db.write_bytes(agency_template.read_bytes())
    return Agency(db, tmp_path)


def sending_side(db: Path) -> list[tuple[object, ...]]:
    return dump(db, f"SELECT * FROM email_schedules WHERE status NOT IN {OWNED} ORDER BY id")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case: Case, agency: Agency) -> None:
    if case.plant is not None:
        case.plant(agency)
    history, before = sending_side(agency.db), checksum(agency.db)
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", *case.argv(agency)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    out = result.stdout + result.stderr
    assert result.returncode == case.exit_code, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert len(out) <= case.max_output, f"{len(out):,} characters of output: {out[:500]}"
    told = result.stderr if result.returncode == 2 else out
    for word in case.words:
        assert word in told, told[-2000:]
    if result.returncode == 2 and case.one_line:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sending_side(agency.db) == history
    if case.decisions_unchanged:
        assert checksum(agency.db) == before


@pytest.mark.parametrize(
    "command",
    [
        ["checksum"],
        ["explain", "--contact", "7", "--as-of", AS_OF],
        ["campaign", "list"],
    ],
    ids=["checksum", "explain", "campaign list"],
)
def test_reading_commands_change_nothing_of_a_legacy_database(command: list[str], tmp_path: Path) -> None:
    """An auditor's copy: an agency database as the old scheduler left it, read-only.  The
    commands that only read work on it and change nothing (no index, no journal mode, no file)."""
    db = tmp_path / "legacy.db"
    generate_database(str(db), 50, seed=2, as_of=date(2026, 3, 10))
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=DELETE")  # as the old scheduler's files are
    con.close()
    db.chmod(0o444)
    before = (db.read_bytes(), db.stat().st_mtime_ns, sorted(p.name for p in tmp_path.iterdir()))
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", command[0], *command[1:], "--db", str(db)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (db.read_bytes(), db.stat().st_mtime_ns, sorted(p.name for p in tmp_path.iterdir())) == before
