"""JSON and YAML read into a tree that remembers where each value was written (character offsets), so that a
finding can name its file and line, and a fix can say which characters to replace.

Bounded as `policy_forms` bounds its readers (size, nesting, YAML aliases and their expansion): a hostile
file is refused in one line. YAML's CloudFormation short forms (`!Sub`, `!Ref`, `!GetAtt`...) become the
long form they abbreviate, `{"Fn::Sub": ...}`, as CloudFormation documents them ("Intrinsic function
reference": each short form `!Name` stands for `Fn::Name`, and `!Ref` for `Ref`).
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from typing import Any

from remediator.core import PolicyError
from remediator.policy_forms import _JSON_NUMBER, MAX_DEPTH, MAX_DOCUMENT_CHARS, MAX_NODES, _Number, bounded_composer

MAP, SEQ, SCALAR = "map", "seq", "scalar"


@dataclass(eq=False)
class Node:
    """One value and where it was written: [start, end) in characters of the file's text."""

    kind: str  # MAP, SEQ or SCALAR
    value: Any  # MAP: list[tuple[Node, Node]] (a repeated key kept); SEQ: list[Node]; SCALAR: str, _Number, bool, None
    start: int
    end: int
    flow: bool = True  # JSON, or YAML's flow style ([a, b], {a: b}); False for YAML's block style
    tag: str | None = None  # the short form this node was written with (!Sub), if any

    def get(self, key: str) -> Node | None:
        """The value of a mapping's key; repeated, it is ambiguous: refused, as policy_forms refuses it."""
        if self.kind != MAP:
            return None
        values = [value for name, value in self.value if name.kind == SCALAR and name.value == key]
        if len(values) > 1:
            raise PolicyError(f"key {key!r} appears more than once; which one applies is ambiguous")
        return values[0] if values else None

    def keys(self) -> list[Any]:
        return [name.value for name, _ in self.value] if self.kind == MAP else []

    @property
    def text(self) -> str | None:
        """A scalar's text (a string, or a number as written); None for anything else."""
        if self.kind == SCALAR and isinstance(self.value, str):
            return str.__str__(self.value)
        return None


@dataclass
class Document:
    """A file's text, its tree, and the language it was written in (json or yaml)."""

    text: str
    root: Node
    language: str
    _lines: list[int] = field(default_factory=list, repr=False)

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column) of a character offset, both from 1 (SARIF's convention), columns in code points."""
        if not self._lines:
            self._lines = [0] + [match.end() for match in re.finditer("\n", self.text)]
        line = bisect.bisect_right(self._lines, offset) - 1
        return line + 1, offset - self._lines[line] + 1

    def line_start(self, offset: int) -> int:
        return self.text.rfind("\n", 0, offset) + 1

    def line_end(self, offset: int) -> int:
        """The offset just past the newline that ends the line holding `offset` (or the end of the text)."""
        newline = self.text.find("\n", offset)
        return len(self.text) if newline < 0 else newline + 1


def load(text: str) -> Document:
    """The file's tree: JSON when it reads as JSON, else YAML (of which JSON is nearly a subset)."""
    if len(text) > MAX_DOCUMENT_CHARS:
        raise PolicyError(f"document is larger than {MAX_DOCUMENT_CHARS} characters")
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            return Document(text, _JsonReader(text).document(), "json")
        except _NotJson as error:
            json_error = str(error)
        try:
            return Document(text, _yaml(text), "yaml")
        except PolicyError:
            raise PolicyError(json_error) from None
    return Document(text, _yaml(text), "yaml")


class _NotJson(PolicyError):
    pass


class _JsonReader:
    """A JSON reader (RFC 8259) that keeps positions, repeated keys and numbers as written."""

    _SPACE = re.compile(r"[ \t\n\r]*")
    _NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")

    def __init__(self, text: str) -> None:
        self.text = text
        self.budget = MAX_NODES

    def document(self) -> Node:
        node = self.value(self._skip(0), 0)
        end = self._skip(node.end)
        if end != len(self.text):
            self._fail(end, "extra data after the document")
        return node

    def _skip(self, pos: int) -> int:
        return self._SPACE.match(self.text, pos).end()  # type: ignore[union-attr]

    def _fail(self, pos: int, message: str) -> None:
        line = self.text.count("\n", 0, pos) + 1
        column = pos - self.text.rfind("\n", 0, pos)
        raise _NotJson(f"not JSON: {message} at line {line} column {column}")

    def value(self, pos: int, depth: int) -> Node:
        self.budget -= 1
        if self.budget < 0:
            raise PolicyError(f"document has more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise PolicyError(f"document is nested more than {MAX_DEPTH} levels deep")
        char = self.text[pos:pos + 1]
        if char == "{":
            return self._object(pos, depth)
        if char == "[":
            return self._array(pos, depth)
        if char == '"':
            try:
                string, end = json.decoder.scanstring(self.text, pos + 1, True)  # type: ignore[attr-defined]
            except json.JSONDecodeError as error:
                self._fail(error.pos, error.msg.lower())
            return Node(SCALAR, string, pos, end)
        for word, constant in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, pos):
                return Node(SCALAR, constant, pos, pos + len(word))
        number = self._NUMBER.match(self.text, pos)
        if number and number.end() > pos:
            return Node(SCALAR, _Number(number.group()), pos, number.end())
        self._fail(pos, "expecting a value")
        raise AssertionError  # pragma: no cover - _fail raises

    def _object(self, start: int, depth: int) -> Node:
        pairs: list[tuple[Node, Node]] = []
        pos = self._skip(start + 1)
        if self.text.startswith("}", pos):
            return Node(MAP, pairs, start, pos + 1)
        while True:
            if not self.text.startswith('"', pos):
                self._fail(pos, "expecting a property name in double quotes")
            key = self.value(pos, depth + 1)
            pos = self._skip(key.end)
            if not self.text.startswith(":", pos):
                self._fail(pos, "expecting ':'")
            member = self.value(self._skip(pos + 1), depth + 1)
            pairs.append((key, member))
            pos = self._skip(member.end)
            if self.text.startswith("}", pos):
                return Node(MAP, pairs, start, pos + 1)
            if not self.text.startswith(",", pos):
                self._fail(pos, "expecting ',' or '}'")
            pos = self._skip(pos + 1)

    def _array(self, start: int, depth: int) -> Node:
        items: list[Node] = []
        pos = self._skip(start + 1)
        if self.text.startswith("]", pos):
            return Node(SEQ, items, start, pos + 1)
        while True:
            item = self.value(pos, depth + 1)
            items.append(item)
            pos = self._skip(item.end)
            if self.text.startswith("]", pos):
                return Node(SEQ, items, start, pos + 1)
            if not self.text.startswith(",", pos):
                self._fail(pos, "expecting ',' or ']'")
            pos = self._skip(pos + 1)


def _yaml(text: str) -> Node:
    """YAML composed (the safe loader's grammar, no object construction) and turned into Nodes, bounded."""
    import yaml

    loader = bounded_composer()(text)
    try:
        composed = loader.get_single_node()
        if composed is None:
            return Node(SCALAR, None, 0, 0)
        return _convert(composed, [MAX_NODES], 0, yaml, loader)
    except yaml.YAMLError as error:
        raise PolicyError(f"neither JSON nor YAML: {str(error).splitlines()[0]}" + _where(error)) from None
    except RecursionError:
        raise PolicyError(f"document is nested more than {MAX_DEPTH} levels deep") from None
    finally:
        loader.dispose()


def _where(error: Any) -> str:
    mark = getattr(error, "problem_mark", None)
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


_YAML_TAG = "tag:yaml.org,2002:"


def _convert(node: Any, budget: list[int], depth: int, yaml: Any, loader: Any) -> Node:
    """A composed YAML node as a Node: scalars typed as JSON would read them (numbers as written)."""
    budget[0] -= 1
    if budget[0] < 0:
        raise PolicyError(f"document expands to more than {MAX_NODES} values (YAML aliases?)")
    if depth > MAX_DEPTH:
        raise PolicyError(f"document is nested more than {MAX_DEPTH} levels deep")
    start, end = node.start_mark.index, node.end_mark.index
    short = node.tag[1:] if node.tag.startswith("!") and not node.tag.startswith("!!") else None
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # YAML merge keys (<<)
        pairs = [(_convert(k, budget, depth + 1, yaml, loader), _convert(v, budget, depth + 1, yaml, loader))
                 for k, v in node.value]
        converted = Node(MAP, pairs, start, end, bool(node.flow_style))
    elif isinstance(node, yaml.SequenceNode):
        converted = Node(SEQ, [_convert(item, budget, depth + 1, yaml, loader) for item in node.value], start, end, bool(node.flow_style))
    else:
        converted = Node(SCALAR, _scalar(node, short is not None), start, end)
    if short is None:
        return converted
    # CloudFormation's short form: !Ref X is {"Ref": X}, !Sub X is {"Fn::Sub": X}, ...
    name = "Ref" if short == "Ref" else f"Fn::{short}"
    return Node(MAP, [(Node(SCALAR, name, start, start), converted)], start, end, converted.flow, tag=short)


def _scalar(node: Any, tagged: bool) -> Any:
    text = node.value
    if node.style is not None or tagged:  # quoted or tagged: a string
        return text
    tag = node.tag[len(_YAML_TAG):] if node.tag.startswith(_YAML_TAG) else ""
    if tag in ("int", "float"):
        return _Number(text) if _JSON_NUMBER.fullmatch(text) else text
    if tag == "bool":
        return text.lower() in ("true", "yes", "on", "y")
    if tag == "null":
        return None
    return text
