"""A set of strings kept as 16-byte digests: a run's memory for what it must not repeat.

A run refuses a caller's identifier that an earlier batch of the run used. A set of the strings
themselves costs about 100 bytes each (the string and its hash-table slot), 100 MB for a million
batches. `DigestSet` keeps 16 bytes of BLAKE2b per string in one open-addressing table (linear
probing, at most two thirds full, so 24 to 48 bytes a string), and nothing else.

It can err one way only. A string that was added is always found. A string that was not added
is taken as present when its digest equals a stored one's: with n strings stored, a lookup errs
with probability about n / 2**128, so a whole run of n batches errs anywhere with probability
below n**2 / 2**129 (about 1.5e-27 for a million batches). The callers make that error a
refusal (a caller's identifier reported as repeated) or a generated number passed over; it can
never make two batches share an identifier.
"""

from __future__ import annotations

import hashlib

__all__ = ["DigestSet"]

_SIZE = 16  # bytes of BLAKE2b kept per string
_EMPTY = bytes(_SIZE)  # a free slot; a string whose digest this is is stored as _ZERO_STANDIN
_ZERO_STANDIN = bytes(_SIZE - 1) + b"\x01"
_FIRST_SLOTS = 1 << 10  # a power of two: a slot is the digest's first 8 bytes masked


def _digest(text: str) -> bytes:
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=_SIZE).digest()
    return _ZERO_STANDIN if digest == _EMPTY else digest


class DigestSet:
    """Strings added, told apart by a 16-byte digest; no table until the first is added."""

    __slots__ = ("_count", "_table")

    def __init__(self) -> None:
        self._table = bytearray()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, text: str) -> bool:
        if not self._count:
            return False
        digest = _digest(text)
        offset = self._offset(digest)
        return self._table.find(digest, offset, offset + _SIZE) >= 0

    def add(self, text: str) -> bool:
        """Add ``text``; False if it (or a string of the same digest) was in already."""
        if (self._count + 1) * 3 > len(self._table) // _SIZE * 2:
            self._grow()
        digest = _digest(text)
        offset = self._offset(digest)
        if self._table.find(digest, offset, offset + _SIZE) >= 0:
            return False
        self._table[offset : offset + _SIZE] = digest
        self._count += 1
        return True

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
        old = self._table
        self._table = bytearray(max(_FIRST_SLOTS, 2 * len(old) // _SIZE) * _SIZE)
        for start in range(0, len(old), _SIZE):
            digest = bytes(old[start : start + _SIZE])
            if digest != _EMPTY:
                offset = self._offset(digest)
                self._table[offset : offset + _SIZE] = digest
