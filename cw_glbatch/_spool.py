"""Compact, bounded-memory storage for the reader: parsed batches and the set of ids seen.

The reader checks a whole file before it yields the first batch, and reads the file only once,
so it keeps what it parsed here in between: in memory up to a few MiB, then in an anonymous
temporary file. Memory therefore stays flat whatever the size of the input.
"""

from __future__ import annotations

import json
import mmap
import struct
import tempfile
from array import array
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import IO, Any

from ._limits import MAX_GL_REC_ID
from ._models import BatchRequest

__all__ = ["BatchSpool", "IdBitmap"]

_SPOOL_IN_MEMORY = 8 * 1024 * 1024
# Batches of so many ids are tried as one range: below, id by id is as quick; above, the set
# that checks for repeats would take memory.
_RANGE_AT_LEAST, _RANGE_AT_MOST = 16, 4096
_HEADER = struct.Struct("<10I")
_NONE = 0xFFFFFFFF
_SEP = "\0"  # cannot occur in XML text, so it can separate strings read from XML


class IdBitmap:
    """A set of ids in ``1..MAX_GL_REC_ID``, one bit each, in lazily allocated zero pages.

    The 256 MiB map is only reserved: the operating system backs a page when an id in it is
    first added, so clustered ids (the usual case) cost a few KiB of memory.
    """

    def __init__(self) -> None:
        self._bits = mmap.mmap(-1, (MAX_GL_REC_ID >> 3) + 1)

    def add_all(self, values: array[int]) -> list[int]:
        """Add ``values``; return those that were already in (repeats within ``values`` too)."""
        if _RANGE_AT_LEAST <= len(values) <= _RANGE_AT_MOST and self._add_range(values):
            return []
        bits = self._bits
        repeats = []
        for value in values:
            index = value >> 3
            byte = bits[index]
            bit = 1 << (value & 7)
            if byte & bit:
                repeats.append(value)
            else:
                bits[index] = byte | bit
        return repeats

    def _add_range(self, values: array[int]) -> bool:
        """Add ``values`` at once if they are one unbroken range none of which is in yet.

        Batches are often such a range; adding it as one mask over the bytes it spans costs a
        few operations, where one id at a time costs a few per id.
        """
        low, high = min(values), max(values)
        if high - low + 1 != len(values) or len(set(values)) != len(values):
            return False
        first, last = low >> 3, (high >> 3) + 1
        window = int.from_bytes(self._bits[first:last], "little")
        mask = ((1 << len(values)) - 1) << (low & 7)
        if window & mask:
            return False  # some are in: the loop finds which
        self._bits[first:last] = (window | mask).to_bytes(last - first, "little")
        return True

    def close(self) -> None:
        """Release the map."""
        self._bits.close()


def _pack(values: Sequence[str]) -> bytes:
    return _SEP.join(values).encode("utf-8", "surrogatepass")


def _unpack(data: bytes, count: int) -> tuple[str, ...]:
    return tuple(data.decode("utf-8", "surrogatepass").split(_SEP)) if count else ()


def _extras(options: Mapping[str, Any], lists: Sequence[str]) -> bytes:
    """The rarely given parts of a request (options, ``<glEntryIds>`` lists) as JSON, or b""."""
    if not lists and not options:
        return b""  # the usual case, decided without building anything
    extras = {"options": dict(options), "lists": tuple(lists)}
    return json.dumps(extras, ensure_ascii=False).encode("utf-8", "surrogatepass")


class BatchSpool:
    """An append-then-replay store of `BatchRequest`s, in memory first, on disk when large.

    A record is a header of ten unsigned 32-bit numbers (line, identifier length or
    ``0xFFFFFFFF`` for none, id count, count and byte length of each string list, byte length of
    the extras), followed by the identifier, the ids as 32-bit integers, the three string lists,
    and the extras: the options and ``<glEntryIds>`` lists as JSON, when the request has any.
    """

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
        self.count = 0

    def add(
        self,
        line: int,
        identifier: str | None,
        ids: array[int],
        texts: tuple[Sequence[str], Sequence[str], Sequence[str]],
        *,
        options: Mapping[str, Any],
        lists: Sequence[str],
    ) -> None:
        """Store one request given by its parts: its ids stay 4 bytes each until replayed."""
        name = b"" if identifier is None else identifier.encode()
        errors, invalid, unknown = texts
        blobs = (_pack(errors), _pack(invalid), _pack(unknown))
        extras = _extras(options, lists)
        header = _HEADER.pack(
            line,
            _NONE if identifier is None else len(name),
            len(ids),
            len(errors),
            len(blobs[0]),
            len(invalid),
            len(blobs[1]),
            len(unknown),
            len(blobs[2]),
            len(extras),
        )
        self._file.write(b"".join((header, name, ids.tobytes(), *blobs, extras)))
        self.count += 1

    def replay(self) -> _Replay:
        """The stored requests in the order they were appended; the spool closes at the end."""
        return _Replay(self)

    def _records(self) -> Generator[BatchRequest, None, None]:
        read = self._file.read
        self._file.seek(0)
        try:
            while header := read(_HEADER.size):
                line, id_len, n_ids, *sizes, extras_size = _HEADER.unpack(header)
                identifier = None if id_len == _NONE else read(id_len).decode()
                ids = array("i")
                ids.frombytes(read(n_ids * ids.itemsize))
                if sizes[0] or sizes[2] or sizes[4]:  # any strings at all: seldom
                    errors, invalid, unknown = (
                        _unpack(read(size), count)
                        for count, size in zip(sizes[::2], sizes[1::2], strict=True)
                    )
                else:
                    errors = invalid = unknown = ()
                if not extras_size:
                    yield BatchRequest(identifier, ids, line, errors, invalid, unknown)
                    continue
                extras = json.loads(read(extras_size).decode("utf-8", "surrogatepass"))
                yield BatchRequest(
                    identifier,
                    ids,
                    line,
                    errors,
                    invalid,
                    unknown,
                    gl_entry_id_lists=tuple(extras["lists"]),
                    **extras["options"],
                )
        finally:
            self.close()

    def close(self) -> None:
        """Discard what is stored."""
        self._file.close()


class _Replay(Iterator[BatchRequest]):
    """An iterator over the spooled batches that knows how many there are."""

    def __init__(self, spool: BatchSpool) -> None:
        self._spool = spool
        self._records = spool._records()
        self._left = spool.count

    def __next__(self) -> BatchRequest:
        request = next(self._records)
        self._left -= 1
        return request

    def __length_hint__(self) -> int:
        return self._left

    def close(self) -> None:
        """Stop early: discard what is left."""
        self._records.close()
        self._spool.close()
