r"""ConnectWise's ``conditions`` query language: parsed into a small tree, evaluated per record.

Grammar (keywords are case-insensitive; ``and`` binds tighter than ``or``)::

    expression := term (("and" | "or") term)*
    term       := "(" expression ")" | field operator value | field ["not"] "in" "(" values ")"
    operator   := "=" | "!=" | "<" | "<=" | ">" | ">=" | "like" | "contains"
    value      := "string" | number | true | false | null | [date]

Strings are double-quoted; ``\\"`` is a quote and ``\\\\`` a backslash inside one.
``like`` takes ``*`` as a wildcard, as ConnectWise does.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from typing import Any, Union

import attrs

__all__ = [
    "AllOf",
    "AnyOf",
    "Compare",
    "ConditionError",
    "Member",
    "Node",
    "matches",
    "parse_conditions",
]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<date>\[[^\]]*\])
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op><=|>=|!=|=|<|>)
      | (?P<punct>[(),])
      | (?P<word>[A-Za-z_][A-Za-z0-9_./]*)
    )""",
    re.VERBOSE,
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a is not None and b is not None and a < b,
    "<=": lambda a, b: a is not None and b is not None and a <= b,
    ">": lambda a, b: a is not None and b is not None and a > b,
    ">=": lambda a, b: a is not None and b is not None and a >= b,
    "like": lambda a, b: (
        isinstance(a, str) and fnmatch.fnmatchcase(a.lower(), str(b).lower().replace("%", "*"))
    ),
    "contains": lambda a, b: isinstance(a, str) and str(b).lower() in a.lower(),
}


class ConditionError(ValueError):
    """The conditions text is not valid; the message says where."""


@attrs.frozen
class Compare:
    """``field operator value``."""

    field: str
    operator: str
    value: Any


@attrs.frozen
class Member:
    """``field [not] in (values)``."""

    field: str
    values: frozenset[Any]
    negate: bool = False


@attrs.frozen
class AllOf:
    """Terms joined by ``and``."""

    terms: tuple[Node, ...]


@attrs.frozen
class AnyOf:
    """Terms joined by ``or``."""

    terms: tuple[Node, ...]


Node = Union[Compare, Member, AllOf, AnyOf]  # noqa: UP007 - attrs needs it at runtime on 3.10


def matches(node: Node, record: Mapping[str, Any]) -> bool:
    """Whether ``record`` satisfies ``node``."""
    if isinstance(node, Compare):
        return _COMPARE[node.operator](record.get(node.field), node.value)
    if isinstance(node, Member):
        return (record.get(node.field) in node.values) != node.negate
    if isinstance(node, AllOf):
        return all(matches(term, record) for term in node.terms)
    return any(matches(term, record) for term in node.terms)


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, Any, int]] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if not match or match.end() == position:
                if text[position:].strip():
                    raise ConditionError(
                        f"unexpected {text[position : position + 10]!r} at {position}"
                    )
                break
            kind = match.lastgroup or ""
            raw, start = match.group(kind), match.start(kind)
            value: Any = raw
            if kind == "string":
                value = _unquote(raw)
            elif kind == "number":
                value = float(raw) if "." in raw else int(raw)
            elif kind == "date":
                value = raw[1:-1]
                kind = "string"
            elif kind == "word":
                lowered = raw.lower()
                if lowered in ("true", "false", "null"):
                    kind, value = "literal", {"true": True, "false": False, "null": None}[lowered]
            self.tokens.append((kind, value, start))
            position = match.end()
        self.index = 0

    def peek(self) -> tuple[str, Any, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, Any, int]:
        token = self.peek()
        if token is None:
            raise ConditionError(f"conditions end too soon: {self.text!r}")
        self.index += 1
        return token

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token and token[0] == "word" and str(token[1]).lower() in words:
            self.index += 1
            return str(token[1]).lower()
        return None

    def expect(self, punct: str) -> None:
        kind, value, position = self.take()
        if (kind, value) != ("punct", punct):
            raise ConditionError(f"expected {punct!r} at {position}, found {value!r}")

    def expression(self) -> Node:
        terms = [self.conjunction()]
        while self.keyword("or"):
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else AnyOf(tuple(terms))

    def conjunction(self) -> Node:
        terms = [self.term()]
        while self.keyword("and"):
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else AllOf(tuple(terms))

    def term(self) -> Node:
        kind, value, position = self.take()
        if (kind, value) == ("punct", "("):
            inner = self.expression()
            self.expect(")")
            return inner
        if kind != "word":
            raise ConditionError(f"expected a field name at {position}, found {value!r}")
        field = str(value)
        negate = self.keyword("not") is not None
        if self.keyword("in"):
            return Member(field, self.values(), negate)
        if negate:
            raise ConditionError(f"expected 'in' after 'not' at {position}")
        operator = self.keyword("like", "contains")
        if operator is None:
            op_kind, operator, op_position = self.take()
            if op_kind != "op":
                raise ConditionError(f"expected an operator at {op_position}, found {operator!r}")
        return Compare(field, str(operator), self.value())

    def value(self) -> Any:
        kind, value, position = self.take()
        if kind not in ("string", "number", "literal"):
            raise ConditionError(f"expected a value at {position}, found {value!r}")
        return value

    def values(self) -> frozenset[Any]:
        self.expect("(")
        found = [self.value()]
        while (token := self.peek()) is not None and token[:2] == ("punct", ","):
            self.take()
            found.append(self.value())
        self.expect(")")
        return frozenset(found)


def parse_conditions(text: str) -> Node:
    """The tree of ``text``; `ConditionError` if it is not valid."""
    parser = _Parser(text)
    if not parser.tokens:
        raise ConditionError("conditions are empty")
    predicate = parser.expression()
    if parser.peek() is not None:
        _, value, position = parser.take()
        raise ConditionError(f"unexpected {value!r} at {position}")
    return predicate
