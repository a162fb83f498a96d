"""Redaction: the credentials taken out of whatever a server answers, before anything reads it."""

from __future__ import annotations

import json
from collections.abc import Iterable

__all__ = ["REDACTED", "redact", "redact_text"]

REDACTED = "[redacted]"
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


def redact(content: bytes, secrets: Iterable[str]) -> bytes:
    """``content`` with every spelling of each secret replaced by ``[redacted]``.

    Applied to everything a server answers before it can reach a message, a log or a file, so
    a server that echoes the request's headers cannot leak the credentials. Secrets shorter
    than 8 characters are left alone: replacing them would mangle ordinary text.
    """
    for secret in secrets:
        if len(secret) < _MIN_SECRET:
            continue  # too short to tell from ordinary text; real credentials are longer
        for spelling in sorted(_spellings(secret), key=len, reverse=True):
            content = content.replace(spelling.encode("utf-8"), REDACTED.encode())
    return content


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every spelling of each secret replaced by ``[redacted]`` (see `redact`)."""
    return redact(text.encode("utf-8", "surrogatepass"), secrets).decode("utf-8", "surrogatepass")
