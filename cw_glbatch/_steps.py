"""How a call and its driver talk: a call yields `Send` or `Pause` and is sent back a `Reply`.

A call (`Call`) is a generator written once, without I/O; `ConnectWiseClient` drives it with
blocking httpx and `AsyncConnectWiseClient` with coroutines. The driver puts each `Send` on the
wire and answers with the `Reply`, and waits out each `Pause`; the call decides everything else.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import TypeVar

import attrs
import httpx

from ._answers import Answer

__all__ = ["Call", "Pause", "Reply", "Send"]

T = TypeVar("T")


@attrs.frozen
class Send:
    """Put one request on the wire and send the call its `Reply`."""

    method: str
    url: str
    headers: Mapping[str, str]
    params: Mapping[str, str | int] | None = None
    content: bytes | None = None


@attrs.frozen
class Pause:
    """Wait ``seconds`` (with the client's sleep), then resume the call."""

    seconds: float


@attrs.frozen
class Reply:
    """What came back for a `Send`: the answer, if one came, and the error that cut it short.

    A body that stops half way still leaves its status (a 2xx to a create means created): the
    answer is then given with an empty body together with the error.
    """

    answer: Answer | None = None
    failure: httpx.HTTPError | None = None


Call = Generator[Send | Pause, Reply | None, T]
