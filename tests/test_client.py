"""ConnectWiseClient: request shape, paging, errors, retries and secret hygiene (respx)."""

from __future__ import annotations

import base64
import json
import logging
import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

import cw_glbatch._answers
from cw_glbatch import (
    AccountingBatch,
    ApiConnectionError,
    ApiError,
    ApiTimeoutError,
    AsyncConnectWiseClient,
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    ConflictError,
    ConnectWiseClient,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
)

from ._blocking import BlockingAsyncClient

SITE = "api-na.myconnectwise.net"
ROOT = f"https://{SITE}/v2025_1/apis/3.0"
BATCHES = f"{ROOT}/finance/accounting/batches"
PRIVATE_KEY = "pr1vateKEYzz9"
CLIENT_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
CREDENTIALS = {
    "company_id": "acme",
    "public_key": "pubKey123",
    "private_key": PRIVATE_KEY,
    "client_id": CLIENT_ID,
}
EXPECTED_AUTH = "Basic " + base64.b64encode(f"acme+pubKey123:{PRIVATE_KEY}".encode()).decode()


class Sleeps(list):
    """A fake sleep that records how long it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture(params=["sync", "async"])
def client(request, sleeps):
    """A ConnectWiseClient, or an AsyncConnectWiseClient run to completion call by call."""
    if request.param == "sync":
        with ConnectWiseClient(base_url=ROOT, sleep=sleeps, **CREDENTIALS) as c:
            yield c
        return

    async def sleep(seconds: float) -> None:
        sleeps(seconds)

    async_client = AsyncConnectWiseClient(base_url=ROOT, sleep=sleep, **CREDENTIALS)
    with BlockingAsyncClient(async_client) as c:
        yield c


def batch_json(batch_id: int, identifier: str = "x") -> dict:
    return {
        "id": batch_id,
        "batchIdentifier": identifier,
        "closedFlag": False,
        "exportInvoicesFlag": True,
        "exportExpensesFlag": True,
        "exportProductsFlag": True,
        "_info": {"dateEntered": "2026-11-24T10:00:00Z"},
    }


# -- where requests go, and what they carry ---------------------------------------------------


def test_site_looks_up_the_codebase_once(respx_mock, sleeps):
    """With site=, the API root comes from /login/companyinfo, fetched once."""
    info = respx_mock.get(f"https://{SITE}/login/companyinfo/acme").respond(
        json={"CompanyName": "Acme", "Codebase": "v2025_1/", "IsCloud": True}
    )
    batch = respx_mock.get(f"{BATCHES}/7").respond(json=batch_json(7))
    with ConnectWiseClient(site=SITE, sleep=sleeps, **CREDENTIALS) as c:
        c.get_batch(7)
        c.get_batch(7)
    assert (info.call_count, batch.call_count) == (1, 2)
    assert "authorization" not in info.calls.last.request.headers


def test_codebase_given_skips_the_lookup(respx_mock):
    """With codebase=, no lookup is made."""
    route = respx_mock.get(f"{BATCHES}/7").respond(json=batch_json(7))
    with ConnectWiseClient(site=SITE, codebase="v2025_1/", **CREDENTIALS) as c:
        assert c.api_root == ROOT
        c.get_batch(7)
    assert route.called


def test_company_info_without_codebase_is_a_clear_error(respx_mock):
    """A company info answer with no Codebase says to pass codebase= or base_url=."""
    respx_mock.get(f"https://{SITE}/login/companyinfo/acme").respond(json={"CompanyName": "A"})
    with (
        ConnectWiseClient(site=SITE, **CREDENTIALS) as c,
        pytest.raises(NotFoundError, match=r"does not know the company id 'acme'.*pass codebase="),
    ):
        c.get_batch(1)


def test_every_request_carries_both_auth_headers(respx_mock, client):
    """Authorization (Basic company+public:private) and clientId are on every API request."""
    route = respx_mock.get(f"{BATCHES}/7").respond(json=batch_json(7))
    client.get_batch(7)
    headers = route.calls.last.request.headers
    assert headers["authorization"] == EXPECTED_AUTH
    assert headers["clientid"] == CLIENT_ID
    assert headers["accept"] == "application/json"
    assert headers["user-agent"].startswith("cw-glbatch/")


def test_api_version_sets_the_versioned_media_type(respx_mock):
    """api_version= asks for ConnectWise's versioned JSON."""
    route = respx_mock.get(f"{BATCHES}/7").respond(json=batch_json(7))
    with ConnectWiseClient(base_url=ROOT, api_version="2025.1", **CREDENTIALS) as c:
        c.get_batch(7)
    assert route.calls.last.request.headers["accept"] == (
        "application/vnd.connectwise.com+json; version=2025.1"
    )


def test_create_batch_posts_exactly_connectwise_fields(respx_mock, client):
    """The POST body has ConnectWise's field names and nothing else."""
    route = respx_mock.post(BATCHES).respond(
        201, json={"transactions": [{"glEntryIds": "320042,320044"}]}
    )
    export = client.create_batch("221106", [320042, 320044])
    request = route.calls.last.request
    assert json.loads(request.content) == {
        "batchIdentifier": "221106",
        "processedRecordIds": [320042, 320044],
        "exportInvoicesFlag": True,
        "exportExpensesFlag": True,
        "exportProductsFlag": True,
    }
    assert request.headers["content-type"] == "application/json"
    assert (export.batch_identifier, export.gl_entry_ids) == ("221106", (320042, 320044))
    assert export.data == {"transactions": [{"glEntryIds": "320042,320044"}]}


def test_create_batch_optional_fields_are_sent_when_given(respx_mock, client):
    """summarizeExpenses and glInterfaceIdentifier are sent only when set."""
    route = respx_mock.post(BATCHES).respond(json={})
    client.create_batch(
        "b", [1], export_products=False, summarize_expenses=True, gl_interface_identifier="QB"
    )
    body = json.loads(route.calls.last.request.content)
    assert (
        body["exportProductsFlag"],
        body["summarizeExpenses"],
        body["glInterfaceIdentifier"],
    ) == (
        False,
        True,
        "QB",
    )


@pytest.mark.parametrize(("identifier", "ids"), [("", [1]), ("x" * 51, [1]), ("ok", [])])
def test_create_batch_refuses_what_connectwise_would(client, identifier, ids):
    """An empty or over-long identifier, or no ids, is refused before sending."""
    with pytest.raises(ValueError, match=r"identifier must be|at least one"):
        client.create_batch(identifier, ids)


def test_get_batch_decodes_the_batch(respx_mock, client):
    """get_batch returns an AccountingBatch with ConnectWise's fields."""
    respx_mock.get(f"{BATCHES}/7").respond(json=batch_json(7, "221106"))
    assert client.get_batch(7) == AccountingBatch(
        7, "221106", False, True, True, True, "2026-11-24T10:00:00Z"
    )


def test_unexpected_batch_shape_is_an_api_error(respx_mock, client):
    """An answer that is not a batch gives ApiError, not a KeyError."""
    respx_mock.get(f"{BATCHES}/7").respond(json={"batchIdentifier": "x"})
    with pytest.raises(ApiError, match="has no id"):
        client.get_batch(7)


def test_delete_batch_sends_delete(respx_mock, client):
    """delete_batch sends DELETE to the batch's path."""
    route = respx_mock.delete(f"{BATCHES}/7").respond(204)
    client.delete_batch(7)
    assert route.called


# -- paging and lookups -----------------------------------------------------------------------


def test_list_batches_pages_by_number_over_2500(respx_mock, client):
    """Without a Link header, pages are asked by number until a short page."""
    all_batches = [batch_json(i) for i in range(1, 2501)]

    def page(request: httpx.Request) -> httpx.Response:
        number, size = int(request.url.params["page"]), int(request.url.params["pageSize"])
        return httpx.Response(200, json=all_batches[(number - 1) * size : number * size])

    route = respx_mock.get(BATCHES).mock(side_effect=page)
    assert [b.id for b in client.list_batches()] == list(range(1, 2501))
    assert [c.request.url.params["page"] for c in route.calls] == ["1", "2", "3"]


def test_list_batches_follows_link_next(respx_mock, client):
    """With a Link rel="next" header, the link is followed (forward-only paging)."""
    link = f'<{BATCHES}?pageSize=1&pageId=1>; rel="next", <{BATCHES}>; rel="first"'

    def page(request: httpx.Request) -> httpx.Response:
        if "pageId" in request.url.params:  # the second, forward-only page: no more links
            return httpx.Response(200, json=[batch_json(2)])
        return httpx.Response(200, json=[batch_json(1)], headers={"Link": link})

    route = respx_mock.get(url__startswith=BATCHES).mock(side_effect=page)
    assert [b.id for b in client.list_batches(page_size=1)] == [1, 2]
    assert "page=" not in str(route.calls.last.request.url)


def test_next_link_to_another_host_is_refused(respx_mock, client):
    """A next-page link to another server is never followed with our credentials."""
    respx_mock.get(BATCHES).respond(
        json=[batch_json(1)], headers={"Link": '<https://evil.example/x?page=2>; rel="next"'}
    )
    with pytest.raises(ApiError, match="another server"):
        list(client.list_batches())


def test_find_batches_lists_identifiers_with_quotes_instead_of_escaping(respx_mock, client):
    """Identifiers with quotes or backslashes are found by an id listing, compared in Python."""
    route = respx_mock.get(BATCHES).mock(
        side_effect=lambda request: httpx.Response(
            200,
            json=[batch_json(11, 'a"b'), batch_json(12, "c\\"), batch_json(13, "it's")]
            if request.url.params["conditions"].startswith("id >")
            else [batch_json(14, "plain")],
        )
    )
    found = client.find_batches(['a"b', "c\\", "plain", "it's"], min_id=10)
    asked = [call.request.url.params["conditions"] for call in route.calls]
    assert asked == ['batchIdentifier in ("plain") and id > 10', "id > 10"]
    assert all("\\" not in c and "'" not in c and c.count('"') % 2 == 0 for c in asked)
    assert sorted(b.id for b in found) == [11, 12, 13, 14]


def test_batch_entry_ids_reads_every_page(respx_mock, client):
    """batch_entry_ids lists /batches/{id}/entries page by page and returns their ids."""
    route = respx_mock.get(f"{BATCHES}/5/entries").mock(
        side_effect=[
            httpx.Response(
                200,
                json=[{"id": n} for n in range(1000)],
                headers={"Link": f'<{BATCHES}/5/entries?pageSize=1000&page=2>; rel="next"'},
            ),
            httpx.Response(200, json=[{"id": 1000}]),
        ]
    )
    assert client.batch_entry_ids(5) == list(range(1001))
    assert route.calls[0].request.url.params["fields"] == "id"


def test_find_batches_chunks_long_lists_into_short_urls(respx_mock, client):
    """Many identifiers become several requests, each URL under 2,000 characters."""
    route = respx_mock.get(BATCHES).respond(json=[])
    client.find_batches([f"2026-11-24T10:00:{i:05d}" for i in range(500)])
    assert route.call_count > 1
    assert all(len(str(call.request.url)) < 2000 for call in route.calls)
    asked = "".join(call.request.url.params["conditions"] for call in route.calls)
    assert all(f'"2026-11-24T10:00:{i:05d}"' in asked for i in range(500))


def test_highest_batch_id_asks_for_one_record(respx_mock, client):
    """highest_batch_id orders by id descending and asks for one."""
    route = respx_mock.get(BATCHES).respond(json=[{"id": 812}])
    assert client.highest_batch_id() == 812
    params = route.calls.last.request.url.params
    assert (params["orderBy"], params["pageSize"]) == ("id desc", "1")


def test_highest_batch_id_is_zero_without_batches(respx_mock, client):
    """With no batches at all, the highest id is 0."""
    respx_mock.get(BATCHES).respond(json=[])
    assert client.highest_batch_id() == 0


# -- errors -----------------------------------------------------------------------------------

CW_ERROR = {
    "code": "InvalidObject",
    "message": "AccountingBatch object is invalid",
    "errors": [
        {
            "code": "InvalidField",
            "message": "GL entry 320044 is already in a batch",
            "resource": "AccountingBatch",
            "field": "processedRecordIds",
        }
    ],
}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, ValidationError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (418, ApiError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
    ],
)
def test_each_status_gives_its_exception(respx_mock, sleeps, status, error):
    """Each error status maps to its exception, carrying ConnectWise's code and fields."""
    respx_mock.get(f"{BATCHES}/7").respond(status, json=CW_ERROR)
    with (
        ConnectWiseClient(base_url=ROOT, max_retries=0, **CREDENTIALS) as c,
        pytest.raises(error) as info,
    ):
        c.get_batch(7)
    raised = info.value
    assert type(raised) is error
    assert (raised.status, raised.code, raised.method, raised.path) == (
        status,
        "InvalidObject",
        "GET",
        "/finance/accounting/batches/7",
    )
    assert raised.field_errors[0].field == "processedRecordIds"
    assert "GL entry 320044 is already in a batch" in str(raised)


def test_html_error_body_gives_a_readable_message(respx_mock, client):
    """A proxy's HTML 502 page becomes a short readable message."""
    page = "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad</h1></body></html>"
    respx_mock.get(f"{BATCHES}/7").respond(502, text=page, headers={"content-type": "text/html"})
    with pytest.raises(ServerError) as info:
        client.get_batch(7)
    assert str(info.value) == "GET /finance/accounting/batches/7: 502 502 Bad Gateway"


def test_empty_error_body_names_the_status(respx_mock, client):
    """An error with no body still says what happened."""
    respx_mock.get(f"{BATCHES}/7").respond(404)
    with pytest.raises(NotFoundError, match="HTTP 404 Not Found"):
        client.get_batch(7)


def test_redirect_is_not_followed(respx_mock, client):
    """A redirect is an error: credentials are never sent on to another place."""
    respx_mock.get(f"{BATCHES}/7").respond(302, headers={"Location": "https://evil.example/"})
    other = respx_mock.get("https://evil.example/")
    with pytest.raises(ApiError, match="302"):
        client.get_batch(7)
    assert not other.called


# -- retries ----------------------------------------------------------------------------------


def test_get_is_retried_on_5xx_then_succeeds(respx_mock, client, sleeps):
    """GET is retried on 500 with growing backoff."""
    route = respx_mock.get(f"{BATCHES}/7")
    route.side_effect = [
        httpx.Response(500),
        httpx.Response(502),
        httpx.Response(200, json=batch_json(7)),
    ]
    assert client.get_batch(7).id == 7
    assert route.call_count == 3
    assert 0.375 <= sleeps[0] <= 0.5
    assert 0.75 <= sleeps[1] <= 1.0


def test_get_gives_up_after_max_retries(respx_mock, client, sleeps):
    """After max_retries retries the last error is raised."""
    route = respx_mock.get(f"{BATCHES}/7").respond(500)
    with pytest.raises(ServerError):
        client.get_batch(7)
    assert (route.call_count, len(sleeps)) == (5, 4)


def test_no_retry_on_400(respx_mock, client, sleeps):
    """A 400 is final: it is not sent again."""
    route = respx_mock.post(BATCHES).respond(400, json=CW_ERROR)
    with pytest.raises(ValidationError):
        client.create_batch("b", [1])
    assert (route.call_count, sleeps) == (1, [])


def test_retry_after_seconds_is_honoured(respx_mock, client, sleeps):
    """Retry-After in seconds sets the wait."""
    route = respx_mock.post(BATCHES)
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(200, json={}),
    ]
    client.create_batch("b", [1])
    assert sleeps == [7.0]


def test_retry_after_http_date_is_honoured(respx_mock, client, sleeps):
    """Retry-After as an HTTP date sets the wait to the time until then."""
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    route = respx_mock.get(f"{BATCHES}/7")
    route.side_effect = [
        httpx.Response(503, headers={"Retry-After": when}),
        httpx.Response(200, json=batch_json(7)),
    ]
    client.get_batch(7)
    assert 27 <= sleeps[0] <= 30


def test_retry_after_is_capped(respx_mock, client, sleeps):
    """A huge Retry-After is capped at a minute."""
    route = respx_mock.get(f"{BATCHES}/7")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "86400"}),
        httpx.Response(200, json=batch_json(7)),
    ]
    client.get_batch(7)
    assert sleeps == [60.0]


@pytest.mark.parametrize("status", [429, 503, 521, 522, 523, 525, 526])
def test_post_is_retried_when_certainly_not_processed(respx_mock, client, status):
    """A POST answered 429, 503 or Cloudflare's 521-523/525/526 was not processed: sent again."""
    route = respx_mock.post(BATCHES)
    route.side_effect = [httpx.Response(status), httpx.Response(200, json={})]
    client.create_batch("b", [1])
    assert route.call_count == 2


@pytest.mark.parametrize("status", [408, 500, 502, 504, 520, 524])
def test_post_with_unknown_outcome_is_not_resent(respx_mock, client, status):
    """A POST answered 408 or a 5xx that may follow a commit: OutcomeUnknownError, sent once."""
    route = respx_mock.post(BATCHES).respond(status)
    with pytest.raises(OutcomeUnknownError) as info:
        client.create_batch("b", [1])
    assert (route.call_count, info.value.status) == (1, status)


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (201, b"<html><title>Welcome</title></html>", "text/html"),
        (200, b"", "text/plain"),
        (202, b"not json at all", "application/json"),
    ],
)
def test_any_2xx_to_a_post_is_created(respx_mock, client, status, body, content_type):
    """A create answered with any 2xx returns, even when the body is not JSON."""
    route = respx_mock.post(BATCHES).respond(
        status, content=body, headers={"content-type": content_type}
    )
    export = client.create_batch("b", [1, 2])
    assert (route.call_count, export.batch_identifier, export.records) == (1, "b", ())
    assert export.data == ({"body": body.decode()} if body else {})


def test_post_read_timeout_is_outcome_unknown(respx_mock, client):
    """A POST whose answer timed out is OutcomeUnknownError, sent once."""
    route = respx_mock.post(BATCHES).mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(OutcomeUnknownError, match="may or may not"):
        client.create_batch("b", [1])
    assert route.call_count == 1


def test_post_dropped_connection_is_outcome_unknown(respx_mock, client):
    """A POST whose connection dropped after sending is OutcomeUnknownError, sent once."""
    route = respx_mock.post(BATCHES).mock(side_effect=httpx.RemoteProtocolError("disconnected"))
    with pytest.raises(OutcomeUnknownError):
        client.create_batch("b", [1])
    assert route.call_count == 1


def test_post_connect_error_is_retried(respx_mock, client):
    """A POST that could not connect was never sent, so it is retried."""
    route = respx_mock.post(BATCHES)
    route.side_effect = [httpx.ConnectError("refused"), httpx.Response(200, json={})]
    client.create_batch("b", [1])
    assert route.call_count == 2


def test_get_timeout_is_retried_then_raised(respx_mock, client):
    """GET timeouts are retried, then raised as ApiTimeoutError."""
    route = respx_mock.get(f"{BATCHES}/7").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(ApiTimeoutError, match="no answer within 30 s"):
        client.get_batch(7)
    assert route.call_count == 5


def test_get_connection_error_is_an_api_connection_error(respx_mock, client):
    """A GET that cannot connect ends as ApiConnectionError after retries."""
    respx_mock.get(f"{BATCHES}/7").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(ApiConnectionError, match="refused"):
        client.get_batch(7)


def test_connection_failure_names_the_host(respx_mock, client):
    """A request that cannot connect says which server it tried."""
    respx_mock.get(f"{BATCHES}/7").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(ApiConnectionError, match=f"cannot connect to {SITE}: refused"):
        client.get_batch(7)


def test_unknown_company_id_says_so(respx_mock):
    """A 404 from the codebase lookup is a NotFoundError naming the company id and the host."""
    respx_mock.get(f"https://{SITE}/login/companyinfo/acme").respond(404, json={})
    with (
        ConnectWiseClient(site=SITE, **CREDENTIALS) as c,
        pytest.raises(
            NotFoundError, match=f"ConnectWise at {SITE} does not know the company id 'acme'"
        ),
    ):
        c.get_batch(1)


def test_retried_delete_that_finds_nothing_succeeded(respx_mock, client):
    """A DELETE retried after a lost answer and then answered 404 had worked the first time."""
    route = respx_mock.delete(f"{BATCHES}/7")
    route.side_effect = [httpx.ReadTimeout("lost"), httpx.Response(404)]
    client.delete_batch(7)
    assert route.call_count == 2


def test_retries_are_logged_at_info(respx_mock, client, caplog):
    """Each retry is logged at INFO with the method, path, reason and wait."""
    route = respx_mock.get(f"{BATCHES}/7")
    route.side_effect = [httpx.Response(503), httpx.Response(200, json=batch_json(7))]
    with caplog.at_level(logging.INFO, logger="cw_glbatch"):
        client.get_batch(7)
    assert [r.getMessage().split(" in ")[0] for r in caplog.records] == [
        "GET /finance/accounting/batches/7: HTTP 503; retry 1 of 4"
    ]


# -- pacing -----------------------------------------------------------------------------------


def test_request_ceiling_spaces_requests(respx_mock, sleeps):
    """max_requests_per_minute spaces requests at least 60/N seconds apart."""
    from cw_glbatch._retry import RequestPacer

    now = [100.0]
    pacer = RequestPacer(120, clock=lambda: now[0], sleep=sleeps)
    for _ in range(3):
        pacer.wait()
    assert sleeps == [0.5, 1.0]


def test_request_ceiling_is_shared_by_threads():
    """Threads sharing one pacer get distinct slots."""
    from cw_glbatch._retry import RequestPacer

    waits: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            waits.append(round(seconds, 1))

    pacer = RequestPacer(60, clock=lambda: 0.0, sleep=sleep)
    threads = [threading.Thread(target=pacer.wait) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == [1.0, 2.0, 3.0, 4.0]


def test_client_paces_its_own_requests(respx_mock, sleeps):
    """A client with a ceiling of 60 a minute waits 1 s, then 2 s, before its next requests."""
    route = respx_mock.get(f"{BATCHES}/7").respond(json=batch_json(7))
    with ConnectWiseClient(
        base_url=ROOT, max_requests_per_minute=60, sleep=sleeps, clock=lambda: 50.0, **CREDENTIALS
    ) as c:
        for _ in range(3):
            c.get_batch(7)
    assert (route.call_count, sleeps) == (3, [1.0, 2.0])


def test_client_without_a_ceiling_never_waits(respx_mock, sleeps):
    """Without max_requests_per_minute, requests go out back to back."""
    respx_mock.get(f"{BATCHES}/7").respond(json=batch_json(7))
    with ConnectWiseClient(base_url=ROOT, sleep=sleeps, clock=lambda: 50.0, **CREDENTIALS) as c:
        for _ in range(3):
            c.get_batch(7)
    assert sleeps == []


# -- configuration and safety -----------------------------------------------------------------


def test_missing_credentials_are_named_together():
    """Every missing credential is named in one error."""
    with pytest.raises(ConfigurationError, match="public_key, private_key"):
        ConnectWiseClient(
            base_url=ROOT, company_id="a", public_key="", private_key=" ", client_id="c"
        )


def test_site_or_base_url_is_required():
    """Exactly one of site= and base_url= must be given."""
    with pytest.raises(ConfigurationError, match="exactly one"):
        ConnectWiseClient(**CREDENTIALS)


def test_plain_http_is_refused_for_remote_hosts():
    """http:// to another machine is refused: credentials would travel in clear."""
    with pytest.raises(ConfigurationError, match="plain HTTP"):
        ConnectWiseClient(base_url="http://cw.example.com/v1/apis/3.0", **CREDENTIALS)


@pytest.mark.parametrize("host", ["127.0.0.1:8080", "127.9.9.9", "[::1]:81", "localhost"])
def test_plain_http_is_allowed_on_loopback(host):
    """http:// is fine to this machine (the simulator)."""
    ConnectWiseClient(base_url=f"http://{host}/v2025_1/apis/3.0", **CREDENTIALS).close()


def test_plain_http_allowed_when_asked():
    """allow_insecure_http=True allows http:// anywhere."""
    ConnectWiseClient(
        base_url="http://cw.example.com/apis/3.0", allow_insecure_http=True, **CREDENTIALS
    ).close()


def test_from_env_names_every_missing_variable():
    """from_env lists all the missing variables at once."""
    with pytest.raises(ConfigurationError) as info:
        ConnectWiseClient.from_env({"CW_COMPANY_ID": "acme"})
    assert str(info.value).startswith(
        "missing environment variables: CW_SITE (or CW_BASE_URL), CW_PUBLIC_KEY, "
        "CW_PRIVATE_KEY, CW_CLIENT_ID."
    )


def test_from_env_builds_a_client(respx_mock):
    """from_env reads the CW_* variables."""
    env = {
        "CW_SITE": SITE,
        "CW_CODEBASE": "v2025_1/",
        "CW_COMPANY_ID": "acme",
        "CW_PUBLIC_KEY": "pubKey123",
        "CW_PRIVATE_KEY": PRIVATE_KEY,
        "CW_CLIENT_ID": CLIENT_ID,
    }
    route = respx_mock.get(f"{BATCHES}/7").respond(json=batch_json(7))
    with ConnectWiseClient.from_env(env) as c:
        c.get_batch(7)
    assert route.calls.last.request.headers["authorization"] == EXPECTED_AUTH


def test_closed_client_says_so(client):
    """A call on a closed client raises ClientClosedError."""
    client.close()
    with pytest.raises(ClientClosedError):
        client.get_batch(1)


def test_injected_http_client_is_not_closed(respx_mock):
    """A client given http_client= leaves it open for its owner."""
    respx_mock.get(f"{BATCHES}/7").respond(json=batch_json(7))
    http = httpx.Client()
    with ConnectWiseClient(base_url=ROOT, http_client=http, **CREDENTIALS) as c:
        c.get_batch(7)
    assert not http.is_closed
    http.close()


def test_transport_injection(sleeps):
    """transport= sends through the given httpx transport."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=batch_json(9)))
    with ConnectWiseClient(base_url=ROOT, transport=transport, **CREDENTIALS) as c:
        assert c.get_batch(9).id == 9


def test_secrets_never_in_logs_reprs_or_errors(respx_mock, caplog):
    """The private key, Authorization header and clientId appear in no log, repr or error."""
    respx_mock.get(f"{BATCHES}/7").respond(500, json=CW_ERROR)
    respx_mock.post(BATCHES).mock(side_effect=httpx.ReadTimeout("timed out"))
    texts = []
    with (
        caplog.at_level(logging.DEBUG),
        ConnectWiseClient(base_url=ROOT, sleep=lambda s: None, **CREDENTIALS) as c,
    ):
        texts += [repr(c), str(c)]
        for call in (lambda: c.get_batch(7), lambda: c.create_batch("b", [1])):
            with pytest.raises(ApiError) as info:
                call()
            texts += [str(info.value), repr(info.value), repr(vars(info.value))]
    texts += [r.getMessage() for r in caplog.records] + [caplog.text]
    secrets = (PRIVATE_KEY, EXPECTED_AUTH.split()[1], CLIENT_ID)
    assert caplog.records, "nothing was logged, so the check would prove nothing"
    assert not [t for t in texts for s in secrets if s in t]


def test_next_link_loop_is_refused(respx_mock, client):
    """A server whose next link points back to a page already read cannot loop us forever."""
    link = f'<{BATCHES}?pageId=1>; rel="next"'
    respx_mock.get(url__startswith=BATCHES).respond(json=[batch_json(1)], headers={"Link": link})
    with pytest.raises(ApiError, match="already read"):
        list(client.list_batches())


def test_post_2xx_cut_short_is_created_and_get_is_read_again(respx_mock, client):
    """A 201 whose body stops half way is created; a GET cut short is sent again."""

    class CutShort(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __iter__(self):
            yield b'{"transac'
            raise httpx.RemoteProtocolError("peer closed connection")

        async def __aiter__(self):
            for piece in self:
                yield piece

    post = respx_mock.post(BATCHES).respond(201, stream=CutShort())
    assert client.create_batch("b", [1]).data == {}
    assert post.call_count == 1
    get = respx_mock.get(f"{BATCHES}/7")
    get.side_effect = [
        httpx.Response(200, stream=CutShort()),
        httpx.Response(200, json=batch_json(7)),
    ]
    assert client.get_batch(7).id == 7
    assert get.call_count == 2


@pytest.mark.parametrize(
    ("charset", "read_as"), [("UTF-16", "utf-16"), ("base64", "utf-8"), ("idna", "utf-8")]
)
def test_created_batch_with_an_undecodable_charset_is_still_created(
    respx_mock, client, charset, read_as
):
    """A 2xx to a create whose non-JSON body names a charset that cannot decode it is created."""
    body = b"\x00\x00not json"
    headers = {"content-type": f"text/plain; charset={charset}"}
    respx_mock.post(BATCHES).respond(201, headers=headers, content=body)
    export = client.create_batch("A", [1])
    assert export.batch_identifier == "A"
    assert export.records == ()
    assert export.data == {"body": body.decode(read_as, "replace")}


@pytest.mark.parametrize(
    ("route", "call"),
    [
        (("GET", f"{BATCHES}/7", batch_json(7)), lambda c: c.get_batch(7)),
        (("GET", BATCHES, [batch_json(9)]), lambda c: c.highest_batch_id()),
        (("GET", BATCHES, [batch_json(9)]), lambda c: list(c.list_batches())),
        (("POST", f"{ROOT}/finance/accounting/export", {}), lambda c: c.export_gl()),
    ],
)
def test_each_read_answer_is_parsed_as_json_once(respx_mock, monkeypatch, route, call):
    """The JSON check of a read's 2xx answer is the parse the call then uses: one per answer."""
    method, url, answer = route
    respx_mock.route(method=method, url=url).respond(json=answer)
    parsed = []

    def json_value(text):
        parsed.append(text)
        return original(text)

    original = cw_glbatch._answers.json_value
    monkeypatch.setattr(cw_glbatch._answers, "json_value", json_value)
    with ConnectWiseClient(base_url=ROOT, **CREDENTIALS) as client:
        call(client)
    assert len(parsed) == 1
