"""Sets and maps keyed by 16-byte digests: a run's memory of what it must not repeat, compact.

A run refuses a caller's identifier that an earlier batch of the run used. A set of the strings
themselves costs about 100 bytes each (the string and its hash-table slot), 100 MB for a million
batches. `DigestSet` keeps 16 bytes of BLAKE2b per string in one open-addressing table (linear
probing, at most two thirds full, so 24 to 48 bytes a string), and nothing else. The table is
an anonymous memory map: when it doubles, the old one is given back as it is moved, so a
million strings take 32 MB, not 48 MB, at the moment it grows.

It can err one way only. A string that was added is always found. A string that was not added
is taken as present when its digest equals a stored one's: with n strings stored, a lookup errs
with probability about n / 2**128, so a whole run of n batches errs anywhere with probability
below n**2 / 2**129 (about 1.5e-27 for a million batches). The callers make that error a
refusal (a caller's identifier reported as repeated) or a generated number passed over; it can
never make two batches share an identifier.

`DigestMap` is the same table keyed by digests a caller made (`ids_digest` of a batch's GL
entry ids), each with a number beside it (4 bytes): what an earlier file records, by batch.
"""

from __future__ import annotations

import hashlib
import mmap
from array import array
from collections.abc import Iterator

__all__ = ["DigestMap", "DigestSet"]

_SIZE = 16  # bytes of digest kept per key
_EMPTY = bytes(_SIZE)  # a free slot; a key of this digest is stored as _ZERO_STANDIN
_ZERO_STANDIN = bytes(_SIZE - 1) + b"\x01"
_FIRST_SLOTS = 1 << 10  # a power of two: a slot is the digest's first 8 bytes masked
_RELEASE_EVERY = 1 << 20  # bytes of the old table given back at a time while growing
_PRIVATE = getattr(mmap, "MAP_PRIVATE", None)  # (POSIX: pages it frees go back to the system)
_RELEASE = getattr(mmap, "MADV_DONTNEED", None) if _PRIVATE is not None else None


def _zeroed(size: int) -> mmap.mmap:
    """``size`` zero bytes, memory only once written: an anonymous map, not a bytearray."""
    if _PRIVATE is None:
        return mmap.mmap(-1, size)  # pragma: no cover (Windows)
    return mmap.mmap(-1, size, flags=_PRIVATE)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=_SIZE).digest()


class _DigestTable:
    """16-byte digests in one open-addressing table (linear probing, at most 2/3 full)."""

    __slots__ = ("_count", "_table")

    def __init__(self) -> None:
        self._table: mmap.mmap | bytearray = bytearray()  # none until the first key
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _find(self, digest: bytes) -> int:
        """The slot holding ``digest``, or -1."""
        if not self._count:
            return -1
        digest = _ZERO_STANDIN if digest == _EMPTY else digest
        offset = self._offset(digest)
        return offset // _SIZE if self._table.find(digest, offset, offset + _SIZE) >= 0 else -1

    def _put(self, digest: bytes) -> tuple[int, bool]:
        """The slot of ``digest``, added if it was not in; and whether it was added."""
        if (self._count + 1) * 3 > len(self._table) // _SIZE * 2:
            self._grow()
        digest = _ZERO_STANDIN if digest == _EMPTY else digest
        offset = self._offset(digest)
        if self._table.find(digest, offset, offset + _SIZE) >= 0:
            return offset // _SIZE, False
        self._table[offset : offset + _SIZE] = digest
        self._count += 1
        return offset // _SIZE, True

    def _offset(self, digest: bytes) -> int:
        """Where ``digest`` is in the table, or the free slot where it would go."""
        table = self._table
        mask = len(table) // _SIZE - 1
        slot = int.from_bytes(digest[:8], "little") & mask
        while True:
            offset = slot * _SIZE
            if table.find(digest, offset, offset + _SIZE) >= 0:
                return offset
            if table.find(_EMPTY, offset, offset + _SIZE) >= 0:
                return offset
            slot = (slot + 1) & mask

    def _grow(self) -> None:
        """Twice the slots; the old table is given back as it is read (where `_RELEASE` can).

        So growing takes little more memory than the new table: not the old and the new.
        """
        old = self._table
        self._table = _zeroed(max(_FIRST_SLOTS, 2 * len(old) // _SIZE) * _SIZE)
        for chunk in range(0, len(old), _RELEASE_EVERY):
            for start in range(chunk, min(chunk + _RELEASE_EVERY, len(old)), _SIZE):
                digest = bytes(old[start : start + _SIZE])
                if digest != _EMPTY:
                    offset = self._offset(digest)
                    self._table[offset : offset + _SIZE] = digest
                    self._moved(start // _SIZE, offset // _SIZE)
            if _RELEASE is not None and isinstance(old, mmap.mmap):
                old.madvise(_RELEASE, chunk, min(_RELEASE_EVERY, len(old) - chunk))
        if isinstance(old, mmap.mmap):
            old.close()
        self._resized(len(self._table) // _SIZE)

    def _moved(self, old_slot: int, new_slot: int) -> None:
        """A growing table moved a key (a map moves its number with it)."""

    def _resized(self, slots: int) -> None:
        """The table has grown to ``slots`` slots."""


class DigestSet(_DigestTable):
    """Strings added, told apart by a 16-byte BLAKE2b digest."""

    __slots__ = ()

    def __contains__(self, text: str) -> bool:
        return self._find(_digest(text)) >= 0

    def add(self, text: str) -> bool:
        """Add ``text``; False if it (or a string of the same digest) was in already."""
        return self._put(_digest(text))[1]


class DigestMap(_DigestTable):
    """16-byte digests, each with a number from 0 to 2**32 - 2."""

    __slots__ = ("_numbers", "_staged")

    def __init__(self) -> None:
        super().__init__()
        self._numbers = array("I")  # by slot
        self._staged = array("I")  # while growing: the numbers by new slot

    def __iter__(self) -> Iterator[bytes]:
        """The digests, in no particular order (the all-zero one as its stand-in)."""
        table = self._table
        for start in range(0, len(table), _SIZE):
            if table.find(_EMPTY, start, start + _SIZE) < 0:
                yield bytes(table[start : start + _SIZE])

    def get(self, digest: bytes) -> int | None:
        """The number of ``digest``, or None."""
        slot = self._find(digest)
        return None if slot < 0 else self._numbers[slot]

    def put(self, digest: bytes, number: int) -> None:
        """Set the number of ``digest`` (added if it was not in)."""
        slot = self._put(digest)[0]  # (growing moves the numbers too: `_moved`)
        self._numbers[slot] = number

    def _moved(self, old_slot: int, new_slot: int) -> None:
        if not self._staged:
            self._staged = array("I", bytes(4 * (len(self._table) // _SIZE)))
        self._staged[new_slot] = self._numbers[old_slot]

    def _resized(self, slots: int) -> None:
        self._numbers = self._staged if self._staged else array("I", bytes(4 * slots))
        self._staged = array("I")
