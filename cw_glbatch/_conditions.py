r"""Finding batches by identifier with ConnectWise's ``conditions`` query, without any escape.

ConnectWise documents no escape for a quote inside a ``conditions`` string, so identifiers
holding ``"``, ``'`` or ``\`` are never put in one: `FindPlan` asks ``batchIdentifier in
(...)`` for the others, in chunks that keep each URL short, and lists the rest to compare in
Python. Pure functions over plain values.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

import attrs

__all__ = ["FindPlan", "condition_string", "identifier_conditions", "is_condition_safe"]

_UNSAFE_IN_CONDITIONS = frozenset("\"'\\")


def is_condition_safe(value: str) -> bool:
    """Whether ``value`` can be written as a ``conditions`` string without any escape.

    ConnectWise documents no escape for a quote inside a ``conditions`` string, so values
    holding ``"``, ``'`` or a backslash are never put in one.
    """
    return not any(c in value for c in _UNSAFE_IN_CONDITIONS)


def condition_string(value: str) -> str:
    """``value`` as a string literal in ConnectWise's ``conditions`` syntax.

    Raises:
        ValueError: ``value`` holds a quote or a backslash (see `is_condition_safe`).
    """
    if not is_condition_safe(value):
        raise ValueError(f"{value!r} holds a quote or a backslash: look it up another way")
    return f'"{value}"'


def identifier_conditions(
    identifiers: Iterable[str], *, min_id: int | None = None, max_length: int = 1500
) -> list[str]:
    """``batchIdentifier in (...)`` conditions covering ``identifiers``, each short enough.

    Each condition, URL-encoded, stays within ``max_length`` characters so the request URL stays
    under the ~2,000 characters ConnectWise and proxies accept. With ``min_id``, each also says
    ``and id > min_id``.

    Raises:
        ValueError: An identifier holds a quote or a backslash (see `is_condition_safe`).
    """
    suffix = f" and id > {min_id}" if min_id is not None else ""
    fixed = len(quote(f"batchIdentifier in (){suffix}", safe=""))
    comma = len(quote(",", safe=""))
    chunks: list[list[str]] = [[]]
    size = fixed
    for identifier in dict.fromkeys(identifiers):
        literal = condition_string(identifier)
        cost = len(quote(literal, safe="")) + (comma if chunks[-1] else 0)
        if chunks[-1] and size + cost > max_length:
            chunks.append([])
            size = fixed
            cost -= comma
        chunks[-1].append(literal)
        size += cost
    return [f"batchIdentifier in ({','.join(chunk)}){suffix}" for chunk in chunks if chunk]


@attrs.frozen
class FindPlan:
    r"""How to find batches by identifier: ``conditions`` to ask, and ``odd`` ones to list for.

    ConnectWise documents no escape for quotes inside ``conditions``, so identifiers holding
    ``"``, ``'`` or ``\`` are never put in one: they are found by listing the batches matching
    ``listing`` (ids above ``min_id``) and comparing in Python.
    """

    conditions: list[str]
    odd: frozenset[str]
    listing: str

    @classmethod
    def of(cls, identifiers: Iterable[str], min_id: int | None) -> FindPlan:
        """The plan for ``identifiers`` among the batches with an id above ``min_id``."""
        wanted = list(dict.fromkeys(identifiers))
        plain = [i for i in wanted if is_condition_safe(i)]
        conditions = identifier_conditions(plain, min_id=min_id)
        return cls(conditions, frozenset(wanted).difference(plain), f"id > {min_id or 0}")
