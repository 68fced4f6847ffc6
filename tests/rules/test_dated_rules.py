"""Issue 15, SPEC section 4 ("Dated rules"): rule versions in force from a date, age bands,
dated year-round rules, the config that declares them and the packaged profile, each
checked the way a compliance officer would: which window a contact has in which year,
which dates are excluded, and what the skip reason says (the version and its source).

Dates below are computed by hand (pre_window 60 unless said): a window of anchor ``A``
runs from ``A - days_before - 60`` to ``A + days_after``.
"""

from __future__ import annotations

from calendar import isleap
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.anniversary import age_on
from rules.config import (
    BIRTHDAY,
    DEFAULT_CONFIG,
    DEFAULT_WINDOW_RULES,
    DEFAULT_YEAR_ROUND_RULES,
    Config,
    ConfigError,
    WindowRule,
    YearRoundRule,
    config_from_mapping,
)
from rules.contact import Contact
from rules.contact_schedule import schedule_contact
from rules.exclusion_window import ContactWindows, Window, contact_windows, window_of_year
from rules.placement import Horizon
from rules.profiles import PROFILE_NAMES, profile_state_rules
from rules.statuses import PRE_SCHEDULED, SKIPPED
from streams.config_file import load_config_file

ROOT = Path(__file__).resolve().parents[2]
LEGACY = ROOT / "tests" / "data" / "legacy_scheduler_config.yaml"
PROFILE = "state-changes-2024-2026"
PROFILE_FILE = ROOT / "rules" / "profiles" / f"{PROFILE}.yaml"


def load(mapping: dict[str, Any]) -> Config:
    config, warnings = config_from_mapping(mapping)
    assert warnings == []
    return config


def windows(config: Config, state: str, birth: date | None, effective: date | None = None) -> ContactWindows:
    return contact_windows(state, birth, effective, config)


def window_of(cw: ContactWindows, year: int) -> Window | None:
    """The contact's only window of ``year`` (one rule kind in these tests), or None."""
    found = cw.windows_of_years(range(year, year + 1))
    assert len(found) <= 1, found
    return found[0] if found else None


def span(w: Window | None) -> tuple[date, date] | None:
    return None if w is None else (w.start, w.end)


def reason(cw: ContactWindows, d: date) -> str | None:
    found = cw.exclusion_on(d)
    return None if found is None else found.reason


def contact(state: str, birth: date | None, effective: date | None = None) -> Contact:
    return Contact(id=7, email="pat@example.com", state=state, birth_date=birth, effective_date=effective)


def decisions(c: Contact, config: Config, as_of: date, lookahead: int = 30) -> dict[str, Any]:
    plan = schedule_contact(c, [], config, Horizon(as_of, lookahead_days=lookahead, lookback_days=0))
    return {d.occurrence.email_type: d for d in plan.decisions}


# --- a rule change in the middle of a year: Virginia, 30 days, then 60 from 2025-07-01 -----------

VA_OLD_SOURCE = "Va. Code § 38.2-3611 as before 2025 HB 2100"
VA_NEW_SOURCE = "Va. Code § 38.2-3611 (2025 HB 2100): 60 days from the birthday"
VA_CHANGE = load(
    {
        "state_rules": {
            "birthday_windows": {
                "VA": [
                    {"window_before_days": 0, "window_after_days": 30, "effective_until": "2025-06-30",
                     "source": VA_OLD_SOURCE},
                    {"window_before_days": 0, "window_after_days": 60, "effective_from": "2025-07-01",
                     "source": VA_NEW_SOURCE},
                ]
            }
        }
    }
)
JUNE_BIRTH, JULY_BIRTH = date(1955, 6, 20), date(1955, 7, 10)


def test_the_version_in_force_on_the_anchor_gives_the_year_s_window() -> None:
    june, july = windows(VA_CHANGE, "VA", JUNE_BIRTH), windows(VA_CHANGE, "VA", JULY_BIRTH)
    # 2025: the June birthday (anchor 2025-06-20) is before the change: 30 days after
    assert span(window_of(june, 2025)) == (date(2025, 4, 21), date(2025, 7, 20))
    # ... though its window runs past 2025-07-01: the anchor decides, not the date
    assert reason(june, date(2025, 7, 20)) is not None and reason(june, date(2025, 7, 21)) is None
    # the July birthday (anchor 2025-07-10) is after it: 60 days after
    assert span(window_of(july, 2025)) == (date(2025, 5, 11), date(2025, 9, 8))
    # 2026: both under the new rule; 2024: both under the old one
    assert span(window_of(june, 2026)) == (date(2026, 4, 21), date(2026, 8, 19))
    assert span(window_of(july, 2026)) == (date(2026, 5, 11), date(2026, 9, 8))
    assert span(window_of(june, 2024)) == (date(2024, 4, 21), date(2024, 7, 20))
    assert span(window_of(july, 2024)) == (date(2024, 5, 11), date(2024, 8, 9))


def test_a_date_31_to_60_days_after_a_july_birthday_is_excluded_from_2025_only() -> None:
    july = windows(VA_CHANGE, "VA", JULY_BIRTH)
    for day in (date(2025, 8, 10), date(2025, 8, 25), date(2025, 9, 8)):  # 31, 46, 60 days after
        assert reason(july, day) == (
            f"VA birthday window 2025-05-11..2025-09-08 (rule from 2025-07-01; source: {VA_NEW_SOURCE})"
        ), day
    assert reason(july, date(2025, 9, 9)) is None  # day 61
    for day in (date(2024, 8, 10), date(2024, 8, 25), date(2024, 9, 8)):
        assert reason(july, day) is None, day
    assert reason(july, date(2024, 8, 9)) == (
        f"VA birthday window 2024-05-11..2024-08-09 (rule until 2025-06-30; source: {VA_OLD_SOURCE})"
    )


def test_skip_reasons_name_the_version_and_its_source() -> None:
    """The birthday emails (14 days before) fall in the windows: skipped, the reason saying
    which version applied and where it comes from; the post-window email follows the
    version's own end."""
    june = decisions(contact("VA", JUNE_BIRTH), VA_CHANGE, date(2025, 6, 1))
    assert june["birthday"].status == SKIPPED
    assert june["birthday"].send_date == date(2025, 6, 6)
    assert june["birthday"].skip_reason == (
        f"VA birthday window 2025-04-21..2025-07-20 (rule until 2025-06-30; source: {VA_OLD_SOURCE})"
    )
    assert june["post_window"].send_date == date(2025, 7, 21)
    july = decisions(contact("VA", JULY_BIRTH), VA_CHANGE, date(2025, 6, 20))
    assert july["birthday"].status == SKIPPED
    assert july["birthday"].skip_reason == (
        f"VA birthday window 2025-05-11..2025-09-08 (rule from 2025-07-01; source: {VA_NEW_SOURCE})"
    )
    assert july["post_window"].send_date == date(2025, 9, 9)
    # the SPEC defaults (one undated rule): the reason stays as stored before dated rules
    before = decisions(contact("VA", JULY_BIRTH), DEFAULT_CONFIG, date(2025, 6, 20))
    assert before["birthday"].skip_reason == "VA birthday window 2025-05-11..2025-08-09"


# --- a config that declares versions wrongly is refused, naming the file, line and key ---------

VA_30 = "{window_before_days: 0, window_after_days: 30"
VA_60 = "{window_before_days: 0, window_after_days: 60"


def refusal(tmp_path: Path, text: str) -> str:
    path = tmp_path / "scheduler_config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config_file(str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}:"), message
    return message.removeprefix(f"{path}:")


def va_versions(*versions: str) -> str:
    return "state_rules:\n  birthday_windows:\n    VA:\n" + "".join(f"      - {v}\n" for v in versions)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(  # one day in common: 2025-07-01
            va_versions(f"{VA_30}, effective_until: 2025-07-01}}", f"{VA_60}, effective_from: 2025-07-01}}"),
            "5: state_rules.birthday_windows.VA[1]: in force from 2025-07-01, overlaps "
            "state_rules.birthday_windows.VA[0]",
            id="overlapping dates",
        ),
        pytest.param(
            va_versions(f"{VA_30}}}", f"{VA_60}}}"),
            "5: state_rules.birthday_windows.VA[1]: in force always, overlaps state_rules.birthday_windows.VA[0]",
            id="two undated versions",
        ),
        pytest.param(
            va_versions(f"{VA_30}}}", f"{VA_60}, effective_from: 2025-07-01}}"),
            "5: state_rules.birthday_windows.VA[1]: in force from 2025-07-01, overlaps "
            "state_rules.birthday_windows.VA[0] (in force always)",
            id="a dated and an undated version",
        ),
        pytest.param(  # listed later, starts earlier: still refused, naming the later-starting one
            va_versions(f"{VA_60}, effective_from: 2025-01-01}}", f"{VA_30}, effective_until: 2025-06-30}}"),
            "4: state_rules.birthday_windows.VA[0]: in force from 2025-01-01, overlaps "
            "state_rules.birthday_windows.VA[1]",
            id="overlap listed out of order",
        ),
        pytest.param(
            va_versions(f"{VA_30}, effective_from: 2025-07-01, effective_until: 2025-06-30}}"),
            "4: state_rules.birthday_windows.VA[0].effective_until: 2025-06-30 is before effective_from (2025-07-01)",
            id="until before from",
        ),
        pytest.param(
            va_versions(f"{VA_30}, min_age: 75, max_age: 65}}"),
            "4: state_rules.birthday_windows.VA[0].max_age: must be at least min_age (75), got 65",
            id="min_age above max_age",
        ),
        pytest.param(
            va_versions(f"{VA_30}, effective_from: 2025-02-30}}"),
            "4: state_rules.birthday_windows.VA[0].effective_from: '2025-02-30' cannot be read as a date",
            id="no such day",
        ),
        pytest.param(
            va_versions(f'{VA_30}, effective_from: "July 1, 2025"}}'),
            "4: state_rules.birthday_windows.VA[0].effective_from: must be a date YYYY-MM-DD, got 'July 1, 2025'",
            id="not a date",
        ),
        pytest.param(
            va_versions(f"{VA_30}, effective_form: 2025-07-01}}"),
            "4: state_rules.birthday_windows.VA[0].effective_form: unknown key",
            id="unknown key in a version",
        ),
        pytest.param(
            "state_rules:\n  birthday_windows:\n    VA: []\n",
            "3: state_rules.birthday_windows.VA: a list of versions needs at least one version",
            id="empty list",
        ),
        pytest.param(
            "state_rules:\n  effective_date_windows:\n    MO:\n"
            "      - {window_before_days: 30, window_after_days: 33, effective_until: 2026-12-31}\n"
            "      - {window_before_days: 30, window_after_days: 63, effective_from: 2026-12-31}\n",
            "5: state_rules.effective_date_windows.MO[1]: in force from 2026-12-31, overlaps "
            "state_rules.effective_date_windows.MO[0]",
            id="effective-date versions overlapping on one day",
        ),
        pytest.param(
            "state_rules:\n  year_round_exclusion:\n    - CT\n"
            "    - {state: RI, effective_from: 2026-01-01}\n"
            "    - {state: RI, effective_from: 2027-01-01, effective_until: 2027-12-31}\n",
            "5: state_rules.year_round_exclusion[2]: in force 2027-01-01..2027-12-31, overlaps "
            "state_rules.year_round_exclusion[1]",
            id="dated year-round entries overlapping",
        ),
        pytest.param(
            "state_rules:\n  year_round_exclusion:\n    - RI\n    - {state: RI, effective_from: 2026-01-01}\n",
            "4: state_rules.year_round_exclusion[1]: in force from 2026-01-01, overlaps "
            "state_rules.year_round_exclusion[0] (in force always)",
            id="a year-round code and a dated entry of one state",
        ),
        pytest.param(
            "state_rules:\n  year_round_exclusion:\n    - {effective_from: 2026-01-01}\n",
            "3: state_rules.year_round_exclusion[0]: an entry with dates needs its state",
            id="a dated year-round entry without its state",
        ),
    ],
)
def test_versions_declared_wrongly_are_refused_at_load(tmp_path: Path, text: str, expected: str) -> None:
    message = refusal(tmp_path, text)
    assert message.startswith(expected), message
    if "overlaps" in expected:
        assert message.endswith("versions of one state and kind must not overlap"), message


def test_versions_that_meet_without_overlapping_load(tmp_path: Path) -> None:
    """The day after the last day of one version starts the next: allowed (and a gap is)."""
    path = tmp_path / "ok.yaml"
    path.write_text(
        va_versions(
            f"{VA_30}, effective_until: 2025-06-30}}",
            f"{VA_60}, effective_from: 2025-07-01, effective_until: 2026-12-31}}",
            f"{VA_30}, effective_from: 2028-01-01}}",
        )
        + "  year_round_exclusion:\n    - {state: RI, effective_until: 2025-12-31}\n"
        "    - {state: RI, effective_from: 2026-01-01}\n",
        encoding="utf-8",
    )
    config, _ = load_config_file(str(path))
    assert [(r.effective_from, r.effective_until, r.days_after) for r in config.rules_for_state("VA")] == [
        (None, date(2025, 6, 30), 30),
        (date(2025, 7, 1), date(2026, 12, 31), 60),
        (date(2028, 1, 1), None, 30),
    ]
    # 2027: no version in force, no window
    assert window_of(windows(config, "VA", JULY_BIRTH), 2027) is None
    assert window_of(windows(config, "VA", JULY_BIRTH), 2028) is not None


def test_a_month_start_rule_picks_its_version_on_the_first_of_the_month() -> None:
    """A change mid-month under a month-start rule: the version is the one in force on the
    anchor (the first of the birth month), not on the birthday."""
    config = load({"state_rules": {"birthday_windows": {"NV": [
        {"window_before_days": 0, "window_after_days": 60, "use_month_start": True, "effective_until": "2025-07-14"},
        {"window_before_days": 0, "window_after_days": 30, "use_month_start": True, "effective_from": "2025-07-15"},
    ]}}})
    w = window_of(windows(config, "NV", date(1950, 7, 20)), 2025)  # anchor 2025-07-01: the first version
    assert w is not None
    assert (w.anchor, w.start, w.end, w.version) == (
        date(2025, 7, 1), date(2025, 5, 2), date(2025, 8, 30), "rule until 2025-07-14"
    )
    w = window_of(windows(config, "NV", date(1950, 7, 20)), 2026)
    assert w is not None and (w.end, w.version) == (date(2026, 7, 31), "rule from 2025-07-15")


def test_a_change_of_anchor_rule_mid_month_leaves_no_year_without_a_window() -> None:
    """Every day of 2025 has a version in force: the plain version's anchor (07-20) is after
    its end, the month-start version's anchor (07-01) before its start, so the version in
    force on the birthday itself (the month-start one) gives 2025's window."""
    config = load({"state_rules": {"birthday_windows": {"NV": [
        {"window_before_days": 0, "window_after_days": 60, "effective_until": "2025-07-14"},
        {"window_before_days": 0, "window_after_days": 60, "use_month_start": True, "effective_from": "2025-07-15"},
    ]}}})
    cw = windows(config, "NV", date(1950, 7, 20))
    assert reason(cw, date(2025, 7, 20)) is not None


# --- age bands: Illinois, 45 days, ages 65 to 75 on the anchor -----------------------------------

IL_SOURCE = "Illinois birthday rule, ages 65 to 75 (test)"


def il_config(*, month_start: bool = False) -> Config:
    rule: dict[str, Any] = {"window_before_days": 0, "window_after_days": 45, "min_age": 65, "max_age": 75,
                            "source": IL_SOURCE}
    if month_start:
        rule["use_month_start"] = True
    return load({"state_rules": {"birthday_windows": {"IL": [rule]}}})


def test_age_band_edges() -> None:
    cw = windows(il_config(), "IL", date(1960, 8, 15))  # 65 on 2025-08-15
    assert span(window_of(cw, 2025)) == (date(2025, 6, 16), date(2025, 9, 29))
    # the day before the 65th birthday lies in the pre-window of the year they turn 65
    assert reason(cw, date(2025, 8, 14)) == (
        f"IL birthday window 2025-06-16..2025-09-29 (rule for ages 65-75; source: {IL_SOURCE})"
    )
    assert window_of(cw, 2024) is None  # 64 on the anchor
    assert reason(cw, date(2024, 8, 14)) is None and reason(cw, date(2024, 8, 15)) is None
    assert window_of(cw, 2035) is not None  # 75
    assert span(window_of(cw, 2035)) == (date(2035, 6, 16), date(2035, 9, 29))
    assert window_of(cw, 2036) is None  # 76
    assert reason(cw, date(2036, 8, 15)) is None


def test_age_band_with_a_feb_29_birth_counts_the_age_on_the_feb_28_anchor() -> None:
    birth = date(1960, 2, 29)
    assert age_on(birth, date(2025, 2, 28)) == 65  # the birthday off leap years
    assert age_on(birth, date(2025, 2, 27)) == 64
    assert age_on(birth, date(2024, 2, 28)) == 63 and age_on(birth, date(2024, 2, 29)) == 64
    cw = windows(il_config(), "IL", birth)
    # 2025 (not leap): anchor 2025-02-28, age 65 on it: a window
    assert span(window_of(cw, 2025)) == (date(2024, 12, 30), date(2025, 4, 14))
    assert reason(cw, date(2025, 2, 27)) is not None
    assert window_of(cw, 2024) is None  # anchor 2024-02-29: 64
    assert reason(cw, date(2024, 2, 28)) is None
    assert window_of(cw, 2035) is not None  # anchor 2035-02-28: 75
    assert window_of(cw, 2036) is None  # anchor 2036-02-29: 76


def test_age_band_with_use_month_start_counts_the_age_on_the_first_of_the_month() -> None:
    """Documented behaviour (SPEC 4: "the contact's age on the anchor date"): with the anchor
    on the first of the birth month, a contact born on any other day is one year younger
    on it than on the birthday, so the band's years come one year later for them."""
    config = il_config(month_start=True)
    mid_month, first = date(1960, 8, 15), date(1960, 8, 1)
    assert age_on(mid_month, date(2025, 8, 1)) == 64
    assert age_on(first, date(2025, 8, 1)) == 65
    mid, on_first = windows(config, "IL", mid_month), windows(config, "IL", first)
    # the year they turn 65: a window only for the contact born on the 1st
    assert span(window_of(on_first, 2025)) == (date(2025, 6, 2), date(2025, 9, 15))
    assert window_of(mid, 2025) is None
    assert reason(mid, date(2025, 8, 14)) is None  # the day before the 65th birthday: not excluded
    assert span(window_of(mid, 2026)) == (date(2026, 6, 2), date(2026, 9, 15))
    # the last years: born on the 1st, 75 on 2035-08-01; mid-month, 75 on 2036-08-01
    assert window_of(on_first, 2035) is not None and window_of(on_first, 2036) is None
    assert window_of(mid, 2036) is not None and window_of(mid, 2037) is None


def test_age_band_without_a_birth_date_counts_as_in_the_band() -> None:
    """An effective-date rule with a band, for a contact with no birth date: the window applies
    (the safer reading)."""
    config = load({"state_rules": {"effective_date_windows": {"MO": [
        {"window_before_days": 30, "window_after_days": 33, "min_age": 65}]}}})
    cw = windows(config, "MO", None, date(2010, 7, 1))
    assert window_of(cw, 2025) is not None
    young = windows(config, "MO", date(1990, 1, 1), date(2010, 7, 1))
    assert window_of(young, 2025) is None


def test_an_impossible_age_counts_as_unknown_for_a_band_without_min_age() -> None:
    config = load({"state_rules": {"effective_date_windows": {"MO": [
        {"window_before_days": 30, "window_after_days": 33, "max_age": 64}]}}})
    assert window_of(windows(config, "MO", None, date(2010, 7, 1)), 2025) is not None  # unknown age
    # a birth date typed in the future: age -5 on 2025-07-01
    assert window_of(windows(config, "MO", date(2030, 1, 1), date(2010, 7, 1)), 2025) is not None


# --- Feb 29 anchors at a change ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old_until", "new_from", "after_2027", "after_2028"),
    [
        # the change on 2027-02-28: the 2027 anchor (Feb 28) is already under the new version
        (date(2027, 2, 27), date(2027, 2, 28), 60, 60),
        # the change on 2027-03-01: the 2027 anchor is under the old one
        (date(2027, 2, 28), date(2027, 3, 1), 30, 60),
        # the change on 2028-02-29: the 2028 anchor (Feb 29) is under the new one
        (date(2028, 2, 28), date(2028, 2, 29), 30, 60),
        # the change on 2028-03-01: both under the old one
        (date(2028, 2, 29), date(2028, 3, 1), 30, 30),
    ],
)
def test_feb_29_birth_anchors_at_a_rule_change(
    old_until: date, new_from: date, after_2027: int, after_2028: int
) -> None:
    config = load({"state_rules": {"birthday_windows": {"VA": [
        {"window_before_days": 0, "window_after_days": 30, "effective_until": old_until.isoformat()},
        {"window_before_days": 0, "window_after_days": 60, "effective_from": new_from.isoformat()},
    ]}}})
    cw = windows(config, "VA", date(1952, 2, 29))
    ends = {30: (date(2027, 3, 30), date(2028, 3, 30)), 60: (date(2027, 4, 29), date(2028, 4, 29))}
    w2027, w2028 = window_of(cw, 2027), window_of(cw, 2028)
    assert w2027 is not None and w2028 is not None
    assert (w2027.anchor, w2027.start, w2027.end) == (date(2027, 2, 28), date(2026, 12, 30), ends[after_2027][0])
    assert (w2028.anchor, w2028.start, w2028.end) == (date(2028, 2, 29), date(2027, 12, 31), ends[after_2028][1])
    assert ("rule from" in w2027.label) == (after_2027 == 60)
    assert ("rule from" in w2028.label) == (after_2028 == 60)


# --- a dated year-round rule: Rhode Island from 2026-01-01, a window before ----------------------

RI_SOURCE = "R.I. Gen. Laws § 27-18.2-1 (test)"
RI_RULES = {
    "year_round_exclusion": ["CT", "MA", "NY", "WA", {"state": "RI", "effective_from": "2026-01-01", "source": RI_SOURCE}],
    "birthday_windows": {"RI": {"window_before_days": 0, "window_after_days": 30}},
}
RI = load({"state_rules": RI_RULES})
RI_WINDOW_ONLY = load({"state_rules": {**RI_RULES, "year_round_exclusion": ["CT", "MA", "NY", "WA"]}})
RI_REASON = f"RI year-round (rule from 2026-01-01; source: {RI_SOURCE})"


def test_dated_year_round_excludes_every_date_from_its_start() -> None:
    cw = windows(RI, "RI", date(1950, 12, 10))  # window 2025-10-11..2026-01-09
    assert not cw.always_year_round
    assert reason(cw, date(2025, 10, 10)) is None
    assert reason(cw, date(2025, 10, 11)) == "RI birthday window 2025-10-11..2026-01-09"  # undated rule
    assert reason(cw, date(2025, 12, 31)) == "RI birthday window 2025-10-11..2026-01-09"
    for day in (date(2026, 1, 1), date(2026, 1, 9), date(2026, 1, 10), date(2026, 6, 1), date(2031, 3, 3)):
        assert reason(cw, day) == RI_REASON, day
    # a contact of another state is not touched
    assert reason(windows(RI, "TX", date(1950, 12, 10)), date(2026, 6, 1)) is None


def test_dated_year_round_with_an_end_excludes_its_period_only() -> None:
    config = load({"state_rules": {**RI_RULES, "year_round_exclusion": [
        {"state": "RI", "effective_from": "2026-01-01", "effective_until": "2026-12-31", "source": RI_SOURCE}]}})
    cw = windows(config, "RI", date(1950, 3, 3))  # windows 01-02..04-02 of each year
    period = f"RI year-round (rule 2026-01-01..2026-12-31; source: {RI_SOURCE})"
    assert reason(cw, date(2025, 12, 31)) is None
    assert reason(cw, date(2026, 1, 1)) == period
    assert reason(cw, date(2026, 12, 31)) == period
    assert reason(cw, date(2027, 1, 1)) is None
    assert reason(cw, date(2027, 1, 2)) == "RI birthday window 2027-01-02..2027-04-02"


def test_dated_year_round_skips_emails_and_ends_post_window_chains() -> None:
    december = contact("RI", date(1950, 12, 10))  # birthday email 2025-11-26, in the window
    plan = decisions(december, RI, date(2025, 11, 20))
    assert plan["birthday"].status == SKIPPED
    assert plan["birthday"].skip_reason == "RI birthday window 2025-10-11..2026-01-09"
    # its window ends 2026-01-09: the day after lies in the year-round period, no post-window email
    assert "post_window" not in plan
    assert decisions(december, RI_WINDOW_ONLY, date(2025, 11, 20))["post_window"].send_date == date(2026, 1, 10)
    # a window ending before 2026 keeps its post-window email
    november = decisions(contact("RI", date(1950, 11, 20)), RI, date(2025, 10, 25))
    assert november["birthday"].status == SKIPPED
    assert november["post_window"].send_date == date(2025, 12, 21)
    assert november["post_window"].status == PRE_SCHEDULED
    # from 2026 every email is skipped, the reason naming the rule and its source
    aep = decisions(contact("RI", date(1950, 3, 3)), RI, date(2026, 9, 1))["aep"]
    assert (aep.status, aep.skip_reason) == (SKIPPED, RI_REASON)
    before = decisions(contact("RI", date(1950, 3, 3)), RI, date(2025, 9, 1))["aep"]
    assert before.status == PRE_SCHEDULED


# --- the legacy config, the round trip -----------------------------------------------------------


def rule_facts(rules: tuple[WindowRule, ...]) -> list[tuple[Any, ...]]:
    """Every field, those equality leaves out (source, note) included."""
    return sorted(
        (r.state, r.kind, r.days_before, r.days_after, r.pre_window_days, r.use_month_start, r.source,
         r.effective_from, r.effective_until, r.min_age, r.max_age, r.note)
        for r in rules
    )


def year_round_facts(rules: tuple[YearRoundRule, ...]) -> list[tuple[Any, ...]]:
    return sorted((r.state, r.effective_from, r.effective_until, r.source, r.note) for r in rules)


def test_the_legacy_config_loads_to_exactly_the_default_rules() -> None:
    config, _ = load_config_file(str(LEGACY))
    assert rule_facts(config.window_rules) == rule_facts(DEFAULT_WINDOW_RULES)
    assert rule_facts(config.window_rules) == rule_facts(DEFAULT_CONFIG.window_rules)
    assert not any(r.dated or r.version for r in config.window_rules)
    assert year_round_facts(config.year_round_rules) == year_round_facts(DEFAULT_YEAR_ROUND_RULES)
    assert not any(r.dated for r in config.year_round_rules)
    assert all(config.always_year_round(s) for s in ("CT", "MA", "NY", "WA"))


ROUND_TRIP_RULES: dict[str, Any] = {
    "profile": PROFILE,
    "year_round_exclusion": [
        "CT",
        "NY",
        {"state": "RI", "effective_from": "2026-01-01", "effective_until": "2027-12-31",
         "source": RI_SOURCE, "note": "awaits the agency's confirmation"},
        {"state": "RI", "effective_from": "2029-01-01"},
    ],
    "birthday_windows": {
        "CA": {"window_before_days": 30, "window_after_days": 60},
        "KY": [
            {"window_before_days": 0, "window_after_days": 60, "effective_until": "2024-12-31",
             "min_age": 65, "source": "KY old", "note": "a note"},
            {"window_before_days": 5, "window_after_days": 30, "effective_from": "2025-01-01",
             "use_month_start": True, "pre_window_extension_days": 10, "max_age": 80},
        ],
    },
    "effective_date_windows": {
        "MO": [{"window_before_days": 30, "window_after_days": 33, "min_age": 60, "max_age": 70}],
    },
}


def test_to_dict_round_trips_versions_bands_notes_dated_year_round_and_the_profile(tmp_path: Path) -> None:
    config = load({"state_rules": ROUND_TRIP_RULES})
    assert {r.state for r in config.window_rules if r.dated} >= {"KY", "MO", "VA", "IL", "UT"}
    data = config.to_dict()
    back = load(data)
    assert back.to_dict() == data
    assert back.window_rules == config.window_rules
    assert rule_facts(back.window_rules) == rule_facts(config.window_rules)
    assert year_round_facts(back.year_round_rules) == year_round_facts(config.year_round_rules)
    # and through a YAML file, as a sweep-run record is read back
    path = tmp_path / "record.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    from_file, _ = load_config_file(str(path))
    assert from_file.to_dict() == data
    assert rule_facts(from_file.window_rules) == rule_facts(config.window_rules)


# --- the packaged profile ------------------------------------------------------------------------


def test_every_profile_version_cites_a_source_and_awaits_confirmation() -> None:
    assert PROFILE in PROFILE_NAMES
    raw = yaml.safe_load(PROFILE_FILE.read_text(encoding="utf-8"))["state_rules"]
    counted = 0
    for section in ("birthday_windows", "effective_date_windows"):
        for state, versions in (raw.get(section) or {}).items():
            for v in versions if isinstance(versions, list) else [versions]:
                counted += 1
                assert str(v.get("source", "")).strip(), (state, v)
                assert "awaits" in v.get("note", "") and "confirmation" in v["note"], (state, v)
    assert counted >= 8
    assert profile_state_rules(PROFILE)[0] == raw
    config = load({"state_rules": {"profile": PROFILE}})
    for r in config.window_rules:
        if r.state in raw["birthday_windows"]:
            assert r.source.strip() and "confirmation" in r.note, r


def test_the_legacy_file_with_the_profile_takes_the_profile_s_states_only(tmp_path: Path) -> None:
    text = LEGACY.read_text(encoding="utf-8").replace(
        "state_rules:\n", f"state_rules:\n  profile: {PROFILE}\n", 1
    )
    path = tmp_path / "scheduler_config.yaml"
    path.write_text(text, encoding="utf-8")
    config, _ = load_config_file(str(path))
    va = config.rules_for_state("VA")
    assert [(r.kind, r.effective_from, r.effective_until, r.days_after) for r in va] == [
        (BIRTHDAY, None, date(2025, 6, 30), 30),
        (BIRTHDAY, date(2025, 7, 1), None, 60),
    ]
    assert all(r.pre_window_days == 60 for r in va)
    legacy, _ = load_config_file(str(LEGACY))
    for state in ("CA", "ID", "KY", "MD", "NV", "OK", "MO"):  # not in the profile: the file's rules
        assert rule_facts(config.rules_for_state(state)) == rule_facts(legacy.rules_for_state(state)), state
    assert year_round_facts(config.year_round_rules) == year_round_facts(legacy.year_round_rules)
    il = config.rules_for_state("IL")
    assert [(r.min_age, r.max_age, r.days_after) for r in il] == [(65, 75, 45)]


# --- the window cache: contacts born on the same day of different years share entries -------------

_PROFILE_CONFIG = load({"state_rules": {"profile": PROFILE}})
_CACHE_CONFIGS = (DEFAULT_CONFIG, VA_CHANGE, _PROFILE_CONFIG)


@settings(max_examples=300, deadline=None)
@given(
    config_index=st.integers(0, len(_CACHE_CONFIGS) - 1),
    state_index=st.integers(0, 60),
    month_day=st.dates(date(2000, 1, 1), date(2000, 12, 31)),
    base_years=st.lists(st.integers(1930, 2030), min_size=2, max_size=4),
    births=st.lists(st.dates(date(1930, 1, 1), date(2010, 12, 31)), min_size=4, max_size=4),
    year=st.integers(2023, 2028),
)
def test_a_window_read_from_the_shared_cache_is_the_window_of_its_own_base_date(
    config_index: int,
    state_index: int,
    month_day: date,
    base_years: list[int],
    births: list[date],
    year: int,
) -> None:
    """The cache keys a window by the base date's month and day: each contact, whichever
    contact of another birth year filled the entry, reads the window of its own dates
    (the age bands from its own birth date, February 29 in and out of leap years)."""
    config = _CACHE_CONFIGS[config_index]
    states = sorted({r.state for r in config.window_rules})
    state = states[state_index % len(states)]
    for base_year, birth in zip(base_years, births, strict=False):
        day = min(month_day.day, 28) if month_day.month == 2 and not isleap(base_year) else month_day.day
        base = date(base_year, month_day.month, day)
        for kind_birth, kind_effective in ((base, None), (birth, base)):
            cw = contact_windows(state, kind_birth, kind_effective, config)
            for i, (rule, _) in enumerate(cw.rules):
                own_base = kind_birth if rule.kind == BIRTHDAY else kind_effective
                assert own_base is not None
                birth_for_band = kind_birth if rule.banded else None
                direct = window_of_year(rule, own_base, year, birth_for_band)
                if direct is None and rule.dated and cw._no_version_on_its_anchor(rule, year):
                    direct = window_of_year(rule, own_base, year, birth_for_band, on_anniversary=True)
                assert cw.window(i, year) == direct, (rule, own_base, year)


def own_calendar(state: str, birth: date | None, effective: date | None, config: Config) -> ContactWindows:
    """A calendar built from the contact's own dates, exactly as stored, with nothing kept yet."""
    bases = {BIRTHDAY: birth, "effective_date": effective}
    rules = tuple((r, b) for r in config.rules_for_state(state) if (b := bases[r.kind]) is not None)
    return ContactWindows(state, config.year_round_for(state), rules, birth)


@settings(max_examples=300, deadline=None)
@given(
    config_index=st.integers(0, len(_CACHE_CONFIGS) - 1),
    state_index=st.integers(0, 60),
    births=st.lists(st.one_of(st.none(), st.dates(date(1930, 1, 1), date(2027, 12, 31))), min_size=3, max_size=3),
    effectives=st.lists(st.one_of(st.none(), st.dates(date(2000, 1, 1), date(2027, 12, 31))), min_size=3, max_size=3),
    days=st.lists(st.dates(date(2023, 1, 1), date(2029, 12, 31)), min_size=1, max_size=40),
)
def test_contacts_sharing_a_calendar_get_the_answers_of_their_own_dates(
    config_index: int,
    state_index: int,
    births: list[date | None],
    effectives: list[date | None],
    days: list[date],
) -> None:
    """Contacts whose dates agree on what their state's rules read (month and day, the birth
    date for an age band) share one calendar, and it keeps its answers: each still gets,
    on every day, the exclusion its own dates give (February 29 of leap and other years,
    bands, dated versions, a state without rules)."""
    config = _CACHE_CONFIGS[config_index]
    states = sorted({r.state for r in config.window_rules} | {"TX", "NY"})
    state = states[state_index % len(states)]
    # The same month and day in other years, so that the calendars are shared.
    pairs = [(b, e) for b in births for e in effectives]
    pairs += [(b.replace(year=2004) if b and (b.month, b.day) != (2, 29) else b, e) for b, e in pairs]
    for birth, effective in pairs:
        shared = contact_windows(state, birth, effective, config)
        own = own_calendar(state, birth, effective, config)
        for d in days:
            assert shared.exclusion_on(d) == own.exclusion_on(d), (state, birth, effective, d)
