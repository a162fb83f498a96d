"""The full reader's expat handlers: they check every part of the format as it is parsed.

It reads any file: the standard layout, and every other way of writing the format (options,
``<glEntryIds>`` lists, comments, entities, unknown elements kept for the fail file). The fast
path (`_reader_fast`) hands every file it is not sure of over to it, so the full reader alone
decides what a file that is not of the standard layout means, and every `InputError`
(`_reader` turns a `Refusal` or an expat error into one).

Problems of the file as a whole raise `InputError`. Problems of one batch are recorded in that
batch's ``errors`` (each with its line) and reading carries on. Nothing read is dropped: values
that are not ids, and elements the format does not know, are kept on the `BatchRequest` so a fail
file gives them back; a value too large to keep refuses the file instead.
"""

from __future__ import annotations

import pyexpat
from array import array
from typing import Any, NoReturn

from ._batch_rules import (
    NOT_AN_ID,
    at_line,
    at_position,
    identifier_problem,
    missing_ids_problem,
    repeats,
)
from ._export import gl_id
from ._id_list import IdListSplitter, Item
from ._models import BATCH_OPTIONS, TEXT_OPTIONS
from ._spool import BatchSpool, IdBitmap
from ._writer import xml_text

__all__ = ["MAX_VALUE_LENGTH", "Handlers", "Refusal"]

MAX_VALUE_LENGTH = 4096  # characters in one value; longer refuses the file
MAX_LIST_LENGTH = 256 * 1024  # characters in one <glEntryIds> (some 30,000 ids)
MAX_UNKNOWN_LENGTH = 64 * 1024  # characters of unknown content kept per batch
MAX_DEPTH = 64  # the format needs 4 levels
_IGNORED = frozenset({"batchId", "error"})  # what XmlResultWriter adds; skipped on input
_OPTIONS = {element: field for field, element in BATCH_OPTIONS.items()}
_TEXT_ELEMENTS = frozenset(BATCH_OPTIONS[field] for field in TEXT_OPTIONS)
_BOOLEANS = {"true": True, "false": False}

# Where the handlers are. _ID is the hot path: a <glRecId>, which is not pushed on the stack.
# _LIST is inside a <glEntryIds>, _OPTION inside a per-batch option such as <exportInvoicesFlag>.
_DOC, _ROOT, _BATCH, _IDS, _ID, _IDENT, _IGNORE, _UNKNOWN, _DONE, _LIST, _OPTION = range(11)


class Refusal(Exception):  # noqa: N818 - internal signal, turned into InputError
    def __init__(self, reason: str, line: int, column: int) -> None:
        self.reason, self.line, self.column = reason, line, column


_KNOWN_IN_BATCH = frozenset({"batchIdentifier", "glRecIds", "glEntryIds"})


class Handlers:
    """Expat callbacks: a small state machine over the four levels of the format."""

    __slots__ = (
        "_batch_line", "_depth", "_errors", "_fragment", "_has_identifier", "_has_ids",
        "_identifier", "_ids", "_ids_line", "_invalid", "_list", "_list_problems", "_listed",
        "_lists", "_option", "_options", "_parser",
        "_resume", "_seen", "_spool", "_text", "_unknown", "_unknown_size", "closed_at", "stack",
        "state",
    )  # fmt: skip
    _identifier: str | None
    _ids: array[int]  # 4 bytes per id while the batch is checked
    _errors: list[str]
    _invalid: list[str]
    _unknown: list[str]
    _fragment: list[str]
    _lists: list[str]
    _list: IdListSplitter
    _listed: dict[int, tuple[int, int]]
    _options: dict[str, Any]  # BatchRequest field -> value read, None while unknown
    stack: list[tuple[str, int]]

    def __init__(self, parser: pyexpat.XMLParserType, spool: BatchSpool) -> None:
        self._parser = parser
        self._spool = spool
        self._seen = IdBitmap()
        self.state = _DOC
        self.stack = []  # open elements but <glRecId>: (name, line)
        self.closed_at = 0  # line where </Batches> closed the document
        self._resume = _BATCH  # state after ignored or unknown content
        self._depth = 0  # levels of ignored or unknown content open
        self._text = ""
        self._fragment = []
        self._begin_batch(0)
        parser.StartElementHandler = self.start
        parser.EndElementHandler = self.end
        parser.CharacterDataHandler = self.data

    def close(self) -> None:
        self._seen.close()

    def _line(self) -> int:
        return self._parser.CurrentLineNumber

    def refuse(self, reason: str) -> NoReturn:
        raise Refusal(reason, self._line(), self._parser.CurrentColumnNumber + 1)

    # Errors start with where they are, as `where_in_file` reads them back.
    def _error(self, message: str, line: int | None = None) -> None:
        self._errors.append(at_line(self._line() if line is None else line, message))

    def _error_at(self, message: str, at: tuple[int, int]) -> None:
        self._errors.append(at_position(at, message))

    def _here(self) -> tuple[int, int]:
        return self._parser.CurrentLineNumber, self._parser.CurrentColumnNumber + 1

    def _begin_batch(self, line: int) -> None:
        self._batch_line = line
        self._identifier = None
        self._has_identifier = False
        self._has_ids = False
        self._ids = array("i")
        self._ids_line = line
        self._errors = []
        self._invalid = []
        self._unknown = []
        self._unknown_size = 0
        self._lists = []  # the <glEntryIds> values, as written
        self._listed = {}  # id -> where its last <glEntryIds> item is
        self._list_problems = 0
        self._options = {}

    # -- start tags ------------------------------------------------------------------------

    def start(self, name: str, attrs: dict[str, str]) -> None:
        state = self.state
        if state == _IDS and name == "glRecId":
            if attrs:
                self._refuse_attributes(name, attrs)
            self.state = _ID
            self._text = ""
            return
        if state in (_IGNORE, _UNKNOWN):
            self._depth += 1
            if state == _UNKNOWN:
                self._keep(f"<{name}{_attributes(attrs)}>")
        elif state == _BATCH:
            self._start_in_batch(name, attrs)
        elif state == _ROOT:
            if name != "Batch":
                self.refuse(self._misplaced(name))
            if attrs:
                self._refuse_attributes(name, attrs)
            self.state = _BATCH
            self._begin_batch(self._line())
        elif state == _DOC:
            if name != "Batches":
                self.refuse(
                    f"the root element is <{name}>, not <Batches>: this is not a batches file."
                )
            self.state = _ROOT
        else:
            parent = "glRecId" if state == _ID else self.stack[-1][0]
            expected = "(expected <glRecId>)" if state == _IDS else "(a value is plain text)"
            self._error(f"unexpected element <{name}> inside <{parent}> {expected}")
            self._begin_unknown(name, attrs)
        self.stack.append((name, self._line()))
        if len(self.stack) > MAX_DEPTH:
            self.refuse(
                f"elements are nested more than {MAX_DEPTH} deep; this is not a batches file."
            )

    def _start_in_batch(self, name: str, attrs: dict[str, str]) -> None:
        if attrs and (name in _KNOWN_IN_BATCH or name in _OPTIONS):
            self._refuse_attributes(name, attrs)
        if name in ("glRecIds", "batchIdentifier") and (
            self._has_ids if name == "glRecIds" else self._has_identifier
        ):
            # Kept verbatim, so the fail file gives it back and the batch keeps failing.
            self._error(f"a second <{name}> in this <Batch>")
            self._begin_unknown(name, attrs)
        elif name == "glRecIds":
            self._has_ids = True
            self._ids_line = self._line()
            self.state = _IDS
        elif name == "glEntryIds":
            self._begin_list()
        elif name in _OPTIONS:
            if _OPTIONS[name] in self._options:
                self._error(f"a second <{name}> in this <Batch>")
                self._begin_unknown(name, attrs)  # kept, so the fail file gives it back
            else:
                self._options[_OPTIONS[name]] = None
                self._option, self._text, self.state = name, "", _OPTION
        elif name == "batchIdentifier":
            self._has_identifier = True
            self.state = _IDENT
            self._text = ""
        elif name in _IGNORED:
            self._resume, self._depth, self.state = _BATCH, 1, _IGNORE
        else:
            self._error(
                f"unknown element <{name}> in <Batch> (expected <batchIdentifier>, <glRecIds>, "
                "<glEntryIds>, or a batch option such as <exportInvoicesFlag>)"
            )
            self._begin_unknown(name, attrs)

    def _refuse_attributes(self, name: str, attrs: dict[str, str]) -> NoReturn:
        self.refuse(
            f"<{name}{_attributes(attrs)}> has attributes, which this format does not have "
            "(they would be ignored). Write each value as an element, or remove them."
        )

    def _begin_unknown(self, name: str, attrs: dict[str, str]) -> None:
        self._resume, self._depth, self.state = self.state, 1, _UNKNOWN
        self._fragment = []
        self._keep(f"<{name}{_attributes(attrs)}>")

    def _keep(self, xml: str) -> None:
        """Add to the unknown element being captured."""
        self._unknown_size += len(xml)
        if self._unknown_size > MAX_UNKNOWN_LENGTH:
            self.refuse(
                f"the <Batch> at line {self._batch_line} holds more than {MAX_UNKNOWN_LENGTH} "
                "characters of content this format does not have; this is not a batches file."
            )
        self._fragment.append(xml)

    def _misplaced(self, name: str) -> str:
        parent, line = self.stack[-1]
        hint = (
            f" If this line should close <{parent}>, write </{parent}>." if name == parent else ""
        )
        return (
            f"<{name}> cannot be inside <{parent}> (opened at line {line}): only <Batch> "
            f"elements belong there.{hint}"
        )

    # -- text ------------------------------------------------------------------------------

    def data(self, text: str) -> None:
        if self.state == _ID:
            self._text += text
            if len(self._text) > MAX_VALUE_LENGTH:
                self._too_long()
        elif self.state == _LIST:
            self._list_data(text)
        elif self.state in (_IDENT, _UNKNOWN, _OPTION) or not text.isspace():
            self._other_data(text)

    def _other_data(self, text: str) -> None:
        state = self.state
        if state in (_IDENT, _OPTION):
            self._text += text
            if len(self._text) > MAX_VALUE_LENGTH:
                self._too_long()
        elif state == _UNKNOWN:
            self._keep(xml_text(text))
        elif state in (_BATCH, _IDS):
            self._error(f"unexpected text {_shorten(text.strip())!r} in <{self.stack[-1][0]}>")
            self._fragment = []
            self._keep(xml_text(text.strip()))
            self._unknown.append(self._fragment[0])
        elif state != _IGNORE:
            self.refuse(
                f"unexpected text {_shorten(text.strip())!r} in <Batches>: "
                "only <Batch> elements belong there."
            )

    def _too_long(self) -> NoReturn:
        self.refuse(
            f"a value longer than {MAX_VALUE_LENGTH} characters; this is not a batches file."
        )

    # -- end tags --------------------------------------------------------------------------

    def end(self, name: str) -> None:
        if self.state == _ID:
            self.state = _IDS
            text = self._text
            # Up to 9 digits is always in range but for 0; anything else is checked one by one.
            if len(text) < 10 and text.isdigit() and text.isascii() and (value := int(text)):
                self._ids.append(value)
            else:
                self._odd_id(text.strip())
            return
        state = self.state
        self.stack.pop()
        if state in (_IGNORE, _UNKNOWN):
            if state == _UNKNOWN:
                self._keep(f"</{name}>")
            self._depth -= 1
            if self._depth == 0:
                self.state = self._resume
                if state == _UNKNOWN:
                    self._unknown.append("".join(self._fragment))
        elif state in (_IDENT, _LIST, _OPTION):
            self.state = _BATCH
            self._end_value(state)
        elif state == _IDS:
            self.state = _BATCH
        elif state == _BATCH:
            self.state = _ROOT
            self._end_batch()
        else:
            self.state = _DONE
            self.closed_at = self._line()

    def _end_value(self, state: int) -> None:
        if state == _IDENT:
            self._end_identifier(self._text.strip())
        elif state == _LIST:
            self._end_list()
        else:
            self._end_option(self._option, self._text)

    def _odd_id(self, text: str) -> None:
        """A glRecId that is not 1 to 9 plain digits: padded, 10 digits long, or invalid."""
        if (value := gl_id(text)) is not None:
            self._ids.append(value)
        else:
            self._invalid.append(text)
            self._error(f"glRecId {_shorten(text)!r} {NOT_AN_ID}")

    # -- <glEntryIds>: comma-separated ids, each problem reported at its item ------------------

    def _begin_list(self) -> None:
        self._list = IdListSplitter()
        self.state = _LIST
        # Unbuffered, expat reports each piece of text where it starts: items get columns.
        self._parser.buffer_text = False

    def _list_data(self, text: str) -> None:
        for item in self._list.feed(text, self._here()):
            self._list_item(item)
        if self._list.size > MAX_LIST_LENGTH:
            self.refuse(
                f"a <glEntryIds> longer than {MAX_LIST_LENGTH} characters; split the batch."
            )

    def _list_item(self, item: Item) -> None:
        value = gl_id(item.text)
        if value is not None:
            self._ids.append(value)
            self._listed[value] = item.at
            return
        self._list_problems += 1
        if item.text:
            self._error_at(f"glEntryIds item {_shorten(item.text)!r} {NOT_AN_ID}", item.at)
        else:
            self._error_at("an empty item in <glEntryIds> (two commas, or one at an end)", item.at)

    def _end_list(self) -> None:
        self._parser.buffer_text = True
        for item in self._list.end(self._here()):
            self._list_item(item)
        self._lists.append(self._list.text)

    def _end_option(self, name: str, text: str) -> None:
        field, value = _OPTIONS[name], text.strip()
        if name in _TEXT_ELEMENTS:
            self._options[field] = value or None
        elif value in _BOOLEANS:
            self._options[field] = _BOOLEANS[value]
        else:
            self._error(f"<{name}> is {_shorten(value)!r}; write true or false")
            self._unknown.append(f"<{name}>{xml_text(text)}</{name}>")

    def _id_problem(self, value: int, problem: str) -> None:
        """Report an id's problem at its <glEntryIds> item, else at the <glRecIds>."""
        at = self._listed.get(value)
        if at is None:
            self._error(f"glRecId {value} {problem}", self._ids_line)
        else:
            self._error_at(f"glEntryIds item {value} {problem}", at)

    def _end_identifier(self, identifier: str) -> None:
        self._identifier = identifier or None  # empty means "none given"
        if (problem := identifier_problem(identifier)) is not None:
            self._error(problem)

    def _end_batch(self) -> None:
        ids = self._ids
        for value, problem in repeats(ids, self._seen):
            self._id_problem(value, problem)
        missing = missing_ids_problem(
            has_ids=self._has_ids,
            has_lists=bool(self._lists),
            found_any=bool(ids or self._invalid or self._list_problems),
        )
        if missing is not None:
            self._error(missing, self._batch_line)
        options = self._options and {f: v for f, v in self._options.items() if v is not None}
        self._spool.add(
            self._batch_line,
            self._identifier,
            ids,
            (self._errors, self._invalid, self._unknown),
            options=options,
            lists=self._lists,
        )

    # -- what went wrong -------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """Whether the root element has started."""
        return self.state != _DOC

    def open_elements(self, line: int) -> list[tuple[str, int]]:
        """The elements open now, outermost first; a <glRecId> open at ``line``."""
        return self.stack if self.state != _ID else [*self.stack, ("glRecId", line)]


def _attributes(attrs: dict[str, str]) -> str:
    return "".join(
        f' {key}="{xml_text(value).replace(chr(34), "&quot;")}"' for key, value in attrs.items()
    )


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
