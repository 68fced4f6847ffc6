"""``mailwindow campaign ...`` on real SQLite files: what each sub-command writes and says."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from streams.cli import main
from streams.store.engine import open_store
from tests.legacy_db import add_contacts, dump, make_legacy_db

ROOT = Path(__file__).resolve().parents[3]
LEGACY_CONFIG = str(ROOT / "tests" / "data" / "legacy_scheduler_config.yaml")

# Texas (no exclusion window); birthday and effective date far from April, so a
# sweep as of 2026-04-01 (30 days ahead) has only campaign emails to write.
QUIET = {"zip_code": "75201", "state": "TX", "birth_date": "1950-10-20", "effective_date": "2010-11-01"}


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, *words: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], lines[0]


def type_row(db: Path, name: str) -> dict[str, Any]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        row = con.execute("SELECT * FROM campaign_types WHERE name = ?", (name,)).fetchone()
        return dict(row) if row is not None else {}
    finally:
        con.close()


def new_instance(capsys: pytest.CaptureFixture[str], db: Path, *args: str) -> int:
    code, out, err = cli(capsys, "campaign", "instance", "--db", str(db), *args)
    assert code == 0, err
    m = re.search(r"created campaign instance (\d+)", out)
    assert m, out
    return int(m.group(1))


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three quiet contacts, migrated once: filling the ZIP table costs a second per database."""
    path = make_legacy_db(tmp_path_factory.mktemp("campaign") / "template.db")
    add_contacts(path, [{"id": i, **QUIET} for i in (1, 2, 3)])
    with open_store(str(path)) as store:
        store.migrate()
    return path


@pytest.fixture
def db(migrated_template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "agency.db"
    shutil.copyfile(migrated_template, copy)
    return copy


@pytest.fixture
def promo(capsys: pytest.CaptureFixture[str], db: Path) -> int:
    """Type 'promo' (table, sent on the trigger date) and its instance May 2026."""
    assert cli(capsys, "campaign", "type", "--db", str(db), "promo")[0] == 0
    return new_instance(capsys, db, "promo", "may", "--start", "2026-05-01", "--end", "2026-05-31")


def write_csv(tmp_path: Path, body: str | bytes, name: str = "targets.csv") -> Path:
    path = tmp_path / name
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body, encoding="utf-8")
    return path


def targets(db: Path) -> list[tuple[Any, ...]]:
    return dump(
        db,
        "SELECT contact_id, campaign_instance_id, trigger_date, status, metadata "
        "FROM contact_campaigns ORDER BY id",
    )


# --- type ------------------------------------------------------------------------


def test_type_created_then_only_given_fields_change(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, _ = cli(
        capsys, "campaign", "type", "--db", str(db), "rate_up",
        "--priority", "3", "--days-before", "-7", "--ignore-windows",
    )
    assert code == 0 and "created campaign type rate_up" in out
    row = type_row(db, "rate_up")
    assert (row["priority"], row["days_before_event"], row["respect_exclusion_windows"]) == (3, -7, 0)
    # the fields not given take CampaignType's defaults
    assert (row["enable_followups"], row["target_all_contacts"], row["active"]) == (1, 0, 1)

    con = sqlite3.connect(db)  # an old timestamp, to see that the change sets it
    con.execute("UPDATE campaign_types SET updated_at = '2000-01-01 00:00:00'")
    con.commit()
    con.close()
    code, out, _ = cli(
        capsys, "campaign", "type", "--db", str(db), "rate_up", "--priority", "4", "--inactive", "--no-followups"
    )
    assert code == 0
    assert "priority 3 -> 4" in out and "active true -> false" in out
    changed = type_row(db, "rate_up")
    assert (changed["priority"], changed["active"], changed["enable_followups"]) == (4, 0, 0)
    for untouched in ("days_before_event", "respect_exclusion_windows", "target_all_contacts", "created_at"):
        assert changed[untouched] == row[untouched], untouched
    assert changed["updated_at"] != "2000-01-01 00:00:00"

    # nothing given, or the same values: nothing written
    code, out, _ = cli(capsys, "campaign", "type", "--db", str(db), "rate_up", "--priority", "4")
    assert code == 0 and "unchanged" in out
    assert type_row(db, "rate_up") == changed


def test_type_name_and_values_refused(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, _, err = cli(capsys, "campaign", "type", "--db", str(db), "Rate-Up")
    assert code == 2
    one_line_error(err, "Rate-Up", "lower-case")
    code, _, err = cli(capsys, "campaign", "type", "--db", str(db), "far", "--days-before", "9999")
    assert code == 2
    one_line_error(err, "--days-before", "9999")
    assert dump(db, "SELECT count(*) FROM campaign_types") == [(0,)]


def test_new_type_row_starts_from_the_config(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    # rate_increase in the legacy config: priority 1, 14 days before; the table row wins
    # by name, so it must not silently fall back to bare defaults.
    code, out, _ = cli(
        capsys, "campaign", "type", "--db", str(db), "--config", LEGACY_CONFIG, "rate_increase", "--priority", "2"
    )
    assert code == 0 and "from the config" in out
    row = type_row(db, "rate_increase")
    assert (row["priority"], row["days_before_event"]) == (2, 14)


# --- instance --------------------------------------------------------------------


def test_instance_created_and_its_id_printed(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    assert cli(capsys, "campaign", "type", "--db", str(db), "promo")[0] == 0
    instance_id = new_instance(
        capsys, db, "promo", "spring", "--start", "2026-04-01", "--end", "2026-04-30",
        "--email-template", "promo_v1", "--sms-template", "promo_sms_v1", "--metadata", '{"batch": 7}',
    )
    assert dump(
        db,
        "SELECT campaign_type, instance_name, email_template, sms_template, active_start_date, "
        "active_end_date, metadata FROM campaign_instances WHERE id = ?",
        (instance_id,),
    ) == [("promo", "spring", "promo_v1", "promo_sms_v1", "2026-04-01", "2026-04-30", '{"batch": 7}')]
    # the same name again in the same type is refused
    code, _, err = cli(capsys, "campaign", "instance", "--db", str(db), "promo", "spring")
    assert code == 2
    one_line_error(err, "spring", f"id {instance_id}")


def test_instance_of_a_config_type(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    instance_id = new_instance(capsys, db, "--config", LEGACY_CONFIG, "initial_blast", "welcome")
    assert dump(db, "SELECT campaign_type FROM campaign_instances WHERE id = ?", (instance_id,)) == [
        ("initial_blast",)
    ]
    # not copied into the table: the config stays the word on it
    assert dump(db, "SELECT count(*) FROM campaign_types") == [(0,)]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("nope", "x"), ("unknown campaign type", "nope")),
        (("promo", "x", "--start", "2026-04-10", "--end", "2026-04-01"), ("--end", "before")),
        (("promo", "x", "--start", "2026-02-30"), ("--start", "2026-02-30")),
        (("promo", "x", "--metadata", "{not json"), ("--metadata", "JSON")),
        (("promo", "x", "--metadata", "NaN"), ("--metadata", "JSON")),
    ],
)
def test_instance_refused(
    capsys: pytest.CaptureFixture[str], db: Path, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    assert cli(capsys, "campaign", "type", "--db", str(db), "promo")[0] == 0
    code, _, err = cli(capsys, "campaign", "instance", "--db", str(db), *args)
    assert code == 2
    one_line_error(err, *words)
    assert dump(db, "SELECT count(*) FROM campaign_instances") == [(0,)]


# --- dates -----------------------------------------------------------------------


def change_log(db: Path) -> list[tuple[Any, ...]]:
    return dump(
        db,
        "SELECT campaign_instance_id, field_changed, old_value, new_value, changed_by, "
        "requires_rescheduling, changed_at IS NOT NULL FROM campaign_change_log ORDER BY id",
    )


def test_dates_change_is_logged_with_old_and_new_values(
    capsys: pytest.CaptureFixture[str], db: Path, promo: int
) -> None:
    code, out, _ = cli(
        capsys, "campaign", "dates", "--db", str(db), str(promo),
        "--start", "2026-04-15", "--end", "none", "--by", "alice",
    )
    assert code == 0
    assert "next sweep" in out
    assert dump(db, "SELECT active_start_date, active_end_date FROM campaign_instances") == [
        ("2026-04-15", None)
    ]
    assert change_log(db) == [
        (promo, "active_start_date", "2026-05-01", "2026-04-15", "alice", 1, 1),
        (promo, "active_end_date", "2026-05-31", None, "alice", 1, 1),
    ]
    # the same value again is no change: nothing more logged
    code, out, _ = cli(capsys, "campaign", "dates", "--db", str(db), str(promo), "--start", "2026-04-15")
    assert code == 0 and "unchanged" in out
    assert len(change_log(db)) == 2
    # without --by: the OS user
    assert cli(capsys, "campaign", "dates", "--db", str(db), str(promo), "--end", "2026-06-30")[0] == 0
    assert change_log(db)[-1][4]


def test_dates_refused_write_nothing(capsys: pytest.CaptureFixture[str], db: Path, promo: int) -> None:
    # the new end before the stored start
    code, _, err = cli(capsys, "campaign", "dates", "--db", str(db), str(promo), "--end", "2026-04-01")
    assert code == 2
    one_line_error(err, "2026-04-01", "before")
    code, _, err = cli(capsys, "campaign", "dates", "--db", str(db), "999", "--start", "2026-04-01")
    assert code == 2
    one_line_error(err, "999")
    code, _, err = cli(capsys, "campaign", "dates", "--db", str(db), str(promo))
    assert code == 2
    one_line_error(err, "--start")
    assert change_log(db) == []
    assert dump(db, "SELECT active_start_date, active_end_date FROM campaign_instances") == [
        ("2026-05-01", "2026-05-31")
    ]


def _apply_april_start(capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path, promo: int) -> str:
    """Target contact 1 on 2026-04-15 (outside May), then move the start to April with --apply."""
    csv_path = write_csv(tmp_path, "1,2026-04-15\n")
    assert cli(capsys, "campaign", "targets", "--db", str(db), str(promo), str(csv_path))[0] == 0
    code, out, err = cli(
        capsys, "campaign", "dates", "--db", str(db), str(promo),
        "--start", "2026-04-01", "--apply", "--as-of", "2026-04-01", "--by", "bob",
    )
    assert code == 0, err
    m = re.search(r"sweep (\S+) as of 2026-04-01 for 1 contact\(s\): completed", out)
    assert m, out
    return m.group(1)


def test_dates_apply_sweeps_the_targets_and_clears_the_flag(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path, promo: int
) -> None:
    run_id = _apply_april_start(capsys, db, tmp_path, promo)
    assert change_log(db) == [(promo, "active_start_date", "2026-05-01", "2026-04-01", "bob", 0, 1)]
    checkpoint = dump(
        db,
        "SELECT status, as_of, contacts_processed FROM scheduler_checkpoints WHERE scheduler_run_id = ?",
        (run_id,),
    )
    assert checkpoint == [("completed", "2026-04-01", 1)]  # only the target was decided


def test_dates_apply_writes_the_targets_campaign_email(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path, promo: int
) -> None:
    _apply_april_start(capsys, db, tmp_path, promo)
    assert dump(
        db,
        "SELECT contact_id, scheduled_send_date, status FROM email_schedules "
        "WHERE email_type = 'campaign_promo' AND campaign_instance_id = ?",
        (promo,),
    ) == [(1, "2026-04-15", "pre-scheduled")]


def test_dates_apply_for_an_all_contacts_type_runs_a_normal_sweep(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    instance_id = new_instance(
        capsys, db, "--config", LEGACY_CONFIG, "initial_blast", "welcome", "--start", "2026-05-01"
    )
    code, out, err = cli(
        capsys, "campaign", "dates", "--db", str(db), "--config", LEGACY_CONFIG, str(instance_id),
        "--start", "2026-04-10", "--apply", "--as-of", "2026-04-01",
    )
    assert code == 0, err
    assert "every contact" in out
    prefilter = dump(db, "SELECT json_extract(summary, '$.prefilter') FROM scheduler_checkpoints")
    assert len(prefilter) == 1 and "named by the caller" not in str(prefilter[0][0])
    assert [r[5] for r in change_log(db)] == [0]


# --- targets (CSV) ---------------------------------------------------------------


MIXED = (
    "contact_id,trigger_date,metadata\n"  # 1: header
    "1,2026-04-20\n"  # 2: good
    '2,,"{""tier"": ""gold""}"\n'  # 3: good, no trigger date, metadata
    "3\n"  # 4: one column
    "x1,2026-04-20\n"  # 5: not an integer
    "99,2026-04-20\n"  # 6: unknown contact
    "2,2025-02-30\n"  # 7: impossible date
    "3,2026-04-20,{oops\n"  # 8: metadata not JSON
    "\n"  # 9: blank: skipped silently
    "1,2026-04-20,{},extra\n"  # 10: four columns
    "3,04/20/2026\n"  # 11: not YYYY-MM-DD
    "3,2026-04-21\n"  # 12: good
)


def test_csv_import_keeps_good_rows_and_reports_each_bad_line(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path, promo: int
) -> None:
    path = write_csv(tmp_path, MIXED)
    code, out, err = cli(capsys, "campaign", "targets", "--db", str(db), str(promo), str(path))
    assert code == 1
    assert "imported 3, updated 0, skipped 7" in out
    problems = err.splitlines()
    assert [p.split(":")[1] for p in problems] == ["4", "5", "6", "7", "8", "10", "11"]
    assert all(p.startswith(f"{path}:") for p in problems)
    by_line = {int(p.split(":")[1]): p for p in problems}
    assert "columns" in by_line[4] and "got 1" in by_line[4]
    assert "'x1'" in by_line[5] and "integer" in by_line[5]
    assert "unknown contact id 99" in by_line[6]
    assert "2025-02-30" in by_line[7] and "impossible" in by_line[7]
    assert "metadata" in by_line[8] and "JSON" in by_line[8]
    assert "got 4" in by_line[10]
    assert "04/20/2026" in by_line[11]
    assert targets(db) == [
        (1, promo, "2026-04-20", "pending", None),
        (2, promo, None, "pending", '{"tier": "gold"}'),
        (3, promo, "2026-04-21", "pending", None),
    ]


def test_csv_reimport_does_not_duplicate_and_updates_metadata(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path, promo: int
) -> None:
    first = write_csv(tmp_path, '1,2026-04-20\n2,,"{""v"": 1}"\n', "first.csv")
    assert cli(capsys, "campaign", "targets", "--db", str(db), str(promo), str(first))[0] == 0
    code, out, _ = cli(capsys, "campaign", "targets", "--db", str(db), str(promo), str(first))
    assert code == 0
    assert "imported 0, updated 0, skipped 0" in out and "2 already present" in out
    # NULL trigger date matched explicitly (SQLite's UNIQUE would let it in twice)
    second = write_csv(tmp_path, '2,,"{""v"": 2}"\n1,2026-04-20,"{""note"": ""x""}"\n', "second.csv")
    code, out, _ = cli(capsys, "campaign", "targets", "--db", str(db), str(promo), str(second))
    assert code == 0 and "imported 0, updated 2, skipped 0" in out
    assert targets(db) == [
        (1, promo, "2026-04-20", "pending", '{"note": "x"}'),
        (2, promo, None, "pending", '{"v": 2}'),
    ]


def test_csv_existing_target_keeps_its_status(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path, promo: int
) -> None:
    path = write_csv(tmp_path, "1,2026-04-20\n")
    assert cli(capsys, "campaign", "targets", "--db", str(db), str(promo), str(path))[0] == 0
    con = sqlite3.connect(db)
    con.execute("UPDATE contact_campaigns SET status = 'cancelled'")
    con.commit()
    con.close()
    path = write_csv(tmp_path, '1,2026-04-20,"{""a"": 1}"\n')
    assert cli(capsys, "campaign", "targets", "--db", str(db), str(promo), str(path))[0] == 0
    assert targets(db) == [(1, promo, "2026-04-20", "cancelled", '{"a": 1}')]


@pytest.mark.parametrize(
    ("body", "code", "imported", "bad_lines"),
    [
        ("contact_id,trigger_date\n1,2026-04-20\n", 0, 1, []),  # header skipped
        ("\ufeffcontact_id,trigger_date\n1,2026-04-20\n", 0, 1, []),  # Excel's BOM
        ("1,2026-04-20\n2,2026-04-20\n", 0, 2, []),  # no header
        ("id,trigger_date\n1,2026-04-20\n", 1, 1, [1]),  # not literally contact_id: a bad row
        ("1,2026-04-20\ncontact_id,trigger_date\n", 1, 1, [2]),  # a header only comes first
        ("\n\ncontact_id,trigger_date\n1,2026-04-20\n", 0, 1, []),  # first non-blank row
    ],
)
def test_csv_header_detection(
    capsys: pytest.CaptureFixture[str],
    db: Path,
    tmp_path: Path,
    promo: int,
    body: str,
    code: int,
    imported: int,
    bad_lines: list[int],
) -> None:
    path = write_csv(tmp_path, body)
    got, out, err = cli(capsys, "campaign", "targets", "--db", str(db), str(promo), str(path))
    assert got == code, err
    assert f"imported {imported}," in out
    assert [int(line.split(":")[1]) for line in err.splitlines()] == bad_lines
    assert len(targets(db)) == imported


def test_csv_line_numbers_count_physical_lines(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path, promo: int
) -> None:
    # a quoted metadata cell spanning two lines: the next record starts on line 3
    path = write_csv(tmp_path, '1,2026-04-20,"{""a"":\n1}"\n77,2026-04-20\n')
    code, _, err = cli(capsys, "campaign", "targets", "--db", str(db), str(promo), str(path))
    assert code == 1
    assert err.splitlines() == [f"{path}:3: unknown contact id 77"]


@pytest.mark.parametrize("kind", ["missing", "not utf-8", "directory"])
def test_unreadable_csv_fails_in_one_line_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path, promo: int, kind: str
) -> None:
    if kind == "missing":
        path = tmp_path / "nope.csv"
    elif kind == "not utf-8":
        path = write_csv(tmp_path, "1,2026-04-20\n2,2026-04-20,\"{\"\"n\"\": \"\"Jos\xe9\"\"}\"\n".encode("latin-1"))
    else:
        path = tmp_path / "a_dir.csv"
        path.mkdir()
    code, out, err = cli(capsys, "campaign", "targets", "--db", str(db), str(promo), str(path))
    assert code == 2
    one_line_error(err, str(path))
    assert "imported" not in out
    assert targets(db) == []


def test_unknown_instance_is_refused_before_reading(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    code, _, err = cli(capsys, "campaign", "targets", "--db", str(db), "42", str(tmp_path / "nope.csv"))
    assert code == 2
    one_line_error(err, "no campaign instance with id 42")
    assert targets(db) == []


# --- list, migration -------------------------------------------------------------


def test_list_shows_types_and_instances(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path, promo: int
) -> None:
    # a table row named like a config type wins over it
    assert cli(capsys, "campaign", "type", "--db", str(db), "seasonal_promo", "--priority", "9")[0] == 0
    path = write_csv(tmp_path, "1,2026-05-10\n2,2026-05-11\n3,2026-05-12\n")
    assert cli(capsys, "campaign", "targets", "--db", str(db), str(promo), str(path))[0] == 0
    con = sqlite3.connect(db)
    con.execute("UPDATE contact_campaigns SET status = ' Cancelled' WHERE contact_id = 3")
    con.commit()
    con.close()
    code, out, _ = cli(capsys, "campaign", "list", "--db", str(db), "--config", LEGACY_CONFIG)
    assert code == 0
    assert re.search(r"^  promo \(table\): priority 10", out, re.M)
    assert re.search(r"^  seasonal_promo \(table\): priority 9", out, re.M)
    assert re.search(r"^  rate_increase \(config\): priority 1, 14 days before", out, re.M)
    assert f"  {promo}: promo/may active 2026-05-01..2026-05-31, 2 target(s)" in out


def test_commands_add_missing_campaign_tables(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    con = sqlite3.connect(db)
    for table in ("campaign_change_log", "contact_campaigns", "campaign_instances", "campaign_types"):
        con.execute(f"DROP TABLE {table}")
    con.commit()
    con.close()
    code, out, _ = cli(capsys, "campaign", "list", "--db", str(db))
    assert code == 0 and "campaign instances: none" in out
    assert cli(capsys, "campaign", "type", "--db", str(db), "promo")[0] == 0
    assert new_instance(capsys, db, "promo", "x") == 1


# --- values outside what the rules compute with (issue 11) -------------------------

RANGE = "1900-01-01..2999-12-31"


def test_csv_refuses_ids_and_trigger_dates_outside_the_ranges(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path, promo: int
) -> None:
    many_digits = "9" * 5000  # more digits than int() reads
    path = write_csv(
        tmp_path,
        "1,2026-04-20\n"  # 1: good
        "2,0001-01-01\n"  # 2: before the first date
        "3,9999-12-31\n"  # 3: after the last date
        "99999999999999999999999,2026-04-20\n"  # 4: an id no database stores
        "0,2026-04-20\n"  # 5
        "-4,2026-04-20\n"  # 6
        f"{many_digits},2026-04-20\n"  # 7
        "3,2999-12-31\n"  # 8: good, the last date
        "2,1900-01-01\n",  # 9: good, the first date
    )
    code, out, err = cli(capsys, "campaign", "targets", "--db", str(db), str(promo), str(path))
    assert code == 1
    assert "imported 3, updated 0, skipped 6" in out
    lines = err.splitlines()
    assert lines[:5] == [
        f"{path}:2: trigger date 0001-01-01 is outside {RANGE}",
        f"{path}:3: trigger date 9999-12-31 is outside {RANGE}",
        f"{path}:4: contact id 99999999999999999999999 is outside 1..9223372036854775807",
        f"{path}:5: contact id 0 is outside 1..9223372036854775807",
        f"{path}:6: contact id -4 is outside 1..9223372036854775807",
    ]
    assert lines[5].startswith(f"{path}:7: contact id '999") and "5,000 characters" in lines[5]
    assert len(lines) == 6 and len(lines[5]) < len(str(path)) + 200
    assert targets(db) == [
        (1, promo, "2026-04-20", "pending", None),
        (3, promo, "2999-12-31", "pending", None),
        (2, promo, "1900-01-01", "pending", None),
    ]


@pytest.mark.parametrize(
    ("flag", "value"), [("--start", "9999-12-31"), ("--end", "0001-01-01"), ("--start", "1899-12-31")]
)
def test_instance_dates_outside_the_range_are_refused(
    capsys: pytest.CaptureFixture[str], db: Path, flag: str, value: str
) -> None:
    assert cli(capsys, "campaign", "type", "--db", str(db), "promo")[0] == 0
    code, _, err = cli(capsys, "campaign", "instance", "--db", str(db), "promo", "x", flag, value)
    assert code == 2
    one_line_error(err, f"{flag} {value} is outside {RANGE}")
    assert dump(db, "SELECT count(*) FROM campaign_instances") == [(0,)]


@pytest.mark.parametrize(("flag", "value"), [("--start", "9999-12-31"), ("--end", "0001-01-01")])
def test_dates_outside_the_range_are_refused(
    capsys: pytest.CaptureFixture[str], db: Path, promo: int, flag: str, value: str
) -> None:
    code, _, err = cli(capsys, "campaign", "dates", "--db", str(db), str(promo), flag, value)
    assert code == 2
    one_line_error(err, f"{flag} {value} is outside {RANGE}")
    assert change_log(db) == []
    assert dump(db, "SELECT active_start_date, active_end_date FROM campaign_instances") == [
        ("2026-05-01", "2026-05-31")
    ]


def test_type_days_before_lie_within_a_year(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    for days in ("367", "-367", "-3650"):
        code, _, err = cli(capsys, "campaign", "type", "--db", str(db), "far", "--days-before", days)
        assert code == 2
        one_line_error(err, f"--days-before {days} is outside -366..366")
    assert dump(db, "SELECT count(*) FROM campaign_types") == [(0,)]
    for days in ("366", "-366"):
        assert cli(capsys, "campaign", "type", "--db", str(db), "far", "--days-before", days)[0] == 0
        assert type_row(db, "far")["days_before_event"] == int(days)


def test_a_stored_type_beyond_a_year_can_be_fixed_by_the_command(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    con = sqlite3.connect(db)
    con.execute("INSERT INTO campaign_types (name, days_before_event) VALUES ('decade', -3650)")
    con.commit()
    con.close()
    code, out, _ = cli(capsys, "campaign", "type", "--db", str(db), "decade", "--days-before", "-30")
    assert code == 0 and "days_before_event -3650 -> -30" in out


def test_services_refuse_values_no_database_stores(db: Path, tmp_path: Path) -> None:
    from datetime import date

    from rules.config import DEFAULT_CONFIG
    from streams.admin.campaigns import (
        CampaignError,
        create_instance,
        import_targets,
        set_campaign_type,
    )

    path = write_csv(tmp_path, "1,2026-04-20\n")
    with open_store(str(db)) as store:
        with pytest.raises(CampaignError, match=r"campaign instance id \d+ is outside 1\.\.9223372036854775807"):
            import_targets(store, 2**70, path)
        with pytest.raises(CampaignError, match=r"--priority \d+ is outside 0\.\.1000"):
            set_campaign_type(store, DEFAULT_CONFIG, "promo", {"priority": 2**64})
        set_campaign_type(store, DEFAULT_CONFIG, "promo", {})
        with pytest.raises(CampaignError, match=f"--end 9999-12-31 is outside {RANGE}"):
            create_instance(store, DEFAULT_CONFIG, "promo", "x", end=date(9999, 12, 31))
    assert dump(db, "SELECT count(*) FROM campaign_instances") == [(0,)]
