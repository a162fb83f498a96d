"""ConnectWise's limits on what a batch holds, stated once for every module that checks them."""

from __future__ import annotations

__all__ = ["MAX_GL_REC_ID", "MAX_IDENTIFIER_LENGTH", "is_gl_rec_id"]

MAX_GL_REC_ID = 2**31 - 1  # ConnectWise ids are 32-bit signed integers
MAX_IDENTIFIER_LENGTH = 50  # ConnectWise's limit for batchIdentifier


def is_gl_rec_id(value: object) -> bool:
    """Whether ``value`` can be a GL entry id: an int (not a bool) from 1 to `MAX_GL_REC_ID`."""
    return type(value) is int and 0 < value <= MAX_GL_REC_ID
