"""Bounds on one exchange with a server: an overall deadline, and a cap on the answer's size.

httpx applies its timeouts to each read, so a server trickling one byte a second never times
out, and it inflates a compressed answer without limit. Both clients therefore send through
`send_bounded` (blocking) or `asend_bounded` (asyncio), which read every answer through
`read_answer` (deadline and size checked chunk by chunk, whatever the transport); for httpx's
own transports, every socket operation also waits no longer than the time left before the
deadline (`bound_transports`), so headers that trickle in time out as well. Outside a
`deadline` block the wrapped sockets behave exactly as before.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpcore
import httpx

__all__ = [
    "DEFAULT_MAX_ANSWER_BYTES",
    "AnswerTooLarge",
    "Received",
    "aread_answer",
    "asend_bounded",
    "bound_transports",
    "deadline",
    "read_answer",
    "send_bounded",
]

# ConnectWise's answers are kilobytes; a batch's GL export holds ~1-2 KB per GL entry.
DEFAULT_MAX_ANSWER_BYTES = 256 * 1024 * 1024


class AnswerTooLarge(httpx.HTTPError):
    """An answer's decoded body passed the client's size cap."""


_local = threading.local()  # the deadline of the request this thread is making, if any


@contextlib.contextmanager
def deadline(expires: float) -> Iterator[None]:
    """Bound this thread's socket operations by ``expires`` (a `time.monotonic` instant)."""
    previous = getattr(_local, "expires", None)
    _local.expires = expires
    try:
        yield
    finally:
        _local.expires = previous


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` shortened to the time left before this thread's deadline."""
    expires: float | None = getattr(_local, "expires", None)
    if expires is None:
        return timeout
    left = expires - time.monotonic()
    if left <= 0:
        raise error("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _BoundedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(self._inner.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _BoundedBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        inner = self._inner.connect_tcp(host, port, bounded, local_address, socket_options)
        return _BoundedStream(inner)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(self._inner.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def bound_transports(client: httpx.Client) -> bool:
    """Make the socket operations of ``client``'s own transports respect `deadline`.

    httpx offers no public hook for this, so the network backend of each httpcore pool is
    wrapped; returns False (leaving the client as it was) if the pools are not as expected.
    A test with a server that trickles its headers proves it still works.
    """
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    pools: list[Any] = [getattr(transport, "_pool", None) for transport in transports if transport]
    if not pools or not all(hasattr(pool, "_network_backend") for pool in pools):
        return False
    for pool in pools:
        if not isinstance(pool._network_backend, _BoundedBackend):
            pool._network_backend = _BoundedBackend(pool._network_backend)
    return True


def read_answer(
    response: httpx.Response,
    *,
    limit: int,
    expires: float,
    clock: Callable[[], float] = time.monotonic,
) -> bytes:
    """The decoded body of a streamed ``response``, within ``limit`` bytes and the deadline.

    Raises:
        AnswerTooLarge: The decoded body passes ``limit`` (reading stops there).
        httpx.ReadTimeout: The deadline passed before the body was complete.
        httpx.HTTPError: The body could not be read or decoded.
    """
    chunks = _Chunks(limit, expires, clock)
    for chunk in response.iter_bytes():
        chunks.add(chunk)
    return chunks.body()


async def aread_answer(
    response: httpx.Response,
    *,
    limit: int,
    expires: float,
    clock: Callable[[], float] = time.monotonic,
) -> bytes:
    """`read_answer` for an answer streamed by an ``httpx.AsyncClient``.

    The deadline is checked between chunks (the async transports' sockets are not bounded).
    """
    chunks = _Chunks(limit, expires, clock)
    async for chunk in response.aiter_bytes():
        chunks.add(chunk)
    return chunks.body()


# What came back: the response (its status and headers), its body, and the failure that cut
# the exchange short. A body that fails after the status leaves the response with b"".
Received = tuple[httpx.Response | None, bytes, httpx.HTTPError | None]


def send_bounded(
    http: httpx.Client, request: httpx.Request, *, timeout: float, limit: int
) -> Received:
    """Send ``request`` and read its answer whole, within ``timeout`` seconds and ``limit`` bytes.

    Every socket operation of httpx's own transports waits only for the time left (see
    `bound_transports`), so a server trickling its answer cannot hold the request longer.
    """
    expires = time.monotonic() + timeout
    with deadline(expires):
        try:
            response = http.send(request, follow_redirects=False, stream=True)
        except httpx.HTTPError as err:
            return None, b"", err
        try:
            return response, read_answer(response, limit=limit, expires=expires), None
        except httpx.HTTPError as err:  # the status stands, the body is not used
            return response, b"", err
        finally:
            response.close()


async def asend_bounded(
    http: httpx.AsyncClient, request: httpx.Request, *, timeout: float, limit: int
) -> Received:
    """`send_bounded` for an ``httpx.AsyncClient``.

    The deadline starts when the status has come and is checked between the answer's chunks
    (the async transports' sockets are not bounded; httpx's own timeouts bound each read).
    """
    try:
        response = await http.send(request, follow_redirects=False, stream=True)
    except httpx.HTTPError as err:
        return None, b"", err
    expires = time.monotonic() + timeout
    try:
        return response, await aread_answer(response, limit=limit, expires=expires), None
    except httpx.HTTPError as err:  # the status stands, the body is not used
        return response, b"", err
    finally:
        await response.aclose()


class _Chunks:
    """An answer's body as it arrives, checked against the size cap and the deadline."""

    def __init__(self, limit: int, expires: float, clock: Callable[[], float]) -> None:
        self._limit, self._expires, self._clock = limit, expires, clock
        self._chunks: list[bytes] = []
        self._size = 0

    def add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self._limit:
            raise AnswerTooLarge(f"the answer is larger than {self._limit:,} bytes")
        if self._clock() > self._expires:
            raise httpx.ReadTimeout("the answer did not arrive complete in time")
        self._chunks.append(chunk)

    def body(self) -> bytes:
        return b"".join(self._chunks)
