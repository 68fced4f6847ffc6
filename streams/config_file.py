"""Reading the scheduler's YAML config file (the shell half of rules/config.py).

Whatever the file holds, the result is a ``Config`` or one short
``ConfigError`` line naming the file, the line and the key path; the limits
are documented in ``rules/config.py``.  PyYAML alone would let a file take the
run down: its composer recurses once per nesting level (a RecursionError of
thousands of lines), aliases expand without bound (a few hundred bytes become
gigabytes), repeated keys silently keep the last, and a few scalars raise
plain ValueError (a 30th of February, an int of 5,000 digits).  So the text
is first walked event by event (``yaml.parse`` is iterative): nesting, alias
expansion, anchors and duplicate keys are checked there, before anything is
composed.  The walk also knows each node's key path and line, which is how
the refusals of ``rules.config`` (about a key, not a line) get their line.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from rules.config import (
    DEFAULT_CONFIG,
    MAX_CONFIG_BYTES,
    MAX_NESTING,
    MAX_NODES,
    Config,
    ConfigError,
    config_from_mapping,
    key_name,
    quoted,
)

_PROBLEM_CHARS = 160  # PyYAML's own words about a malformed file, cut to this
_PATH_CHARS = 160  # a key path in the walk's refusals, cut in its middle to this


def load_config_file(path: str | None) -> tuple[Config, list[str]]:
    """The config of a YAML file (defaults when path is None) and its warnings."""
    if path is None:
        return DEFAULT_CONFIG, []
    raw = _read_text(path)
    data = _parse(raw, path)
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    try:
        return config_from_mapping(data, source=path)
    except ConfigError as exc:
        raise _with_line(exc, raw, path) from None


def _read_text(path: str) -> str:
    # Read at most one byte past the limit: a huge file (or /dev/zero) is never loaded whole.
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: config file is larger than {MAX_CONFIG_BYTES:,} bytes (the most a config may be)"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte {exc.start + 1:,} of the file)") from None


def _parse(raw: str, path: str) -> Any:
    """The file's data, once the walk has found nothing the composer must not see."""
    try:
        deque(_nodes(raw, path), maxlen=0)
        return yaml.load(raw, Loader=_ConfigLoader)  # a SafeLoader: no Python objects
    except yaml.MarkedYAMLError as exc:
        raise _yaml_refusal(exc, raw, path) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow: no mark, a position
        line = raw.count("\n", 0, exc.position) + 1
        raise ConfigError(f"{path}:{line}: not YAML text: {_clip(str(exc))}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML: {_clip(str(exc))}") from None


def _yaml_refusal(exc: yaml.MarkedYAMLError, raw: str, path: str) -> ConfigError:
    problem = _clip(exc.problem or str(exc))
    mark = exc.problem_mark
    if mark is None:
        return ConfigError(f"{path}: malformed YAML: {problem}")
    if isinstance(exc, yaml.constructor.ConstructorError):
        # the file parsed: a value could not be built, and its key path is known
        key = _key_at(raw, path, mark.line, mark.column)
        return ConfigError(f"{path}:{mark.line + 1}: {key or 'top level'}: {problem}")
    return ConfigError(f"{path}: malformed YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}")


def _clip(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "unreadable"
    return first if len(first) <= _PROBLEM_CHARS else f"{first[: _PROBLEM_CHARS - 1]}…"


def _with_line(exc: ConfigError, raw: str, path: str) -> ConfigError:
    """``exc`` with the line of its key, when it is about a key the file holds."""
    if not exc.key or exc.problem is None:
        return exc
    line = _line_of(raw, path, exc.key)
    if line is None:
        return exc
    return ConfigError(f"{path}:{line}: {exc.key}: {exc.problem}", key=exc.key, problem=exc.problem)


# ---- the walk over the parser's events ------------------------------------------------


@dataclass(frozen=True)
class _Node:
    """A key or a value of the file: its key path and where it starts (0-based, as PyYAML marks)."""

    path: str
    line: int
    column: int


@dataclass
class _Open:
    """A mapping or list the walk is inside."""

    path: str
    anchor: str | None
    is_mapping: bool
    nodes: int = 1  # itself and everything in it, aliases expanded
    height: int = 1  # its nesting levels, aliases expanded
    index: int = 0  # the next item's (lists)
    key: str | None = None  # as shown, the key whose value comes next (mappings); None: a key
    seen: dict[object, int] = field(default_factory=dict)  # each key read -> its line (mappings)


class _Walker:
    """Follows ``yaml.parse`` events; refuses what the composer must not be given."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.stack: list[_Open] = []
        self.anchors: dict[str, tuple[int, int]] = {}  # closed anchor -> (nodes, height)
        self.anchor_lines: dict[str, int] = {}  # every anchor defined so far -> its line
        self.scalar_keys: dict[str, tuple[object, object]] = {}  # a scalar anchor -> as a key
        self.total = 0
        self.documents = 0

    def step(self, event: yaml.Event) -> _Node | None:
        """Take one event; the node it starts, if it starts one."""
        if isinstance(event, yaml.DocumentStartEvent):
            self._start_document(event)
            return None
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            self._close()
            return None
        if not isinstance(event, yaml.NodeEvent):
            return None
        node = self._place(event)
        if isinstance(event, yaml.AliasEvent):
            self._alias(event, node)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                self._define(event.anchor, node)
                self.anchors[event.anchor] = (1, 0)
                self.scalar_keys[event.anchor] = _key_value(event)
            self._add(1, 0, node)
        else:
            self._open(event, node)
        return node

    def refuse(self, node: _Node, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}:{node.line + 1}: {_short(node.path) or 'top level'}: {problem}")

    def _start_document(self, event: yaml.DocumentStartEvent) -> None:
        # PyYAML would refuse it too, in words that name neither the rule nor the place
        if self.documents:
            line = event.start_mark.line + 1
            raise ConfigError(f"{self.source}:{line}: a config is one YAML document; a second starts here")
        self.documents += 1

    def _place(self, event: yaml.NodeEvent) -> _Node:
        mark = event.start_mark
        if not self.stack:
            return _Node("", mark.line, mark.column)
        parent = self.stack[-1]
        if not parent.is_mapping:
            parent.index += 1
            return _Node(f"{parent.path}[{parent.index - 1}]", mark.line, mark.column)
        if parent.key is not None:  # a value: it sits at its key's path
            path, parent.key = _under(parent.path, parent.key), None
            return _Node(path, mark.line, mark.column)
        parent.key = self._key(parent, event)
        return _Node(_under(parent.path, parent.key), mark.line, mark.column)

    def _key(self, parent: _Open, event: yaml.NodeEvent) -> str:
        """The key's name as key paths show it; a key seen before in this mapping is refused."""
        if isinstance(event, yaml.ScalarEvent):
            value, shown = _key_value(event)
        elif isinstance(event, yaml.AliasEvent) and event.anchor in self.scalar_keys:
            value, shown = self.scalar_keys[event.anchor]
        else:
            return "?"  # a list or mapping as a key: PyYAML refuses it as unhashable
        line = event.start_mark.line + 1
        try:
            first = parent.seen.get(value)
            parent.seen.setdefault(value, line)
        except TypeError:  # unhashable as read: nothing to compare
            first = None
        if first is not None:
            where = f"in {_short(parent.path)}" if parent.path else "at the top level"
            raise ConfigError(
                f"{self.source}:{line}: duplicate key {quoted(shown)} {where} (first at line {first})"
            )
        return key_name(shown)

    def _define(self, anchor: str, node: _Node) -> None:
        """An anchor's name taken; its size is known once its node is complete."""
        first = self.anchor_lines.get(anchor)
        if first is not None:
            raise self.refuse(node, f"anchor &{key_name(anchor)} is defined twice (first at line {first})")
        self.anchor_lines[anchor] = node.line + 1

    def _alias(self, event: yaml.AliasEvent, node: _Node) -> None:
        name = event.anchor or ""
        if name not in self.anchor_lines:
            raise self.refuse(node, f"alias *{key_name(name)} names no anchor defined before it")
        if name not in self.anchors:
            raise self.refuse(node, f"alias *{key_name(name)} lies inside the node it names (a loop)")
        nodes, height = self.anchors[name]
        if len(self.stack) + height > MAX_NESTING:
            raise self.refuse(node, self._too_deep())
        self._add(nodes, height, node)

    def _open(self, event: yaml.NodeEvent, node: _Node) -> None:
        if len(self.stack) + 1 > MAX_NESTING:
            raise self.refuse(node, self._too_deep())
        if event.anchor is not None:
            self._define(event.anchor, node)  # not in self.anchors until closed: an alias now is a loop
        self._count(1, node)
        self.stack.append(_Open(node.path, event.anchor, isinstance(event, yaml.MappingStartEvent)))

    def _close(self) -> None:
        done = self.stack.pop()
        if done.anchor is not None:
            self.anchors[done.anchor] = (done.nodes, done.height)
        if self.stack:
            parent = self.stack[-1]
            parent.nodes += done.nodes
            parent.height = max(parent.height, done.height + 1)

    def _add(self, nodes: int, height: int, node: _Node) -> None:
        """A scalar or an alias's expansion, inside the innermost open collection."""
        self._count(nodes, node)
        if self.stack:
            parent = self.stack[-1]
            parent.nodes += nodes
            parent.height = max(parent.height, height + 1)

    def _count(self, nodes: int, node: _Node) -> None:
        self.total += nodes
        if self.total > MAX_NODES:
            raise self.refuse(
                node, f"with its aliases expanded the config has more than {MAX_NODES:,} nodes"
            )

    @staticmethod
    def _too_deep() -> str:
        return f"nested deeper than {MAX_NESTING} levels (the most a config may have)"


def _short(path: str) -> str:
    """A key path short enough for one line: 32 levels of long keys would not be."""
    if len(path) <= _PATH_CHARS:
        return path
    half = _PATH_CHARS // 2
    return f"{path[:half]}…{path[-half:]}"


def _under(path: str, shown: str) -> str:
    """``rules.config.join_key`` for a key name already as shown."""
    return f"{path}.{shown}" if path else shown


_KEY_READER = yaml.SafeLoader("")  # builds single key scalars as the real load will


def _key_value(event: yaml.ScalarEvent) -> tuple[object, object]:
    """A key as the load will read it (``0x1`` is 1), and as messages show it.

    A key that cannot be read (``<<``, an unknown tag, a 30th of February) is
    compared by its tag and text and shown as written.
    """
    tag = event.tag
    if tag is None or tag == "!":
        tag = _KEY_READER.resolve(yaml.ScalarNode, event.value, event.implicit)
    build = yaml.SafeLoader.yaml_constructors.get(tag)
    if build is not None:
        try:
            value = build(_KEY_READER, yaml.ScalarNode(tag, event.value))
            return value, value
        except (yaml.YAMLError, ValueError, OverflowError, TypeError):
            pass
    return (tag, event.value), event.value


def _nodes(raw: str, source: str) -> Iterator[_Node]:
    """Every key and value of the text with its key path and place; ConfigError on a refusal."""
    walker = _Walker(source)
    for event in yaml.parse(raw, Loader=yaml.SafeLoader):
        node = walker.step(event)
        if node is not None:
            yield node


def _line_of(raw: str, source: str, key: str) -> int | None:
    """The 1-based line of ``key`` in the text, else of the nearest enclosing key it holds."""
    best: _Node | None = None
    for node in _nodes(raw, source):
        if node.path == key:
            return node.line + 1
        inside = key.startswith(node.path) and key[len(node.path) : len(node.path) + 1] in (".", "[")
        if node.path and inside and (best is None or len(node.path) > len(best.path)):
            best = node
    return best.line + 1 if best is not None else None


def _key_at(raw: str, source: str, line: int, column: int) -> str | None:
    """The key path of the node starting at (line, column), 0-based."""
    for node in _nodes(raw, source):
        if (node.line, node.column) == (line, column):
            return node.path
    return None


# ---- building the data ------------------------------------------------------------------

_READ_AS = {"int": "a whole number", "float": "a number", "timestamp": "a date", "bool": "true or false"}


class _ConfigLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML has no stubs here
    """SafeLoader whose every refusal carries its place.

    PyYAML raises plain ValueError for some scalars (a date that does not
    exist, an int beyond Python's 4,300 printable digits) and quotes an
    unknown tag whole.
    """

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError, TypeError):
            kind = node.tag.rsplit(":", 1)[-1]
            shown = quoted(node.value) if isinstance(node, yaml.ScalarNode) else "this value"
            raise yaml.constructor.ConstructorError(
                None, None, f"{shown} cannot be read as {_READ_AS.get(kind, quoted(kind))}", node.start_mark
            ) from None


def _unknown_tag(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    raise yaml.constructor.ConstructorError(
        None, None, f"unknown tag {quoted(node.tag)}", node.start_mark
    )


_ConfigLoader.add_constructor(None, _unknown_tag)
