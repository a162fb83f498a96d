"""The reader's fast path: the standard layout read in bulk, anything else left to the full reader.

One pass over the file: each chunk is fed to a bare expat parser (guarded as the full reader's
is, with no element handlers) that proves the file well formed, while regular expressions read
the standard layout of each ``<Batch>``::

    <?xml version="1.0" encoding="utf-8"?>
    <Batches>
      <Batch>
        <batchIdentifier>221106</batchIdentifier>   (optional)
        <glRecIds><glRecId>320042</glRecId>...</glRecIds>
      </Batch>
    </Batches>

with any XML whitespace between elements, ids of plain digits, and between the two the options
that are true or false (``<exportInvoicesFlag>false</exportInvoicesFlag>``, as ``cw-glbatch
export`` writes them); and read a batch's ids all at once. The per-batch rules are the full
reader's own (`_batch_rules`). On anything else (a comment, an attribute, an entity or
character reference, ``<glInterfaceIdentifier>``, an option given twice or not exactly
``true`` or ``false``, a ``<glEntryIds>``, an id with a leading zero or over 2147483647, an
encoding other than UTF-8, any XML error) it gives up and returns None: the caller then reads
the file again from its start with the full reader.
So the fast path never refuses a file and never words an error itself; what it returns is what
the full reader would have built.
"""

from __future__ import annotations

import pyexpat
import re
from array import array
from typing import BinaryIO

from defusedxml import DefusedXmlException

from ._batch_rules import at_line, identifier_problem, missing_ids_problem, repeats
from ._expat import guarded_parser
from ._models import BATCH_OPTIONS, TEXT_OPTIONS
from ._reader_full import MAX_VALUE_LENGTH
from ._spool import BatchSpool, IdBitmap

__all__ = ["CHUNK_SIZE", "read_fast"]

CHUNK_SIZE = 64 * 1024  # bytes read and fed to expat at a time
MAX_PENDING = 1 << 20  # bytes of one unread <Batch> (some 30,000 ids) before giving up

_WS = rb"[ \t\r\n]*"  # XML's whitespace: what Python's isspace() calls space is more
_PROLOG = re.compile(
    rb"(?:\xef\xbb\xbf)?"  # a UTF-8 byte order mark
    rb"(?:<\?xml[ \t\r\n]+version=([\"'])1\.0\1"
    rb"(?:[ \t\r\n]+encoding=([\"'])[uU][tT][fF]-8\2)?"
    rb"(?:[ \t\r\n]+standalone=([\"'])(?:yes|no)\3)?" + _WS + rb"\?>)?" + _WS + rb"<Batches>"
)
# The options that are true or false, as the full reader reads them: field by element.
_FLAGS = {element: field for field, element in BATCH_OPTIONS.items() if field not in TEXT_OPTIONS}
# A <Batch> up to its ids. Groups: 1 marks <Batch>, 2 the identifier's text (None when there is
# no <batchIdentifier>), 3 marks </batchIdentifier>, 4 the flags, 5 marks <glRecIds>.
_HEAD = re.compile(
    _WS + rb"()<Batch>" + _WS
    + rb"(?:<batchIdentifier>([^<&\r]*)()</batchIdentifier>" + _WS + rb")?"
    + rb"((?:<(?:" + "|".join(_FLAGS).encode() + rb")>(?:true|false)</[a-zA-Z]+>" + _WS + rb")*)"
    + rb"()<glRecIds>"
)  # fmt: skip
_FLAG = re.compile(rb"<([a-zA-Z]+)>(true|false)</([a-zA-Z]+)>")
_TAIL = re.compile(rb"</glRecIds>" + _WS + rb"</Batch>")
_END = re.compile(_WS + rb"</Batches>" + _WS)
_BATCH_END = b"</Batch>"  # not a prefix of </Batches>
_SPACE = b" \t\r\n"
# Whitespace to spaces, digits deleted: a space before </glRecId is whitespace in a <glRecId>.
_SPACES = bytes.maketrans(b"\t\r\n", b"   ")
_DIGITS = b"0123456789"
_ONE_ID, _NEXT_ID = (b"<glRecId>", b"</glRecId>"), b"</glRecId><glRecId>"


class _NotStandard(Exception):  # noqa: N818 - internal signal: read the file fully instead
    pass


def _line_breaks(data: bytes, start: int, end: int, *, returns: bool = True) -> int:
    r"""Lines that end in ``data[start:end]``: expat counts \n, \r\n and a lone \r.

    ``returns=False`` says that ``data`` holds no \r, which saves looking.
    """
    breaks = data.count(b"\n", start, end)
    carriage_returns = returns and data.count(b"\r", start, end)
    if carriage_returns:
        breaks += carriage_returns - data.count(b"\r\n", start, end)
    return breaks


class _Batches:
    """Reads standard ``<Batch>`` elements from the front of a buffer into a spool."""

    def __init__(self, spool: BatchSpool) -> None:
        self._spool = spool
        self._seen = IdBitmap()
        self.line = 1  # where the unread part of the buffer starts
        self._returns = True  # whether the buffer being read holds a \r

    def close(self) -> None:
        self._seen.close()

    def read(self, data: bytes) -> int:
        """Read the whole batches at the front of ``data``; return how many bytes they take."""
        pos = 0
        self._returns = b"\r" in data
        while (end := data.find(_BATCH_END, pos)) >= 0:
            end += len(_BATCH_END)
            head = _HEAD.match(data, pos, end)
            close = data.rfind(b"</glRecIds>", pos, end)
            if head is None or close < head.end() or not _TAIL.fullmatch(data, close, end):
                raise _NotStandard
            self._add(data, head, close, end)
            pos = end
        return pos

    def _add(self, data: bytes, head: re.Match[bytes], close: int, end: int) -> None:
        """Spool the batch ``data[head.pos:end]``; its ids end at ``close``."""
        returns = self._returns
        batch_line = self.line + _line_breaks(data, head.pos, head.start(1), returns=returns)
        ids_line = batch_line + _line_breaks(data, head.start(1), head.start(5), returns=returns)
        self.line = ids_line + _line_breaks(data, head.start(5), end, returns=returns)
        errors: list[str] = []
        raw = head.group(2)
        identifier = None
        if raw is not None:
            if len(raw) > MAX_VALUE_LENGTH:  # bytes, at least as many as characters
                raise _NotStandard
            text = raw.decode().strip()  # UnicodeDecodeError: expat will refuse it
            identifier = text or None
            if (problem := identifier_problem(text)) is not None:
                end_line = batch_line + _line_breaks(data, head.start(1), head.start(3))
                errors.append(at_line(end_line, problem))
        ids = _ids(data[head.end() : close])
        for value, problem in repeats(ids, self._seen):
            errors.append(at_line(ids_line, f"glRecId {value} {problem}"))
        problem = missing_ids_problem(has_ids=True, has_lists=False, found_any=bool(ids))
        if problem is not None:
            errors.append(at_line(batch_line, problem))
        options = _flags(head.group(4)) if head.group(4) else {}
        self._spool.add(batch_line, identifier, ids, (errors, (), ()), options=options, lists=())


def _flags(written: bytes) -> dict[str, bool]:
    """The options of a batch, each ``<exportInvoicesFlag>true</exportInvoicesFlag>`` or so."""
    flags = {}
    for start, value, end in _FLAG.findall(written):
        field = _FLAGS[start.decode()]
        if end != start or field in flags:  # mismatched (expat refuses it) or given twice
            raise _NotStandard
        flags[field] = value == b"true"
    return flags


def _ids(written: bytes) -> array[int]:
    """The ids of a standard <glRecIds>, all at once.

    Its content without whitespace must read ``<glRecId>1</glRecId><glRecId>2</glRecId>...``:
    then, with ``</glRecId><glRecId>`` turned into commas, it is a list of whole numbers that
    `int` reads in C. Whitespace is only allowed between the tags (elsewhere it would change
    what the full reader makes of a value), commas not at all, and no id may start with 0 (so
    none is 0, and any longer than 10 digits is too large).
    """
    compact = written.translate(None, _SPACE)
    if not compact:
        return array("i")
    if not (compact.startswith(_ONE_ID[0]) and compact.endswith(_ONE_ID[1])) or b"," in compact:
        raise _NotStandard
    listed = compact[len(_ONE_ID[0]) : -len(_ONE_ID[1])].replace(_NEXT_ID, b",")
    if listed.translate(None, _DIGITS + b",") or listed.startswith(b"0") or b",0" in listed:
        raise _NotStandard
    if b" </glRecId" in written.translate(_SPACES, _DIGITS):
        raise _NotStandard
    try:  # ValueError: an empty item; OverflowError: past 2**31 - 1, MAX_GL_REC_ID
        return array("i", map(int, listed.split(b",")))
    except (ValueError, OverflowError):
        raise _NotStandard from None


def read_fast(stream: BinaryIO, *, chunk_size: int = CHUNK_SIZE) -> BatchSpool | None:
    """Read a file of the standard layout into a spool; None for any other file.

    Args:
        stream: The file, read from where it stands; after None, where to go back to is the
            caller's business.
        chunk_size: Bytes to read at a time.

    Returns:
        The spool, with every batch as the full reader would have built it; None when the
        file is not well formed, not of the standard layout, or not bytes.
    """
    spool = BatchSpool()
    batches = _Batches(spool)
    try:
        _parse(stream, batches, chunk_size)
    except (_NotStandard, pyexpat.ExpatError, DefusedXmlException, UnicodeDecodeError):
        spool.close()
        return None
    except BaseException:
        spool.close()
        raise
    finally:
        batches.close()
    return spool


def _parse(stream: BinaryIO, batches: _Batches, chunk_size: int) -> None:
    parser = guarded_parser()
    pending = b""
    started = False
    while chunk := stream.read(chunk_size):
        if not isinstance(chunk, bytes):
            raise _NotStandard  # the full reader explains what to open the file with
        _feed(parser, chunk, final=False)
        pending = pending + chunk if pending else chunk
        if not started:
            prolog = _PROLOG.match(pending)
            if prolog is None:
                if b"<Batches>" in pending or len(pending) > MAX_PENDING:
                    raise _NotStandard
                continue
            started = True
            batches.line = 1 + _line_breaks(pending, 0, prolog.end())
            pending = pending[prolog.end() :]
        pending = pending[batches.read(pending) :]
        if len(pending) > MAX_PENDING:
            raise _NotStandard
    _feed(parser, b"", final=True)
    if not started or _END.fullmatch(pending) is None:
        raise _NotStandard


def _feed(parser: pyexpat.XMLParserType, data: bytes, *, final: bool) -> None:
    try:
        parser.Parse(data, final)
    except (LookupError, ValueError):  # from an encoding the XML declaration names
        raise _NotStandard from None
