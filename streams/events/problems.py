"""What is wrong with a topic value, in one line that names the field and the problem.

The validators of ``streams.events.schema`` only say whether a value is valid;
the wording is here, so that a producer reading a dead letter knows what to
fix, e.g. ``contacts: field 'contact.birth_date': '2025-02-30' is not a real date``.

Choices written down here (SPEC and ARCHITECTURE are silent on them):

- When a value has several problems, the one reported is the first by field
  path (then by kind of problem), so the message never depends on the
  validator's internal order.
- A string containing NUL (``\\u0000``) anywhere in the value, and nesting
  deeper than ``MAX_DEPTH`` levels (in free-form ``metadata``), are refused:
  PostgreSQL text cannot hold NUL and orjson cannot write such nesting back.
- Checks a schema cannot state (``rule_problem``): ``sweep-runs`` and
  ``baselines`` ids equal their event id; a status names a row of its own
  contact; an instance does not end before it starts (as ``mailwindow
  campaign`` refuses); one ``targets`` event does not name the same
  (contact, trigger date) twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final, TypeAlias

import orjson
from jsonschema import ValidationError  # type: ignore[import-untyped]  # ships no type hints

from streams.events.kinds import BASELINES, CAMPAIGNS, EMAIL_STATUS, SWEEP_RUNS

MAX_DEPTH: Final = 64

FieldPath: TypeAlias = tuple[str | int, ...]
_Wording: TypeAlias = Callable[[ValidationError, object], Iterator[tuple[FieldPath, str]]]

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
_OTHER_RANK = 6

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def where(path: FieldPath) -> str:
    """The field a problem is in, as the message names it (``field 'contact.email'``)."""
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


def show(value: object) -> str:
    """A value as a message quotes it: short, and never a whole object."""
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


# --- one wording per schema keyword ----------------------------------------------------------


def _at(error: ValidationError) -> FieldPath:
    return tuple(error.absolute_path)


def _required(error: ValidationError, root: object) -> Iterator[tuple[FieldPath, str]]:
    # One error per missing field, but it names it only in its message: recompute.
    for name in error.validator_value:
        if isinstance(error.instance, dict) and name not in error.instance:
            yield (*_at(error), name), f"missing (required{_op_clause(error, root)})"


def _additional_properties(error: ValidationError, root: object) -> Iterator[tuple[FieldPath, str]]:
    known = error.schema.get("properties", {})
    for name in sorted(k for k in error.instance if k not in known):
        yield (*_at(error), name), "unknown field"


def _not(error: ValidationError, root: object) -> Iterator[tuple[FieldPath, str]]:
    yield _at(error), f"not allowed{_op_clause(error, root)}"


def _type(error: ValidationError, root: object) -> Iterator[tuple[FieldPath, str]]:
    value, instance = error.validator_value, error.instance
    expected = " or ".join(value) if isinstance(value, list) else str(value)
    shown = "" if isinstance(instance, dict | list) else f" {show(instance)}"
    yield _at(error), f"expected {expected}, got {_json_type(instance)}{shown}"


def _one_of(error: ValidationError, root: object) -> Iterator[tuple[FieldPath, str]]:
    allowed = error.validator_value if error.validator == "enum" else [error.validator_value]
    choices = ", ".join(show(v) for v in allowed)
    yield _at(error), f"{show(error.instance)} is not one of {choices}"


def _format(error: ValidationError, root: object) -> Iterator[tuple[FieldPath, str]]:
    # The cause is the reason parse_date or parse_datetime gave.
    cause = error.cause
    yield _at(error), str(cause) if cause is not None else f"{show(error.instance)} is not a {error.validator_value}"


def _pattern(error: ValidationError, root: object) -> Iterator[tuple[FieldPath, str]]:
    if "propertyNames" in error.schema_path:  # the name is the problem: the path names it
        yield (*_at(error), str(error.instance)), f"the name {error.instance!r} does not match {error.validator_value}"
    else:
        yield _at(error), f"{show(error.instance)} does not match {error.validator_value}"


def _minimum(error: ValidationError, root: object) -> Iterator[tuple[FieldPath, str]]:
    yield _at(error), f"{show(error.instance)} is less than the minimum {error.validator_value}"


def _maximum(error: ValidationError, root: object) -> Iterator[tuple[FieldPath, str]]:
    yield _at(error), f"{show(error.instance)} is greater than the maximum {error.validator_value}"


def _min_length(error: ValidationError, root: object) -> Iterator[tuple[FieldPath, str]]:
    least = error.validator_value
    yield _at(error), "must not be empty" if least == 1 else f"is shorter than {least} characters"


def _max_length(error: ValidationError, root: object) -> Iterator[tuple[FieldPath, str]]:
    yield _at(error), f"is longer than {error.validator_value} characters"


def _min_items(error: ValidationError, root: object) -> Iterator[tuple[FieldPath, str]]:
    yield _at(error), f"has {len(error.instance)} items; at least {error.validator_value} needed"


def _max_items(error: ValidationError, root: object) -> Iterator[tuple[FieldPath, str]]:
    yield _at(error), f"has {len(error.instance)} items; at most {error.validator_value} allowed"


def _as_jsonschema_says(error: ValidationError, root: object) -> Iterator[tuple[FieldPath, str]]:
    yield _at(error), error.message


_WORDING: Final[dict[str, _Wording]] = {
    "required": _required,
    "additionalProperties": _additional_properties,
    "not": _not,
    "type": _type,
    "enum": _one_of,
    "const": _one_of,
    "format": _format,
    "pattern": _pattern,
    "minimum": _minimum,
    "maximum": _maximum,
    "minLength": _min_length,
    "maxLength": _max_length,
    "minItems": _min_items,
    "maxItems": _max_items,
}


def _path_key(path: FieldPath) -> tuple[tuple[int, int, str], ...]:
    # Comparable whatever the mix of keys and indexes; a parent sorts before its fields.
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in path)


def first_problem(topic_kind: str, errors: Iterable[ValidationError], value: object) -> str | None:
    """The message of the first of a value's schema errors (by field, then kind), or None."""
    found = [
        (path, _RANK.get(str(error.validator), _OTHER_RANK), message)
        for error in errors
        for path, message in _WORDING.get(str(error.validator), _as_jsonschema_says)(error, value)
    ]
    if not found:
        return None
    path, _, message = min(found, key=lambda p: (_path_key(p[0]), p[1], p[2]))
    return f"{topic_kind}: {where(path)}: {message}"


def text_problem(value: object) -> tuple[FieldPath, str] | None:
    """A NUL character or too deep nesting anywhere in a decoded value (iteratively:
    orjson decodes 1024 levels, more than Python's recursion limit)."""
    stack: list[tuple[FieldPath, object]] = [((), value)]
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


def rule_problem(topic_kind: str, value: dict[str, Any]) -> tuple[FieldPath, str] | None:
    """Checks a schema cannot state: they run on a value the schema accepted."""
    if topic_kind == SWEEP_RUNS and value["run_id"] != value["event_id"]:
        return ("run_id",), f"{show(value['run_id'])} differs from event_id {show(value['event_id'])}"
    if topic_kind == BASELINES and value["baseline_id"] != value["event_id"]:
        return ("baseline_id",), f"{show(value['baseline_id'])} differs from event_id {show(value['event_id'])}"
    if topic_kind == EMAIL_STATUS and not value["occurrence_key"].startswith(f"{value['contact_id']}:"):
        # Keys begin with their contact (SPEC section 9): a status naming another
        # contact's row would be applied to a row this contact does not have.
        return ("occurrence_key",), (
            f"{show(value['occurrence_key'])} is not a key of contact {value['contact_id']} "
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
                return ("targets", i), f"repeats targets[{seen[key]}] (contact {key[0]}, trigger date {key[1]})"
            seen[key] = i
    return None
