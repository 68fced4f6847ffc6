"""``rules.records.quick_init``: each record class that uses it builds the instance the
dataclass's own ``__init__`` builds, and stays frozen."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import FrozenInstanceError, dataclass, field, fields
from typing import Any

import pytest

import rules
from rules.records import quick_init


def _quick_classes() -> list[type]:
    found = []
    for info in pkgutil.iter_modules(rules.__path__):
        module = importlib.import_module(f"rules.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__ == module.__name__
                and hasattr(vars(value).get("__init__"), "__wrapped__")
            ):
                found.append(value)
    return sorted(found, key=lambda c: c.__qualname__)


QUICK = _quick_classes()


def test_the_per_contact_records_use_it() -> None:
    names = {c.__name__ for c in QUICK}
    assert {"Contact", "ContactRecord", "Occurrence", "Decision", "ContactSchedule", "Placement"} <= names


def _generated(cls: type, *args: Any, **kwargs: Any) -> Any:
    instance: Any = object.__new__(cls)
    vars(cls)["__init__"].__wrapped__(instance, *args, **kwargs)
    return instance


@pytest.mark.parametrize("cls", QUICK, ids=lambda c: c.__name__)
def test_every_field_given_positionally_or_by_name(cls: type) -> None:
    values = [object() for _ in fields(cls)]
    quick = cls(*values)
    assert vars(quick) == vars(_generated(cls, *values))
    by_name = cls(**{f.name: v for f, v in zip(fields(cls), values, strict=True)})
    assert by_name == quick and hash(by_name) == hash(quick)
    with pytest.raises(FrozenInstanceError):
        quick.__setattr__(fields(cls)[0].name, None)


@pytest.mark.parametrize("cls", QUICK, ids=lambda c: c.__name__)
def test_defaults_and_replace(cls: type) -> None:
    required = [f for f in fields(cls) if f.default is dataclasses.MISSING]
    values = [object() for _ in required]
    quick = cls(*values)
    assert vars(quick) == vars(_generated(cls, *values))
    first = fields(cls)[0].name
    other = object()
    assert getattr(dataclasses.replace(quick, **{first: other}), first) is other


def test_what_it_cannot_reproduce_is_refused() -> None:
    @dataclass(frozen=True)
    class WithFactory:
        items: list[int] = field(default_factory=list)

    @dataclass(frozen=True)
    class WithPostInit:
        n: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True)
    class WithInitFalse:
        n: int = field(default=0, init=False)

    for cls in (WithFactory, WithPostInit, WithInitFalse):
        with pytest.raises(TypeError, match="quick_init"):
            quick_init(cls)
