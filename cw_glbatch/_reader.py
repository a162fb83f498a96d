"""XmlBatchReader: the input file, checked whole, then yielded batch by batch.

The file is parsed by expat with defusedxml's guards installed (no DTD, no entities, no
external references), and each parsed batch is kept in a `BatchSpool`. Only when the whole
document has proved well formed and of this format is the first batch yielded: a truncated or
broken file never half-runs.

Two readers share the work. The fast path (`_reader_fast`) reads a file of the standard layout
in bulk; on anything else it gives up, and the full reader (`_reader_full`'s handlers) reads the
file again from its start. Both build the same batches, so which one read a file never shows.
"""

from __future__ import annotations

import os
import pyexpat
from collections.abc import Iterator
from typing import BinaryIO

from defusedxml import DefusedXmlException

from ._batch_rules import where_in_file
from ._exceptions import InputError
from ._expat import DTD_REFUSED, explain, guarded_parser
from ._models import BatchRequest
from ._reader_fast import read_fast
from ._reader_full import Handlers, Refusal
from ._spool import BatchSpool

__all__ = ["XmlBatchReader", "where_in_file"]

_NOTHING_SENT = "Nothing was sent: correct the file and run again."


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
    listed in the batch's ``errors``. A file of the standard layout is read once per iteration,
    by a fast path; any other is read by the full reader, again from its start if the fast path
    gave up midway (a stream that cannot seek goes to the full reader at once). Memory stays
    flat whatever the file's size. A file given by path can be iterated again; a stream, once.

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
            return _read(self._source, self.name)
        try:
            stream = open(self._source, "rb")  # noqa: SIM115 - closed just below
        except OSError as err:
            raise InputError(
                f"cannot open the input file: {err.strerror or err}.", source=self.name
            ) from None
        with stream:
            return _read(stream, self.name)


def _read(stream: BinaryIO, name: str) -> BatchSpool:
    """The fast path if it can read the file, else the full reader from the same start."""
    start = _start(stream)
    if start is not None:
        spool = read_fast(stream)
        if spool is not None:
            return spool
        stream.seek(start)
    return read_fully(stream, name)


def _start(stream: BinaryIO) -> int | None:
    """Where ``stream`` stands, if it can go back there; else None (the full reader only)."""
    try:
        return stream.tell() if stream.seekable() else None
    except (AttributeError, OSError, ValueError):
        return None


def _error(name: str, reason: str, line: int, column: int) -> InputError:
    return InputError(f"{reason} {_NOTHING_SENT}", source=name, line=line, column=column)


def read_fully(stream: BinaryIO, name: str) -> BatchSpool:
    """Parse ``stream`` with the full reader into a spool, or raise `InputError`.

    Args:
        stream: The file, read from where it stands.
        name: The file's name in error messages.
    """
    parser = guarded_parser()
    parser.buffer_text = True
    spool = BatchSpool()
    handlers = Handlers(parser, spool)
    try:
        parser.ParseFile(stream)
    except pyexpat.ExpatError as err:
        spool.close()
        reason = explain(
            err.code,
            open_elements=handlers.open_elements(err.lineno),
            started=handlers.started,
            closed_at=handlers.closed_at,
        )
        raise _error(name, reason, err.lineno, err.offset + 1) from None
    except Refusal as err:
        spool.close()
        raise _error(name, err.reason, err.line, err.column) from None
    except DefusedXmlException:
        spool.close()
        line, column = parser.CurrentLineNumber, parser.CurrentColumnNumber + 1
        raise _error(name, DTD_REFUSED, line, column) from None
    except (LookupError, ValueError) as err:
        spool.close()
        if handlers.started:  # only the XML declaration's encoding raises these
            raise
        raise _error(
            name,
            f"the XML declaration names an encoding that cannot be read ({err}). "
            "Save the file as UTF-8.",
            1,
            1,
        ) from None
    except TypeError as err:
        spool.close()
        raise TypeError(
            f"{name}: XmlBatchReader reads bytes; open the file in binary mode ('rb')"
        ) from err
    except BaseException:
        spool.close()
        raise
    finally:
        handlers.close()
    return spool
