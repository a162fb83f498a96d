r"""ConnectWise's ``conditions`` query language: parsed into a small tree, evaluated per record.

Grammar (keywords and field names are case-insensitive; ``and`` binds tighter than ``or``)::

    expression := term (("and" | "or") term)*
    term       := "(" expression ")" | field operator value | field ["not"] "in" "(" values ")"
    operator   := "=" | "!=" | "<" | "<=" | ">" | ">=" | ["not"] "like" | ["not"] "contains"
    value      := "string" | 'string' | number | true | false | null | [date]
    field      := name ("/" name)*        (a nested field: company/name)

Strings are in double or single quotes. ConnectWise documents no escape inside them, so the
simulator reads none: a backslash is itself and the next quote of the same kind ends the string
(``"a\"b"`` is refused), and code that relies on an escape fails in tests, not in production.
``like`` takes ``*`` as a wildcard. Dates in brackets compare as moments in time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Union

import attrs

__all__ = [
    "AllOf",
    "AnyOf",
    "Compare",
    "ConditionError",
    "Member",
    "Node",
    "check_fields",
    "field_paths",
    "matches",
    "parse_conditions",
    "value_at",
]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"[^"]*"|'[^']*')
      | (?P<date>\[[^\]]*\])
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op><=|>=|!=|=|<|>)
      | (?P<punct>[(),])
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*(?:/[A-Za-z_][A-Za-z0-9_.]*)*)
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
    "like": lambda a, b: isinstance(a, str) and _like(str(b)).fullmatch(a) is not None,
    "contains": lambda a, b: isinstance(a, str) and str(b).lower() in a.lower(),
}


def _like(pattern: str) -> re.Pattern[str]:
    """``*`` matches any run of characters; everything else stands for itself (any case)."""
    return re.compile(".*".join(map(re.escape, pattern.split("*"))), re.IGNORECASE | re.DOTALL)


class ConditionError(ValueError):
    """The conditions text is not valid; the message says where."""


@attrs.frozen
class Compare:
    """``field operator value``; ``negate`` for ``not like`` and ``not contains``.

    ``field`` is in lower case (field names are not case-sensitive), ``/`` between the names of
    a nested field.
    """

    field: str
    operator: str
    value: Any
    negate: bool = False


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


def value_at(record: Mapping[str, Any], field: str) -> Any:
    """The value of ``field`` (lower case, ``/`` into nested objects) in ``record``, or None."""
    value: Any = record
    for name in field.split("/"):
        if not isinstance(value, Mapping):
            return None
        value = next((v for k, v in value.items() if k.lower() == name), None)
    return value


def field_paths(record: Mapping[str, Any], prefix: str = "") -> set[str]:
    """Every field of ``record`` that conditions can name, in lower case."""
    found = set()
    for key, value in record.items():
        path = prefix + key.lower()
        found.add(path)
        if isinstance(value, Mapping):
            found |= field_paths(value, path + "/")
    return found


def _fields_named(node: Node) -> set[str]:
    """The fields ``node`` names."""
    if isinstance(node, (Compare, Member)):
        return {node.field}
    return set().union(*(_fields_named(term) for term in node.terms))


def check_fields(node: Node, known: set[str]) -> None:
    """Refuse ``node`` if it names a field not in ``known`` (as ConnectWise does)."""
    unknown = sorted(_fields_named(node) - known)
    if unknown:
        raise ConditionError(f"unknown field {unknown[0]!r}")


def _comparable(actual: Any, wanted: Any) -> Any:
    if isinstance(wanted, datetime) and isinstance(actual, str):
        return _moment(actual)
    return actual


def matches(node: Node, record: Mapping[str, Any]) -> bool:
    """Whether ``record`` satisfies ``node``."""
    if isinstance(node, Compare):
        actual = _comparable(value_at(record, node.field), node.value)
        return _COMPARE[node.operator](actual, node.value) != node.negate
    if isinstance(node, Member):
        return (value_at(record, node.field) in node.values) != node.negate
    if isinstance(node, AllOf):
        return all(matches(term, record) for term in node.terms)
    return any(matches(term, record) for term in node.terms)


def _moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


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
                value = raw[1:-1]  # no escapes: ConnectWise documents none
            elif kind == "number":
                value = float(raw) if "." in raw else int(raw)
            elif kind == "date":
                value = _moment(raw[1:-1])
                if value is None:
                    raise ConditionError(f"{raw} at {start} is not a date")
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
        field = str(value).lower()
        negate = self.keyword("not") is not None
        if self.keyword("in"):
            return Member(field, self.values(), negate)
        operator = self.keyword("like", "contains")
        if operator is None and negate:
            raise ConditionError(f"expected in, like or contains after 'not' at {position}")
        if operator is None:
            op_kind, operator, op_position = self.take()
            if op_kind != "op":
                raise ConditionError(f"expected an operator at {op_position}, found {operator!r}")
        return Compare(field, str(operator), self.value(), negate)

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
