"""Topic schemas and the edge of the stream: parsing, validation, output records.

Every schema is a valid draft 2020-12 schema whose examples validate; each input event
parses to its typed, frozen event with real dates and aware times; a bad value gives one
``EventError`` naming the topic, the field and the problem; nothing else ever escapes
``parse_event`` (property tests on random bytes, random JSON and mutated events).
"""

from __future__ import annotations

import base64
import copy
import tomllib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from rules.campaign import CampaignInstance, CampaignTarget
from rules.config import CampaignType
from rules.contact import ContactRecord
from streams.events.codec import dumps_event, event_to_mapping, expected_key, parse_event
from streams.events.kinds import INPUT_KINDS, OUTPUT_KINDS, TOPIC_KINDS
from streams.events.model import (
    CampaignTypeUpsert,
    ClickEvent,
    ContactDelete,
    ContactFields,
    ContactUpsert,
    EmailStatusEvent,
    Event,
    HealthEvent,
    InstanceUpsert,
    SweepRun,
    Target,
    TargetsEvent,
)
from streams.events.problems import MAX_DEPTH, text_problem
from streams.events.records import RowState, deadletter_record, schedule_change_record
from streams.events.schema import (
    EventError,
    _plain,  # private: the quick and the full validator are compared
    _quickly_valid,
    _validator,
    decode_record,
    load_schema,
    schema_dir,
    validate_record,
)
from streams.events.times import format_datetime, occurred_at_central_date

ROOT = Path(__file__).resolve().parents[3]
CDT = timezone(timedelta(hours=-5))
AT = "2026-04-01T09:30:00-05:00"
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def raw(value: object) -> bytes:
    return orjson.dumps(value)


def example(kind: str, index: int = 0) -> dict[str, Any]:
    value = copy.deepcopy(load_schema(kind)["examples"][index])
    assert isinstance(value, dict)
    return value


def problem(kind: str, value: object) -> str:
    """The EventError message of a value that must be refused."""
    data = value if isinstance(value, bytes) else raw(value)
    with pytest.raises(EventError) as caught:
        parse_event(kind, data)
    return str(caught.value)


# --- the schemas ---------------------------------------------------------------------------


def test_one_schema_file_per_topic_at_the_repository_root() -> None:
    assert schema_dir() == ROOT / "schemas"
    names = sorted(p.name for p in (ROOT / "schemas").iterdir())
    assert names == sorted(f"{kind}.v1.json" for kind in TOPIC_KINDS)


@pytest.mark.parametrize("kind", TOPIC_KINDS)
def test_each_schema_is_a_valid_draft_2020_12_schema(kind: str) -> None:
    schema = load_schema(kind)
    Draft202012Validator.check_schema(dict(schema))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["examples"], "every schema carries at least one example"


@pytest.mark.parametrize("kind", TOPIC_KINDS)
def test_each_example_validates_here_and_with_plain_jsonschema(kind: str) -> None:
    schema = load_schema(kind)
    plain = Draft202012Validator(dict(schema), format_checker=FormatChecker())
    for value in schema["examples"]:
        validate_record(kind, value)
        assert list(plain.iter_errors(value)) == []  # other consumers read the same files


@pytest.mark.parametrize("kind", INPUT_KINDS)
def test_every_input_schema_requires_an_event_id_and_an_offset_time(kind: str) -> None:
    schema = load_schema(kind)
    assert {"event_id", "occurred_at"} <= set(schema["required"])
    assert schema["$defs"]["event_id"]["maxLength"] == 200


def test_the_schemas_install_with_the_package() -> None:
    # A wheel (the Docker image) has no repository root: the files go in as streams/schemas.
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "streams.schemas" in setuptools["packages"]
    assert setuptools["package-dir"]["streams.schemas"] == "schemas"
    assert setuptools["package-data"]["streams.schemas"] == ["*.json"]


# --- each input event parses to its typed event ---------------------------------------------


def test_contact_upsert() -> None:
    event = parse_event("contacts", raw(example("contacts", 0)))
    assert event == ContactUpsert(
        event_id="crm-7f3a9c-0001",
        occurred_at=datetime(2026, 4, 1, 9, 30, tzinfo=CDT),
        contact_id=42,
        contact=ContactFields(
            email="pat.doe@example.com",
            zip_code="75201",
            state="TX",
            birth_date=date(1958, 7, 14),
            effective_date=date(2019, 1, 1),
            phone_number="214-555-0100",
            first_name="Pat",
            last_name="Doe",
        ),
    )
    assert event.occurred_at.utcoffset() == timedelta(hours=-5)
    assert event.record() == ContactRecord(
        42, "pat.doe@example.com", "75201", "TX", "1958-07-14", "2019-01-01", "214-555-0100"
    )
    assert expected_key(event) == "42"


def test_contact_content_is_for_the_rules_to_judge() -> None:
    value = example("contacts", 0)
    value["contact"].update(email="not an email", zip_code="00000", state="ZZ")
    del value["contact"]["phone_number"], value["contact"]["first_name"]
    event = parse_event("contacts", raw(value))
    assert isinstance(event, ContactUpsert)
    assert (event.contact.email, event.contact.zip_code, event.contact.state) == (
        "not an email",
        "00000",
        "ZZ",
    )
    assert event.contact.phone_number is None and event.contact.first_name is None


def test_contact_delete_ignores_any_contact_given() -> None:
    value = example("contacts", 1)
    assert parse_event("contacts", raw(value)) == ContactDelete(
        event_id="crm-7f3a9c-0002",
        occurred_at=datetime(2026, 4, 2, 15, 0, tzinfo=UTC),
        contact_id=42,
    )
    value["contact"] = {"whatever": True}
    assert isinstance(parse_event("contacts", raw(value)), ContactDelete)


def test_click() -> None:
    event = parse_event("clicks", raw(example("clicks")))
    assert event == ClickEvent(
        event_id="trk-5c1e-9f20",
        occurred_at=datetime(2026, 4, 3, 14, 12, 9, 250000, tzinfo=CDT),
        contact_id=42,
        tracking_id="bday-2026-42-a1",
        quote_id="Q-88120",
    )
    value = example("clicks")
    del value["quote_id"]
    without = parse_event("clicks", raw(value))
    assert isinstance(without, ClickEvent) and without.quote_id is None


def test_health_answers_keep_every_field() -> None:
    value = example("health")
    value["answers"]["answered_by"] = "spouse"
    event = parse_event("health", raw(value))
    assert isinstance(event, HealthEvent)
    assert (event.has_medical_conditions, event.main_questions_yes_count, event.answers_count) == (
        False,
        0,
        7,
    )
    assert orjson.loads(event.metadata_text) == value["answers"]
    assert hash(event)  # frozen and hashable although it holds a mapping


def test_email_status() -> None:
    event = parse_event("email-status", raw(example("email-status")))
    assert event == EmailStatusEvent(
        event_id="sender-0c44-sent",
        occurred_at=datetime(2026, 6, 30, 8, 30, 4, tzinfo=CDT),
        contact_id=42,
        occurrence_key="42:birthday:2026",
        status="sent",
        actual_send_datetime=datetime(2026, 6, 30, 8, 30, 2, tzinfo=CDT),
    )


def test_campaign_type_upsert_changes_only_the_fields_given() -> None:
    event = parse_event("campaigns", raw(example("campaigns", 0)))
    assert isinstance(event, CampaignTypeUpsert)
    assert (event.name, dict(event.given), event.changed_by) == (
        "rate_increase",
        {"days_before_event": 14, "priority": 4},
        "jlee",
    )
    stored = CampaignType("rate_increase", enable_followups=False, priority=9)
    assert event.apply_to(stored) == CampaignType(
        "rate_increase", enable_followups=False, days_before_event=14, priority=4
    )
    assert expected_key(event) == "rate_increase"


def test_instance_upsert() -> None:
    event = parse_event("campaigns", raw(example("campaigns", 1)))
    assert isinstance(event, InstanceUpsert)
    assert event.instance == CampaignInstance(
        id=7,
        campaign_type="rate_increase",
        instance_name="2026 Q3 rate increase",
        email_template="rate_increase_q3_v1",
        sms_template=None,
        active_start_date=date(2026, 7, 1),
        active_end_date=date(2026, 9, 30),
        metadata='{"carrier":"Acme Health"}',
    )
    assert expected_key(event) == "7"


def test_targets() -> None:
    event = parse_event("campaigns", raw(example("campaigns", 2)))
    assert isinstance(event, TargetsEvent)
    assert event.instance_id == 7 and expected_key(event) == "7"
    assert event.targets == (
        Target(42, date(2026, 8, 1)),
        Target(43, None, metadata='{"plan":"G"}'),
        Target(44, date(2026, 8, 1), status="cancelled"),
    )
    assert event.targets[0].campaign_target(7) == CampaignTarget(42, 7, date(2026, 8, 1), "pending")
    assert event.targets[2].campaign_target(7).cancelled


def test_sweep_run() -> None:
    value = example("sweep-runs")
    event = parse_event("sweep-runs", raw(value))
    assert isinstance(event, SweepRun)
    assert (event.run_id, event.as_of) == ("run-20260401-033000-a1b2", date(2026, 4, 1))
    assert event.offsets["contacts"] == {0: 1200, 1: 1187}
    assert dict(event.config) == value["config"]
    assert event.summary is not None and event.summary["emails_scheduled"] == 640
    assert expected_key(event) == event.run_id


@pytest.mark.parametrize("kind", INPUT_KINDS)
def test_every_example_round_trips(kind: str) -> None:
    for value in load_schema(kind)["examples"]:
        event = parse_event(kind, raw(value))
        assert parse_event(kind, dumps_event(event)) == event
        validate_record(kind, event_to_mapping(event))


def test_parse_accepts_bytes_like_and_text() -> None:
    data = raw(example("clicks"))
    expected = parse_event("clicks", data)
    for form in (bytearray(data), memoryview(data), data.decode()):
        assert parse_event("clicks", form) == expected


# --- refusals: one clear message -------------------------------------------------------------


def clicks_with(**changes: object) -> dict[str, Any]:
    value = example("clicks")
    value.update(changes)
    return value


def test_bad_json() -> None:
    assert problem("contacts", b'{"event_id": "x",').startswith("contacts: not valid JSON: ")
    assert problem("clicks", b"").startswith("clicks: not valid JSON: ")
    assert problem("clicks", b"NaN").startswith("clicks: not valid JSON: ")
    assert problem("clicks", b'{"a": "\xff"}').startswith("clicks: not valid JSON: ")


def test_null_message() -> None:
    with pytest.raises(EventError, match=r"^health: no value \(a null message\)$"):
        parse_event("health", None)


def test_value_that_is_not_an_object() -> None:
    assert problem("clicks", [1, 2]) == "clicks: the value: expected object, got array"
    assert problem("clicks", "x") == "clicks: the value: expected object, got string 'x'"


@pytest.mark.parametrize(
    ("contact_id", "shown"),
    [("12", "string '12'"), (12.0, "number 12.0"), (True, "boolean true"), (None, "null null")],
)
def test_wrong_types(contact_id: object, shown: str) -> None:
    assert (
        problem("clicks", clicks_with(contact_id=contact_id))
        == f"clicks: field 'contact_id': expected integer, got {shown}"
    )


def test_ids_are_positive_and_fit_an_integer_column() -> None:
    assert problem("clicks", clicks_with(contact_id=0)) == (
        "clicks: field 'contact_id': 0 is less than the minimum 1"
    )
    assert problem("clicks", clicks_with(contact_id=2**31)) == (
        "clicks: field 'contact_id': 2147483648 is greater than the maximum 2147483647"
    )


def test_missing_fields() -> None:
    value = clicks_with()
    del value["occurred_at"]
    assert problem("clicks", value) == "clicks: field 'occurred_at': missing (required)"
    upsert = example("contacts")
    del upsert["contact"]
    assert problem("contacts", upsert) == (
        "contacts: field 'contact': missing (required when op is 'upsert')"
    )
    upsert = example("contacts")
    del upsert["contact"]["birth_date"]
    assert problem("contacts", upsert) == "contacts: field 'contact.birth_date': missing (required)"


@pytest.mark.parametrize(
    ("birth_date", "message"),
    [
        ("2025-02-30", "'2025-02-30' is not a real date"),
        ("2025-13-01", "'2025-13-01' is not a real date"),
        ("1958-7-14", "'1958-7-14' is not a date (YYYY-MM-DD)"),
        ("1958-07-14T00:00:00", "'1958-07-14T00:00:00' is not a date (YYYY-MM-DD)"),
        ("1958-07-14\n", "'1958-07-14\\n' is not a date (YYYY-MM-DD)"),
        ("", "'' is not a date (YYYY-MM-DD)"),
        ("9999-01-01", "'9999-01-01' lies outside the years 1900-2999"),
        ("1899-12-31", "'1899-12-31' lies outside the years 1900-2999"),
    ],
)
def test_contact_dates_must_be_real_dates(birth_date: str, message: str) -> None:
    value = example("contacts")
    value["contact"]["birth_date"] = birth_date
    assert problem("contacts", value) == f"contacts: field 'contact.birth_date': {message}"


def test_feb_29_is_a_real_date_in_a_leap_year_only() -> None:
    value = example("contacts")
    value["contact"]["birth_date"] = "1956-02-29"
    assert isinstance(parse_event("contacts", raw(value)), ContactUpsert)
    value["contact"]["birth_date"] = "1957-02-29"
    assert "'1957-02-29' is not a real date" in problem("contacts", value)


@pytest.mark.parametrize(
    ("occurred_at", "reason"),
    [
        ("2026-04-01T09:30:00", "is not an RFC 3339 date-time with an offset"),
        ("2026-04-01 09:30:00-05:00", "is not an RFC 3339 date-time with an offset"),
        ("2026-04-01T09:30-05:00", "is not an RFC 3339 date-time with an offset"),
        ("2026-04-01", "is not an RFC 3339 date-time with an offset"),
        ("2026-02-30T09:30:00Z", "is not a real date-time"),
        ("2026-04-01T24:00:00Z", "is not a real date-time"),
        ("2026-04-01T09:30:00+24:00", "has an impossible offset"),
        ("2026-06-30T23:59:60Z", "is a leap second, which is not supported"),
        ("9999-04-01T09:30:00Z", "lies outside the years 1900-2999"),
    ],
)
def test_occurred_at_must_be_rfc_3339_with_an_offset(occurred_at: str, reason: str) -> None:
    message = problem("clicks", clicks_with(occurred_at=occurred_at))
    assert message.startswith(f"clicks: field 'occurred_at': {occurred_at!r} {reason}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-04-01T09:30:00Z", datetime(2026, 4, 1, 9, 30, tzinfo=UTC)),
        ("2026-04-01t09:30:00z", datetime(2026, 4, 1, 9, 30, tzinfo=UTC)),
        ("2026-04-01T09:30:00-00:00", datetime(2026, 4, 1, 9, 30, tzinfo=UTC)),
        ("2026-04-01T09:30:00.1234567+05:30", datetime(2026, 4, 1, 4, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_rfc_3339_forms_accepted(text: str, expected: datetime) -> None:
    event = parse_event("clicks", raw(clicks_with(occurred_at=text)))
    assert event.occurred_at == expected
    assert event.occurred_at.utcoffset() is not None


def test_unknown_op() -> None:
    value = example("contacts")
    value["op"] = "merge"
    assert (
        problem("contacts", value)
        == "contacts: field 'op': 'merge' is not one of 'upsert', 'delete'"
    )
    campaign = example("campaigns")
    campaign["op"] = "type_delete"
    assert problem("campaigns", campaign) == (
        "campaigns: field 'op': 'type_delete' is not one of 'type_upsert', 'instance_upsert', 'targets'"
    )


def test_extra_fields() -> None:
    assert (
        problem("clicks", clicks_with(clicked_at=AT)) == "clicks: field 'clicked_at': unknown field"
    )
    value = example("contacts")
    value["contact"]["middle_name"] = "Q"
    assert problem("contacts", value) == "contacts: field 'contact.middle_name': unknown field"


def test_status_is_lower_case() -> None:
    value = example("email-status")
    value["status"] = "SENT"
    assert problem("email-status", value).startswith(
        "email-status: field 'status': 'SENT' is not one of"
    )


def test_event_id_is_a_non_empty_string_of_at_most_200_characters() -> None:
    assert (
        problem("clicks", clicks_with(event_id="")) == "clicks: field 'event_id': must not be empty"
    )
    assert problem("clicks", clicks_with(event_id="e" * 201)) == (
        "clicks: field 'event_id': is longer than 200 characters"
    )
    assert parse_event("clicks", raw(clicks_with(event_id="e" * 200))).event_id == "e" * 200


def test_campaign_fields_of_another_op_are_refused() -> None:
    value = example("campaigns", 2)
    value["instance"] = example("campaigns", 1)["instance"]
    assert (
        problem("campaigns", value)
        == "campaigns: field 'instance': not allowed when op is 'targets'"
    )
    value = example("campaigns", 1)
    del value["instance"]
    assert problem("campaigns", value) == (
        "campaigns: field 'instance': missing (required when op is 'instance_upsert')"
    )


def test_campaign_type_name_and_bounds() -> None:
    value = example("campaigns", 0)
    value["campaign_type"]["name"] = "Rate Increase"
    assert problem("campaigns", value) == (
        "campaigns: field 'campaign_type.name': 'Rate Increase' does not match ^[a-z][a-z0-9_]*$"
    )
    value = example("campaigns", 0)
    value["campaign_type"]["days_before_event"] = 367
    assert "367 is greater than the maximum 366" in problem("campaigns", value)
    value = example("campaigns", 0)
    value["campaign_type"]["priority"] = 10**9
    assert "is greater than the maximum 1000" in problem("campaigns", value)


def test_instance_end_before_start() -> None:
    value = example("campaigns", 1)
    value["instance"]["active_end_date"] = "2026-06-30"
    assert problem("campaigns", value) == (
        "campaigns: field 'instance.active_end_date': '2026-06-30' is before "
        "active_start_date '2026-07-01'"
    )


def test_targets_refusals() -> None:
    value = example("campaigns", 2)
    value["targets"].append({"contact_id": 42, "trigger_date": "2026-08-01", "status": "x"})
    assert problem("campaigns", value) == (
        "campaigns: field 'targets[3]': repeats targets[0] (contact 42, trigger date 2026-08-01)"
    )
    value["targets"] = []
    assert (
        problem("campaigns", value) == "campaigns: field 'targets': has 0 items; at least 1 needed"
    )
    value["targets"] = [{"contact_id": 1, "trigger_date": "2026-02-30"}]
    assert problem("campaigns", value) == (
        "campaigns: field 'targets[0].trigger_date': '2026-02-30' is not a real date"
    )


def test_at_most_ten_thousand_targets() -> None:
    value = example("campaigns", 2)
    value["targets"] = [{"contact_id": i, "trigger_date": None} for i in range(1, 10_002)]
    assert problem("campaigns", value) == (
        "campaigns: field 'targets': has 10001 items; at most 10000 allowed"
    )
    value["targets"].pop()
    event = parse_event("campaigns", raw(value))
    assert isinstance(event, TargetsEvent) and len(event.targets) == 10_000


def test_sweep_run_refusals() -> None:
    value = example("sweep-runs")
    value["run_id"] = "another"
    assert problem("sweep-runs", value) == (
        "sweep-runs: field 'run_id': 'another' differs from event_id 'run-20260401-033000-a1b2'"
    )
    value = example("sweep-runs")
    value["offsets"]["contacts"]["01"] = 5
    assert problem("sweep-runs", value) == (
        "sweep-runs: field 'offsets.contacts.01': the name '01' does not match ^(0|[1-9][0-9]{0,8})$"
    )
    value = example("sweep-runs")
    value["offsets"]["contacts"]["0"] = -1
    assert problem("sweep-runs", value) == (
        "sweep-runs: field 'offsets.contacts.0': -1 is less than the minimum 0"
    )


def test_nul_characters_are_refused_anywhere() -> None:
    assert problem("clicks", clicks_with(tracking_id="a\x00b")) == (
        "clicks: field 'tracking_id': contains a NUL character (\\u0000), which text columns "
        "cannot hold"
    )
    value = example("campaigns", 1)
    value["instance"]["metadata"] = {"notes": ["ok", "bad\x00"]}
    assert problem("campaigns", value).startswith(
        "campaigns: field 'instance.metadata.notes[1]': contains a NUL character"
    )


def test_deep_nesting_is_refused() -> None:
    deep: object = "bottom"
    for _ in range(MAX_DEPTH):
        deep = [deep]
    value = example("campaigns", 1)
    value["instance"]["metadata"] = deep
    assert problem("campaigns", value).endswith(f"nested more than {MAX_DEPTH} levels deep")
    # Deeper than Python's recursion limit (orjson decodes up to 1024 levels), where the
    # schema lets any value through: the check must not recurse.
    health = raw(example("health")).replace(
        b'"answers":{', b'"answers":{"x":' + b"[" * 1000 + b"]" * 1000 + b","
    )
    assert problem("health", health) == (
        f"health: field 'answers.x{'[0]' * (MAX_DEPTH - 2)}': nested more than {MAX_DEPTH} levels deep"
    )


def test_several_problems_give_the_first_by_field_path_whatever_the_key_order() -> None:
    value = clicks_with(contact_id="12", tracking_id=5)
    del value["occurred_at"]
    messages = {
        problem("clicks", dict(reversed(list(value.items())))),
        problem("clicks", value),
    }
    assert messages == {"clicks: field 'contact_id': expected integer, got string '12'"}


def test_the_worst_problem_of_one_field_is_reported() -> None:
    # A string that is neither a date-time nor of the documented pattern: the format says why.
    message = problem("clicks", clicks_with(occurred_at="yesterday"))
    assert message == (
        "clicks: field 'occurred_at': 'yesterday' is not an RFC 3339 date-time with an offset "
        "(e.g. '2026-04-01T09:30:00-05:00')"
    )


def test_a_wrong_topic_kind_is_a_bug_not_a_bad_message() -> None:
    with pytest.raises(ValueError) as caught:
        parse_event("contact", raw(example("contacts")))
    assert not isinstance(caught.value, EventError)
    with pytest.raises(ValueError, match="not an input topic"):
        parse_event("deadletter", raw(example("deadletter")))


def test_decode_record_reads_any_topic() -> None:
    assert decode_record("deadletter", raw(example("deadletter"))) == example("deadletter")
    with pytest.raises(EventError, match="^schedule-changes: field 'change': "):
        decode_record("schedule-changes", raw({**example("schedule-changes"), "change": "moved"}))


# --- event time as a Central date -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "central"),
    [
        ("2026-04-01T03:30:00Z", date(2026, 3, 31)),  # 22:30 CDT the day before
        ("2026-04-01T05:00:00Z", date(2026, 4, 1)),  # midnight CDT
        ("2026-01-15T05:59:59Z", date(2026, 1, 14)),  # 23:59:59 CST
        ("2026-01-15T06:00:00Z", date(2026, 1, 15)),
        ("2026-03-08T01:30:00-06:00", date(2026, 3, 8)),  # the night clocks spring forward
        ("2026-11-01T01:30:00-05:00", date(2026, 11, 1)),  # and fall back
        ("2026-04-01T23:30:00+09:00", date(2026, 4, 1)),
    ],
)
def test_occurred_at_central_date(text: str, central: date) -> None:
    event = parse_event("clicks", raw(clicks_with(occurred_at=text)))
    assert occurred_at_central_date(event.occurred_at) == central


def test_occurred_at_central_date_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        occurred_at_central_date(datetime(2026, 4, 1, 9, 30))


def test_format_datetime_writes_whole_minute_offsets() -> None:
    assert format_datetime(datetime(2026, 4, 1, 9, 30, tzinfo=CDT)) == AT
    lmt = datetime(1900, 6, 1, 12, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))  # +00:19:32
    assert format_datetime(lmt) == "1900-06-01T11:40:28+00:00"
    with pytest.raises(ValueError, match="naive"):
        format_datetime(datetime(2026, 4, 1))


# --- output records ---------------------------------------------------------------------------


def change(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "contact_id": 42,
        "occurrence_key": "42:birthday:2026",
        "change": "changed",
        "email_type": "birthday",
        "scheduled_send_date": date(2026, 6, 30),
        "status": "pre-scheduled",
        "skip_reason": None,
        "previous": RowState("birthday", date(2026, 6, 30), "skipped", "exclusion window"),
        "cause_topic": "contacts",
        "cause_event_id": "crm-7f3a9c-0001",
        "occurred_at": datetime(2026, 4, 1, 9, 30, tzinfo=CDT),
    }
    fields.update(overrides)
    return schedule_change_record(**fields)


def test_schedule_change_record_validates_and_has_a_deterministic_id() -> None:
    record = change()
    validate_record("schedule-changes", record)
    assert {k: v for k, v in record.items() if k != "event_id"} == {
        k: v for k, v in example("schedule-changes").items() if k != "event_id"
    }
    assert change()["event_id"] == record["event_id"]
    others = {
        change(change="cancelled")["event_id"],
        change(cause_event_id="crm-2")["event_id"],
        change(cause_topic="sweep-runs")["event_id"],
        change(occurrence_key="42:birthday:2027")["event_id"],
    }
    assert record["event_id"] not in others and len(others) == 4
    created = change(change="created", previous=None, status="skipped", skip_reason="window")
    validate_record("schedule-changes", created)
    assert created["previous"] is None
    assert decode_record("schedule-changes", dumps_event(created)) == created


def test_schedule_change_refuses_values_outside_the_schema() -> None:
    with pytest.raises(EventError, match="field 'status': 'sent' is not one of"):
        validate_record("schedule-changes", change(status="sent"))


@pytest.mark.parametrize(
    ("key", "value", "text", "key_text"),
    [
        (b"42", b'{"event_id": 1', '{"event_id": 1', "42"),
        ("42", b"\xff\xfe{}", None, "42"),
        (b"\xff42", None, None, "\\xff42"),
        (None, b"", "", None),
    ],
)
def test_deadletter_record(
    key: bytes | str | None, value: bytes | None, text: str | None, key_text: str | None
) -> None:
    record = deadletter_record("org206.contacts", 3, 1188, key, value, "contacts: not valid JSON")
    validate_record("deadletter", record)
    assert record["event_id"] == "org206.contacts:3:1188"
    assert record["raw_text"] == text
    assert base64.b64decode(record["raw_base64"]) == (value or b"")
    assert record["key"] == key_text
    assert deadletter_record("t", 0, 0, None, None, "")["error"] == "(no message)"


def test_dumps_event_sorts_keys() -> None:
    record = {"b": 1, "a": {"d": 2, "c": 3}}
    assert dumps_event(record) == b'{"a":{"c":3,"d":2},"b":1}'
    event = parse_event("clicks", raw(example("clicks")))
    assert dumps_event(event) == dumps_event(parse_event("clicks", dumps_event(event)))


# --- properties -------------------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
IDS = st.integers(1, 2**31 - 1)
DATES = st.dates(date(1900, 1, 1), date(2999, 12, 31))
ZONES = st.sampled_from(
    [
        UTC,
        CDT,
        timezone(timedelta(hours=5, minutes=30)),
        timezone(timedelta(hours=-23, minutes=-59)),
        ZoneInfo("America/Chicago"),
        ZoneInfo("Europe/Amsterdam"),  # +00:19:32 before 1937: written in UTC
    ]
)
TIMES = st.datetimes(datetime(1900, 1, 2), datetime(2999, 12, 30), timezones=ZONES)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def iso(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def event_ids() -> st.SearchStrategy[str]:
    return TEXT.filter(bool)


def fixed(**strategies: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    base = {"event_id": event_ids(), "occurred_at": TIMES.map(format_datetime)}
    return st.fixed_dictionaries({**base, **strategies})


def with_optional(
    required: st.SearchStrategy[dict[str, Any]], **maybe: st.SearchStrategy[Any]
) -> st.SearchStrategy[dict[str, Any]]:
    """Each optional field present (with a drawn value) or absent."""

    @st.composite
    def build(draw: Callable[..., Any]) -> dict[str, Any]:
        value = dict(draw(required))
        for name, strategy in maybe.items():
            if draw(st.booleans()):
                value[name] = draw(strategy)
        return value

    return build()


CONTACT = with_optional(
    st.fixed_dictionaries(
        {
            "email": TEXT,
            "zip_code": optional(TEXT),
            "state": optional(TEXT),
            "birth_date": optional(DATES.map(iso)),
            "effective_date": optional(DATES.map(iso)),
        }
    ),
    phone_number=optional(TEXT),
    first_name=optional(TEXT),
    last_name=optional(TEXT),
)
NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)
CAMPAIGN_TYPE = with_optional(
    st.fixed_dictionaries({"name": NAMES}),
    respect_exclusion_windows=st.booleans(),
    enable_followups=st.booleans(),
    days_before_event=st.integers(-366, 366),
    target_all_contacts=st.booleans(),
    priority=st.integers(0, 1000),
    active=st.booleans(),
)


@st.composite
def instances(draw: Callable[..., Any]) -> dict[str, Any]:
    start, end = draw(optional(DATES)), draw(optional(DATES))
    if start is not None and end is not None and end < start:
        start, end = end, start
    value = {
        "id": draw(IDS),
        "campaign_type": draw(NAMES),
        "instance_name": draw(TEXT.filter(bool)),
        "email_template": draw(optional(TEXT)),
        "sms_template": draw(optional(TEXT)),
        "active_start_date": iso(start),
        "active_end_date": iso(end),
    }
    if draw(st.booleans()):
        value["metadata"] = draw(JSON)
    return value


TARGET = with_optional(
    st.fixed_dictionaries({"contact_id": IDS, "trigger_date": optional(DATES.map(iso))}),
    status=TEXT.filter(bool),
    metadata=JSON,
)
TARGETS = st.lists(
    TARGET, min_size=1, max_size=5, unique_by=lambda t: (t["contact_id"], t["trigger_date"])
)
ANSWERS = st.dictionaries(
    TEXT.filter(
        lambda k: k not in ("has_medical_conditions", "main_questions_yes_count", "answers_count")
    ),
    JSON,
    max_size=3,
).flatmap(
    lambda extra: with_optional(
        st.fixed_dictionaries(
            {
                "has_medical_conditions": st.booleans(),
                "main_questions_yes_count": st.integers(0, 2**63 - 1),
                **{k: st.just(v) for k, v in extra.items()},
            }
        ),
        answers_count=st.integers(0, 100),
    )
)
OFFSETS = st.dictionaries(
    st.from_regex(r"[A-Za-z0-9._-]{1,30}", fullmatch=True),
    st.dictionaries(st.integers(0, 99).map(str), st.integers(0, 2**63 - 1), max_size=3),
    max_size=3,
)


@st.composite
def sweep_runs(draw: Callable[..., Any]) -> dict[str, Any]:
    run_id = draw(event_ids())
    value = {
        "event_id": run_id,
        "occurred_at": draw(TIMES.map(format_datetime)),
        "run_id": run_id,
        "as_of": draw(DATES).isoformat(),
        "config": draw(st.dictionaries(TEXT, JSON, max_size=3)),
        "offsets": draw(OFFSETS),
    }
    if draw(st.booleans()):
        value["summary"] = draw(st.dictionaries(TEXT, JSON, max_size=3))
    return value


SHA256 = st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex())


@st.composite
def baselines(draw: Callable[..., Any]) -> dict[str, Any]:
    baseline_id = draw(event_ids())
    return {
        "event_id": baseline_id,
        "occurred_at": draw(TIMES.map(format_datetime)),
        "baseline_id": baseline_id,
        "as_of": draw(DATES).isoformat(),
        "epoch_id": draw(st.integers(1, 2**63 - 1)),
        "source": draw(TEXT),
        "snapshot": {"path": draw(TEXT.filter(bool)), "sha256": draw(SHA256), "bytes": draw(st.integers(0, 2**63 - 1))},
        "schedules_checksum": draw(SHA256),
        "offsets": draw(OFFSETS),
        "config": draw(st.dictionaries(TEXT, JSON, max_size=3)),
    }


def campaigns(op: str, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return with_optional(fixed(op=st.just(op), **fields), changed_by=TEXT)


VALID: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "contacts": fixed(op=st.just("upsert"), contact_id=IDS, contact=CONTACT)
    | fixed(op=st.just("delete"), contact_id=IDS),
    "clicks": with_optional(fixed(contact_id=IDS, tracking_id=TEXT), quote_id=optional(TEXT)),
    "health": fixed(contact_id=IDS, answers=ANSWERS),
    "email-status": with_optional(
        IDS.flatmap(
            lambda cid: fixed(
                contact_id=st.just(cid),
                occurrence_key=TEXT.map(lambda rest: f"{cid}:{rest}"),  # a key of its contact
                status=st.sampled_from(
                    ["scheduled", "processing", "sent", "delivered", "accepted", "failed", "bounced"]
                ),
            )
        ),
        actual_send_datetime=optional(TIMES.map(format_datetime)),
    ),
    "campaigns": campaigns("type_upsert", campaign_type=CAMPAIGN_TYPE)
    | campaigns("instance_upsert", instance=instances())
    | campaigns("targets", instance_id=IDS, targets=TARGETS),
    "sweep-runs": sweep_runs(),
    "baselines": baselines(),
}
ANY_VALID = st.sampled_from(sorted(VALID)).flatmap(
    lambda kind: st.tuples(st.just(kind), VALID[kind])
)


def check_event_matches(kind: str, value: dict[str, Any], event: Event) -> None:
    assert event.event_id == value["event_id"]
    assert event.occurred_at == datetime.fromisoformat(value["occurred_at"])
    assert event.occurred_at.utcoffset() is not None
    if "contact_id" in value:
        assert event.contact_id == value["contact_id"]  # type: ignore[union-attr]
    assert type(event).TOPIC == kind


@PROPS
@given(ANY_VALID)
def test_valid_events_parse_and_round_trip(kind_and_value: tuple[str, dict[str, Any]]) -> None:
    kind, value = kind_and_value
    event = parse_event(kind, raw(value))
    check_event_matches(kind, value, event)
    mapping = event_to_mapping(event)
    validate_record(kind, mapping)
    again = parse_event(kind, dumps_event(event))
    assert again == event
    assert event_to_mapping(again) == mapping


@PROPS
@given(st.sampled_from(INPUT_KINDS), st.binary(max_size=200))
def test_random_bytes_raise_only_event_errors(kind: str, data: bytes) -> None:
    try:
        parse_event(kind, data)
    except EventError as exc:
        assert str(exc).startswith(f"{kind}: ")


@PROPS
@given(st.sampled_from(INPUT_KINDS), JSON)
def test_random_json_raises_only_event_errors(kind: str, value: object) -> None:
    with pytest.raises(EventError, match=f"^{kind}: "):
        parse_event(kind, raw(value))


def mutate(value: dict[str, Any], data: st.DataObject) -> None:
    """One field (at any depth) replaced by random JSON, or removed."""
    node: Any = value
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and data.draw(st.booleans()):
            node = child
            continue
        if isinstance(node, dict) and data.draw(st.booleans()):
            del node[key]
        else:
            node[key] = data.draw(JSON)
        break


@PROPS
@given(ANY_VALID, st.data())
def test_the_quick_validator_accepts_exactly_what_the_schema_accepts(
    kind_and_value: tuple[str, dict[str, Any]], data: st.DataObject
) -> None:
    """The compiled validator decides alone when it accepts: it must never accept what the
    schema refuses (a bad event would be applied), and it should accept what the schema
    accepts (or every good event would take the slow path)."""
    kind, value = kind_and_value
    if data.draw(st.booleans()):
        mutate(value, data)
    schema_ok = not any(_validator(kind).iter_errors(value))
    assert _quickly_valid(kind, value) == (schema_ok and _plain(value))
    if schema_ok and text_problem(value) is not None:
        assert not _plain(value)  # the quick path never skips a text problem


@PROPS
@given(ANY_VALID, st.data())
def test_a_mutated_event_parses_or_raises_an_event_error(
    kind_and_value: tuple[str, dict[str, Any]], data: st.DataObject
) -> None:
    """One field (at any depth) replaced by random JSON, or removed."""
    kind, value = kind_and_value
    mutate(value, data)
    try:
        event = parse_event(kind, raw(value))
    except EventError as exc:
        message = str(exc)
        assert message.startswith(f"{kind}: ") and "\n" not in message
    else:
        assert parse_event(kind, dumps_event(event)) == event


@PROPS
@given(st.sampled_from(OUTPUT_KINDS), JSON)
def test_random_output_values_raise_only_event_errors(kind: str, value: object) -> None:
    with pytest.raises(EventError):
        validate_record(kind, value)


def test_a_status_naming_another_contact_s_row_is_refused() -> None:
    value = {**example("email-status"), "contact_id": 7, "occurrence_key": "42:birthday:2026"}
    with pytest.raises(EventError, match=r"email-status: field 'occurrence_key': '42:birthday:2026' is not a key of contact 7"):
        parse_event("email-status", raw(value))
