"""Bounds on one exchange with a server: an overall deadline, and a cap on the answer's size.

httpx applies its timeouts to each read, so a server trickling one byte a second never times
out, and it inflates a compressed answer without limit. Both clients therefore send through
`send_bounded` (blocking) or `asend_bounded` (asyncio), which read every answer chunk by chunk,
checking the deadline and `answer_limit` (whatever the transport): a 2xx answer larger than the
cap fails, an error answer is cut at `MAX_ERROR_ANSWER_BYTES` and the rest never read (decoded
by `_inflate` when compressed, so no more than that is ever inflated). For httpx's own blocking
transports, every socket operation also waits no longer than the time left before the deadline
(`bound_transports`), so headers that trickle in time out as well; outside a `deadline` block
the wrapped sockets behave exactly as before. The async exchange is cancelled at the deadline
as a whole, and fails as a bounded socket would (`deadline_failure`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs
import httpcore
import httpx

from ._inflate import bounded_decoder

__all__ = [
    "DEFAULT_MAX_ANSWER_BYTES",
    "MAX_ERROR_ANSWER_BYTES",
    "AnswerTooLarge",
    "Received",
    "answer_limit",
    "asend_bounded",
    "bound_transports",
    "deadline",
    "deadline_failure",
    "send_bounded",
]

# ConnectWise's answers are kilobytes; a batch's GL export holds ~1-2 KB per GL entry.
DEFAULT_MAX_ANSWER_BYTES = 256 * 1024 * 1024

# How much of an answer that is not 2xx is kept. Only ConnectWise's JSON error (its code,
# message and errors[], a few hundred bytes; ~150 bytes per field error, so a refusal listing
# thousands of GL entries still fits) or a short excerpt of another body is used; the rest of a
# larger one is never read: the connection is closed instead.
MAX_ERROR_ANSWER_BYTES = 1024 * 1024


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


def answer_limit(status: int, limit: int) -> tuple[int, bool]:
    """How many decoded bytes of an answer with ``status`` are read, and what passing them means.

    Returns:
        A 2xx answer: ``(limit, False)``, read whole within ``limit`` (passing it is
        `AnswerTooLarge`). Any other: at most `MAX_ERROR_ANSWER_BYTES`, and True: it is cut
        there, and the rest is never read.
    """
    if 200 <= status < 300:
        return limit, False
    return min(limit, MAX_ERROR_ANSWER_BYTES), True


def deadline_failure(*, connecting: bool) -> httpx.TimeoutException:
    """The failure of a request whose deadline passed, as a socket bounded by it would raise.

    ``connecting``: the deadline passed while connecting, before any of the request was written
    (it was not sent). Otherwise it may have arrived, whatever the server sent since.
    """
    error = httpx.ConnectTimeout if connecting else httpx.ReadTimeout
    return error("the request's deadline passed")


@attrs.frozen
class Received:
    """What came back for one request: the response (its status and headers) and its body.

    ``failure`` cut the exchange short; a body that fails after the status leaves ``body``
    empty. ``cut_at``: an error answer's body was cut after that many bytes (`answer_limit`).
    """

    response: httpx.Response | None
    body: bytes = b""
    failure: httpx.HTTPError | None = None
    cut_at: int | None = None


def send_bounded(
    http: httpx.Client, request: httpx.Request, *, timeout: float, limit: int
) -> Received:
    """Send ``request`` and read its answer, within ``timeout`` seconds and `answer_limit` bytes.

    Every socket operation of httpx's own transports waits only for the time left (see
    `bound_transports`), so a server trickling its answer cannot hold the request longer.
    """
    expires = time.monotonic() + timeout
    with deadline(expires):
        try:
            response = http.send(request, follow_redirects=False, stream=True)
        except httpx.HTTPError as err:
            return Received(None, failure=err)
        try:
            chunks = _Chunks(response, limit, expires)
            if chunks.decoder is None:
                pieces = response.iter_bytes()
            else:
                pieces = (chunks.decode(raw) for raw in response.iter_raw())
            for piece in pieces:
                if not chunks.add(piece):
                    break  # the rest of an error answer is not read: closing drops it
            return chunks.received(response)
        except httpx.HTTPError as err:  # the status stands, the body is not used
            return Received(response, failure=err)
        finally:
            response.close()


async def asend_bounded(
    http: httpx.AsyncClient, request: httpx.Request, *, timeout: float, limit: int
) -> Received:
    """`send_bounded` for an ``httpx.AsyncClient``.

    The async transports' sockets cannot be bounded one by one, so the whole exchange is
    cancelled at the deadline; what it had reached (connecting, or sent) gives the same failure
    a bounded socket would (`deadline_failure`).
    """
    expires = time.monotonic() + timeout
    progress = _Progress()
    request.extensions = {**request.extensions, "trace": progress.trace}
    try:
        return await asyncio.wait_for(_aexchange(http, request, limit, expires, progress), timeout)
    except asyncio.TimeoutError:
        if progress.connecting and progress.stream is not None:
            # httpcore leaves a connection open when its TLS handshake is cancelled
            with contextlib.suppress(Exception):
                await progress.stream.aclose()
        return Received(progress.response, failure=deadline_failure(connecting=progress.connecting))


async def _aexchange(
    http: httpx.AsyncClient, request: httpx.Request, limit: int, expires: float, progress: _Progress
) -> Received:
    try:
        response = await http.send(request, follow_redirects=False, stream=True)
    except httpx.HTTPError as err:
        return Received(None, failure=err)
    progress.response = response
    try:
        chunks = _Chunks(response, limit, expires)
        if chunks.decoder is None:
            pieces = response.aiter_bytes()
        else:
            pieces = (chunks.decode(raw) async for raw in response.aiter_raw())
        async for piece in pieces:
            if not chunks.add(piece):
                break
        return chunks.received(response)
    except httpx.HTTPError as err:
        return Received(response, failure=err)
    finally:
        await response.aclose()


class _Progress:
    """How far one async exchange got, from httpcore's ``trace`` events."""

    _CONNECTING = (".connect_tcp.started", ".connect_unix_socket.started", ".start_tls.started")

    def __init__(self) -> None:
        self.connecting = False  # a connection was being made for the request, not yet sent
        self.stream: httpcore.AsyncNetworkStream | None = None  # the one being made
        self.response: httpx.Response | None = None

    async def trace(self, name: str, info: Mapping[str, Any]) -> None:
        if name.endswith(self._CONNECTING):
            self.connecting = True
        elif name.endswith(".connect_tcp.complete"):
            self.stream = info.get("return_value")
        elif name.endswith(".send_request_headers.started"):
            self.connecting = False


class _Chunks:
    """An answer's body as it arrives, checked against its size bound and the deadline.

    An answer that is cut (`answer_limit`) in an encoding `bounded_decoder` knows is decoded
    from its raw bytes by ``decode`` (``decoder`` is set), never more than one byte past the
    bound; any other is decoded by httpx.
    """

    def __init__(self, response: httpx.Response, limit: int, expires: float) -> None:
        self._limit, self._cuts = answer_limit(response.status_code, limit)
        self._expires = expires
        encoding = response.headers.get("content-encoding")
        raw = self._cuts and not response.is_stream_consumed  # (a mock's answer is read already)
        self.decoder = bounded_decoder(encoding) if raw else None
        self._chunks: list[bytes] = []
        self._size = 0
        self._cut = False

    def decode(self, raw: bytes) -> bytes:
        """The body's next decoded bytes from ``raw``: at most one byte past the bound."""
        if self.decoder is None:
            raise RuntimeError("the answer is decoded by httpx")
        return self.decoder.decode(raw, self._limit - self._size + 1)

    def add(self, chunk: bytes) -> bool:
        """Keep ``chunk``; False once an error answer is cut (read no more).

        Raises:
            AnswerTooLarge: A 2xx answer passes its limit.
            httpx.ReadTimeout: The deadline passed.
        """
        room = self._limit - self._size
        if len(chunk) > room and not self._cuts:
            raise AnswerTooLarge(f"the answer is larger than {self._limit:,} bytes")
        if time.monotonic() > self._expires:
            raise httpx.ReadTimeout("the answer did not arrive complete in time")
        self._chunks.append(chunk[:room])
        self._size += min(len(chunk), room)
        self._cut = len(chunk) > room
        return not self._cut

    def received(self, response: httpx.Response) -> Received:
        cut_at = self._size if self._cut else None
        return Received(response, b"".join(self._chunks), cut_at=cut_at)
