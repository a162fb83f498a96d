"""An answer's compressed body decoded a bounded number of bytes at a time.

httpx inflates each network read whole: 64 KiB of gzip can become 64 MiB at once, whatever is
kept of it. An error answer is cut at a small bound (`_bounds.answer_limit`), so it is decoded
here, from its raw bytes, never producing more than the room left. Only the encodings httpx
always supports (gzip, deflate, none) are decoded here; `bounded_decoder` gives None for others,
which are left to httpx. No I/O.
"""

from __future__ import annotations

import zlib

import httpx

__all__ = ["BoundedDecoder", "bounded_decoder"]

_GZIP = zlib.MAX_WBITS | 16
_ZLIB_OR_GZIP = zlib.MAX_WBITS | 32
_RAW_DEFLATE = -zlib.MAX_WBITS

# Content-Encoding -> zlib's window bits (None: not compressed).
_WBITS: dict[str, int | None] = {
    "": None,
    "identity": None,
    "gzip": _GZIP,
    "x-gzip": _GZIP,
    "deflate": _ZLIB_OR_GZIP,
}


class BoundedDecoder:
    """Decodes a body's raw bytes, producing at most the bytes asked for at each step."""

    def __init__(self, wbits: int | None) -> None:
        self._wbits = wbits
        self._inflate = zlib.decompressobj(wbits) if wbits is not None else None
        self._first = True

    def decode(self, raw: bytes, most: int) -> bytes:
        """Up to ``most`` decoded bytes of ``raw`` (the body's next raw bytes).

        Once fewer than ``most`` come back, all of ``raw`` was used; when ``most`` come back, the
        rest of ``raw`` is dropped (the body is cut there).

        Raises:
            httpx.DecodingError: ``raw`` is not in the body's encoding.
        """
        first, self._first = self._first, False
        if self._inflate is None:
            return raw[:most]
        try:
            return self._inflate.decompress(raw, most)
        except zlib.error as err:
            if first and self._wbits == _ZLIB_OR_GZIP:  # "deflate" sent as raw deflate, as some do
                self._wbits, self._inflate = _RAW_DEFLATE, zlib.decompressobj(_RAW_DEFLATE)
                return self.decode(raw, most)
            raise httpx.DecodingError(f"the answer is not valid {self._name()}: {err}") from err

    def _name(self) -> str:
        return "gzip" if self._wbits == _GZIP else "deflate"


def bounded_decoder(content_encoding: str | None) -> BoundedDecoder | None:
    """A `BoundedDecoder` for a ``Content-Encoding``; None for one left to httpx (``br``, ...)."""
    encoding = (content_encoding or "").strip().lower()
    if encoding not in _WBITS:
        return None
    return BoundedDecoder(_WBITS[encoding])
