"""The rules a batch read from a file must meet, shared by the full reader and its fast path.

Both readers report a batch's problems through these functions, so the two cannot word or place
them differently. A problem is a string that starts with where it is (``"line 5: ..."`` or
``"line 5, column 3: ..."``), as `where_in_file` reads it back.
"""

from __future__ import annotations

import re
from array import array
from collections import Counter
from collections.abc import Iterator

from ._limits import MAX_GL_REC_ID, MAX_IDENTIFIER_LENGTH
from ._spool import IdBitmap

__all__ = [
    "NOT_AN_ID",
    "at_line",
    "at_position",
    "identifier_problem",
    "missing_ids_problem",
    "repeats",
    "where_in_file",
]

NOT_AN_ID = f"is not a GL entry id (a whole number from 1 to {MAX_GL_REC_ID})"

_WHERE = re.compile(r"line (\d+)(?:, column (\d+))?: ")


def at_line(line: int, message: str) -> str:
    """A batch problem found at ``line``."""
    return f"line {line}: {message}"


def at_position(at: tuple[int, int], message: str) -> str:
    """A batch problem found at ``at``: (line, column)."""
    return f"line {at[0]}, column {at[1]}: {message}"


def where_in_file(error: str) -> tuple[int | None, int | None, str]:
    """A batch error's line, column (or None) and message: ``"line 5, column 3: x"``."""
    match = _WHERE.match(error)
    if match is None:
        return None, None, error
    column = match.group(2)
    return int(match.group(1)), None if column is None else int(column), error[match.end() :]


def identifier_problem(identifier: str) -> str | None:
    """What is wrong with a ``batchIdentifier`` (stripped), or None."""
    if len(identifier) <= MAX_IDENTIFIER_LENGTH:
        return None
    return (
        f"batchIdentifier is {len(identifier)} characters long; "
        f"ConnectWise allows at most {MAX_IDENTIFIER_LENGTH}"
    )


def repeats(ids: array[int], seen: IdBitmap) -> Iterator[tuple[int, str]]:
    """Add a batch's ids to ``seen``; yield (id, problem) for those repeated, once each."""
    again = seen.add_all(ids)
    if not again:
        return
    counts = Counter(ids)
    for value, times_seen in Counter(again).items():
        if counts[value] > 1:
            yield value, "is repeated in this batch"
        if times_seen == counts[value]:  # even its first occurrence was seen before
            yield value, "is already in an earlier batch of this file"


def missing_ids_problem(*, has_ids: bool, has_lists: bool, found_any: bool) -> str | None:
    """The problem of a batch that gives no id at all, or None.

    Args:
        has_ids: It has a ``<glRecIds>``.
        has_lists: It has a ``<glEntryIds>``.
        found_any: Anything was written as an id, valid or not.
    """
    if not has_ids and not has_lists:
        return "this <Batch> has no <glRecIds> or <glEntryIds>"
    if not found_any:
        empty = "<glRecIds>" if has_ids else "<glEntryIds>"
        return f"this <Batch> has an empty {empty}"
    return None
