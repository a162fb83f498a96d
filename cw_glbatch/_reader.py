"""XmlBatchReader: the input file, checked whole, then yielded batch by batch.

The file is parsed once, by expat with defusedxml's guards installed (no DTD, no entities, no
external references), with handlers that check the structure as they go and keep each parsed
batch in a `BatchSpool`. Only when the whole document has proved well formed and of this format
is the first batch yielded: a truncated or broken file never half-runs.

Problems of the file as a whole raise `InputError`. Problems of one batch are recorded in that
batch's ``errors`` (each with its line) and reading carries on. Nothing read is dropped: values
that are not ids, and elements the format does not know, are kept on the `BatchRequest` so a fail
file gives them back; a value too large to keep refuses the file instead.
"""

from __future__ import annotations

import os
import pyexpat
import re
from array import array
from collections import Counter
from collections.abc import Iterator
from pyexpat import errors as expat_errors
from typing import Any, BinaryIO, NoReturn

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from ._exceptions import InputError
from ._export import gl_id
from ._id_list import IdListSplitter, Item
from ._models import BATCH_OPTIONS, BatchRequest
from ._spool import MAX_GL_REC_ID, BatchSpool, IdBitmap
from ._writer import xml_text

__all__ = ["MAX_IDENTIFIER_LENGTH", "XmlBatchReader", "where_in_file"]

MAX_IDENTIFIER_LENGTH = 50  # ConnectWise's limit for batchIdentifier
MAX_VALUE_LENGTH = 4096  # characters in one value; longer refuses the file
MAX_LIST_LENGTH = 256 * 1024  # characters in one <glEntryIds> (some 30,000 ids)
MAX_UNKNOWN_LENGTH = 64 * 1024  # characters of unknown content kept per batch
MAX_DEPTH = 64  # the format needs 4 levels
_IGNORED = frozenset({"batchId", "error"})  # what XmlResultWriter adds; skipped on input
_OPTIONS = {element: field for field, element in BATCH_OPTIONS.items()}
_TEXT_OPTIONS = frozenset({"glInterfaceIdentifier"})  # the others are true or false
_BOOLEANS = {"true": True, "false": False}
_NOT_AN_ID = f"is not a GL entry id (a whole number from 1 to {MAX_GL_REC_ID})"
_NOTHING_SENT = "Nothing was sent: correct the file and run again."

# Where the handlers are. _ID is the hot path: a <glRecId>, which is not pushed on the stack.
# _LIST is inside a <glEntryIds>, _OPTION inside a per-batch option such as <exportInvoicesFlag>.
_DOC, _ROOT, _BATCH, _IDS, _ID, _IDENT, _IGNORE, _UNKNOWN, _DONE, _LIST, _OPTION = range(11)
_GUARD = DefusedXMLParser(forbid_dtd=True, forbid_entities=True, forbid_external=True)


_WHERE = re.compile(r"line (\d+)(?:, column (\d+))?: ")


def where_in_file(error: str) -> tuple[int | None, int | None, str]:
    """A batch error's line, column (or None) and message: ``"line 5, column 3: x"``."""
    match = _WHERE.match(error)
    if match is None:
        return None, None, error
    column = match.group(2)
    return int(match.group(1)), None if column is None else int(column), error[match.end() :]


class _Refusal(Exception):  # noqa: N818 - internal signal, turned into InputError
    def __init__(self, reason: str, line: int, column: int) -> None:
        self.reason, self.line, self.column = reason, line, column


_KNOWN_IN_BATCH = frozenset({"batchIdentifier", "glRecIds", "glEntryIds"})


class _Handlers:
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
        raise _Refusal(reason, self._line(), self._parser.CurrentColumnNumber + 1)

    # Errors start with where they are, as `where_in_file` reads them back.
    def _error(self, message: str, line: int | None = None) -> None:
        self._errors.append(f"line {self._line() if line is None else line}: {message}")

    def _error_at(self, message: str, at: tuple[int, int]) -> None:
        self._errors.append(f"line {at[0]}, column {at[1]}: {message}")

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
            self._error(f"glRecId {_shorten(text)!r} {_NOT_AN_ID}")

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
            self._error_at(f"glEntryIds item {_shorten(item.text)!r} {_NOT_AN_ID}", item.at)
        else:
            self._error_at("an empty item in <glEntryIds> (two commas, or one at an end)", item.at)

    def _end_list(self) -> None:
        self._parser.buffer_text = True
        for item in self._list.end(self._here()):
            self._list_item(item)
        self._lists.append(self._list.text)

    def _end_option(self, name: str, text: str) -> None:
        field, value = _OPTIONS[name], text.strip()
        if name in _TEXT_OPTIONS:
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

    def _collect_ids(self) -> array[int]:
        """The batch's ids, checked for repeats in bulk (a 0 was reported where it stood)."""
        ids = self._ids
        repeats = self._seen.add_all(ids)
        if repeats:
            counts = Counter(ids)
            for value, times_seen in Counter(repeats).items():
                if counts[value] > 1:
                    self._id_problem(value, "is repeated in this batch")
                if times_seen == counts[value]:  # even its first occurrence was seen before
                    self._id_problem(value, "is already in an earlier batch of this file")
        return ids

    def _end_identifier(self, identifier: str) -> None:
        self._identifier = identifier or None  # empty means "none given"
        if len(identifier) > MAX_IDENTIFIER_LENGTH:
            self._error(
                f"batchIdentifier is {len(identifier)} characters long; "
                f"ConnectWise allows at most {MAX_IDENTIFIER_LENGTH}"
            )

    def _end_batch(self) -> None:
        ids = self._collect_ids()
        if not self._has_ids and not self._lists:
            self._error("this <Batch> has no <glRecIds> or <glEntryIds>", self._batch_line)
        elif not ids and not self._invalid and not self._list_problems:
            empty = "<glRecIds>" if self._has_ids else "<glEntryIds>"
            self._error(f"this <Batch> has an empty {empty}", self._batch_line)
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

    def explain(self, error: pyexpat.ExpatError) -> str:
        """A readable reason for an expat error, using what the handlers know."""
        code = error.code
        if self.state == _DOC and code == expat_errors.codes[expat_errors.XML_ERROR_NO_ELEMENTS]:
            return "the file holds no XML element: expected a <Batches> document."
        if self.stack and code in _TRUNCATED:
            name, line = self.stack[-1] if self.state != _ID else ("glRecId", error.lineno)
            return (
                f"the file ends before <{name}> (opened at line {line}) is closed; "
                "it may be truncated or a closing tag may be missing."
            )
        if code == expat_errors.codes[expat_errors.XML_ERROR_TAG_MISMATCH]:
            name, line = self.stack[-1] if self.state != _ID else ("glRecId", error.lineno)
            return f"this closing tag does not match <{name}> opened at line {line}."
        if code == expat_errors.codes[expat_errors.XML_ERROR_JUNK_AFTER_DOC_ELEMENT]:
            return f"there is more after </Batches> closed the document at line {self.closed_at}."
        what = expat_errors.messages[code]
        if not what.startswith("not well-formed"):
            what = f"not well-formed XML: {what}"
        return f"{what}.{_HINTS.get(code, '')}"


_TRUNCATED = frozenset(
    expat_errors.codes[name]
    for name in (
        expat_errors.XML_ERROR_NO_ELEMENTS,
        expat_errors.XML_ERROR_UNCLOSED_TOKEN,
        expat_errors.XML_ERROR_PARTIAL_CHAR,
        expat_errors.XML_ERROR_UNCLOSED_CDATA_SECTION,
    )
)
_HINTS = {
    expat_errors.codes[expat_errors.XML_ERROR_INVALID_TOKEN]: (
        " A '<' or '&' in a value must be written &lt; or &amp;; binary data is not XML."
    ),
    expat_errors.codes[expat_errors.XML_ERROR_UNDEFINED_ENTITY]: (
        " Only &amp; &lt; &gt; &quot; &apos; and numeric character references are allowed."
    ),
    expat_errors.codes[expat_errors.XML_ERROR_UNKNOWN_ENCODING]: " Save the file as UTF-8.",
    expat_errors.codes[expat_errors.XML_ERROR_INCORRECT_ENCODING]: (
        " The bytes do not match the encoding the XML declaration names; save the file as UTF-8."
    ),
}


def _attributes(attrs: dict[str, str]) -> str:
    return "".join(
        f' {key}="{xml_text(value).replace(chr(34), "&quot;")}"' for key, value in attrs.items()
    )


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _source_name(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fsdecode(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<stream>"


class XmlBatchReader:
    """Reads an XML file of batches: ``<Batches><Batch>...</Batch></Batches>``.

    Iterating checks the whole file first and raises `InputError` (with file, line and column)
    if it is not well-formed XML or not of this format; only then does it yield one
    `BatchRequest` per ``<Batch>``, in file order. Per-batch problems do not raise: they are
    listed in the batch's ``errors``. The file is read once per iteration, and memory stays flat
    whatever its size. A file given by path can be iterated again; a stream, once.

    Args:
        source: A path, or a binary file object (opened with ``"rb"``).

    Example::

        for batch in XmlBatchReader("batches.xml"):
            print(batch.identifier, batch.gl_rec_ids, batch.errors)
    """

    def __init__(self, source: str | os.PathLike[str] | BinaryIO) -> None:
        self._source = source
        self.name = _source_name(source)

    def __repr__(self) -> str:
        return f"XmlBatchReader({self.name!r})"

    def __iter__(self) -> Iterator[BatchRequest]:
        """Check the whole input (raising `InputError`), then iterate over its batches."""
        return self._read().replay()

    def _read(self) -> BatchSpool:
        if not isinstance(self._source, (str, os.PathLike)):
            return self._parse(self._source)
        try:
            stream = open(self._source, "rb")  # noqa: SIM115 - closed just below
        except OSError as err:
            raise InputError(
                f"cannot open the input file: {err.strerror or err}.", source=self.name
            ) from None
        with stream:
            return self._parse(stream)

    def _parse(self, stream: BinaryIO) -> BatchSpool:
        parser = pyexpat.ParserCreate()
        parser.buffer_text = True
        parser.StartDoctypeDeclHandler = _GUARD.defused_start_doctype_decl
        parser.EntityDeclHandler = _GUARD.defused_entity_decl
        parser.UnparsedEntityDeclHandler = _GUARD.defused_unparsed_entity_decl
        # It raises, never returns; typeshed wants the int expat's C callback would return.
        parser.ExternalEntityRefHandler = _GUARD.defused_external_entity_ref_handler  # type: ignore[assignment]
        spool = BatchSpool()
        handlers = _Handlers(parser, spool)
        try:
            parser.ParseFile(stream)
        except pyexpat.ExpatError as err:
            spool.close()
            raise self._error(handlers.explain(err), err.lineno, err.offset + 1) from None
        except _Refusal as err:
            spool.close()
            raise self._error(err.reason, err.line, err.column) from None
        except DefusedXmlException:
            spool.close()
            raise self._error(
                "<!DOCTYPE> and entity declarations are refused: they allow entity expansion "
                "and external references. Remove the DOCTYPE.",
                parser.CurrentLineNumber,
                parser.CurrentColumnNumber + 1,
            ) from None
        except (LookupError, ValueError) as err:
            spool.close()
            if handlers.state != _DOC:  # only the XML declaration's encoding raises these
                raise
            raise self._error(
                f"the XML declaration names an encoding that cannot be read ({err}). "
                "Save the file as UTF-8.",
                1,
                1,
            ) from None
        except TypeError as err:
            spool.close()
            raise TypeError(
                f"{self.name}: XmlBatchReader reads bytes; open the file in binary mode ('rb')"
            ) from err
        except BaseException:
            spool.close()
            raise
        finally:
            handlers.close()
        return spool

    def _error(self, reason: str, line: int, column: int) -> InputError:
        return InputError(f"{reason} {_NOTHING_SENT}", source=self.name, line=line, column=column)
