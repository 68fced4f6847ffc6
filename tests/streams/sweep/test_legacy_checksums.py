"""Dated rules (issue 15) change nothing for an agency that does not use them: its sweeps
give, row for row, the schedules the scheduler gave before dated rules existed.

The checksums below were computed by the scheduler at commit b9b605b (the last before
dated rules), on the project's generated agency, each on a fresh database:

    mailwindow gen --db X --contacts 3000 --seed 7 --campaign-instances 3 --followups 200
    mailwindow sweep --db X --as-of D --config ../shared/legacy/scheduler_config.yaml --lookahead 60

(``tests/data/legacy_scheduler_config.yaml`` is a copy of that file.)  The same sweeps
with no ``--config`` (the SPEC defaults) gave the same checksums for 2026-03-10 and
2026-09-10.  This test builds the agency with the same generator through its Python API
(``synthetic.generate.generate_database``, what ``mailwindow gen`` calls) and sweeps it
as ``mailwindow sweep`` does (``run_sweep`` on ``open_store``).

A change to the generator (synthetic/) changes the agency and so these numbers: recompute
them at b9b605b with the generator of the new commit, e.g. ``git worktree add /tmp/b9
b9b605b``, copy the new ``synthetic/`` into it, and run the two commands above there for
each date (``python -m streams.cli gen ...``, ``python -m streams.cli sweep ...``; the
sweep prints "schedules checksum sha256:..." and "N skipped").  A change to the rules that
moves these numbers is a change of stored schedules for every agency: it needs the
SPEC's say-so, not new numbers.

Those checksums are of the digest of that time (``sha256:`` over the rows in key order),
which ``key_order_checksum`` still computes (``mailwindow checksum --key-order``): the
swept database's is compared with them, and the sweep's own (``rowsum:``) checksum with
the database's ``schedule_checksum``.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from rules.config import DEFAULT_CONFIG, Config
from streams.config_file import load_config_file
from streams.store.checksum import key_order_checksum, schedule_checksum
from synthetic.generate import generate_database
from tests.legacy_db import copy_database, dump
from tests.sweeps import read, sweep

ROOT = Path(__file__).resolve().parents[3]
LEGACY = ROOT / "tests" / "data" / "legacy_scheduler_config.yaml"
PROFILE = "state-changes-2024-2026"
LOOKAHEAD = 60

# as of: (schedules checksum, emails skipped), at b9b605b with the legacy config file
BEFORE_DATED_RULES = {
    date(2026, 3, 10): ("sha256:8f8384c0a813118fa387c352cd22b72176c2129f052d9dd071a390cfec861af1", 293),
    date(2026, 8, 20): ("sha256:2996583c7ec806cac2fa8fc1c195c091a8b3c40bdcd2d46d5a189b2b46d3c03c", 887),
    date(2026, 9, 10): ("sha256:16525df2018f992070b5a28898d117f08802b782aacab30f44887aeb60aa9f51", 913),
}
SAME_WITHOUT_CONFIG = (date(2026, 3, 10), date(2026, 9, 10))


@pytest.fixture(scope="module")
def agency(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mailwindow gen --contacts 3000 --seed 7 --campaign-instances 3 --followups 200``."""
    path = tmp_path_factory.mktemp("legacy-checksums") / "agency.db"
    generate_database(str(path), 3000, seed=7, campaign_instances=3, followup_initials=200)
    return path


def fresh(agency: Path, tmp_path: Path) -> Path:
    db = tmp_path / "agency.db"
    copy_database(agency, db)
    return db


def legacy_config() -> Config:
    config, _ = load_config_file(str(LEGACY))
    return config


@pytest.mark.parametrize("as_of", sorted(BEFORE_DATED_RULES))
def test_the_legacy_config_gives_the_schedules_of_before_dated_rules(
    agency: Path, tmp_path: Path, as_of: date
) -> None:
    db = fresh(agency, tmp_path)
    summary = sweep(db, as_of, legacy_config(), lookahead_days=LOOKAHEAD)
    assert (read(db, key_order_checksum), summary.emails_skipped) == BEFORE_DATED_RULES[as_of]
    assert summary.schedules_after_checksum == read(db, schedule_checksum)
    assert summary.schedules_after_checksum.startswith("rowsum:")


@pytest.mark.parametrize("as_of", SAME_WITHOUT_CONFIG)
def test_the_spec_defaults_give_the_same_schedules(agency: Path, tmp_path: Path, as_of: date) -> None:
    db = fresh(agency, tmp_path)
    summary = sweep(db, as_of, DEFAULT_CONFIG, lookahead_days=LOOKAHEAD)
    assert read(db, key_order_checksum) == BEFORE_DATED_RULES[as_of][0]
    assert summary.schedules_after_checksum == read(db, schedule_checksum)


DATED_STATES = ("VA", "IL", "UT", "WY", "IN")  # the profile's dated versions and age band
UNDATED_STATES = ("LA", "OR")  # the profile's undated rules: reasons as before
WINDOW = re.compile(r"([A-Z]{2}) (?:birthday|effective date) window \d{4}-\d\d-\d\d\.\.\d{4}-\d\d-\d\d")


def test_the_profile_changes_the_schedules_and_its_skips_name_their_rules(agency: Path, tmp_path: Path) -> None:
    as_of = date(2026, 8, 20)
    text = LEGACY.read_text(encoding="utf-8").replace("state_rules:\n", f"state_rules:\n  profile: {PROFILE}\n", 1)
    assert f"profile: {PROFILE}" in text
    path = tmp_path / "scheduler_config.yaml"
    path.write_text(text, encoding="utf-8")
    config, _ = load_config_file(str(path))
    db = fresh(agency, tmp_path)
    summary = sweep(db, as_of, config, lookahead_days=LOOKAHEAD)
    assert read(db, key_order_checksum) != BEFORE_DATED_RULES[as_of][0]
    assert summary.schedules_after_checksum == read(db, schedule_checksum)
    reasons = [r for (r,) in dump(db, "SELECT skip_reason FROM email_schedules WHERE status = 'skipped'")]
    by_state: dict[str, int] = {}
    for reason in reasons:
        m = WINDOW.match(reason or "")
        if m is None or m.group(1) not in DATED_STATES + UNDATED_STATES:
            continue
        state = m.group(1)
        by_state[state] = by_state.get(state, 0) + 1
        if state in DATED_STATES:
            assert "(rule " in reason and "; source: " in reason and reason.endswith(")"), reason
        else:
            assert reason == m.group(0), reason  # an undated rule's reason has no provenance
    # the generated agency has skips in each of these states' windows on that day
    assert set(by_state) == set(DATED_STATES + UNDATED_STATES), by_state
