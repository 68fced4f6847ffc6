"""Topic values at the edge: parse and validate input events, build output records.

Every value on a topic is JSON (orjson) described by a JSON Schema (draft
2020-12) in ``schemas/<topic>.v1.json``.  ``parse_event`` turns the raw bytes of
an input topic into a frozen, typed event (real ``date`` values, aware
``datetime`` values) or raises ``EventError`` whose one-line message names the
topic, the field and the problem, e.g.::

    contacts: field 'contact.birth_date': '2025-02-30' is not a real date

An agent sends a message that raises ``EventError`` to ``deadletter``
(``deadletter_record``) and goes on; any other exception is a bug.

Choices written down here (SPEC and ARCHITECTURE are silent on them):

- A contact's birth or effective date that is not a real ``YYYY-MM-DD`` date
  (``2025-02-30``, ``1958-7-14``, a time part) is a validation error on the
  event path: the event goes to deadletter and the contact stays as it was.
  (The sweep, which reads legacy rows as found, treats such a stored date as
  missing and reports it, SPEC 2; an event producer can be told and fixed.)
  Everything else about a contact's content (a bad ZIP, an unknown state, a
  malformed email) is judged by the rules: the contact is stored, invalid.
- The contact fields the rules read (email, zip_code, state, birth_date,
  effective_date) must be present, ``null`` when unknown: a producer that
  drops ``birth_date`` by mistake would otherwise lift a birthday window.
- Every date and date-time in an input event lies in the years 1900-2999:
  outside them a value is a typo, and the yearly arithmetic of the rules
  (next anniversary, T + lookahead) cannot run on year 9999.
- Date-times follow RFC 3339 strictly: an offset or ``Z`` is required (a
  naive time has no instant), ``t``/``z`` may be lower case, ``-00:00`` is
  UTC, fractions beyond microseconds are truncated, a leap second (``:60``)
  is refused (Python cannot represent it).
- Integers are JSON integers only: ``12.0`` and ``true`` are not a contact
  id.  Ids (contacts, instances) lie in ``1..2147483647``, the range of a
  PostgreSQL ``integer`` column, so a valid event can always be stored.
- A string containing NUL (``\\u0000``) anywhere in the value, and nesting
  deeper than ``MAX_DEPTH`` levels (in free-form ``metadata``), are refused:
  PostgreSQL text cannot hold NUL and orjson cannot write such nesting back.
- Free-form ``metadata`` (instances, targets) is kept as its JSON text
  (orjson, compact, keys sorted), which is what the ``metadata`` columns
  hold; ``null`` means no metadata.  Health ``answers`` keep every field given.
- Campaigns: a field of another op is refused (``instance`` on a ``targets``
  event is a producer bug, not something to ignore); one ``targets`` event
  may not name the same (contact, trigger date) twice; an instance whose end
  date is before its start date is refused (as ``mailwindow campaign`` does).
- ``sweep-runs``: ``run_id`` must equal ``event_id``.  ``config`` is kept as
  the mapping the sweep recorded (``Config.to_dict()``); it is not read back
  here because ``rules.config.config_from_mapping`` does not accept that
  shape today (see the note on ``SweepRun``).
- A JSON object with a repeated key keeps the last value (orjson's rule).
- When a value has several problems, the one reported is the first by field
  path (then by kind of problem), so the message never depends on the
  validator's internal order.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Final, TypeAlias
from zoneinfo import ZoneInfo

import fastjsonschema  # type: ignore[import-untyped]  # ships no type hints
import orjson
from jsonschema import (  # type: ignore[import-untyped]  # jsonschema ships no type hints
    Draft202012Validator,
    FormatChecker,
    ValidationError,
)
from jsonschema.validators import extend  # type: ignore[import-untyped]

from rules.campaign import CampaignInstance, CampaignTarget
from rules.config import CampaignType
from rules.contact import ContactRecord

# --- topics ----------------------------------------------------------------------------------

CONTACTS: Final = "contacts"
CLICKS: Final = "clicks"
HEALTH: Final = "health"
EMAIL_STATUS: Final = "email-status"
CAMPAIGNS: Final = "campaigns"
SWEEP_RUNS: Final = "sweep-runs"
BASELINES: Final = "baselines"
SCHEDULE_CHANGES: Final = "schedule-changes"
DEADLETTER: Final = "deadletter"
ENGAGEMENT: Final = "engagement"

INPUT_KINDS: Final = (CONTACTS, CLICKS, HEALTH, EMAIL_STATUS, CAMPAIGNS, SWEEP_RUNS, BASELINES)
OUTPUT_KINDS: Final = (SCHEDULE_CHANGES, DEADLETTER, ENGAGEMENT)
TOPIC_KINDS: Final = INPUT_KINDS + OUTPUT_KINDS
SCHEMA_VERSION: Final = 1

CENTRAL: Final = ZoneInfo("America/Chicago")
FIRST_YEAR: Final = 1900
LAST_YEAR: Final = 2999
MAX_DEPTH: Final = 64

# Campaign type fields an event may set (everything of CampaignType but its name).
CAMPAIGN_TYPE_FIELDS: Final = tuple(f.name for f in fields(CampaignType) if f.name != "name")


class EventError(ValueError):
    """A topic value that cannot be used; the message names the topic, field and problem."""


# --- dates and times -------------------------------------------------------------------------

_DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATETIME_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
_DATETIME_EXAMPLE = "2026-04-01T09:30:00-05:00"


def _in_years(year: int, text: str) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"{text!r} lies outside the years {FIRST_YEAR}-{LAST_YEAR}")


def parse_date(text: str) -> date:
    """A strict ``YYYY-MM-DD`` date; ``ValueError`` says why not (without the field)."""
    m = _DATE_RE.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)")
    try:
        value = date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise ValueError(f"{text!r} is not a real date") from None
    _in_years(value.year, text)
    return value


def parse_datetime(text: str) -> datetime:
    """A strict RFC 3339 date-time with an offset, as an aware ``datetime``."""
    m = _DATETIME_RE.fullmatch(text)
    if m is None:
        raise ValueError(
            f"{text!r} is not an RFC 3339 date-time with an offset (e.g. {_DATETIME_EXAMPLE!r})"
        )
    if m[8] is not None:
        tz = UTC
    else:
        hours, minutes = int(m[10]), int(m[11])
        if hours > 23 or minutes > 59:
            raise ValueError(f"{text!r} has an impossible offset")
        sign = -1 if m[9] == "-" else 1
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    if m[6] == "60":
        raise ValueError(f"{text!r} is a leap second, which is not supported")
    micro = int((m[7] or "").ljust(6, "0")[:6])
    try:
        value = datetime(
            int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]), micro, tzinfo=tz
        )
    except ValueError:
        raise ValueError(f"{text!r} is not a real date-time") from None
    _in_years(value.year, text)
    return value


def format_datetime(dt: datetime) -> str:
    """An aware ``datetime`` as RFC 3339 (``isoformat``, which ``parse_datetime`` reads back).

    RFC 3339 offsets are whole minutes: a time whose zone had an offset with
    seconds (local mean time before 1900-1940s) is written in UTC instead.
    """
    offset = dt.utcoffset()
    if offset is None:
        raise ValueError(f"{dt!r} is naive: an event time needs an offset")
    if offset % timedelta(minutes=1):
        dt = dt.astimezone(UTC)
    return dt.isoformat()


def occurred_at_central_date(dt: datetime) -> date:
    """The America/Chicago calendar date of an event time: the ``T`` of a decision (SPEC 1)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{dt!r} is naive: an event time needs an offset")
    return dt.astimezone(CENTRAL).date()


# --- schemas and validation ------------------------------------------------------------------


def schema_dir() -> Path:
    """Where the schema files are.

    Installed from a wheel they are package data beside this module
    (``streams/schemas``); in the source tree and in an editable install they
    are ``schemas/`` at the repository root.
    """
    package = Path(__file__).resolve().parents[1]  # streams/
    for candidate in (package / "schemas", package.parent / "schemas"):
        if (candidate / f"{CONTACTS}.v{SCHEMA_VERSION}.json").is_file():
            return candidate
    raise FileNotFoundError(f"no schemas/ in {package} or beside it")


def _check_kind(topic_kind: str) -> None:
    # A wrong kind is the caller's bug, not a bad message: not an EventError.
    if topic_kind not in TOPIC_KINDS:
        raise ValueError(f"unknown topic kind {topic_kind!r} (expected one of {TOPIC_KINDS})")


@cache
def load_schema(topic_kind: str) -> Mapping[str, Any]:
    """The JSON Schema of a topic's values (read once)."""
    _check_kind(topic_kind)
    path = schema_dir() / f"{topic_kind}.v{SCHEMA_VERSION}.json"
    loaded: dict[str, Any] = orjson.loads(path.read_bytes())
    return MappingProxyType(loaded)


def _strict_integer(_checker: object, instance: object) -> bool:
    # JSON Schema counts 12.0 as an integer; an id must be written as one.
    return isinstance(instance, int) and not isinstance(instance, bool)


def _check_date(instance: object) -> bool:
    if isinstance(instance, str):
        parse_date(instance)  # raises ValueError with the reason
    return True


def _check_datetime(instance: object) -> bool:
    if isinstance(instance, str):
        parse_datetime(instance)
    return True


# Our own checkers, not jsonschema's: its date-time check is silently skipped
# without the optional rfc3339-validator package, and we want one strict rule.
_FORMATS = FormatChecker(formats=())
_FORMATS.checks("date", raises=ValueError)(_check_date)
_FORMATS.checks("date-time", raises=ValueError)(_check_datetime)
_Validator = extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)


def _inline_refs(node: Any, defs: Mapping[str, Any]) -> Any:
    """The schema with every local ``{"$ref": "#/$defs/x"}`` replaced by its definition.

    Same meaning (no definition refers to itself), but validating skips the
    reference lookups: about 1.6 times faster per event.
    """
    if isinstance(node, dict):
        ref = node.get("$ref")
        if len(node) == 1 and isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


@cache
def _validator(topic_kind: str) -> Any:
    schema = load_schema(topic_kind)
    inlined = _inline_refs(dict(schema), schema.get("$defs", {}))
    return _Validator(inlined, format_checker=_FORMATS)


def _accepts(check: Any) -> Any:
    def accepts(instance: str) -> bool:
        try:
            check(instance)
        except ValueError:
            return False
        return True

    return accepts


@cache
def _quick_validator(topic_kind: str) -> Any:
    """The same schema compiled to Python code (fastjsonschema): about 30 times faster.

    It only ever says "valid": a value it refuses, or one that is not
    ``_plain`` (a float: draft 7, its newest draft, counts 12.0 as an integer
    and we do not; a NUL; deep nesting), goes to the jsonschema validator
    above and ``_text_problem``, which find the problem and word it.  The
    two are checked to agree in tests/test_events.py.
    """
    schema = load_schema(topic_kind)
    inlined = _inline_refs(dict(schema), schema.get("$defs", {}))
    inlined["$schema"] = "http://json-schema.org/draft-07/schema#"
    return fastjsonschema.compile(
        inlined,
        formats={"date": _accepts(_check_date), "date-time": _accepts(_check_datetime)},
    )


def _plain(value: object) -> bool:
    """No float, no NUL character and no deeper nesting than allowed, anywhere in ``value``.

    What the quick path must rule out; a value that is not plain is judged by the
    slow path (jsonschema, then ``_text_problem``), which words the problem.
    """
    stack: list[tuple[int, object]] = [(0, value)]
    while stack:
        depth, item = stack.pop()
        if depth > MAX_DEPTH or isinstance(item, float):
            return False
        if isinstance(item, str):
            if "\x00" in item:
                return False
        elif isinstance(item, dict):
            if any("\x00" in key for key in item):
                return False
            stack.extend((depth + 1, v) for v in item.values())
        elif isinstance(item, list):
            stack.extend((depth + 1, v) for v in item)
    return True


def _quickly_valid(topic_kind: str, value: object) -> bool:
    try:
        _quick_validator(topic_kind)(value)
    except fastjsonschema.JsonSchemaException:
        return False
    return _plain(value)


_Path: TypeAlias = tuple[str | int, ...]
# When one field has several problems, the most basic one is reported.
_RANK = {
    "type": 0,
    "required": 1,
    "additionalProperties": 2,
    "not": 2,
    "enum": 3,
    "const": 3,
    "format": 4,
    "pattern": 5,
}


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _where(path: _Path) -> str:
    if not path:
        return "the value"
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_KEY.fullmatch(part):  # a dot, a quote, a newline...: unambiguous
            text += f"[{part!r}]"
        else:
            text += f".{part}" if text else part
    return f"field '{text}'"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _show(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = orjson.dumps(value).decode() if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _op_clause(error: ValidationError, root: object) -> str:
    # A field an `if op == X then ...` branch itself requires or forbids says which op did.
    steps = list(error.schema_path)
    if "then" not in steps or not isinstance(root, dict) or "op" not in root:
        return ""
    rest = steps[len(steps) - steps[::-1].index("then") :]
    if rest == ["required"] or (len(rest) == 3 and rest[0] == "properties" and rest[2] == "not"):
        return f" when op is {root['op']!r}"
    return ""


def _problems(error: ValidationError, root: object) -> Iterator[tuple[_Path, int, str]]:
    path: _Path = tuple(error.absolute_path)
    keyword = error.validator
    value = error.validator_value
    rank = _RANK.get(str(keyword), 6)
    instance = error.instance
    if keyword == "required":
        # One error per missing field, but it names it only in its message: recompute.
        for name in value:
            if isinstance(instance, dict) and name not in instance:
                yield (*path, name), rank, f"missing (required{_op_clause(error, root)})"
    elif keyword == "additionalProperties":
        known = error.schema.get("properties", {})
        for name in sorted(k for k in instance if k not in known):
            yield (*path, name), rank, "unknown field"
    elif keyword == "not":
        yield path, rank, f"not allowed{_op_clause(error, root)}"
    elif keyword == "type":
        expected = " or ".join(value) if isinstance(value, list) else str(value)
        got = _json_type(instance)
        shown = "" if isinstance(instance, dict | list) else f" {_show(instance)}"
        yield path, rank, f"expected {expected}, got {got}{shown}"
    elif keyword in ("enum", "const"):
        allowed = value if keyword == "enum" else [value]
        choices = ", ".join(_show(v) for v in allowed)
        yield path, rank, f"{_show(instance)} is not one of {choices}"
    elif keyword == "format":
        cause = error.cause
        yield path, rank, str(cause) if cause is not None else f"{_show(instance)} is not a {value}"
    elif keyword == "pattern" and "propertyNames" in error.schema_path:
        yield (*path, str(instance)), rank, f"the name {instance!r} does not match {value}"
    elif keyword == "pattern":
        yield path, rank, f"{_show(instance)} does not match {value}"
    elif keyword == "minimum":
        yield path, rank, f"{_show(instance)} is less than the minimum {value}"
    elif keyword == "maximum":
        yield path, rank, f"{_show(instance)} is greater than the maximum {value}"
    elif keyword == "minLength":
        problem = "must not be empty" if value == 1 else f"is shorter than {value} characters"
        yield path, rank, problem
    elif keyword == "maxLength":
        yield path, rank, f"is longer than {value} characters"
    elif keyword == "minItems":
        yield path, rank, f"has {len(instance)} items; at least {value} needed"
    elif keyword == "maxItems":
        yield path, rank, f"has {len(instance)} items; at most {value} allowed"
    else:
        yield path, rank, error.message


def _path_key(path: _Path) -> tuple[tuple[int, int, str], ...]:
    # Comparable whatever the mix of keys and indexes; a parent sorts before its fields.
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in path)


def _first_problem(topic_kind: str, value: object) -> str | None:
    found = [
        problem
        for error in _validator(topic_kind).iter_errors(value)
        for problem in _problems(error, value)
    ]
    if not found:
        return None
    path, _, message = min(found, key=lambda p: (_path_key(p[0]), p[1], p[2]))
    return f"{topic_kind}: {_where(path)}: {message}"


def _text_problem(value: object) -> tuple[_Path, str] | None:
    """A NUL character or too deep nesting anywhere in a decoded value (iteratively:
    orjson decodes 1024 levels, more than Python's recursion limit)."""
    stack: list[tuple[_Path, object]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if len(path) > MAX_DEPTH:
            return path[:MAX_DEPTH], f"nested more than {MAX_DEPTH} levels deep"
        if isinstance(item, str):
            if "\x00" in item:
                return path, "contains a NUL character (\\u0000), which text columns cannot hold"
        elif isinstance(item, dict):
            for key in sorted(item, reverse=True):
                if "\x00" in key:
                    return path, "has a key containing a NUL character (\\u0000)"
                stack.append(((*path, key), item[key]))
        elif isinstance(item, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(item))))
    return None


def _rule_problem(topic_kind: str, value: dict[str, Any]) -> tuple[_Path, str] | None:
    """Checks a schema cannot state: they run on a value the schema accepted."""
    if topic_kind == SWEEP_RUNS and value["run_id"] != value["event_id"]:
        return (
            "run_id",
        ), f"{_show(value['run_id'])} differs from event_id {_show(value['event_id'])}"
    if topic_kind == BASELINES and value["baseline_id"] != value["event_id"]:
        return (
            "baseline_id",
        ), f"{_show(value['baseline_id'])} differs from event_id {_show(value['event_id'])}"
    if topic_kind == EMAIL_STATUS and not value["occurrence_key"].startswith(f"{value['contact_id']}:"):
        # Keys begin with their contact (SPEC section 9): a status naming another
        # contact's row would be applied to a row this contact does not have.
        return ("occurrence_key",), (
            f"{_show(value['occurrence_key'])} is not a key of contact {value['contact_id']} "
            f"(keys begin with '{value['contact_id']}:')"
        )
    if topic_kind == CAMPAIGNS and value["op"] == "instance_upsert":
        inst = value["instance"]
        start, end = inst["active_start_date"], inst["active_end_date"]
        if start is not None and end is not None and end < start:  # ISO dates sort as text
            return ("instance", "active_end_date"), f"{end!r} is before active_start_date {start!r}"
    if topic_kind == CAMPAIGNS and value["op"] == "targets":
        seen: dict[tuple[int, str | None], int] = {}
        for i, target in enumerate(value["targets"]):
            key = (target["contact_id"], target["trigger_date"])
            if key in seen:
                return ("targets", i), (
                    f"repeats targets[{seen[key]}] (contact {key[0]}, trigger date {key[1]})"
                )
            seen[key] = i
    return None


def validate_record(topic_kind: str, value: object) -> None:
    """Raise ``EventError`` unless ``value`` (decoded JSON) is a valid value of the topic."""
    _check_kind(topic_kind)
    problem = None
    if not _quickly_valid(topic_kind, value):
        message = _first_problem(topic_kind, value)
        if message is not None:
            raise EventError(message)
        problem = _text_problem(value)
    if problem is None and isinstance(value, dict):
        problem = _rule_problem(topic_kind, value)
    if problem is not None:
        raise EventError(f"{topic_kind}: {_where(problem[0])}: {problem[1]}")


RawValue: TypeAlias = bytes | bytearray | memoryview | str | None


def decode_record(topic_kind: str, raw: RawValue) -> dict[str, Any]:
    """Decode a topic value (JSON) and validate it; the plain mapping, for any topic."""
    _check_kind(topic_kind)
    if raw is None:
        raise EventError(f"{topic_kind}: no value (a null message)")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"{topic_kind}: not valid JSON: {exc}") from None
    validate_record(topic_kind, value)
    result: dict[str, Any] = value  # validate_record: an object
    return result


# --- input events ----------------------------------------------------------------------------


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


def _json_text(value: Any) -> str | None:
    """Free-form JSON as the text a ``metadata`` column holds; ``null`` is no metadata.

    Keys sorted: the stored text must not depend on the producer's key order, or a
    re-sent instance would look changed (and a dump and re-parse would differ).
    """
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _optional_date(text: str | None) -> date | None:
    return None if text is None else parse_date(text)


def _iso(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


@dataclass(frozen=True)
class ContactFields:
    """A contact as an upsert gives it; dates parsed, the rest as given (the rules judge it)."""

    email: str
    zip_code: str | None
    state: str | None
    birth_date: date | None
    effective_date: date | None
    phone_number: str | None = None
    first_name: str | None = None
    last_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class ContactUpsert:
    TOPIC: ClassVar[str] = CONTACTS
    event_id: str
    occurred_at: datetime
    contact_id: int
    contact: ContactFields

    def record(self) -> ContactRecord:
        """The contact as ``rules.contact.validate_contact`` takes it."""
        c = self.contact
        return ContactRecord(
            id=self.contact_id,
            email=c.email,
            zip_code=c.zip_code,
            state=c.state,
            birth_date=_iso(c.birth_date),
            effective_date=_iso(c.effective_date),
            phone_number=c.phone_number,
        )


@dataclass(frozen=True, kw_only=True)
class ContactDelete:
    TOPIC: ClassVar[str] = CONTACTS
    event_id: str
    occurred_at: datetime
    contact_id: int


@dataclass(frozen=True, kw_only=True)
class ClickEvent:
    TOPIC: ClassVar[str] = CLICKS
    event_id: str
    occurred_at: datetime
    contact_id: int
    tracking_id: str
    quote_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class HealthEvent:
    TOPIC: ClassVar[str] = HEALTH
    event_id: str
    occurred_at: datetime
    contact_id: int
    has_medical_conditions: bool
    main_questions_yes_count: int
    answers_count: int | None
    # Every answer field given (the three above included), as the event gave it.
    answers: Mapping[str, Any] = field(hash=False)

    @property
    def metadata_text(self) -> str:
        """The ``contact_events.metadata`` JSON of this answer."""
        return orjson.dumps(dict(self.answers), option=orjson.OPT_SORT_KEYS).decode()


@dataclass(frozen=True, kw_only=True)
class EmailStatusEvent:
    TOPIC: ClassVar[str] = EMAIL_STATUS
    event_id: str
    occurred_at: datetime
    contact_id: int
    occurrence_key: str
    status: str  # lower case, one of the sending side's statuses
    actual_send_datetime: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class CampaignTypeUpsert:
    """A campaign type created or changed: only the fields in ``given`` change."""

    TOPIC: ClassVar[str] = CAMPAIGNS
    event_id: str
    occurred_at: datetime
    name: str
    given: Mapping[str, int | bool] = field(hash=False)  # the shape set_campaign_type takes
    changed_by: str | None = None

    def apply_to(self, base: CampaignType) -> CampaignType:
        """``base`` (the stored, configured or default type) with the given fields changed."""
        values = {f.name: getattr(base, f.name) for f in fields(base)}
        return CampaignType(**{**values, **self.given, "name": self.name})


@dataclass(frozen=True, kw_only=True)
class InstanceUpsert:
    """A campaign instance created or replaced (every field given; metadata as JSON text)."""

    TOPIC: ClassVar[str] = CAMPAIGNS
    event_id: str
    occurred_at: datetime
    instance: CampaignInstance
    changed_by: str | None = None


@dataclass(frozen=True)
class Target:
    """One targeted contact of a ``targets`` event; ``status`` None: not given."""

    contact_id: int
    trigger_date: date | None
    status: str | None = None
    metadata: str | None = None  # JSON text

    def campaign_target(
        self, instance_id: int, status_if_absent: str = "pending"
    ) -> CampaignTarget:
        """As ``rules.campaign`` takes it (``pending``: the legacy column default)."""
        return CampaignTarget(
            contact_id=self.contact_id,
            instance_id=instance_id,
            trigger_date=self.trigger_date,
            status=self.status if self.status is not None else status_if_absent,
            metadata=self.metadata,
        )


@dataclass(frozen=True, kw_only=True)
class TargetsEvent:
    TOPIC: ClassVar[str] = CAMPAIGNS
    event_id: str
    occurred_at: datetime
    instance_id: int
    targets: tuple[Target, ...]
    changed_by: str | None = None


@dataclass(frozen=True, kw_only=True)
class SweepRun:
    """One sweep, as replay needs it.

    ``config`` is the mapping the sweep recorded (``Config.to_dict()``).  Note:
    ``rules.config.config_from_mapping`` cannot read that shape back today
    (``to_dict`` writes ``birthday_days_before`` where the reader expects
    ``birthday_email_days_before``, and templates flat where it expects
    sections), so replay needs a reader of ``to_dict``'s shape.
    """

    TOPIC: ClassVar[str] = SWEEP_RUNS
    event_id: str
    occurred_at: datetime
    run_id: str
    as_of: date
    config: Mapping[str, Any] = field(hash=False)
    # topic -> partition -> the next offset the sweep had not seen
    offsets: Mapping[str, Mapping[int, int]] = field(hash=False)
    summary: Mapping[str, Any] | None = field(default=None, hash=False)


@dataclass(frozen=True, kw_only=True)
class BaselineRecord:
    """A deployment's audit baseline (``streams.worker.baseline``), as replay needs it."""

    TOPIC: ClassVar[str] = BASELINES
    event_id: str
    occurred_at: datetime
    baseline_id: str
    as_of: date
    epoch_id: int
    source: str
    snapshot_path: str
    snapshot_sha256: str
    snapshot_bytes: int
    schedules_checksum: str
    offsets: Mapping[str, Mapping[int, int]] = field(hash=False)
    config: Mapping[str, Any] = field(hash=False)


Event: TypeAlias = (
    ContactUpsert
    | ContactDelete
    | ClickEvent
    | HealthEvent
    | EmailStatusEvent
    | CampaignTypeUpsert
    | InstanceUpsert
    | TargetsEvent
    | SweepRun
    | BaselineRecord
)


def _contact_event(v: dict[str, Any], event_id: str, at: datetime) -> Event:
    if v["op"] == "delete":
        return ContactDelete(event_id=event_id, occurred_at=at, contact_id=v["contact_id"])
    c = v["contact"]
    return ContactUpsert(
        event_id=event_id,
        occurred_at=at,
        contact_id=v["contact_id"],
        contact=ContactFields(
            email=c["email"],
            zip_code=c["zip_code"],
            state=c["state"],
            birth_date=_optional_date(c["birth_date"]),
            effective_date=_optional_date(c["effective_date"]),
            phone_number=c.get("phone_number"),
            first_name=c.get("first_name"),
            last_name=c.get("last_name"),
        ),
    )


def _campaign_event(v: dict[str, Any], event_id: str, at: datetime) -> Event:
    changed_by = v.get("changed_by")
    if v["op"] == "type_upsert":
        t = v["campaign_type"]
        return CampaignTypeUpsert(
            event_id=event_id,
            occurred_at=at,
            name=t["name"],
            given=_frozen({k: t[k] for k in CAMPAIGN_TYPE_FIELDS if k in t}),
            changed_by=changed_by,
        )
    if v["op"] == "instance_upsert":
        i = v["instance"]
        return InstanceUpsert(
            event_id=event_id,
            occurred_at=at,
            instance=CampaignInstance(
                id=i["id"],
                campaign_type=i["campaign_type"],
                instance_name=i["instance_name"],
                email_template=i["email_template"],
                sms_template=i["sms_template"],
                active_start_date=_optional_date(i["active_start_date"]),
                active_end_date=_optional_date(i["active_end_date"]),
                metadata=_json_text(i.get("metadata")),
            ),
            changed_by=changed_by,
        )
    return TargetsEvent(
        event_id=event_id,
        occurred_at=at,
        instance_id=v["instance_id"],
        targets=tuple(
            Target(
                contact_id=t["contact_id"],
                trigger_date=_optional_date(t["trigger_date"]),
                status=t.get("status"),
                metadata=_json_text(t.get("metadata")),
            )
            for t in v["targets"]
        ),
        changed_by=changed_by,
    )


def _build(topic_kind: str, v: dict[str, Any]) -> Event:
    event_id: str = v["event_id"]
    at = parse_datetime(v["occurred_at"])
    if topic_kind == CONTACTS:
        return _contact_event(v, event_id, at)
    if topic_kind == CLICKS:
        return ClickEvent(
            event_id=event_id,
            occurred_at=at,
            contact_id=v["contact_id"],
            tracking_id=v["tracking_id"],
            quote_id=v.get("quote_id"),
        )
    if topic_kind == HEALTH:
        a = v["answers"]
        return HealthEvent(
            event_id=event_id,
            occurred_at=at,
            contact_id=v["contact_id"],
            has_medical_conditions=a["has_medical_conditions"],
            main_questions_yes_count=a["main_questions_yes_count"],
            answers_count=a.get("answers_count"),
            answers=_frozen(a),
        )
    if topic_kind == EMAIL_STATUS:
        sent_at = v.get("actual_send_datetime")
        return EmailStatusEvent(
            event_id=event_id,
            occurred_at=at,
            contact_id=v["contact_id"],
            occurrence_key=v["occurrence_key"],
            status=v["status"],
            actual_send_datetime=None if sent_at is None else parse_datetime(sent_at),
        )
    if topic_kind == CAMPAIGNS:
        return _campaign_event(v, event_id, at)
    if topic_kind == BASELINES:
        snap = v["snapshot"]
        return BaselineRecord(
            event_id=event_id,
            occurred_at=at,
            baseline_id=v["baseline_id"],
            as_of=parse_date(v["as_of"]),
            epoch_id=v["epoch_id"],
            source=v["source"],
            snapshot_path=snap["path"],
            snapshot_sha256=snap["sha256"],
            snapshot_bytes=snap["bytes"],
            schedules_checksum=v["schedules_checksum"],
            offsets=_offsets(v["offsets"]),
            config=_frozen(v["config"]),
        )
    summary = v.get("summary")
    return SweepRun(
        event_id=event_id,
        occurred_at=at,
        run_id=v["run_id"],
        as_of=parse_date(v["as_of"]),
        config=_frozen(v["config"]),
        offsets=_offsets(v["offsets"]),
        summary=None if summary is None else _frozen(summary),
    )


def _offsets(value: Mapping[str, Mapping[str, int]]) -> Mapping[str, Mapping[int, int]]:
    return MappingProxyType(
        {topic: MappingProxyType({int(p): o for p, o in parts.items()}) for topic, parts in value.items()}
    )


def parse_event(topic_kind: str, raw: RawValue) -> Event:
    """The typed event of an input topic's raw value, or ``EventError`` naming the problem.

    ``topic_kind`` is the topic's name without the agency prefix (``contacts``,
    ``clicks``, ``health``, ``email-status``, ``campaigns``, ``sweep-runs``).
    """
    if topic_kind not in INPUT_KINDS:
        raise ValueError(f"{topic_kind!r} is not an input topic (expected one of {INPUT_KINDS})")
    return _build(topic_kind, decode_record(topic_kind, raw))


def expected_key(event: Event) -> str:
    """The Kafka key of an event as text: the contact id, instance id, type name or run id."""
    if isinstance(event, CampaignTypeUpsert):
        return event.name
    if isinstance(event, InstanceUpsert):
        return str(event.instance.id)
    if isinstance(event, TargetsEvent):
        return str(event.instance_id)
    if isinstance(event, SweepRun):
        return event.run_id
    if isinstance(event, BaselineRecord):
        return event.baseline_id
    return str(event.contact_id)


def _without_none(mapping: dict[str, Any], *optional: str) -> dict[str, Any]:
    # Optional fields left out rather than written as null: the smallest valid value.
    return {k: v for k, v in mapping.items() if not (k in optional and v is None)}


def event_to_mapping(event: Event) -> dict[str, Any]:
    """The JSON-ready value of an input event: ``parse_event`` of its dump gives it back."""
    head: dict[str, Any] = {
        "event_id": event.event_id,
        "occurred_at": format_datetime(event.occurred_at),
    }
    if isinstance(event, ContactUpsert):
        c = event.contact
        contact = {
            "email": c.email,
            "zip_code": c.zip_code,
            "state": c.state,
            "birth_date": _iso(c.birth_date),
            "effective_date": _iso(c.effective_date),
            "phone_number": c.phone_number,
            "first_name": c.first_name,
            "last_name": c.last_name,
        }
        return {**head, "op": "upsert", "contact_id": event.contact_id, "contact": contact}
    if isinstance(event, ContactDelete):
        return {**head, "op": "delete", "contact_id": event.contact_id}
    if isinstance(event, ClickEvent):
        return _without_none(
            {
                **head,
                "contact_id": event.contact_id,
                "tracking_id": event.tracking_id,
                "quote_id": event.quote_id,
            },
            "quote_id",
        )
    if isinstance(event, HealthEvent):
        answers = {
            **event.answers,
            "has_medical_conditions": event.has_medical_conditions,
            "main_questions_yes_count": event.main_questions_yes_count,
        }
        if event.answers_count is not None:
            answers["answers_count"] = event.answers_count
        return {**head, "contact_id": event.contact_id, "answers": answers}
    if isinstance(event, EmailStatusEvent):
        sent_at = event.actual_send_datetime
        return _without_none(
            {
                **head,
                "contact_id": event.contact_id,
                "occurrence_key": event.occurrence_key,
                "status": event.status,
                "actual_send_datetime": None if sent_at is None else format_datetime(sent_at),
            },
            "actual_send_datetime",
        )
    if isinstance(event, SweepRun):
        return _without_none(
            {
                **head,
                "run_id": event.run_id,
                "as_of": event.as_of.isoformat(),
                "config": dict(event.config),
                "offsets": {
                    t: {str(p): o for p, o in parts.items()} for t, parts in event.offsets.items()
                },
                "summary": None if event.summary is None else dict(event.summary),
            },
            "summary",
        )
    if isinstance(event, BaselineRecord):
        return {
            **head,
            "baseline_id": event.baseline_id,
            "as_of": event.as_of.isoformat(),
            "epoch_id": event.epoch_id,
            "source": event.source,
            "snapshot": {
                "path": event.snapshot_path,
                "sha256": event.snapshot_sha256,
                "bytes": event.snapshot_bytes,
            },
            "schedules_checksum": event.schedules_checksum,
            "offsets": {t: {str(p): o for p, o in parts.items()} for t, parts in event.offsets.items()},
            "config": dict(event.config),
        }
    head = _without_none({**head, "changed_by": event.changed_by}, "changed_by")
    if isinstance(event, CampaignTypeUpsert):
        return {**head, "op": "type_upsert", "campaign_type": {"name": event.name, **event.given}}
    if isinstance(event, InstanceUpsert):
        i = event.instance
        instance = {
            "id": i.id,
            "campaign_type": i.campaign_type,
            "instance_name": i.instance_name,
            "email_template": i.email_template,
            "sms_template": i.sms_template,
            "active_start_date": _iso(i.active_start_date),
            "active_end_date": _iso(i.active_end_date),
            "metadata": None if i.metadata is None else orjson.loads(i.metadata),
        }
        return {**head, "op": "instance_upsert", "instance": instance}
    targets = [
        _without_none(
            {
                "contact_id": t.contact_id,
                "trigger_date": _iso(t.trigger_date),
                "status": t.status,
                "metadata": None if t.metadata is None else orjson.loads(t.metadata),
            },
            "status",
            "metadata",
        )
        for t in event.targets
    ]
    return {**head, "op": "targets", "instance_id": event.instance_id, "targets": targets}


_EVENT_TYPES = (
    ContactUpsert,
    ContactDelete,
    ClickEvent,
    HealthEvent,
    EmailStatusEvent,
    CampaignTypeUpsert,
    InstanceUpsert,
    TargetsEvent,
    SweepRun,
    BaselineRecord,
)


def dumps_event(obj: Event | Mapping[str, Any]) -> bytes:
    """A topic value's bytes: an input event (via ``event_to_mapping``) or an output record.

    Keys are sorted so the same record is always the same bytes.
    """
    value = event_to_mapping(obj) if isinstance(obj, _EVENT_TYPES) else obj
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


# --- output records --------------------------------------------------------------------------


@dataclass(frozen=True)
class RowState:
    """A schedule row's decision as it was before a change (``previous``)."""

    email_type: str
    scheduled_send_date: date
    status: str
    skip_reason: str | None = None


def schedule_change_id(
    cause_topic: str, cause_event_id: str, occurrence_key: str, change: str
) -> str:
    """Deterministic: the same cause announcing the same change of the same row, same id."""
    parts = "\x1f".join((cause_topic, cause_event_id, occurrence_key, change))
    return "sc-" + hashlib.sha256(parts.encode()).hexdigest()


def schedule_change_record(
    *,
    contact_id: int,
    occurrence_key: str,
    change: str,
    email_type: str,
    scheduled_send_date: date,
    status: str,
    skip_reason: str | None,
    previous: RowState | None,
    cause_topic: str,
    cause_event_id: str,
    occurred_at: datetime,
) -> dict[str, Any]:
    """A ``schedule-changes`` value: ``change`` is created / changed / cancelled, ``status``
    pre-scheduled / skipped, ``occurred_at`` the cause's time (aware), ``cause_topic`` the
    topic kind without prefix (``sweep-runs`` with the run id for the sweep)."""
    return {
        "event_id": schedule_change_id(cause_topic, cause_event_id, occurrence_key, change),
        "occurred_at": format_datetime(occurred_at),
        "contact_id": contact_id,
        "occurrence_key": occurrence_key,
        "change": change,
        "email_type": email_type,
        "scheduled_send_date": scheduled_send_date.isoformat(),
        "status": status,
        "skip_reason": skip_reason,
        "previous": None
        if previous is None
        else {
            "email_type": previous.email_type,
            "scheduled_send_date": previous.scheduled_send_date.isoformat(),
            "status": previous.status,
            "skip_reason": previous.skip_reason,
        },
        "cause": {"topic": cause_topic, "event_id": cause_event_id},
    }


def deadletter_record(
    source_topic: str,
    partition: int,
    offset: int,
    key: bytes | str | None,
    raw: bytes | None,
    error: str,
) -> dict[str, Any]:
    """A ``deadletter`` value for the message at ``source_topic``/``partition``/``offset``.

    The raw bytes are always kept (base64), and as text too when they are valid
    UTF-8; a key that is not UTF-8 is kept with backslash escapes.
    """
    raw_bytes = b"" if raw is None else bytes(raw)
    try:
        raw_text: str | None = raw_bytes.decode("utf-8") if raw is not None else None
    except UnicodeDecodeError:
        raw_text = None
    key_text = key.decode("utf-8", errors="backslashreplace") if isinstance(key, bytes) else key
    return {
        "event_id": f"{source_topic}:{partition}:{offset}",
        "source_topic": source_topic,
        "partition": partition,
        "offset": offset,
        "key": key_text,
        "raw_text": raw_text,
        "raw_base64": base64.b64encode(raw_bytes).decode("ascii"),
        "error": error or "(no message)",
    }
