"""Hostile or broken servers: trickles, bombs, bad encodings and echoed secrets, all contained."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
from collections.abc import Callable

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cw_glbatch import (
    ApiError,
    ApiTimeoutError,
    BatchRequest,
    ConnectWiseClient,
    OutcomeUnknownError,
    create_batches,
    process_file,
)
from cw_glbatch.testing import FakeConnectWise

from ._raw_server import RawServer, gzip_bomb

CREDENTIALS = {
    "company_id": "acme",
    "public_key": "pub",
    "private_key": "s3cr3t/private+key",
    "client_id": "c1ient-id-0f-the-integrat1on",
}


def mock_client(handler: Callable[[httpx.Request], httpx.Response], **options) -> ConnectWiseClient:
    """A client whose answers come from ``handler``, in process."""
    settings = {"max_retries": 0, "sleep": lambda s: None, **options}
    return ConnectWiseClient(
        base_url="https://example.test/api", transport=httpx.MockTransport(handler),
        **settings, **CREDENTIALS,
    )  # fmt: skip


def client_for(server: RawServer, **options) -> ConnectWiseClient:
    settings = {"max_retries": 0, "sleep": lambda s: None, **options}
    return ConnectWiseClient(base_url=server.url, **CREDENTIALS, **settings)


BODY = b"[]" + b" " * 98  # valid JSON, 100 bytes: 2 s at the trickle's pace


def test_trickled_body_runs_out_of_the_deadline(serve):
    """An answer trickling in, each byte well within the read timeout, still times out overall."""
    server = serve(
        lambda conn: (
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"),
            conn.sendall(b"Content-Length: 100\r\n\r\n"),
            server.trickle(conn, BODY),
        )
    )
    with client_for(server, timeout=0.5) as client, pytest.raises(ApiTimeoutError):
        client.highest_batch_id()


def test_trickled_headers_run_out_of_the_deadline(serve):
    """Headers trickling in time out overall too (the answer has no body to check between)."""
    headers = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 100 + b"\r\nContent-Length: 0\r\n\r\n"
    server = serve(lambda conn: server.trickle(conn, headers))
    with client_for(server, timeout=0.5) as client, pytest.raises(ApiTimeoutError):
        client.highest_batch_id()


def test_trickled_post_answer_is_outcome_unknown(serve):
    """A POST whose answer's head runs out of the deadline (no status came) is outcome unknown."""
    headers = b"HTTP/1.1 201 Created\r\nX-Pad: " + b"a" * 100 + b"\r\nContent-Length: 0\r\n\r\n"
    server = serve(lambda conn: server.trickle(conn, headers))
    with client_for(server, timeout=0.5) as client, pytest.raises(OutcomeUnknownError):
        client.create_batch("B1", [1])


def test_trickled_body_of_a_2xx_to_a_post_is_created(serve):
    """A POST answered 2xx whose body runs out of the deadline is created (any 2xx is)."""
    server = serve(
        lambda conn: (
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"),
            server.trickle(conn, BODY),
        )
    )
    with client_for(server, timeout=0.5) as client:
        export = client.create_batch("B1", [1])
    assert (export.batch_identifier, export.data) == ("B1", {})


# A read fails with ApiError, not asked again; a POST answered 2xx is created, whatever its body.
GET_OR_POST = pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda client: client.highest_batch_id(), ApiError),
        (lambda client: client.create_batch("B1", [1]).batch_identifier, None),
    ],
    ids=["GET", "POST"],
)


def _bomb_reply(conn: socket.socket) -> None:
    body = gzip_bomb()
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


@GET_OR_POST
def test_compressed_answer_beyond_the_cap_fails_cleanly(serve, call, error):
    """A gzip bomb inflating past the cap fails a read, once; a create answered 2xx is created."""
    server = serve(_bomb_reply)
    with client_for(server, max_answer_bytes=1024 * 1024, max_retries=3) as client:
        if error is None:
            assert call(client) == "B1"
        else:
            with pytest.raises(error, match="larger than 1,048,576 bytes") as caught:
                call(client)
            assert type(caught.value) is error
        assert client.requests_sent == 1


@GET_OR_POST
def test_bad_content_encoding_maps_to_the_library_errors(serve, call, error):
    """An answer that cannot be decoded fails a read, once; a create answered 2xx is created."""
    server = serve(
        lambda conn: conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!"
        )
    )
    with client_for(server, max_retries=3) as client:
        if error is None:
            assert call(client) == "B1"
        else:
            with pytest.raises(error) as caught:
                call(client)
            assert type(caught.value) is error
        assert client.requests_sent == 1


def _corrupting(
    fake: FakeConnectWise, change: Callable[[httpx.Request, httpx.Response], httpx.Response]
):
    inner = fake.transport()

    def handler(request: httpx.Request) -> httpx.Response:
        response = inner.handle_request(request)
        response.read()
        return change(request, response)

    return httpx.MockTransport(handler)


def test_undecodable_answer_to_a_post_that_created_its_batch_ends_created():
    """A created batch whose answer has a broken encoding is found by lookup: created, no error."""
    fake = FakeConnectWise()
    fake.add_unposted([7, 8])

    def break_posts(request, response):
        if request.method != "POST":
            return response
        return httpx.Response(200, headers={"content-encoding": "gzip"}, content=b"not gzip")

    with fake.client(transport=_corrupting(fake, break_posts)) as client:
        report = create_batches(client, [BatchRequest("B1", [7, 8])])
    [result] = report.results
    assert (result.status, result.batch_id) == ("created", fake.batches[0].id)
    assert len(fake.batches) == 1


def test_echoed_secrets_never_reach_files_logs_or_exceptions(tmp_path, caplog):
    """A server that repeats the request headers in its errors leaks no credential anywhere."""
    fake = FakeConnectWise()
    fake.add_unposted([7])

    def echo_headers(request, response):
        if request.method != "POST":
            return response
        headers = dict(request.headers)
        message = f"bad request {headers}; also as JSON {json.dumps(headers)}"
        body = {"code": "InvalidObject", "message": message, "errors": [{"message": message}]}
        return httpx.Response(400, json=body)

    (tmp_path / "in.xml").write_text(
        "<Batches><Batch><batchIdentifier>B1</batchIdentifier>"
        "<glRecIds><glRecId>7</glRecId></glRecIds></Batch></Batches>"
    )
    caplog.set_level(logging.DEBUG)
    with fake.client(transport=_corrupting(fake, echo_headers)) as client:
        report = process_file(
            client, tmp_path / "in.xml", tmp_path / "ok.xml", tmp_path / "bad.xml"
        )
        with pytest.raises(ApiError) as caught:
            client.create_batch("B2", [7])
    secrets = [
        fake.credentials["private_key"],
        fake.credentials["client_id"],
        client._headers["Authorization"].removeprefix("Basic "),
    ]
    fail_file = (tmp_path / "bad.xml").read_text()
    assert report.counts["failed"] == 1
    assert "[redacted]" in fail_file
    for secret in secrets:
        for text in (fail_file, caplog.text, str(caught.value), repr(caught.value)):
            assert secret not in text
            assert json.dumps(secret)[1:-1] not in text


def test_no_deadline_needed_for_an_ordinary_answer(serve):
    """A prompt answer is read whole and decoded as before."""
    server = serve(
        lambda conn: conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
            b'[{"id": 9}]'
        )
    )
    with client_for(server, timeout=5) as client:
        assert client.highest_batch_id() == 9


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda client: client.highest_batch_id(), ApiError),
        (lambda client: client.create_batch("B1", [1]), OutcomeUnknownError),
    ],
    ids=["GET", "POST"],
)
def test_secrets_quoted_by_a_transport_failure_are_redacted(call, error, caplog):
    """A failure whose text quotes what was sent or received names no secret, nor does the log."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError(f"malformed answer to {dict(request.headers)}")

    caplog.set_level(logging.DEBUG)
    client = mock_client(handler, max_retries=1)
    with client, pytest.raises(error) as caught:
        call(client)
    token = client._headers["Authorization"].removeprefix("Basic ")
    for secret in (token, CREDENTIALS["private_key"], CREDENTIALS["client_id"]):
        assert secret not in str(caught.value)
        assert secret not in caplog.text
    assert "[redacted]" in str(caught.value)


@pytest.mark.parametrize(
    "spelling",
    ['"s3cr3t\\/private+key"', '"s3cr3t/private+key"', "s3cr3t/private+key"],
    ids=["slash escaped", "JSON string", "as is"],
)
def test_redaction_covers_the_ways_a_server_writes_a_secret(spelling):
    """Each spelling of a secret in an answer becomes [redacted]."""
    from cw_glbatch._redact import redact

    answer = f'{{"message": "you sent {spelling}"}}'.encode()
    assert b"s3cr3t" not in redact(answer, [CREDENTIALS["private_key"]])


@pytest.mark.parametrize(
    "url",
    [
        "https://[::1",
        "https://example.test/api/finance/accounting/batches?x=\x01",
        "https://example.test/api/finance/accounting/batches/\u2028",
        "https://example.test/" + "a" * 70_000,
    ],
    ids=["unclosed bracket", "control character", "non-ASCII", "too long"],
)
def test_a_next_link_that_is_not_a_url_is_an_api_error(url):
    """A Link header whose next URL cannot be used is refused as an ApiError."""

    def handler(request: httpx.Request) -> httpx.Response:
        links = [(b"link", f'<{url}>; rel="next"'.encode())]  # bytes, as off the wire
        return httpx.Response(200, json=[{"id": 1, "batchIdentifier": "A"}], headers=links)

    client = mock_client(handler)
    with client, pytest.raises(ApiError, match="not a valid URL"):
        list(client.list_batches())


def test_short_secrets_do_not_mangle_answers():
    """A credential too short to tell from ordinary text is not redacted: answers stay intact."""
    from cw_glbatch._redact import redact

    assert redact(b'[{"id": 1}]', ["d", "id", "abc1234"]) == b'[{"id": 1}]'


@pytest.mark.parametrize("status", [200, 400])
def test_json_nested_too_deeply_is_an_api_error(status):
    """An answer nested 200,000 deep is an ApiError (a created batch stays created), no
    RecursionError."""
    deep = b"[" * 200_000 + b"]" * 200_000

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=deep, headers={"content-type": "application/json"})

    client = mock_client(handler)
    with client:
        with pytest.raises(ApiError):
            client.highest_batch_id()
        if status == 200:
            assert client.create_batch("B1", [1]).batch_identifier == "B1"
        else:
            with pytest.raises(ApiError):
                client.create_batch("B1", [1])


def test_a_server_ignoring_paging_does_not_loop_forever():
    """Full pages that repeat (the page number ignored) end in an ApiError, not an endless loop."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json=[{"id": 1}, {"id": 2}])

    with mock_client(handler) as client, pytest.raises(ApiError, match="ignores paging"):
        list(client.list_batches(page_size=2))
    assert len(calls) == 2


def test_a_header_that_is_not_ascii_does_not_break_the_answer(serve):
    """A server sending UTF-8 in a header still gets its answer read."""
    server = serve(
        lambda conn: conn.sendall(
            b"HTTP/1.1 200 OK\r\nX-Note: caf\xc3\xa9\r\nContent-Type: application/json\r\n"
            b'Content-Length: 11\r\n\r\n[{"id": 9}]'
        )
    )
    with client_for(server) as client:
        assert client.highest_batch_id() == 9


_BODIES = st.one_of(
    st.sampled_from(
        [b"", b"[]", b"{}", b"null", b'[{"id": 1}]', b'[{"id": "1"}]', b"[" * 5000,
         b'{"code": "X", "message": "m", "errors": [1, null, {"field": 1}]}', b'{"errors": "x"}']
    ),
    st.binary(max_size=60),
)  # fmt: skip
_HEADERS = st.lists(
    st.tuples(
        st.sampled_from([b"link", b"retry-after", b"content-type", b"content-encoding"]),
        st.one_of(
            st.sampled_from(
                [b"<https://example.test/api/finance/accounting/batches?page=2>; rel=next",
                 b'<\x01>; rel="next"', b"gzip", b"br", b"deflate", b"1e309", b"nan",
                 b"application/json", b"text/html"]
            ),
            st.binary(min_size=1, max_size=8).filter(lambda v: b"\r" not in v and b"\n" not in v),
        ),
    ),
    max_size=3,
)  # fmt: skip
_CALLS = [
    lambda client: client.highest_batch_id(),
    lambda client: list(client.list_batches(page_size=1)),
    lambda client: client.create_batch("X", [1]),
    lambda client: client.get_batch(1),
    lambda client: client.delete_batch(1),
]


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([200, 201, 204, 400, 404, 408, 429, 500, 502, 503, 520, 999]), _BODIES, _HEADERS
)
def test_any_answer_ends_in_a_result_or_an_api_error(status, body, headers):
    """Whatever status, body and headers a server sends, each call returns or raises ApiError."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers)

    with mock_client(handler, max_retries=1) as client:
        for call in _CALLS:
            with contextlib.suppress(ApiError):
                call(client)


def test_a_callers_own_http_client_is_bounded_too(serve):
    """With http_client=, trickled headers still run out of the deadline."""
    headers = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 100 + b"\r\nContent-Length: 0\r\n\r\n"
    server = serve(lambda conn: server.trickle(conn, headers))
    with httpx.Client() as http:
        client = ConnectWiseClient(
            base_url=server.url, http_client=http, timeout=0.5, max_retries=0, **CREDENTIALS
        )
        with pytest.raises(ApiTimeoutError):
            client.highest_batch_id()


def test_the_async_client_caps_answers_and_redacts_them_too():
    """AsyncConnectWiseClient reads answers through the same cap and redaction as the sync one."""
    import asyncio

    from cw_glbatch import AsyncConnectWiseClient

    echo = json.dumps({"message": f"bad key {CREDENTIALS['private_key']}"}).encode()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("pageSize") == "1":
            return httpx.Response(200, content=b"[" + b" " * 4096 + b"]")
        return httpx.Response(400, content=echo, headers={"content-type": "application/json"})

    async def calls() -> tuple[str, str]:
        client = AsyncConnectWiseClient(
            base_url="https://example.test/api", transport=httpx.MockTransport(handler),
            max_retries=0, max_answer_bytes=1024, **CREDENTIALS,
        )  # fmt: skip
        async with client:
            with pytest.raises(ApiError) as too_large:
                await client.highest_batch_id()
            with pytest.raises(ApiError) as echoed:
                await client.get_batch(7)
        return str(too_large.value), str(echoed.value)

    too_large, echoed = asyncio.run(calls())
    assert "larger than 1,024 bytes" in too_large
    assert CREDENTIALS["private_key"] not in echoed
    assert "[redacted]" in echoed
