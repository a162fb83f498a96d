"""The simulator in process: an httpx transport handler, faults in delivery included."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator

import httpx

from ._wire import Dropped, Response, SimRequest

__all__ = ["answer_in_process"]


class _Delivery(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body sent in pieces, with a wait before each, that may stop half way."""

    def __init__(
        self,
        request: httpx.Request,
        pieces: list[bytes],
        delay: float,
        sleep: Callable[[float], None],
        cut: bool,
    ) -> None:
        self._request = request
        self._pieces = pieces
        self._delay = delay
        self._sleep = sleep
        self._cut = cut

    def __iter__(self) -> Iterator[bytes]:
        for piece in self._pieces:
            if self._delay:
                self._sleep(self._delay)
            yield piece
        if self._cut:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body (simulated)",
                request=self._request,
            )

    async def __aiter__(self) -> AsyncIterator[bytes]:
        # The same pieces, waiting in a worker thread so the event loop goes on meanwhile.
        pieces = iter(self)
        while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
            yield piece


def answer_in_process(
    handle: Callable[[SimRequest], Response | Dropped],
    request: httpx.Request,
    sleep: Callable[[float], None],
) -> httpx.Response:
    """Answer ``request`` with ``handle``; dropped answers and cut bodies raise as httpx would."""
    outcome = handle(
        SimRequest(
            request.method,
            request.url.path,
            dict(request.url.params),
            {k.lower(): v for k, v in request.headers.items()},
            request.read(),
            f"{request.url.scheme}://{request.url.netloc.decode()}",
        )
    )
    if isinstance(outcome, Dropped):
        if outcome.kind == "reset":
            raise httpx.ReadError("connection reset by peer (simulated)", request=request)
        raise httpx.ReadTimeout("answer lost (simulated)", request=request)
    content = outcome.content()
    if outcome.truncated and not content:
        raise httpx.RemoteProtocolError(
            "server disconnected without sending a complete response (simulated)",
            request=request,
        )
    headers = dict(outcome.headers)
    if not outcome.chunk and not outcome.truncated:
        return httpx.Response(outcome.status, headers=headers, content=content, request=request)
    sent = content[: len(content) // 2] if outcome.truncated else content
    size = outcome.chunk or len(sent) or 1
    pieces = [sent[i : i + size] for i in range(0, len(sent), size)]
    headers["Content-Length"] = str(len(content))
    stream = _Delivery(request, pieces, outcome.delay, sleep, outcome.truncated)
    return httpx.Response(outcome.status, headers=headers, stream=stream, request=request)
