"""FakeConnectWise: endpoints, error bodies, faults and concurrency, in process."""

from __future__ import annotations

import contextlib
import json
import threading

import httpx
import pytest

from cw_glbatch import (
    ApiError,
    AuthenticationError,
    ConnectWiseClient,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from cw_glbatch.testing import FakeConnectWise, Fault

from ._glexport import gl_entry_ids_of

BATCHES = "/finance/accounting/batches"


@pytest.fixture
def fake() -> FakeConnectWise:
    return FakeConnectWise()


@pytest.fixture
def raw(fake):
    """A plain httpx client on the simulator's transport, with the right credentials."""
    client = fake.client()
    http = httpx.Client(
        transport=fake.transport(), base_url=client.api_root, headers=dict(client._headers)
    )
    client.close()
    yield http
    http.close()


def post(raw, body) -> httpx.Response:
    return raw.post(BATCHES, content=json.dumps(body))


def body(identifier="B1", ids=(1,), **extra):
    return {
        "batchIdentifier": identifier,
        "processedRecordIds": list(ids),
        "exportInvoicesFlag": True,
        "exportExpensesFlag": True,
        "exportProductsFlag": True,
        **extra,
    }


# -- creating batches -------------------------------------------------------------------------


def test_create_moves_entries_into_the_batch(fake):
    """A created batch holds its entries, which are no longer unposted."""
    ids = fake.populate(5, seed=3)
    with fake.client() as client:
        export = client.create_batch("B1", ids[:3])
    (batch,) = fake.batches
    assert (batch.batch_identifier, batch.gl_entry_ids) == ("B1", tuple(ids[:3]))
    assert fake.unposted_ids == set(ids[3:])
    assert fake.batch_of(ids[0]) == batch
    assert gl_entry_ids_of(export.data) == set(ids[:3])


@pytest.mark.parametrize(
    ("request_body", "field", "words"),
    [
        (body(extra=1), "extra", "not a field"),
        (body(identifier=5), "batchIdentifier", "must be a str"),
        (body(identifier=" "), "batchIdentifier", "blank"),
        (body(identifier="x" * 51), "batchIdentifier", "longer than 50"),
        (body(ids=()), "processedRecordIds", "required"),
        (body(ids=("1",)), "processedRecordIds", "list of integers"),
        (body(ids=(True,)), "processedRecordIds", "list of integers"),
        (body(ids=(2**31,)), "processedRecordIds", "list of integers"),
        (body(ids=(0,)), "processedRecordIds", "record ids"),
        ({"batchIdentifier": "B"}, "processedRecordIds", "required"),
        (body(processedRecordIds=None), "processedRecordIds", "required"),
        (body(ids=(999,)), "processedRecordIds", "not found: [999]"),
        (body(ids=(1, 1)), "processedRecordIds", "repeated: [1]"),
        (
            body(exportInvoicesFlag=False, exportExpensesFlag=False, exportProductsFlag=False),
            "exportInvoicesFlag",
            "must export",
        ),
    ],
)
def test_invalid_create_is_400_invalid_object(fake, raw, request_body, field, words):
    """Bad bodies get 400 InvalidObject with ConnectWise's errors[] naming the field."""
    fake.add_unposted([1])
    response = post(raw, request_body)
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == "InvalidObject"
    assert error["errors"][0]["field"] == field
    assert words in error["errors"][0]["message"]
    assert fake.batches == []


def test_entry_already_batched_is_refused(fake):
    """An entry in a batch cannot go in another; the error names it."""
    fake.add_unposted([1, 2])
    with fake.client() as client:
        client.create_batch("A", [1])
        with pytest.raises(ValidationError, match=r"already in a batch: \[1\]") as info:
            client.create_batch("B", [2, 1])
    assert info.value.field_errors[0].field == "processedRecordIds"
    assert fake.unposted_ids == {2}


def test_entry_of_a_type_not_exported_is_refused(fake):
    """An expense entry in a batch that does not export expenses is refused."""
    fake.add_unposted([7], kind="expense")
    with fake.client() as client, pytest.raises(ValidationError, match="not exported"):
        client.create_batch("B", [7], export_expenses=False)


def test_same_identifier_twice_is_accepted(fake):
    """Identifiers are labels, not keys: ConnectWise may accept a second batch with one."""
    fake.add_unposted([1, 2])
    with fake.client() as client:
        client.create_batch("same", [1])
        client.create_batch("same", [2])
        assert len(client.find_batches(["same"])) == 2


def test_body_that_is_not_json_is_400(fake, raw):
    """A body that is not JSON is refused."""
    assert raw.post(BATCHES, content=b"{").status_code == 400


# -- auth -------------------------------------------------------------------------------------


def test_wrong_private_key_is_401(fake):
    """Wrong credentials answer 401, which the client raises as AuthenticationError."""
    with fake.client(private_key="wrong") as client, pytest.raises(AuthenticationError):
        client.get_batch(1)


def test_wrong_client_id_is_401(fake):
    """A clientId the simulator does not know answers 401."""
    with (
        fake.client(client_id="someone-else") as client,
        pytest.raises(AuthenticationError, match="clientId"),
    ):
        client.get_batch(1)


def test_missing_accounting_permission_is_403():
    """Without the Accounting Interface permission the API answers 403."""
    fake = FakeConnectWise(accounting_access=False)
    with fake.client() as client, pytest.raises(PermissionDeniedError):
        client.highest_batch_id()


def test_company_info_gives_the_codebase(fake):
    """/login/companyinfo answers the codebase, so a client given site= finds the API."""
    fake.add_unposted([1])
    client = ConnectWiseClient(
        site="cw.example.com", transport=fake.transport(), **fake.credentials
    )
    with client:
        client.create_batch("B", [1])
        assert client.api_root == "https://cw.example.com/v2025_1/apis/3.0"


def test_unknown_company_is_404(raw):
    """Company info for another company id is not found."""
    assert raw.get("https://x/login/companyinfo/nobody").status_code == 404


# -- reading ----------------------------------------------------------------------------------


def make_batches(fake, count):
    ids = fake.populate(count)
    with fake.client() as client:
        for n, entry in enumerate(ids):
            client.create_batch(f"B{n}", [entry])
    return ids


def test_list_pages_with_link_header(fake, raw):
    """Lists page with page/pageSize and announce the next page in a Link header."""
    make_batches(fake, 30)
    first = raw.get(BATCHES, params={"pageSize": 25})
    assert len(first.json()) == 25
    assert 'rel="next"' in first.headers["link"]
    with fake.client() as client:
        assert [b.id for b in client.list_batches(page_size=7)] == list(range(1, 31))


def test_page_size_over_1000_is_refused(raw):
    """pageSize is at most 1000."""
    assert raw.get(BATCHES, params={"pageSize": 1001}).status_code == 400


def test_conditions_select_batches(fake):
    """Conditions filter the list: identifier equality, in, id ranges, and."""
    make_batches(fake, 10)
    with fake.client() as client:
        assert [b.id for b in client.list_batches('batchIdentifier = "B3"')] == [4]
        assert [b.id for b in client.find_batches(["B1", "B8", "nope"], min_id=5)] == [9]
        assert [b.id for b in client.list_batches("id > 7 or id = 1")] == [1, 8, 9, 10]


def test_bad_conditions_are_400(fake):
    """Malformed conditions answer 400 InvalidObject."""
    with fake.client() as client, pytest.raises(ValidationError, match="conditions"):
        list(client.list_batches("id >"))


def test_count_order_and_fields(fake, raw):
    """The count endpoint, orderBy and fields behave as ConnectWise's do."""
    make_batches(fake, 3)
    assert raw.get(BATCHES + "/count").json() == {"count": 3}
    assert raw.get(BATCHES, params={"orderBy": "id desc", "fields": "id"}).json() == [
        {"id": 3},
        {"id": 2},
        {"id": 1},
    ]


def test_get_and_delete_one_batch(fake):
    """GET returns the batch; DELETE removes it and its entries become unposted again."""
    ids = make_batches(fake, 2)
    with fake.client() as client:
        assert client.get_batch(2).batch_identifier == "B1"
        client.delete_batch(2)
        with pytest.raises(NotFoundError, match="recId '2' not found"):
            client.get_batch(2)
    assert ids[1] in fake.unposted_ids
    assert [b.id for b in fake.batches] == [1]


def test_batch_entries_endpoint(fake, raw):
    """A batch's entries are listed, with a count."""
    ids = fake.populate(3)
    with fake.client() as client:
        client.create_batch("B", ids)
    assert [e["id"] for e in raw.get(BATCHES + "/1/entries").json()] == ids
    assert raw.get(BATCHES + "/1/entries/count").json() == {"count": 3}
    assert raw.get(BATCHES + f"/1/entries/{ids[1]}").json()["id"] == ids[1]
    assert raw.get(BATCHES + "/1/entries/5").status_code == 404
    assert raw.get(BATCHES + "/2/entries").status_code == 404


def test_unposted_lists_by_kind(fake, raw):
    """The unposted lists hold the records of their kind with unbatched entries, by record id."""
    fake.add_unposted([1, 2, 3], kind="invoice")  # invoices 1001, 1002, 1003
    fake.add_unposted([4], kind="expense")  # expense 1004
    with fake.client() as client:
        client.create_batch("B", [2])
    invoices = raw.get("/finance/accounting/unpostedinvoices").json()
    assert [(e["id"], e["invoiceNumber"]) for e in invoices] == [
        (1001, "INV-1001"),
        (1003, "INV-1003"),
    ]
    assert raw.get("/finance/accounting/unpostedexpenses/count").json() == {"count": 1}
    assert raw.get("/finance/accounting/unpostedexpenses/1004").json()["id"] == 1004
    assert raw.get("/finance/accounting/unpostedinvoices/1002").status_code == 404  # batched
    assert raw.get("/finance/accounting/unpostedprocurement").json() == []


def test_partly_batched_invoice_stays_unposted_with_the_rest(fake, raw):
    """An invoice with some GL entries batched is still listed, with what is left of it."""
    invoice = fake.add_invoice([10, 11], detail_ids=[12], tax_ids=[13])
    with fake.client() as client:
        client.create_batch("B", [10, 12])
    (row,) = raw.get("/finance/accounting/unpostedinvoices").json()
    assert (row["id"], row["total"]) == (invoice, 108.0)
    assert fake.unposted_ids == {11, 13}


def test_unknown_endpoint_is_404(raw):
    """An endpoint the simulator does not have answers 404 NotFound."""
    response = raw.get("/finance/accounting/nothing")
    assert (response.status_code, response.json()["code"]) == (404, "NotFound")


# -- faults -----------------------------------------------------------------------------------


def test_429_with_retry_after_is_retried(fake):
    """A scripted 429 carries Retry-After; the client waits that long and retries."""
    fake.add_unposted([1])
    waits = []
    fake.fail_next(Fault.too_many_requests(retry_after=3), method="POST")
    with fake.client(sleep=waits.append) as client:
        client.create_batch("B", [1])
    assert waits == [3.0]
    assert [r.status for r in fake.requests] == [429, 201]


@pytest.mark.parametrize("status", [500, 502, 504])
def test_post_5xx_does_not_act(fake, status):
    """A 5xx fault answers before the server acts: no batch is created."""
    fake.add_unposted([1])
    fake.fail_next(Fault.status(status), method="POST")
    with fake.client() as client, pytest.raises(OutcomeUnknownError):
        client.create_batch("B", [1])
    assert fake.batches == []


def test_proxy_errors_are_html(fake, raw):
    """502/503/504 faults answer with an HTML page, as a proxy would."""
    fake.fail_next(Fault.status(502))
    response = raw.get(BATCHES)
    assert (response.status_code, response.headers["content-type"]) == (502, "text/html")


def test_503_is_retried_for_post(fake):
    """A 503 before acting is retried by the client and the batch is created once."""
    fake.add_unposted([1])
    fake.fail_next(Fault.status(503), Fault.status(503), method="POST")
    with fake.client() as client:
        client.create_batch("B", [1])
    assert len(fake.batches) == 1


def test_reset_leaves_nothing_created(fake):
    """A reset before the server acts: the outcome is unknown to the client, and nothing exists."""
    fake.add_unposted([1])
    fake.fail_next(Fault.reset(), method="POST")
    with fake.client() as client, pytest.raises(OutcomeUnknownError):
        client.create_batch("B", [1])
    assert fake.batches == []
    assert fake.requests[-1].fault == "reset"


def test_lost_answer_leaves_the_batch_created(fake):
    """Lost after commit: the client gets no answer, yet the batch exists."""
    fake.add_unposted([1])
    fake.fail_next(Fault.lost(), method="POST")
    with fake.client() as client, pytest.raises(OutcomeUnknownError):
        client.create_batch("B", [1])
    assert [b.gl_entry_ids for b in fake.batches] == [(1,)]
    assert fake.requests[-1].status is None


def test_scripted_faults_apply_in_order_to_matching_requests(fake):
    """fail_next applies one fault per matching request, None letting one through."""
    fake.fail_next(None, Fault.status(500), method="GET", path=BATCHES + "/1")
    raised = []
    with fake.client(max_retries=0) as client:
        for _ in range(3):
            with pytest.raises((NotFoundError, ServerError)) as info:
                client.get_batch(1)  # no batch 1 exists: 404, but for the scripted fault
            raised.append(type(info.value))
    assert raised == [NotFoundError, ServerError, NotFoundError]
    assert [r.fault for r in fake.requests] == [None, "status", None]


def test_latency_is_applied(fake):
    """Latency delays each answer by the given time (plus or minus jitter)."""
    waits = []
    fake = FakeConnectWise(sleep=waits.append)
    fake.set_latency(0.02, jitter=0.005, seed=1)
    with fake.client() as client:
        client.highest_batch_id()
        client.highest_batch_id()
    assert len(waits) == 2
    assert all(0.015 <= w <= 0.025 for w in waits)


def test_rate_limit_answers_429_beyond_the_limit(fake):
    """In rate-limit mode, requests beyond N per window get 429 with Retry-After."""
    fake.set_rate_limit(3, per=60)
    with fake.client(max_retries=0) as client:
        for _ in range(3):
            client.highest_batch_id()
        with pytest.raises(RateLimitError) as info:
            client.highest_batch_id()
    assert 59 <= info.value.retry_after <= 60


def test_random_faults_are_repeatable_with_a_seed():
    """The same seed gives the same faults on the same requests."""

    def run() -> list[str | None]:
        fake = FakeConnectWise()
        fake.fail_randomly({Fault.status(500): 0.3, Fault.reset(): 0.2}, seed=42)
        with fake.client(max_retries=0) as client:
            for _ in range(40):
                with contextlib.suppress(ApiError):  # the injected faults
                    client.highest_batch_id()
        return [r.fault for r in fake.requests]

    first = run()
    assert first == run()
    assert {None, "status", "reset"} <= set(first)


def test_fault_rates_over_one_are_refused(fake):
    """Rates that add up to more than 1 are refused."""
    with pytest.raises(ValueError, match="at most 1"):
        fake.fail_randomly({Fault.reset(): 0.7, Fault.lost(): 0.7})


# -- concurrency ------------------------------------------------------------------------------


def test_concurrent_posts_never_batch_an_entry_twice(fake):
    """Many threads posting overlapping ids: each entry lands in at most one batch."""
    ids = fake.populate(400, seed=9)
    results: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        with fake.client() as client:
            for k in range(20):
                chunk = ids[(n * 7 + k * 13) % 380 :][:20]  # overlaps other threads' chunks
                try:
                    client.create_batch(f"t{n}-{k}", chunk)
                    outcome = "created"
                except ValidationError:
                    outcome = "refused"
                with lock:
                    results.append(outcome)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batched = [entry for b in fake.batches for entry in b.gl_entry_ids]
    assert len(batched) == len(set(batched))
    assert results.count("created") == len(fake.batches) > 0
    assert "refused" in results
    assert set(batched) | fake.unposted_ids == set(ids)


def test_request_log_counts(fake):
    """The request log records every request, countable by method and path."""
    with fake.client() as client:
        client.highest_batch_id()
        with pytest.raises(NotFoundError):
            client.get_batch(5)
    assert fake.count_requests("GET", BATCHES) == 1
    assert fake.count_requests(path=BATCHES + "/5") == 1
    assert fake.count_requests() == 2


def test_transport_serves_async_clients_too(fake):
    """fake.transport() also answers an httpx.AsyncClient, faults included."""
    import asyncio

    fake.add_unposted([1])
    fake.fail_next(Fault.status(503), method="POST")
    headers = dict(fake.client()._headers)

    async def create() -> list[int]:
        async with httpx.AsyncClient(
            transport=fake.transport(), base_url="https://x" + fake.api_path, headers=headers
        ) as http:
            first = await http.post(BATCHES, content=json.dumps(body(ids=(1,))))
            second = await http.post(BATCHES, content=json.dumps(body(ids=(1,))))
            return [first.status_code, second.status_code]

    assert asyncio.run(create()) == [503, 201]
    assert len(fake.batches) == 1
