"""SPEC section 11: configuration loading, defaults and refusals."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from rules.config import (
    BIRTHDAY,
    EFFECTIVE_DATE,
    ConfigError,
    WindowRule,
    config_from_mapping,
)

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_scheduler_config.yaml"


def load_legacy() -> dict[str, Any]:
    data = yaml.safe_load(LEGACY.read_text())
    assert isinstance(data, dict)
    return data


def test_legacy_file_loads_with_three_warnings() -> None:
    _, warnings = config_from_mapping(load_legacy())
    assert len(warnings) == 3
    for section in ("processing", "logging", "database"):
        assert sum(section in w for w in warnings) == 1


def test_legacy_file_gives_the_spec_defaults() -> None:
    config, _ = config_from_mapping(load_legacy())
    assert config.timing.send_time == "08:30:00"
    assert config.timing.birthday_days_before == 14
    assert config.timing.effective_date_days_before == 30
    assert config.aep_dates == ((9, 15),)
    assert config.year_round_codes == frozenset({"CT", "MA", "NY", "WA"})
    lb = config.load_balancing
    assert (lb.daily_send_percentage_cap, lb.ed_daily_soft_limit, lb.ed_soft_limit_percentage) == (
        0.07,
        15,
        0.30,
    )
    assert (lb.ed_smoothing_window_days, lb.overage_threshold, lb.catch_up_spread_days) == (
        2,
        1.2,
        7,
    )
    assert (lb.max_emails_per_contact_per_period, lb.period_days) == (2, 14)
    p = config.priorities
    assert (p.birthday, p.effective_date, p.aep, p.post_window) == (5, 5, 3, 8)
    expected_rules = {
        WindowRule("CA", BIRTHDAY, 30, 60, 60),
        WindowRule("ID", BIRTHDAY, 0, 63, 60),
        WindowRule("KY", BIRTHDAY, 0, 60, 60),
        WindowRule("MD", BIRTHDAY, 0, 30, 60),
        WindowRule("NV", BIRTHDAY, 0, 60, 60, use_month_start=True),
        WindowRule("OK", BIRTHDAY, 0, 60, 60),
        WindowRule("OR", BIRTHDAY, 0, 31, 60),
        WindowRule("VA", BIRTHDAY, 0, 30, 60),
        WindowRule("MO", EFFECTIVE_DATE, 30, 33, 60),
    }
    assert set(config.window_rules) == expected_rules
    ct = config.campaign_types
    assert set(ct) == {"rate_increase", "seasonal_promo", "initial_blast", "regulatory_notice"}
    assert ct["rate_increase"].priority == 1 and ct["rate_increase"].days_before_event == 14
    assert (
        ct["initial_blast"].target_all_contacts
        and not ct["initial_blast"].respect_exclusion_windows
    )
    assert not ct["regulatory_notice"].enable_followups
    assert config.email_templates["followup_4_hq_with_yes"] == "followup_conditions_v1"


def test_empty_or_missing_config_is_all_defaults() -> None:
    for data in (None, {}):
        config, warnings = config_from_mapping(data)
        assert warnings == []
        assert config.timing.pre_window_days == 60
        assert len(config.window_rules) == 9


def test_pre_window_default_applies_to_rules_without_their_own() -> None:
    config, _ = config_from_mapping(
        {
            "timing_constants": {"pre_window_exclusion_days": 45},
            "state_rules": {
                "birthday_windows": {"CA": {"window_before_days": 30, "window_after_days": 60}}
            },
        }
    )
    ca = [r for r in config.window_rules if r.state == "CA"]
    assert ca == [WindowRule("CA", BIRTHDAY, 30, 60, 45)]
    mo = [r for r in config.window_rules if r.state == "MO"]  # section absent: defaults, pre 45
    assert mo == [WindowRule("MO", EFFECTIVE_DATE, 30, 33, 45)]


def test_state_codes_are_case_insensitive() -> None:
    config, _ = config_from_mapping({"state_rules": {"year_round_exclusion": ["ny", " ct "]}})
    assert config.year_round_codes == frozenset({"NY", "CT"})


@pytest.mark.parametrize(
    ("data", "key_path"),
    [
        # wrong type
        ({"load_balancing": {"period_days": "14"}}, "load_balancing.period_days"),
        (
            {"load_balancing": {"daily_send_percentage_cap": "7%"}},
            "load_balancing.daily_send_percentage_cap",
        ),
        ({"load_balancing": {"enabled": "yes"}}, "load_balancing.enabled"),
        (
            {"timing_constants": {"birthday_email_days_before": 14.5}},
            "timing_constants.birthday_email_days_before",
        ),
        ({"timing_constants": {"send_time": 830}}, "timing_constants.send_time"),
        ({"timing_constants": {"send_time": "8:30"}}, "timing_constants.send_time"),
        ({"load_balancing": 5}, "load_balancing"),
        ({"campaign_types": {"promo": {"priority": "high"}}}, "campaign_types.promo.priority"),
        ({"campaign_types": {"promo": {"active": 1}}}, "campaign_types.promo.active"),
        # negative days
        (
            {"timing_constants": {"birthday_email_days_before": -1}},
            "timing_constants.birthday_email_days_before",
        ),
        (
            {"timing_constants": {"pre_window_exclusion_days": -60}},
            "timing_constants.pre_window_exclusion_days",
        ),
        ({"load_balancing": {"period_days": -14}}, "load_balancing.period_days"),
        (
            {"state_rules": {"birthday_windows": {"CA": {"window_after_days": -5}}}},
            "state_rules.birthday_windows.CA.window_after_days",
        ),
        (
            {"state_rules": {"effective_date_windows": {"MO": {"pre_window_extension_days": -1}}}},
            "state_rules.effective_date_windows.MO.pre_window_extension_days",
        ),
        # a percentage above 1
        (
            {"load_balancing": {"daily_send_percentage_cap": 1.5}},
            "load_balancing.daily_send_percentage_cap",
        ),
        (
            {"load_balancing": {"ed_soft_limit_percentage": 30}},
            "load_balancing.ed_soft_limit_percentage",
        ),
        # a state code that does not exist
        (
            {"state_rules": {"year_round_exclusion": ["NY", "ZZ"]}},
            "state_rules.year_round_exclusion[1]",
        ),
        (
            {"state_rules": {"birthday_windows": {"XX": {"window_after_days": 5}}}},
            "state_rules.birthday_windows.XX",
        ),
        (
            {"state_rules": {"effective_date_windows": {"Missouri": {"window_after_days": 5}}}},
            "state_rules.effective_date_windows.Missouri",
        ),
        # an unknown key inside a section
        ({"timing_constants": {"send_tme": "08:30:00"}}, "timing_constants.send_tme"),
        ({"load_balancing": {"daily_cap": 100}}, "load_balancing.daily_cap"),
        (
            {"state_rules": {"birthday_windows": {"CA": {"window_afer_days": 60}}}},
            "state_rules.birthday_windows.CA.window_afer_days",
        ),
        ({"state_rules": {"monthly_windows": {}}}, "state_rules.monthly_windows"),
        (
            {"aep_config": {"default_dates": [{"month": 9, "day": 15, "year": 2025}]}},
            "aep_config.default_dates[0].year",
        ),
        ({"priorities": {"birthdays": 3}}, "priorities.birthdays"),
        (
            {"email_templates": {"followups": {"lukewarm": "x"}}},
            "email_templates.followups.lukewarm",
        ),
        # an AEP date that does not exist every year
        (
            {"aep_config": {"default_dates": [{"month": 2, "day": 29}]}},
            "aep_config.default_dates[0].day",
        ),
        (
            {"aep_config": {"default_dates": [{"month": 9, "day": 15}, {"month": 2, "day": 29}]}},
            "aep_config.default_dates[1].day",
        ),
        (
            {"aep_config": {"default_dates": [{"month": 4, "day": 31}]}},
            "aep_config.default_dates[0].day",
        ),
    ],
)
def test_bad_value_is_refused_naming_the_full_key(data: dict[str, Any], key_path: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_mapping(data, source="agency.yaml")
    message = str(err.value)
    assert key_path in message
    assert "agency.yaml" in message


@pytest.mark.parametrize(
    ("data", "key_path"),
    [
        (
            {"email_templates": {"anniversary": {"birthdya": "x"}}},
            "email_templates.anniversary.birthdya",
        ),
        ({"email_templates": {"sms": {"birthdya": "x"}}}, "email_templates.sms.birthdya"),
    ],
)
def test_unknown_template_key_is_refused(data: dict[str, Any], key_path: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_mapping(data)
    assert key_path in str(err.value)


def test_legacy_cold_followup_sms_template_takes_effect() -> None:
    data = load_legacy()
    data["email_templates"]["sms"]["followup_cold"] = "agency_cold_sms_v7"
    config, _ = config_from_mapping(data)
    assert config.sms_templates["followup_1_cold"] == "agency_cold_sms_v7"


def test_priorities_and_templates_from_config() -> None:
    config, _ = config_from_mapping(
        {
            "priorities": {"aep": 1, "post_window": 9},
            "email_templates": {
                "anniversary": {"birthday": "bday_v2"},
                "followups": {"cold": "cold_v3"},
            },
        }
    )
    assert config.priorities.aep == 1 and config.priorities.post_window == 9
    assert config.priorities.birthday == 5
    assert config.email_templates["birthday"] == "bday_v2"
    assert config.email_templates["followup_1_cold"] == "cold_v3"
    assert config.email_templates["aep"] == "aep_standard_v1"


def test_several_aep_dates() -> None:
    config, _ = config_from_mapping(
        {"aep_config": {"default_dates": [{"month": 10, "day": 1}, {"month": 9, "day": 15}]}}
    )
    assert set(config.aep_dates) == {(9, 15), (10, 1)}


def test_to_dict_reads_back_to_the_same_config() -> None:
    """Replay rebuilds each sweep's config from its record: to_dict must read back exactly."""
    from pathlib import Path

    import yaml

    from rules.config import DEFAULT_CONFIG, config_from_mapping

    legacy = Path(__file__).resolve().parents[1] / "data" / "legacy_scheduler_config.yaml"
    custom, _ = config_from_mapping(
        {
            "timing_constants": {"send_time": "07:15:00", "birthday_email_days_before": 10},
            "load_balancing": {"enabled": False, "period_days": 9},
            "state_rules": {"birthday_windows": {"TX": {"window_before_days": 3, "window_after_days": 4}}},
            "campaign_types": {"welcome": {"priority": 4, "days_before_event": -2}},
            "email_templates": {"followups": {"cold": "cold_v9"}, "sms": {"aep": "aep_sms_v2"}},
        }
    )
    for config in (DEFAULT_CONFIG, config_from_mapping(yaml.safe_load(legacy.read_text()))[0], custom):
        back, warnings = config_from_mapping(config.to_dict())
        assert warnings == []
        assert back.to_dict() == config.to_dict()
        for part in ("timing", "aep_dates", "load_balancing", "priorities", "year_round_rules",
                     "window_rules", "campaign_types", "email_templates", "sms_templates"):
            assert getattr(back, part) == getattr(config, part), part


# Issue 11: every integer key has a documented maximum; every quoted value is an excerpt.

INTEGER_MAXIMA = [
    (("timing_constants", "birthday_email_days_before"), 366),
    (("timing_constants", "effective_date_days_before"), 366),
    (("timing_constants", "pre_window_exclusion_days"), 366),
    (("timing_constants", "followup_days_after"), 366),
    (("aep_config", "default_dates", 0, "month"), 12),
    (("aep_config", "default_dates", 0, "day"), 31),
    (("load_balancing", "ed_daily_soft_limit"), 10**9),
    (("load_balancing", "ed_smoothing_window_days"), 366),
    (("load_balancing", "catch_up_spread_days"), 366),
    (("load_balancing", "max_emails_per_contact_per_period"), 1000),
    (("load_balancing", "period_days"), 366),
    (("priorities", "birthday"), 1000),
    (("priorities", "effective_date"), 1000),
    (("priorities", "aep"), 1000),
    (("priorities", "post_window"), 1000),
    (("state_rules", "birthday_windows", "CA", "window_before_days"), 366),
    (("state_rules", "birthday_windows", "CA", "window_after_days"), 366),
    (("state_rules", "effective_date_windows", "MO", "pre_window_extension_days"), 366),
    (("campaign_types", "promo", "days_before_event"), 366),
    (("campaign_types", "promo", "priority"), 1000),
]


def nested(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """``{"a": {"b": value}}`` for ("a", "b"); an int step is a list holding one item."""
    inner: Any = value
    for step in reversed(path):
        if isinstance(step, int):
            inner = [inner]
        elif step == "month":
            inner = {"month": inner, "day": 1}
        elif step == "day":
            inner = {"month": 1, "day": inner}
        else:
            inner = {step: inner}
    assert isinstance(inner, dict)
    return inner


def key_of(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in path).lstrip(".")


@pytest.mark.parametrize(("path", "maximum"), INTEGER_MAXIMA)
def test_every_integer_key_has_a_maximum(path: tuple[str | int, ...], maximum: int) -> None:
    config_from_mapping(nested(path, maximum))
    for too_big in (maximum + 1, 10**23):
        with pytest.raises(ConfigError) as err:
            config_from_mapping(nested(path, too_big), source="agency.yaml")
        message = str(err.value)
        assert key_of(path) in message
        assert f"must be at most {maximum}, got {too_big}" in message


def test_campaign_days_before_event_has_a_minimum_too() -> None:
    config_from_mapping(nested(("campaign_types", "promo", "days_before_event"), -366))
    with pytest.raises(ConfigError) as err:
        config_from_mapping(nested(("campaign_types", "promo", "days_before_event"), -367))
    assert "must be at least -366, got -367" in str(err.value)


def test_integer_too_long_to_print_is_refused_in_a_short_line() -> None:
    """Python refuses to print an int of more than 4,300 digits: the message must not try."""
    with pytest.raises(ConfigError) as err:
        config_from_mapping({"priorities": {"aep": 10**5000}})
    message = str(err.value)
    assert "priorities.aep" in message and "must be at most 1000" in message
    assert len(message) < 200


@pytest.mark.parametrize(
    "value", [float("inf"), float("-inf"), float("nan"), 10**400], ids=["inf", "-inf", "nan", "10**400"]
)
def test_fractions_must_be_finite_and_in_range(value: float) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_mapping({"load_balancing": {"overage_threshold": value}})
    message = str(err.value)
    assert "load_balancing.overage_threshold" in message
    assert len(message) < 200
    if isinstance(value, float):
        assert "finite" in message


@pytest.mark.parametrize(
    ("data", "key_path"),
    [
        ({"timing_constants": {"send_time": "9" * 10**6}}, "timing_constants.send_time"),
        ({"timing_constants": {"birthday_email_days_before": "9" * 10**6}},
         "timing_constants.birthday_email_days_before"),
        ({"load_balancing": {"enabled": "y" * 10**6}}, "load_balancing.enabled"),
        ({"load_balancing": {"overage_threshold": "9" * 10**6}}, "load_balancing.overage_threshold"),
        ({"state_rules": {"year_round_exclusion": ["Z" * 10**6]}}, "state_rules.year_round_exclusion[0]"),
        ({"email_templates": {"sms": {"birthday": ["x"] * 10**5}}}, "email_templates.sms.birthday"),
        ({"timing_constants": {"x" * 10**6: 1}}, "timing_constants."),
        ({"state_rules": {"birthday_windows": {"C" * 10**6: {}}}}, "state_rules.birthday_windows."),
        ({"campaign_types": {"a" * 10**6: {"priority": -1}}}, "campaign_types."),
        ({"campaign_types": {"A" * 10**6: {}}}, "campaign_types."),
        ({"timing_constants": {"send\ntime": 1}}, "timing_constants."),
    ],
)
def test_bad_values_and_keys_are_quoted_as_excerpts(data: dict[str, Any], key_path: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_mapping(data, source="agency.yaml")
    message = str(err.value)
    assert key_path in message and "agency.yaml" in message
    assert len(message) < 400, message[:1000]
    assert "\n" not in message


def test_warning_for_a_huge_unused_section_is_short() -> None:
    _, warnings = config_from_mapping({"x" * 10**6: 1})
    assert len(warnings) == 1 and len(warnings[0]) < 200


def test_a_state_given_twice_in_other_case_is_refused() -> None:
    """YAML sees two keys; the scheduler would see two CA rules and keep both."""
    with pytest.raises(ConfigError) as err:
        config_from_mapping({"state_rules": {"birthday_windows": {"CA": {}, "ca": {}}}})
    message = str(err.value)
    assert "state_rules.birthday_windows.ca" in message and "'CA'" in message


# Issue 12: a window's source (statute or bulletin citation).


def test_a_window_source_is_read_from_config_and_defaults_to_empty() -> None:
    config, _ = config_from_mapping(
        {
            "state_rules": {
                "birthday_windows": {
                    "CA": {"window_before_days": 30, "window_after_days": 60, "source": "Ins. Code § X"},
                    "OR": {"window_after_days": 45},  # the agency's own change
                    "NV": {"window_after_days": 60, "use_month_start": True},  # the default, restated
                }
            }
        }
    )
    from rules.config import DEFAULT_WINDOW_RULES

    defaults = {(r.state, r.kind): r for r in DEFAULT_WINDOW_RULES}
    by_state = {r.state: r for r in config.window_rules}
    assert by_state["CA"].source == "Ins. Code § X"
    assert by_state["OR"].source == ""  # changed, and the config names none: no citation holds
    assert by_state["NV"].source == defaults[("NV", "birthday")].source != ""
    # a section the config leaves out keeps the defaults, sources included
    assert by_state["MO"].source == defaults[("MO", "effective_date")].source != ""


def test_legacy_file_still_loads_and_its_windows_keep_the_defaults_sources() -> None:
    # The legacy file restates every default window, without sources: they keep the defaults'.
    from rules.config import DEFAULT_WINDOW_RULES

    config, warnings = config_from_mapping(load_legacy())
    assert len(warnings) == 3
    assert len(config.window_rules) == 9
    defaults = {(r.state, r.kind): r.source for r in DEFAULT_WINDOW_RULES}
    assert all(r.source == defaults[(r.state, r.kind)] for r in config.window_rules)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (42, "must be text"),
        (["NRS 687B.352"], "must be text"),
        ({"statute": "x"}, "must be text"),
        (True, "must be text"),
        (None, "must be text"),
        ("NRS\n687B.352", "one line"),
        ("x" * 10**6 + "\n", "one line"),
    ],
)
def test_a_window_source_that_is_not_one_line_of_text_is_refused(value: Any, problem: str) -> None:
    data = {"state_rules": {"effective_date_windows": {"MO": {"window_after_days": 33, "source": value}}}}
    with pytest.raises(ConfigError) as err:
        config_from_mapping(data, source="agency.yaml")
    message = str(err.value)
    assert "agency.yaml: state_rules.effective_date_windows.MO.source:" in message
    assert problem in message
    assert len(message) < 300 and "\n" not in message
    assert err.value.key == "state_rules.effective_date_windows.MO.source"


def test_to_dict_keeps_the_sources() -> None:
    from rules.config import DEFAULT_CONFIG

    custom, _ = config_from_mapping(
        {"state_rules": {"birthday_windows": {"TX": {"window_after_days": 4, "source": "Tex. bulletin 1"}}}}
    )
    for config in (DEFAULT_CONFIG, custom):
        back, warnings = config_from_mapping(config.to_dict())
        assert warnings == []
        assert [(r.state, r.kind, r.source) for r in back.window_rules] == [
            (r.state, r.kind, r.source) for r in config.window_rules
        ]
    assert DEFAULT_CONFIG.to_dict()["state_rules"]["birthday_windows"]["NV"]["source"] == "NRS 687B.352"
