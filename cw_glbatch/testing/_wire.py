"""Requests and answers as the simulator sees them, whichever way they came in. No I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

__all__ = [
    "IN_PROCESS_ORIGIN",
    "TOO_MANY_REQUESTS",
    "Dropped",
    "Response",
    "SimRequest",
    "error_body",
]

IN_PROCESS_ORIGIN = "https://connectwise.invalid"


@attrs.frozen
class SimRequest:
    """A request as the simulator sees it, whichever way it came in."""

    method: str
    path: str
    query: Mapping[str, str] = attrs.field(factory=dict)
    headers: Mapping[str, str] = attrs.field(factory=dict)  # names in lower case
    body: bytes = b""
    origin: str = IN_PROCESS_ORIGIN


@attrs.frozen
class Dropped:
    """No answer: the connection was reset (``"reset"``) or the answer lost (``"lost"``)."""

    kind: Literal["reset", "lost"]


@attrs.frozen
class Response:
    """An answer of the simulated API, and how it is delivered.

    ``chunk`` > 0 sends the body that many bytes at a time, ``delay`` seconds apart (a trickle);
    ``truncated`` stops the answer half way through its body (through its head when it has no
    body) and closes the connection.
    """

    status: int
    body: Any = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    raw: bytes | None = None  # a body that is not JSON (a proxy's HTML page)
    chunk: int = 0
    delay: float = 0.0
    truncated: bool = False

    def content(self) -> bytes:
        """The body's bytes: ``raw``, else ``body`` as JSON, else nothing."""
        if self.raw is not None:
            return self.raw
        return b"" if self.body is None else json.dumps(self.body).encode()


def error_body(code: str, message: str, errors: Sequence[Mapping[str, str]] = ()) -> dict[str, Any]:
    """ConnectWise's error body; ``errors`` is ``null`` when no field is named, as it sends."""
    return {"code": code, "message": message, "errors": list(errors) or None}


# ConnectWise's throttling answer has its own shape (no "code", no "errors").
TOO_MANY_REQUESTS = {
    "error": "ConnectWiseAPI",
    "message": "Too many requests. Please wait before sending more.",
}
