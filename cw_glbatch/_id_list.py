"""A comma-separated list of ids (``<glEntryIds>``), split as the parser delivers its text.

Expat hands the text of an element over in pieces (at line ends, character references and its
buffer's edges), each with the line and column where it starts. `IdListSplitter` joins them
into items and knows where each item starts in the file, so a problem can be shown at its
item. It only splits; what an item means is the reader's business.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["IdListSplitter", "Item"]

Position = tuple[int, int]  # (line, column), both from 1


class Item(NamedTuple):  # a tuple: lists can hold many thousands of items
    """One item of a list: its text without the spaces around it, and where it is.

    ``at`` is its first character; for an empty item, the comma (or the end) that closes it.
    """

    text: str
    at: Position


def _position(text: str, start: Position, offset: int) -> Position:
    """The position of ``text[offset]``, for ``text`` starting at ``start``."""
    newlines = text.count("\n", 0, offset)
    if not newlines:
        return start[0], start[1] + offset
    return start[0] + newlines, offset - text.rfind("\n", 0, offset)


class IdListSplitter:
    """Splits one list's text, fed piece by piece, into `Item`s."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._item: list[str] = []
        self._at: Position | None = None
        self.size = 0  # characters fed

    @property
    def text(self) -> str:
        """The whole text fed so far, as written."""
        return "".join(self._text)

    def feed(self, text: str, start: Position) -> list[Item]:
        """Take the piece ``text``, which starts at ``start``; return the items it completes."""
        self._text.append(text)
        self.size += len(text)
        line, column = start
        flat = "\n" not in text  # the usual piece: every position is on the start's line
        done = []
        offset = 0
        for number, piece in enumerate(text.split(",")):
            if number:  # a comma closed the item before this piece
                end = offset - 1
                done.append(
                    self._close((line, column + end) if flat else _position(text, start, end))
                )
            if self._at is None:
                stripped = piece.lstrip()
                if stripped:
                    first = offset + len(piece) - len(stripped)
                    self._at = (line, column + first) if flat else _position(text, start, first)
            self._item.append(piece)
            offset += len(piece) + 1
        return done

    def end(self, at: Position) -> list[Item]:
        """The list ends at ``at``: its last item, unless the whole list is blank."""
        return [self._close(at)] if self.text.strip() else []

    def _close(self, end: Position) -> Item:
        item = Item("".join(self._item).strip(), self._at or end)
        self._item, self._at = [], None
        return item
