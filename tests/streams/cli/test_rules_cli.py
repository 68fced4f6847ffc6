"""`mailwindow rules` (issue 15): the rules in force on a date, with their dates and sources."""

from __future__ import annotations

import json
from pathlib import Path

from rules.config import DEFAULT_CONFIG, config_digest
from streams.config_file import load_config_file
from tests.streams.cli.test_cli import assert_one_line_error, run

PROFILE = "state_rules:\n  profile: state-changes-2024-2026\n"


def rules_json(*args: str) -> dict[str, object]:
    proc = run("rules", "--json", *args, check=True)
    out: dict[str, object] = json.loads(proc.stdout)
    return out


def test_the_version_in_force_follows_the_date(tmp_path: Path) -> None:
    config = tmp_path / "profile.yaml"
    config.write_text(PROFILE)
    before = rules_json("--config", str(config), "--state", "VA", "--as-of", "2025-06-30")["rules"]
    after = rules_json("--config", str(config), "--state", "va", "--as-of", "2025-07-01")["rules"]
    assert [(r["window_after_days"], r["effective_until"]) for r in before] == [(30, "2025-06-30")]  # type: ignore[index]
    assert [(r["window_after_days"], r["effective_from"]) for r in after] == [(60, "2025-07-01")]  # type: ignore[index]
    assert "38.2-3611" in after[0]["source"]  # type: ignore[index]
    assert "awaits the agency's confirmation" in after[0]["note"]  # type: ignore[index]
    every = rules_json("--config", str(config), "--state", "VA", "--all")["rules"]
    assert len(every) == 2  # type: ignore[arg-type]
    # Indiana's rule is not in force before 2026
    assert rules_json("--config", str(config), "--state", "IN", "--as-of", "2025-12-31")["rules"] == []
    assert len(rules_json("--config", str(config), "--state", "IN", "--as-of", "2026-01-01")["rules"]) == 1  # type: ignore[arg-type]


def test_defaults_table_and_digest(tmp_path: Path) -> None:
    out = rules_json("--as-of", "2026-12-02")
    states = sorted({r["state"] for r in out["rules"]})  # type: ignore[union-attr, index]
    assert states == sorted({"CA", "ID", "KY", "MD", "NV", "OK", "OR", "VA", "MO", "CT", "MA", "NY", "WA"})
    assert out["config_digest"] == config_digest(DEFAULT_CONFIG)
    config = tmp_path / "profile.yaml"
    config.write_text(PROFILE)
    assert rules_json("--config", str(config))["config_digest"] == config_digest(load_config_file(str(config))[0])
    assert rules_json("--config", str(config))["config_digest"] != out["config_digest"]


def test_text_output_names_dates_band_and_source(tmp_path: Path) -> None:
    config = tmp_path / "profile.yaml"
    config.write_text(PROFILE)
    text = run("rules", "--config", str(config), "--state", "IL", "--as-of", "2026-01-01", check=True).stdout
    assert "IL  birthday" in text and "45 after" in text and "65-75" in text
    assert "source: Illinois birthday rule" in text
    text = run("rules", "--state", "NY", "--as-of", "2026-01-01", check=True).stdout
    assert "year-round" in text and "every date excluded" in text and "in force always" in text
    text = run("rules", "--state", "TX", "--as-of", "2026-01-01", check=True).stdout
    assert "none for TX" in text


def test_bad_flags_and_config_are_one_line(tmp_path: Path) -> None:
    assert_one_line_error(run("rules", "--state", "XX"), "--state", "XX")
    assert_one_line_error(run("rules", "--as-of", "2026-02-30"), "--as-of")
    assert_one_line_error(run("rules", "--all", "--as-of", "2026-01-01"), "--all")
    bad = tmp_path / "overlap.yaml"
    bad.write_text(
        "state_rules:\n"
        "  birthday_windows:\n"
        "    VA:\n"
        "      - {window_after_days: 30, effective_until: 2025-07-01}\n"
        "      - {window_after_days: 60, effective_from: 2025-07-01}\n"
    )
    assert_one_line_error(run("rules", "--config", str(bad)), f"{bad}:5", "state_rules.birthday_windows.VA[1]", "overlap")
