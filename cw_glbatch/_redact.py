"""Redaction: the credentials taken out of whatever a server answers, before anything reads it."""

from __future__ import annotations

import json
from collections.abc import Iterable

__all__ = ["REDACTED", "Redaction", "redact", "redact_text"]

REDACTED = "[redacted]"
_REDACTED_BYTES = REDACTED.encode()
_MIN_SECRET = 8  # characters; ConnectWise's keys are 16, clientIds are GUIDs


def _spellings(secret: str) -> set[str]:
    """How a server may write ``secret`` back: as is, JSON-escaped, with ``/`` escaped."""
    quoted = json.dumps(secret)[1:-1]
    return {
        secret,
        quoted,
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quoted.replace("/", "\\/"),
    }


class Redaction:
    """`redact` for the same secrets again and again: their spellings are worked out once."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._spellings = tuple(
            spelling.encode("utf-8")
            for secret in secrets
            if len(secret) >= _MIN_SECRET  # shorter is ordinary text; real credentials are longer
            for spelling in sorted(_spellings(secret), key=len, reverse=True)
        )

    def __call__(self, content: bytes) -> bytes:
        """``content`` with every spelling of each secret replaced by ``[redacted]``."""
        for spelling in self._spellings:
            content = content.replace(spelling, _REDACTED_BYTES)
        return content


def redact(content: bytes, secrets: Iterable[str]) -> bytes:
    """``content`` with every spelling of each secret replaced by ``[redacted]``.

    Applied to everything a server answers before it can reach a message, a log or a file, so
    a server that echoes the request's headers cannot leak the credentials. Secrets shorter
    than 8 characters are left alone: replacing them would mangle ordinary text.
    """
    return Redaction(secrets)(content)


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every spelling of each secret replaced by ``[redacted]`` (see `redact`)."""
    return redact(text.encode("utf-8", "surrogatepass"), secrets).decode("utf-8", "surrogatepass")
