"""A quicker ``__init__`` for the frozen dataclasses the rules make per contact.

A frozen dataclass sets each field in ``__init__`` through ``object.__setattr__`` (its own
``__setattr__`` refuses): about 1.3 µs for an ``Occurrence`` of 13 fields, against 0.4 µs
writing the instance's dictionary directly.  A sweep of the AEP season makes several such
records per contact for 3 million contacts.  ``quick_init`` gives a class the direct
``__init__``: the same parameters, defaults and resulting instance (equal, same hash, still
frozen afterwards); tests/rules/test_records.py checks each class that uses it.

It refuses what it does not reproduce: default factories, ``init=False`` or keyword-only
fields, ``__post_init__`` and slots.
"""

from __future__ import annotations

from dataclasses import MISSING, fields, is_dataclass
from typing import Any, TypeVar

C = TypeVar("C", bound=type)


def quick_init(cls: C) -> C:
    """Replace the dataclass ``cls``'s generated ``__init__`` by one that fills ``__dict__``."""
    if not is_dataclass(cls) or "__slots__" in vars(cls) or hasattr(cls, "__post_init__"):
        raise TypeError(f"quick_init: {cls.__name__} is not a plain dataclass without slots or __post_init__")
    params: list[str] = []
    defaults: dict[str, Any] = {}
    for f in fields(cls):
        if not f.init or f.kw_only or f.default_factory is not MISSING:
            raise TypeError(f"quick_init: {cls.__name__}.{f.name} needs the generated __init__")
        if f.default is MISSING:
            params.append(f.name)
        else:
            defaults[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
    body = "".join(f"    d[{f.name!r}] = {f.name}\n" for f in fields(cls))
    source = f"def __init__(self, {', '.join(params)}):\n    d = self.__dict__\n{body}"
    namespace: dict[str, Any] = {}
    exec(source, defaults, namespace)  # noqa: S102 - field names only, as dataclasses itself does
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    init.__wrapped__ = vars(cls)["__init__"]  # the generated one: the tests compare the two
    setattr(cls, "__init__", init)  # noqa: B010 - a class attribute replaced on purpose
    return cls
