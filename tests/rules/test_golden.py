"""Issue 12: the committed golden snapshots (tests/rules/golden/*.txt) are what the rules give.

A rule change (a window length, an anchor, a source, Feb 29 handling, a post-window
hop) fails here with a readable diff; after review, `scripts/golden` rewrites the files
and the change is committed as a diff a compliance officer can read.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from rules.config import DEFAULT_CONFIG, DEFAULT_WINDOW_RULES, DEFAULT_YEAR_ROUND
from rules.golden import CASES, FOLDER, REGENERATE, compare, golden_files, golden_states

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / FOLDER


def committed() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(GOLDEN.glob("*.txt"))}


def test_golden_snapshots_match_the_rules() -> None:
    differences = compare(committed(), golden_files())
    assert not differences, (
        f"The rules no longer give the committed golden snapshots ({FOLDER}).\n"
        f"If the change is intended, run {REGENERATE}, review the diff and commit it.\n\n"
        + "\n".join(differences)
    )


def test_every_state_with_a_rule_and_one_without_has_a_snapshot() -> None:
    states = {r.state for r in DEFAULT_WINDOW_RULES} | DEFAULT_YEAR_ROUND
    assert set(golden_states()) == states | {"TX"}
    assert set(committed()) == {f"{s}.txt" for s in states | {"TX"}}


def test_snapshots_cover_the_awkward_dates() -> None:
    bases = {c.birth_date for c in CASES} | {c.effective_date for c in CASES}
    assert {(d.month, d.day) for d in bases} >= {(2, 29), (1, 10), (12, 31), (7, 1)}
    ca = golden_files()["CA.txt"]
    # SPEC section 4 example: CA, born 1960-01-10 -> a window crossing New Year, here for 1955-01-10
    assert "birthday window of 2026: anchor 2026-01-10, 2025-10-12..2026-03-11" in ca
    # February 29 falls on February 28 off leap years, on February 29 in them
    assert "birthday window of 2025: anchor 2025-02-28, 2024-11-30..2025-04-29" in ca
    assert "birthday window of 2028: anchor 2028-02-29, 2027-12-01..2028-04-29" in ca
    nv = golden_files()["NV.txt"]
    assert "anchor first day of the birthday month" in nv


def test_each_window_and_year_round_state_names_its_source() -> None:
    files = golden_files()
    for rule in DEFAULT_CONFIG.window_rules:
        assert rule.source, rule.state
        assert f"source: {rule.source}" in files[f"{rule.state}.txt"]
    for state in DEFAULT_YEAR_ROUND:
        assert "year-round: every date is excluded; source: " in files[f"{state}.txt"]


def test_a_changed_rule_shows_as_a_readable_diff() -> None:
    expected = golden_files()
    edited = dict(expected)
    edited["CA.txt"] = expected["CA.txt"].replace(
        "2023-12-01..2024-04-29", "2023-12-02..2024-04-29", 1
    )
    edited["XX.txt"] = "stale\n"
    del edited["TX.txt"]
    text = "\n".join(compare(edited, expected))
    assert f"--- {FOLDER}/CA.txt (committed)" in text and f"+++ {FOLDER}/CA.txt (rules now)" in text
    assert "-    birthday window of 2024: anchor 2024-02-29, 2023-12-02..2024-04-29" in text
    assert "+    birthday window of 2024: anchor 2024-02-29, 2023-12-01..2024-04-29" in text
    assert f"+++ {FOLDER}/TX.txt (rules now)" in text
    assert f"{FOLDER}/XX.txt: no state has this snapshot any more" in text


def test_script_check_agrees() -> None:
    done = subprocess.run(
        [str(ROOT / "scripts" / "golden"), "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "agree" in done.stdout


def test_each_profile_has_committed_snapshots_that_show_its_changes() -> None:
    """Issue 15: a packaged profile's effect is a committed diff against the defaults' snapshots."""
    from rules.golden import golden_sets, profile_folder
    from rules.profiles import PROFILE_NAMES

    sets = golden_sets()
    for name in PROFILE_NAMES:
        folder = ROOT / profile_folder(name)
        found = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))}
        differences = compare(found, sets[profile_folder(name)], profile_folder(name))
        assert not differences, f"run {REGENERATE} and review:\n" + "\n".join(differences)
    va = sets[profile_folder("state-changes-2024-2026")]["VA.txt"]
    # born on July 1st: the 2024 window (anchor before the change) keeps 30 days, 2025's has 60
    assert "birthday window of 2024: anchor 2024-07-01, 2024-05-02..2024-07-31; rule until 2025-06-30" in va
    assert "birthday window of 2025: anchor 2025-07-01, 2025-05-02..2025-08-30; rule from 2025-07-01" in va
    il = sets[profile_folder("state-changes-2024-2026")]["IL.txt"]
    # born 1952-02-29: 75 on the 2027 anchor, 76 on 2028's: no window from 2028
    assert "birthday window of 2027: anchor 2027-02-28" in il
    assert "birthday window of 2028: anchor 2028-02-29" not in il
    assert "CA.txt" not in sets[profile_folder("state-changes-2024-2026")]  # only what it names
