"""Explanations made into text only when someone reads them.

Each decision says why it was placed where it was (``explain`` prints it).  A sweep of
the AEP season makes millions of decisions and reads none of their explanations, and
formatting three dates into one took about 2 µs a contact (4% of deciding it).  So a
``Why`` keeps its template and facts, and formats them when it is read (``str``, a
comparison, ``in``).  It reads like the text it stands for: two equal texts are equal
whether made now or later.
"""

from __future__ import annotations


class Why:
    """``template.format(*facts)``, formatted when read; ``why + text`` appends lazily too."""

    __slots__ = ("facts", "template")

    def __init__(self, template: str, *facts: object) -> None:
        self.template = template
        self.facts = facts

    def __str__(self) -> str:
        return self.template.format(*self.facts)

    def __repr__(self) -> str:
        return repr(str(self))

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __add__(self, other: object) -> Why:
        return Why("{}{}", self, other)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Why | str):
            return str(self) == str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))

    def __contains__(self, text: str) -> bool:
        return text in str(self)


# What a decision's explanation may be: made now (a rare path) or when read.
Explanation = str | Why
