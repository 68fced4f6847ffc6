"""SPEC section 4: exclusion windows, their dates and the skip reasons they give."""

from datetime import date, timedelta

import pytest

from rules.config import DEFAULT_CONFIG, config_from_mapping
from rules.contact import Contact
from rules.contact_schedule import schedule_contact
from rules.exclusion_window import contact_windows
from rules.placement import Horizon
from rules.statuses import PRE_SCHEDULED, SKIPPED

ONE = timedelta(days=1)


def reason_on(
    state: str,
    d: date,
    birth: date | None = None,
    effective: date | None = None,
    config=DEFAULT_CONFIG,
) -> str | None:
    excl = contact_windows(state, birth, effective, config).exclusion_on(d)
    return None if excl is None else excl.reason


def decisions_by_type(contact: Contact, as_of: date, config=DEFAULT_CONFIG):
    plan = schedule_contact(contact, [], config, Horizon(as_of))
    return {d.occurrence.email_type: d for d in plan.decisions}


# Each row of the SPEC 4 table, for a birth (or effective) date of 1950-06-10,
# anchor 2025-06-10 (NV: 2025-06-01), pre_window 60, computed by hand.
TABLE = [
    ("CA", "birthday", date(2025, 3, 12), date(2025, 8, 9)),  # 30+60 before, 60 after
    ("ID", "birthday", date(2025, 4, 11), date(2025, 8, 12)),  # 0+60 before, 63 after
    ("KY", "birthday", date(2025, 4, 11), date(2025, 8, 9)),
    ("MD", "birthday", date(2025, 4, 11), date(2025, 7, 10)),
    ("NV", "birthday", date(2025, 4, 2), date(2025, 7, 31)),  # anchor 2025-06-01
    ("OK", "birthday", date(2025, 4, 11), date(2025, 8, 9)),
    ("OR", "birthday", date(2025, 4, 11), date(2025, 7, 11)),
    ("VA", "birthday", date(2025, 4, 11), date(2025, 7, 10)),
    ("MO", "effective date", date(2025, 3, 12), date(2025, 7, 13)),  # 30+60 before, 33 after
]


@pytest.mark.parametrize(("state", "kind", "start", "end"), TABLE)
def test_each_state_window_of_the_table(state: str, kind: str, start: date, end: date) -> None:
    base = date(1950, 6, 10)
    birth, effective = (None, base) if state == "MO" else (base, None)
    label = f"{state} {kind} window {start}..{end}"
    for d in (start, start + ONE, date(2025, 6, 10), end - ONE, end):
        assert reason_on(state, d, birth, effective) == label, d
    assert reason_on(state, start - ONE, birth, effective) is None
    assert reason_on(state, end + ONE, birth, effective) is None


@pytest.mark.parametrize("state", ["CT", "MA", "NY", "WA"])
def test_year_round_states_exclude_every_date(state: str) -> None:
    for d in (date(2025, 1, 1), date(2025, 6, 10), date(2025, 12, 31), date(2028, 2, 29)):
        assert reason_on(state, d, date(1950, 6, 10), date(2010, 1, 1)) == f"{state} year-round"
        assert reason_on(state, d) == f"{state} year-round"  # no dates needed


def test_state_without_rule_has_no_window() -> None:
    d = date(2025, 1, 1)
    while d <= date(2026, 12, 31):
        assert reason_on("TX", d, date(1950, 6, 10), date(2010, 6, 10)) is None
        d += ONE


def test_no_birth_date_means_no_birthday_window() -> None:
    assert reason_on("CA", date(2025, 5, 1), None, date(2010, 5, 1)) is None
    assert reason_on("NV", date(2025, 3, 1), None, None) is None
    # ... and no effective date means no effective-date window
    assert reason_on("MO", date(2025, 7, 1), date(1950, 7, 1), None) is None


def test_windows_exist_for_years_before_the_first_anniversary() -> None:
    # Born 2024-05-01: window of 2024 is 2024-02-01..2024-06-30 (Feb 2024 has 29 days)
    assert (
        reason_on("CA", date(2024, 3, 1), date(2024, 5, 1))
        == "CA birthday window 2024-02-01..2024-06-30"
    )
    # a birth date in the future still protects the contact
    assert (
        reason_on("CA", date(2025, 3, 1), date(2030, 5, 1))
        == "CA birthday window 2025-01-31..2025-06-30"
    )


def test_pre_window_comes_from_config() -> None:
    config, _ = config_from_mapping({"timing_constants": {"pre_window_exclusion_days": 30}})
    # CA born 1955-05-01, pre_window 30: start = 2025-05-01 - 60 = 2025-03-02
    assert reason_on("CA", date(2025, 3, 2), date(1955, 5, 1), config=config) == (
        "CA birthday window 2025-03-02..2025-06-30"
    )
    assert reason_on("CA", date(2025, 3, 1), date(1955, 5, 1), config=config) is None


# --- SPEC section 4 examples, exactly ---------------------------------------------------------


def test_example_ca_born_1955_05_01() -> None:
    label = "CA birthday window 2025-01-31..2025-06-30"
    birth = date(1955, 5, 1)
    assert reason_on("CA", date(2025, 1, 31), birth) == label
    assert reason_on("CA", date(2025, 6, 30), birth) == label
    assert reason_on("CA", date(2025, 1, 30), birth) is None
    assert reason_on("CA", date(2025, 7, 1), birth) is None
    # the birthday email (ideal 2025-04-17) is skipped with exactly this reason
    by_type = decisions_by_type(Contact(1, "a@b.com", "CA", birth, None), date(2025, 4, 10))
    bday = by_type["birthday"]
    assert (bday.send_date, bday.status, bday.skip_reason) == (date(2025, 4, 17), SKIPPED, label)


def test_example_nv_born_1950_03_20_anchors_on_march_first() -> None:
    label = "NV birthday window 2024-12-31..2025-04-30"
    birth = date(1950, 3, 20)
    assert reason_on("NV", date(2024, 12, 31), birth) == label
    assert reason_on("NV", date(2025, 4, 30), birth) == label
    assert reason_on("NV", date(2024, 12, 30), birth) is None
    assert reason_on("NV", date(2025, 5, 1), birth) is None
    # had the anchor been the birthday itself, the window would end 2025-05-19
    assert reason_on("NV", date(2025, 5, 19), birth) is None
    by_type = decisions_by_type(Contact(1, "a@b.com", "NV", birth, None), date(2025, 3, 1))
    assert by_type["birthday"].send_date == date(2025, 3, 6)
    assert by_type["birthday"].skip_reason == label


def test_example_mo_effective_2010_07_01() -> None:
    effective = date(2010, 7, 1)
    for d in (date(2025, 4, 2), date(2025, 8, 3)):
        reason = reason_on("MO", d, date(1950, 1, 1), effective)
        assert reason is not None and reason.startswith("MO ") and "effective" in reason
        assert reason.endswith(" window 2025-04-02..2025-08-03")
    assert reason_on("MO", date(2025, 4, 1), date(1950, 1, 1), effective) is None
    assert reason_on("MO", date(2025, 8, 4), date(1950, 1, 1), effective) is None
    # the effective-date email (ideal 2025-06-01) is skipped, naming the window
    by_type = decisions_by_type(Contact(1, "a@b.com", "MO", None, effective), date(2025, 5, 20))
    ed = by_type["effective_date"]
    assert ed.send_date == date(2025, 6, 1) and ed.status == SKIPPED
    assert ed.skip_reason is not None and ed.skip_reason.endswith("window 2025-04-02..2025-08-03")


def test_example_ca_born_1960_01_10_window_crosses_new_year() -> None:
    label = "CA birthday window 2025-10-12..2026-03-11"
    birth = date(1960, 1, 10)
    # 2025-11-01 lies in the window of the following year (2026)
    assert reason_on("CA", date(2025, 11, 1), birth) == label
    assert reason_on("CA", date(2025, 10, 12), birth) == label
    assert reason_on("CA", date(2026, 3, 11), birth) == label
    assert reason_on("CA", date(2025, 10, 11), birth) is None
    assert reason_on("CA", date(2026, 3, 12), birth) is None
    # early January lies in the window anchored on that January's birthday
    assert reason_on("CA", date(2026, 1, 5), birth) == label
    assert reason_on("CA", date(2025, 1, 5), birth) == "CA birthday window 2024-10-12..2025-03-11"
    # the 2026 birthday email, ideal 2025-12-27, is skipped by the 2026 window
    by_type = decisions_by_type(Contact(1, "a@b.com", "CA", birth, None), date(2025, 12, 20))
    assert by_type["birthday"].occurrence.key == "1:birthday:2026"
    assert by_type["birthday"].send_date == date(2025, 12, 27)
    assert by_type["birthday"].skip_reason == label


def test_early_january_excluded_by_window_anchored_the_year_before() -> None:
    # CA born 1960-12-20: window of 2025 is 2025-09-21..2026-02-18
    label = "CA birthday window 2025-09-21..2026-02-18"
    assert reason_on("CA", date(2026, 1, 5), date(1960, 12, 20)) == label
    assert reason_on("CA", date(2026, 2, 19), date(1960, 12, 20)) is None


def test_feb_29_birth_date_in_a_ca_window() -> None:
    birth = date(1952, 2, 29)
    # 2024 (leap): anchor 2024-02-29 -> 2023-12-01..2024-04-29
    assert reason_on("CA", date(2023, 12, 1), birth) == "CA birthday window 2023-12-01..2024-04-29"
    assert reason_on("CA", date(2024, 4, 29), birth) == "CA birthday window 2023-12-01..2024-04-29"
    assert reason_on("CA", date(2024, 4, 30), birth) is None
    assert reason_on("CA", date(2023, 11, 30), birth) is None
    # 2025: anchor 2025-02-28 -> 2024-11-30..2025-04-29
    assert reason_on("CA", date(2024, 11, 30), birth) == "CA birthday window 2024-11-30..2025-04-29"
    assert reason_on("CA", date(2024, 11, 29), birth) is None
    # the 2025 birthday email: event 2025-02-28, ideal 2025-02-14, skipped
    by_type = decisions_by_type(Contact(1, "a@b.com", "CA", birth, None), date(2025, 2, 10))
    bday = by_type["birthday"]
    assert bday.occurrence.event_date == date(2025, 2, 28)
    assert bday.send_date == date(2025, 2, 14)
    assert bday.skip_reason == "CA birthday window 2024-11-30..2025-04-29"


@pytest.mark.parametrize("state", ["CT", "MA", "NY", "WA"])
def test_year_round_state_skips_everything_without_post_window(state: str) -> None:
    contact = Contact(7, "a@b.com", state, date(1950, 9, 20), date(2010, 9, 25))
    plan = schedule_contact(contact, [], DEFAULT_CONFIG, Horizon(date(2025, 9, 1)))
    types = {d.occurrence.email_type for d in plan.decisions}
    assert {"birthday", "effective_date", "aep"} <= types
    assert "post_window" not in types
    for d in plan.decisions:
        assert d.status == SKIPPED
        assert d.skip_reason == f"{state} year-round"


def test_state_without_rule_schedules_without_skips() -> None:
    contact = Contact(7, "a@b.com", "TX", date(1950, 9, 20), date(2010, 9, 25))
    plan = schedule_contact(contact, [], DEFAULT_CONFIG, Horizon(date(2025, 9, 1)))
    assert {d.occurrence.email_type for d in plan.decisions} == {
        "birthday",
        "effective_date",
        "aep",
    }
    assert all(d.status == PRE_SCHEDULED and d.skip_reason is None for d in plan.decisions)


# --- Issue 12: every state rule names its source; skip reasons never do -----------------------


def test_every_default_rule_and_year_round_state_names_a_source() -> None:
    from rules.config import (
        DEFAULT_WINDOW_RULES,
        DEFAULT_YEAR_ROUND,
        DEFAULT_YEAR_ROUND_RULES,
        UNCONFIRMED_SOURCE,
        year_round_source,
    )

    for rule in DEFAULT_WINDOW_RULES:
        assert rule.source.strip(), rule.state
        assert rule.source.isprintable(), rule.state
    sources = {r.state: r.source for r in DEFAULT_YEAR_ROUND_RULES}
    assert set(sources) == DEFAULT_YEAR_ROUND
    for state in DEFAULT_YEAR_ROUND:
        assert year_round_source(state) == sources[state] != ""
    assert year_round_source("TX") == ""
    # where no statute was found stated, the text says so rather than inventing one
    by_state = {r.state: r.source for r in DEFAULT_WINDOW_RULES}
    assert by_state["MO"] == UNCONFIRMED_SOURCE
    assert by_state["NV"] == "NRS 687B.352"
    assert by_state["OR"] == "OAR 836-052-0143"


def test_a_window_carries_its_rule_source_but_its_label_is_the_skip_reason() -> None:
    from rules.config import DEFAULT_WINDOW_RULES
    from rules.exclusion_window import window_of_year

    ca = next(r for r in DEFAULT_WINDOW_RULES if r.state == "CA")
    w = window_of_year(ca, date(1955, 5, 1), 2025)
    assert w.source == ca.source and w.cited == ca.source
    assert w.label == "CA birthday window 2025-01-31..2025-06-30"  # unchanged: stored in rows


def test_rules_differing_only_in_source_are_equal_but_their_windows_cite_their_own() -> None:
    from dataclasses import replace

    from rules.config import DEFAULT_WINDOW_RULES, Config
    from rules.exclusion_window import NO_SOURCE

    ca = next(r for r in DEFAULT_WINDOW_RULES if r.state == "CA")
    bare = replace(ca, source="")
    assert bare == ca and hash(bare) == hash(ca)  # the source never changes a date
    birth = date(1955, 5, 1)
    cited = contact_windows("CA", birth, None, DEFAULT_CONFIG).windows_of_years(range(2025, 2026))
    uncited = contact_windows("CA", birth, None, Config(window_rules=(bare,))).windows_of_years(
        range(2025, 2026)
    )
    assert [w.label for w in cited] == [w.label for w in uncited]
    assert [w.cited for w in cited] == [ca.source]
    assert [w.cited for w in uncited] == [NO_SOURCE]
    excl = contact_windows("CA", birth, None, Config(window_rules=(bare,))).exclusion_on(date(2025, 3, 1))
    assert excl is not None and excl.window is not None and excl.window.source == ""


def test_skip_reasons_do_not_name_the_source() -> None:
    by_type = decisions_by_type(Contact(1, "a@b.com", "CA", date(1955, 5, 1), None), date(2025, 4, 10))
    assert by_type["birthday"].skip_reason == "CA birthday window 2025-01-31..2025-06-30"
    plan = schedule_contact(Contact(7, "a@b.com", "NY", date(1950, 9, 20), None), [], DEFAULT_CONFIG,
                            Horizon(date(2025, 9, 1)))
    assert {d.skip_reason for d in plan.decisions} == {"NY year-round"}


def test_explain_names_the_source_of_each_window_and_year_round_state() -> None:
    from dataclasses import replace

    from rules.config import Config
    from rules.explain import explain_contact

    birth = date(1955, 5, 1)
    lines = explain_contact(Contact(1, "a@b.com", "CA", birth, None), [], DEFAULT_CONFIG,
                            Horizon(date(2025, 4, 10)))
    ca = DEFAULT_CONFIG.rules_for_state("CA")[0]
    line = next(ln for ln in lines if ln.startswith("  CA birthday window 2025-01-31..2025-06-30"))
    assert line.startswith(
        f"  CA birthday window 2025-01-31..2025-06-30 (anchor 2025-05-01; source: {ca.source}): blocks "
    )
    window_lines = [ln for ln in lines if ln.startswith("  CA birthday window ")]
    assert window_lines and all(f"source: {ca.source})" in ln for ln in window_lines)
    # a rule from a config that names no source says so
    bare = Config(window_rules=(replace(ca, source=""),))
    lines = explain_contact(Contact(1, "a@b.com", "CA", birth, None), [], bare, Horizon(date(2025, 4, 10)))
    assert any("(anchor 2025-05-01; source: none given by the config)" in ln for ln in lines)
    # a year-round state names its source too
    lines = explain_contact(Contact(2, "a@b.com", "NY", birth, None), [], DEFAULT_CONFIG,
                            Horizon(date(2025, 4, 10)))
    ny = [ln for ln in lines if "is a year-round state" in ln]
    assert ny == [
        "  NY is a year-round state: every date is excluded "
        "(source: SPEC section 4 default; statute to be confirmed by agency counsel)."
    ]
