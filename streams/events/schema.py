"""Topic values against their JSON Schemas: decoded, validated, refused in one line.

Every value on a topic is JSON (orjson) described by a JSON Schema (draft
2020-12) in ``schemas/<topic>.v1.json``.  ``decode_record`` turns raw bytes
into the plain mapping of a valid value, or raises ``EventError`` whose
one-line message names the topic, the field and the problem
(``streams.events.problems`` words it).

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
- Integers are JSON integers only: ``12.0`` and ``true`` are not a contact
  id.  Ids (contacts, instances) lie in ``1..2147483647``, the range of a
  PostgreSQL ``integer`` column, so a valid event can always be stored.
- Campaigns: a field of another op is refused (``instance`` on a ``targets``
  event is a producer bug, not something to ignore).
- A JSON object with a repeated key keeps the last value (orjson's rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, TypeAlias

import fastjsonschema  # type: ignore[import-untyped]  # ships no type hints
import orjson
from jsonschema import (  # type: ignore[import-untyped]  # jsonschema ships no type hints
    Draft202012Validator,
    FormatChecker,
)
from jsonschema.validators import extend  # type: ignore[import-untyped]

from streams.events.kinds import CONTACTS, check_kind
from streams.events.problems import MAX_DEPTH, first_problem, rule_problem, text_problem, where
from streams.events.times import parse_date, parse_datetime

SCHEMA_VERSION: Final = 1

RawValue: TypeAlias = bytes | bytearray | memoryview | str | None


class EventError(ValueError):
    """A topic value that cannot be used; the message names the topic, field and problem."""


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


@cache
def load_schema(topic_kind: str) -> Mapping[str, Any]:
    """The JSON Schema of a topic's values (read once)."""
    check_kind(topic_kind)
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
    above and ``text_problem``, which find the problem and word it.  The
    two are checked to agree in tests/streams/events/test_events.py.
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
    slow path (jsonschema, then ``text_problem``), which words the problem.
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


def validate_record(topic_kind: str, value: object) -> None:
    """Raise ``EventError`` unless ``value`` (decoded JSON) is a valid value of the topic."""
    check_kind(topic_kind)
    problem = None
    if not _quickly_valid(topic_kind, value):
        message = first_problem(topic_kind, _validator(topic_kind).iter_errors(value), value)
        if message is not None:
            raise EventError(message)
        problem = text_problem(value)
    if problem is None and isinstance(value, dict):
        problem = rule_problem(topic_kind, value)
    if problem is not None:
        raise EventError(f"{topic_kind}: {where(problem[0])}: {problem[1]}")


def decode_record(topic_kind: str, raw: RawValue) -> dict[str, Any]:
    """Decode a topic value (JSON) and validate it; the plain mapping, for any topic."""
    check_kind(topic_kind)
    if raw is None:
        raise EventError(f"{topic_kind}: no value (a null message)")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"{topic_kind}: not valid JSON: {exc}") from None
    validate_record(topic_kind, value)
    result: dict[str, Any] = value  # validate_record: an object
    return result
