"""Issue 11: the config file boundary refuses what it cannot handle, in one short line.

A red team found files that loaded wrongly (a duplicated key, the last one
winning), crashed with thousands of lines (deep nesting, a bad date, a huge
number) or printed hundreds of megabytes (an alias bomb, a huge value).  Each
is refused here through the real command, exit code 2, one line on stderr
naming the file, the line and the key.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rules.config import ConfigError, config_from_mapping
from streams.config_file import load_config_file
from tests.legacy_db import make_legacy_db

ROOT = Path(__file__).resolve().parents[2]
LEGACY = ROOT / "tests" / "data" / "legacy_scheduler_config.yaml"
SHORT = 300  # characters after the file name: a refusal fits on a screen line or two


def sweep(tmp_path: Path, config_text: str | bytes) -> subprocess.CompletedProcess[str]:
    db = tmp_path / "agency.db"
    if not db.exists():
        make_legacy_db(db)
    cfg = tmp_path / "bad.yaml"
    if isinstance(config_text, bytes):
        cfg.write_bytes(config_text)
    else:
        cfg.write_text(config_text, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "sweep", "--db", str(db), "--config", str(cfg),
         "--as-of", "2026-03-10"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )


def refusal(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    """The one stderr line of a refused config, checked for the words it must hold."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[:2000])
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr[:2000]
    line = lines[0]
    assert "Traceback" not in line
    assert "bad.yaml" in line, line
    # the temporary directory's name is no part of the message's length
    assert len(line.split("bad.yaml", 1)[1]) <= SHORT, line
    for word in words:
        assert word in line, line
    return line


def legacy_with(after: str, extra: str) -> tuple[str, int]:
    """The legacy file with ``extra`` inserted after the line ``after``; the new line's number."""
    lines = LEGACY.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith(after)) + 1
    lines.insert(at, extra)
    return "\n".join(lines) + "\n", at + 1


def line_of(text: str, start: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.strip().startswith(start))


def load_from_text(text: str) -> object:
    """load_config_file on a temporary file (for cases no command needs to show)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "cfg.yaml"
        cfg.write_text(text, encoding="utf-8")
        return load_config_file(str(cfg))


# 1. duplicate keys at any depth


def test_duplicate_state_is_refused_naming_both_lines(tmp_path: Path) -> None:
    text, dup_line = legacy_with(
        "VA:", "    CA: {window_before_days: 0, window_after_days: 0, pre_window_extension_days: 0}"
    )
    first = line_of(text, "CA:")
    refusal(
        sweep(tmp_path, text),
        f"bad.yaml:{dup_line}:",
        "duplicate key 'CA' in state_rules.birthday_windows",
        f"(first at line {first})",
    )


def test_duplicate_top_level_section_is_refused(tmp_path: Path) -> None:
    text = LEGACY.read_text(encoding="utf-8") + "timing_constants:\n  send_time: '09:00:00'\n"
    dup_line = len(text.splitlines()) - 1
    refusal(sweep(tmp_path, text), f"bad.yaml:{dup_line}:", "duplicate key 'timing_constants'",
            f"(first at line {line_of(text, 'timing_constants:')})")


def test_duplicate_key_inside_a_flow_mapping_is_refused(tmp_path: Path) -> None:
    text = "state_rules:\n  birthday_windows:\n    CA: {window_after_days: 60, window_after_days: 0}\n"
    refusal(sweep(tmp_path, text), "bad.yaml:3:",
            "duplicate key 'window_after_days' in state_rules.birthday_windows.CA")


def test_keys_equal_once_read_are_duplicates() -> None:
    """``1`` and ``0x1`` are one key once read: the second would silently win."""
    with pytest.raises(ConfigError) as err:
        load_from_text("priorities:\n  aep: 1\naep_config:\n  years: {1: a, 0x1: b}\n")
    assert "duplicate key 1 in aep_config.years" in str(err.value)


def test_alias_as_a_key_is_compared_too() -> None:
    with pytest.raises(ConfigError) as err:
        load_from_text("processing:\n  name: &k aep\npriorities:\n  aep: 1\n  *k : 2\n")
    assert ":5: duplicate key 'aep' in priorities (first at line 4)" in str(err.value)


def test_two_merge_keys_are_duplicates() -> None:
    with pytest.raises(ConfigError) as err:
        load_from_text("processing:\n  a: &a {x: 1}\n  b: {<<: *a, <<: *a}\n")
    assert ":3: duplicate key '<<' in processing.b" in str(err.value)


# 2. nesting


def test_100000_deep_nesting_is_refused_before_composing(tmp_path: Path) -> None:
    text = "timing_constants:\n  send_time: " + "[" * 100_000 + "]" * 100_000 + "\n"
    refusal(sweep(tmp_path, text), "bad.yaml:2:", "deeper than 32", "timing_constants.send_time")


def test_deep_block_nesting_names_its_line(tmp_path: Path) -> None:
    text = "".join("  " * i + f"k{i}:\n" for i in range(40)) + "  " * 40 + "v: 1\n"
    # the mapping starting on line n is n deep
    refusal(sweep(tmp_path, text), "bad.yaml:33:", "deeper than 32", "k0.k1.k2")


def test_aliases_cannot_nest_deeper_than_the_text_does(tmp_path: Path) -> None:
    """An anchor 20 deep used 21 deep: the data read would be 41 deep."""
    text = "processing:\n  a: &a " + "[" * 20 + "]" * 20 + "\n  b: " + "[" * 19 + "*a" + "]" * 19 + "\n"
    refusal(sweep(tmp_path, text), "bad.yaml:3:", "deeper than 32")


# 3. alias expansion

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
timing_constants: {send_time: *i}
"""


def test_alias_bomb_is_refused_in_one_line(tmp_path: Path) -> None:
    line = refusal(sweep(tmp_path, BILLION_LAUGHS), "100,000")
    assert any(f"bad.yaml:{n}:" in line for n in range(5, 11)), line


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    refusal(sweep(tmp_path, "state_rules: &a\n  birthday_windows: *a\n"), "bad.yaml:2:", "*a",
            "state_rules.birthday_windows")


def test_undefined_alias_and_twice_defined_anchor_are_refused(tmp_path: Path) -> None:
    refusal(sweep(tmp_path, "priorities:\n  aep: *" + "x" * 5000 + "\n"), "bad.yaml:2:", "alias")
    refusal(sweep(tmp_path, "priorities:\n  aep: &p 1\n  birthday: &p 2\n"), "bad.yaml:3:",
            "&p", "first at line 2")


def test_small_anchors_merges_and_aliases_keep_working(tmp_path: Path) -> None:
    cfg = tmp_path / "anchors.yaml"
    cfg.write_text(
        "state_rules:\n"
        "  birthday_windows:\n"
        "    CA: &window {window_before_days: 30, window_after_days: 60}\n"
        "    TX: *window\n"
        "campaign_types:\n"
        "  base: &base {priority: 4, days_before_event: 7}\n"
        "  promo:\n"
        "    <<: *base\n"
        "    priority: 2\n"
    )
    config, warnings = load_config_file(str(cfg))
    assert warnings == []
    assert {r.state for r in config.window_rules} == {"CA", "TX", "MO"}
    assert config.campaign_types["promo"].priority == 2
    assert config.campaign_types["promo"].days_before_event == 7


# 4. big values, big files


def test_config_file_over_a_megabyte_is_refused_before_parsing(tmp_path: Path) -> None:
    text = "timing_constants:\n  send_time: '" + "9" * 20_000_000 + "'\n"
    refusal(sweep(tmp_path, text), "1,000,000 bytes")


def test_huge_value_is_quoted_as_an_excerpt(tmp_path: Path) -> None:
    text = "timing_constants:\n  send_time: '" + "9" * 900_000 + "'\n"
    refusal(sweep(tmp_path, text), "bad.yaml:2:", "timing_constants.send_time", "900,000 characters")


def test_huge_key_is_shown_as_an_excerpt(tmp_path: Path) -> None:
    # an explicit key ("? "): YAML limits implicit keys to 1,024 characters
    refusal(sweep(tmp_path, "timing_constants:\n  ? " + "x" * 900_000 + "\n  : 1\n"), "bad.yaml:2:",
            "unknown key", "900,000 characters")


def test_key_with_a_line_break_stays_on_one_line(tmp_path: Path) -> None:
    refusal(sweep(tmp_path, 'timing_constants:\n  "send\\ntime": 1\n'), "bad.yaml:2:", "unknown key")


def test_unknown_tag_is_shown_as_an_excerpt(tmp_path: Path) -> None:
    refusal(sweep(tmp_path, "priorities:\n  aep: !" + "x" * 5000 + " 1\n"), "bad.yaml:2:")


def test_value_the_yaml_reader_cannot_build_is_refused(tmp_path: Path) -> None:
    """PyYAML raises plain ValueError here: a date that does not exist, an int of 5,000 digits."""
    refusal(sweep(tmp_path, "timing_constants:\n  send_time: 2026-02-30\n"), "bad.yaml:2:",
            "timing_constants.send_time", "2026-02-30")
    refusal(sweep(tmp_path, "priorities:\n  aep: " + "9" * 5000 + "\n"), "bad.yaml:2:",
            "priorities.aep", "5,000 characters")


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    refusal(sweep(tmp_path, b"priorities:\n  aep: \xff\n"), "bad.yaml:2:", "UTF-8")


def test_control_character_names_its_line(tmp_path: Path) -> None:
    refusal(sweep(tmp_path, "priorities:\n  aep: 1\x00\n"), "bad.yaml:2:")


# 5. numbers too large


@pytest.mark.parametrize(
    ("text", "key", "maximum"),
    [
        ("campaign_types:\n  promo: {priority: 100000000000000000000000}\n",
         "campaign_types.promo.priority", "1000"),
        ("timing_constants:\n  pre_window_exclusion_days: 1000000000000\n",
         "timing_constants.pre_window_exclusion_days", "366"),
        ("state_rules:\n  birthday_windows:\n    CA: {window_after_days: 1000000000}\n",
         "state_rules.birthday_windows.CA.window_after_days", "366"),
        ("aep_config:\n  default_dates:\n    - {month: 1000000000000000000000000000000, day: 1}\n",
         "aep_config.default_dates[0].month", "12"),
    ],
)
def test_number_too_large_is_refused(tmp_path: Path, text: str, key: str, maximum: str) -> None:
    line_no = len(text.splitlines())
    refusal(sweep(tmp_path, text), f"bad.yaml:{line_no}:", key, f"must be at most {maximum}, got")


def test_fraction_beyond_a_float_is_refused(tmp_path: Path) -> None:
    refusal(sweep(tmp_path, "load_balancing:\n  overage_threshold: " + "1" * 400 + "\n"),
            "bad.yaml:2:", "load_balancing.overage_threshold")


def test_infinite_fraction_is_refused(tmp_path: Path) -> None:
    refusal(sweep(tmp_path, "load_balancing:\n  overage_threshold: .inf\n"), "bad.yaml:2:",
            "load_balancing.overage_threshold", "finite")


# 6. the legacy file, and lines on ordinary refusals


def test_legacy_file_loads_as_before() -> None:
    expected, expected_warnings = config_from_mapping(
        yaml.safe_load(LEGACY.read_text(encoding="utf-8")), source=str(LEGACY)
    )
    config, warnings = load_config_file(str(LEGACY))
    assert config.to_dict() == expected.to_dict()
    assert warnings == expected_warnings and len(warnings) == 3


def test_ordinary_refusal_names_its_line(tmp_path: Path) -> None:
    text, bad_line = legacy_with("ed_daily_soft_limit:", "  enabled: maybe")
    refusal(sweep(tmp_path, text), f"bad.yaml:{bad_line}:", "load_balancing.enabled", "'maybe'")


def test_deep_path_in_a_refusal_is_cut_short(tmp_path: Path) -> None:
    text = "".join("  " * i + f"{'k' * 70}{i}:\n" for i in range(40)) + "  " * 40 + "v: 1\n"
    refusal(sweep(tmp_path, text), "bad.yaml:33:", "deeper than 32", "kkkk")


def test_second_document_is_refused(tmp_path: Path) -> None:
    refusal(sweep(tmp_path, "priorities:\n  aep: 1\n---\npriorities:\n  aep: 2\n"), "bad.yaml:3:",
            "one YAML document")
