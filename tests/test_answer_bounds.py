"""The deadline and size bounds of one exchange, the same for the blocking and the async client."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from cw_glbatch import (
    ApiError,
    ApiTimeoutError,
    AsyncConnectWiseClient,
    ConnectWiseClient,
    OutcomeUnknownError,
    ServerError,
    ValidationError,
)
from cw_glbatch._bounds import (
    DEFAULT_MAX_ANSWER_BYTES,
    MAX_ERROR_ANSWER_BYTES,
    answer_limit,
    deadline_failure,
)
from cw_glbatch._failures import transport_failure
from cw_glbatch._inflate import BoundedDecoder, bounded_decoder
from cw_glbatch._retry import Failure

from ._raw_server import RawServer, gzip_bomb
from .test_hostile_servers import CREDENTIALS

KINDS = pytest.mark.parametrize("kind", ["sync", "async"])

DEADLINE = 0.3  # seconds; every stalling server below would hold a request far longer


def outcome(kind: str, url: str, call: Callable[[Any], Any], **options: Any) -> tuple[Any, int]:
    """What ``call`` gives through a client of ``kind`` (its result or ApiError), and its sends."""
    settings = {"max_retries": 0, "timeout": DEADLINE, **options}
    if kind == "sync":
        with ConnectWiseClient(
            base_url=url, sleep=lambda s: None, **CREDENTIALS, **settings
        ) as client:
            try:
                return call(client), client.requests_sent
            except ApiError as err:
                return err, client.requests_sent

    async def no_wait(seconds: float) -> None:
        pass

    async def run() -> tuple[Any, int]:
        async with AsyncConnectWiseClient(
            base_url=url, sleep=no_wait, **CREDENTIALS, **settings
        ) as client:
            try:
                return await call(client), client.requests_sent
            except ApiError as err:
                return err, client.requests_sent

    return asyncio.run(run())


def _stall(server: RawServer, conn: socket.socket, head: bytes = b"") -> None:
    conn.sendall(head)
    server._stop.wait(30)  # until the test ends


def _silent(server: RawServer, conn: socket.socket) -> None:
    _stall(server, conn)


def _trickled_head(server: RawServer, conn: socket.socket) -> None:
    server.trickle(conn, b"HTTP/1.1 201 Created\r\nX-Pad: " + b"a" * 100 + b"\r\n\r\n")


def _stalled_body(server: RawServer, conn: socket.socket) -> None:
    _stall(server, conn, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n[]")


GET = lambda client: client.highest_batch_id()  # noqa: E731
POST = lambda client: client.create_batch("B1", [1])  # noqa: E731


@KINDS
@pytest.mark.parametrize(
    ("stall", "call", "expected"),
    [
        (_silent, GET, (ApiTimeoutError, 2)),
        (_silent, POST, (OutcomeUnknownError, 1)),
        (_trickled_head, GET, (ApiTimeoutError, 2)),
        (_trickled_head, POST, (OutcomeUnknownError, 1)),
        (_stalled_body, GET, (ApiTimeoutError, 2)),
        (_stalled_body, POST, ("created", 1)),
    ],
    ids=[
        "silent-GET",
        "silent-POST",
        "trickled head-GET",
        "trickled head-POST",
        "stalled body-GET",
        "stalled 2xx body-POST",
    ],
)
def test_a_stalling_server_runs_out_of_the_deadline(serve, kind, stall, call, expected):
    """A server that accepts and stalls ends each attempt at the deadline, with the same outcome
    for both clients: a read is retried then times out; a POST without status is outcome
    unknown (sent once); a POST answered 2xx is created."""
    server = serve(lambda conn: stall(server, conn))
    result, sent = outcome(kind, server.url, call, max_retries=1)
    error, sends = expected
    if error == "created":
        assert result.batch_identifier == "B1"
    else:
        assert type(result) is error, result
    assert sent == sends


@KINDS
def test_a_server_that_never_finishes_tls_is_not_sent_to(serve, kind):
    """A deadline passing in the TLS handshake means not sent: a POST is tried again, then
    fails as a timeout (not outcome unknown), for both clients."""
    server = serve(lambda conn: _stall(server, conn))
    url = server.url.replace("http://", "https://")
    result, sent = outcome(kind, url, POST, max_retries=1)
    assert type(result) is ApiTimeoutError, result
    assert "ConnectTimeout" in str(result)
    assert sent == 2


def test_the_deadline_failure_says_whether_the_request_was_sent():
    """Connecting when the deadline passed is a failure before sending; otherwise after it."""
    assert transport_failure(deadline_failure(connecting=True)) is Failure.NOT_CONNECTED
    assert transport_failure(deadline_failure(connecting=False)) is Failure.AFTER_SENDING


@pytest.mark.parametrize(
    ("status", "limit", "expected"),
    [
        (200, DEFAULT_MAX_ANSWER_BYTES, (DEFAULT_MAX_ANSWER_BYTES, False)),
        (204, 1024, (1024, False)),
        (500, DEFAULT_MAX_ANSWER_BYTES, (MAX_ERROR_ANSWER_BYTES, True)),
        (404, 1024, (1024, True)),
        (302, DEFAULT_MAX_ANSWER_BYTES, (MAX_ERROR_ANSWER_BYTES, True)),
    ],
)
def test_answer_limit_cuts_only_error_answers(status, limit, expected):
    """A 2xx answer is read whole within the cap; any other is cut at the smaller error bound."""
    assert answer_limit(status, limit) == expected


def _error_bomb(conn: socket.socket) -> None:
    body = gzip_bomb()  # 64 MiB of JSON in about 64 KiB of gzip
    conn.sendall(
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
        + f"Content-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


@KINDS
def test_a_compressed_error_answer_is_cut_and_still_reported(serve, kind, monkeypatch):
    """A gzip bomb answering 500 is a ServerError with its status, its body cut at the bound,
    never inflated more than one byte past it at a time."""
    inflated: list[int] = []
    decode = BoundedDecoder.decode

    def spy(self: BoundedDecoder, raw: bytes, most: int) -> bytes:
        inflated.append(len(decoded := decode(self, raw, most)))
        return decoded

    monkeypatch.setattr(BoundedDecoder, "decode", spy)
    server = serve(_error_bomb)
    result, sent = outcome(kind, server.url, GET, timeout=30)
    assert type(result) is ServerError, result
    assert result.status == 500
    assert f"its body was cut at {MAX_ERROR_ANSWER_BYTES:,} bytes" in str(result)
    assert sent == 1
    assert sum(inflated) == MAX_ERROR_ANSWER_BYTES + 1


class _Flood:
    """Answers 400 with a 256 MiB body, counting the bytes it manages to send."""

    BODY = 256 * 1024 * 1024

    def __init__(self) -> None:
        self.sent = 0
        self.done = threading.Event()

    def __call__(self, conn: socket.socket) -> None:
        head = b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
        conn.sendall(head + f"Content-Length: {self.BODY}\r\n\r\n".encode())
        piece = b'{"message": "' + b"x" * (64 * 1024)
        try:
            while self.sent < self.BODY:
                conn.sendall(piece)
                self.sent += len(piece)
        finally:
            self.done.set()


@KINDS
def test_a_huge_error_answer_is_not_drained(serve, kind):
    """The client stops reading an error answer at the bound and hangs up: the server could
    send only a small part of its 256 MiB body."""
    flood = _Flood()
    server = serve(flood)
    result, _ = outcome(kind, server.url, GET, timeout=30)
    assert type(result) is ValidationError, result
    assert (result.status, result.code) == (400, None)
    assert f"cut at {MAX_ERROR_ANSWER_BYTES:,} bytes" in str(result)
    assert flood.done.wait(20)  # the connection was closed, not kept to drain
    assert flood.sent < 64 * 1024 * 1024


def _json_error(size: int) -> bytes:
    """ConnectWise's JSON error padded with field errors to exactly ``size`` bytes."""
    base = {"code": "InvalidObject", "message": "refused", "errors": [{"code": "X"}]}
    pad = size - len(json.dumps(base).encode()) - len(', "pad": ""')
    return json.dumps({**base, "pad": "p" * pad}).encode()


@KINDS
@pytest.mark.parametrize("extra", [0, 1], ids=["at the bound", "one byte more"])
def test_an_error_answer_up_to_the_bound_is_read_whole(kind, extra):
    """A JSON error of exactly the bound keeps its code and message; one byte more is cut."""
    body = _json_error(MAX_ERROR_ANSWER_BYTES + extra)
    assert len(body) == MAX_ERROR_ANSWER_BYTES + extra

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, content=body, headers={"content-type": "application/json"})

    async def ahandler(request: httpx.Request) -> httpx.Response:
        return handler(request)

    transport = httpx.MockTransport(handler if kind == "sync" else ahandler)
    result, _ = outcome(kind, "https://example.test/api", GET, transport=transport)
    assert type(result) is ValidationError
    if extra:
        assert result.code is None
        assert f"cut at {MAX_ERROR_ANSWER_BYTES:,} bytes" in str(result)
    else:
        assert (result.code, [f.code for f in result.field_errors]) == ("InvalidObject", ["X"])
        assert "refused" in str(result)
        assert "cut at" not in str(result)


def _compressed(data: bytes, wbits: int) -> bytes:
    pack = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return pack.compress(data) + pack.flush()


def test_a_bomb_is_decoded_no_further_than_asked():
    """One 64 KiB read of a gzip bomb gives only the bytes asked for, not its 64 MiB."""
    decoder = bounded_decoder("gzip")
    assert decoder is not None
    assert len(decoder.decode(gzip_bomb()[: 64 * 1024], 1025)) == 1025


@pytest.mark.parametrize(
    ("encoding", "wbits"),
    [
        ("gzip", 31),
        ("x-gzip", 31),
        ("deflate", 15),
        ("deflate", -15),
        ("identity", None),
        (None, None),
    ],
)
def test_a_body_within_the_bound_is_decoded_whole_across_reads(encoding, wbits):
    """A body read in small raw pieces decodes to exactly the original, in each encoding."""
    body = json.dumps({"code": "X", "message": "m" * 5000}).encode()
    raw = body if wbits is None else _compressed(body, wbits)
    decoder = bounded_decoder(encoding)
    assert decoder is not None
    decoded = b"".join(decoder.decode(raw[i : i + 7], 1 << 20) for i in range(0, len(raw), 7))
    assert decoded == body


def test_a_body_not_in_its_encoding_is_a_decoding_error():
    """Bytes that are not gzip fail as httpx's own decoder fails: DecodingError."""
    decoder = bounded_decoder("gzip")
    assert decoder is not None
    with pytest.raises(httpx.DecodingError, match="not valid gzip"):
        decoder.decode(b"not gzip!", 100)


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, gzip", "compress"])
def test_other_encodings_are_left_to_httpx(encoding):
    """Encodings beyond gzip and deflate (or several) get no bounded decoder."""
    assert bounded_decoder(encoding) is None
