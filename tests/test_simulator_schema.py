"""The simulator and the client against ConnectWise's published definition (tests/openapi/).

Every answer the simulator gives on the accounting endpoints, driven through the library's
client, its orchestrator and plain requests, must have a status the definition declares for the
operation and a body its schema accepts; every body the library sends must meet the request
schema. Objects are closed: a field the definition does not name fails.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cw_glbatch import NotFoundError, ValidationError, process_file
from cw_glbatch.testing import FakeConnectWise

from ._openapi import answer_schema, definition, operation, request_schema, validator

ACCOUNTING = "/finance/accounting"
ALL_KINDS = {"exportInvoicesFlag": True, "exportExpensesFlag": True, "exportProductsFlag": True}
Exchange = tuple[httpx.Request, httpx.Response]
RAW = "x-test-raw"  # marks the drive's hand-made requests, apart from the library's
NOT_MODELLED = re.compile(r"taxableLevels|unpostedpayments", re.IGNORECASE)  # see docs/testing.md


class Recorder:
    """An httpx transport handler that answers from a simulator and keeps every exchange."""

    def __init__(self, fake: FakeConnectWise) -> None:
        self._inner = fake.transport()
        self.exchanges: list[Exchange] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        response.read()
        self.exchanges.append((request, response))
        return response


def drive(tmp_path: Path) -> list[Exchange]:
    """Every accounting endpoint the simulator has, through client, orchestrator and raw calls."""
    fake = FakeConnectWise()
    recorder = Recorder(fake)
    ids = fake.populate(80, seed=11)
    fake.add_invoice([900001, 900002], detail_ids=[900003], tax_ids=[900004])
    transport = httpx.MockTransport(recorder)
    with fake.client(transport=transport) as client:
        client.highest_batch_id()
        client.create_batch("A", ids[:10])
        client.create_batch("B", ids[10:12], summarize_expenses=True, gl_interface_identifier="X")
        with pytest.raises(ValidationError):
            client.create_batch("C", ids[:1])  # already batched: 400
        with pytest.raises(NotFoundError):
            client.get_batch(99)
        list(client.list_batches(page_size=1))
        client.find_batches(["A", "B"], min_id=0)
        client.get_batch(2)
        client.delete_batch(2)
        client.export_gl()
        client.export_gl(
            thru_date="2099-01-01",
            location_id=1,
            export_expenses=False,
            export_products=False,
            included_invoice_ids=[1001],
            summarize_invoices="Detailed",
            gl_interface_identifier="X",
        )
        client.export_batch(1)
        headers, root = {**client._headers, RAW: "1"}, client.api_root
    source = tmp_path / "in.xml"
    source.write_text(
        "<Batches>"
        + "".join(
            f"<Batch><batchIdentifier>P{n}</batchIdentifier><glRecIds><glRecId>{i}</glRecId>"
            "</glRecIds></Batch>"
            for n, i in enumerate([*ids[20:24], 999999999])
        )
        + "</Batches>"
    )
    with fake.client(transport=transport) as client:
        process_file(client, source, tmp_path / "ok.xml", tmp_path / "failed.xml")
    with httpx.Client(transport=transport, base_url=root, headers=headers) as http:
        http.post(f"{ACCOUNTING}/export", content=json.dumps(ALL_KINDS))
        http.post(f"{ACCOUNTING}/export", content=json.dumps({"exportInvoicesFlag": True,
                  "thruDate": "2099-01-01T00:00:00Z", "locationId": 1,
                  "summarizeInvoices": "Detailed"}))  # fmt: skip
        http.post(f"{ACCOUNTING}/export", content=b"{}")  # no kind: 400
        http.post(f"{ACCOUNTING}/batches/1/export", content=b"{}")
        http.post(f"{ACCOUNTING}/batches/77/export", content=b"{}")  # 404
        http.get(f"{ACCOUNTING}/batches/count")
        http.get(f"{ACCOUNTING}/batches", params={"conditions": "nosuch = 1"})  # 400
        first = http.get(f"{ACCOUNTING}/batches/1/entries").json()[0]["id"]
        http.get(f"{ACCOUNTING}/batches/1/entries/count")
        http.get(f"{ACCOUNTING}/batches/1/entries/{first}")
        for kind in ("invoices", "expenses", "procurement"):
            rows = http.get(f"{ACCOUNTING}/unposted{kind}", params={"pageSize": 3}).json()
            http.get(f"{ACCOUNTING}/unposted{kind}/count")
            http.get(f"{ACCOUNTING}/unposted{kind}/{rows[0]['id']}")
        http.get(f"{ACCOUNTING}/batches", headers={"pagination-type": "forward-only"})
        http.get(f"{ACCOUNTING}/batches", headers={"Authorization": "Basic eA=="})  # 401
    fake.set_rate_limit(1, per=60)
    with httpx.Client(transport=transport, base_url=root, headers=headers) as http:
        http.get(f"{ACCOUNTING}/batches/count")
        http.get(f"{ACCOUNTING}/batches/count")  # 429
    return [(q, r) for q, r in recorder.exchanges if ACCOUNTING in q.url.path]


@pytest.fixture(scope="module")
def exchanges(tmp_path_factory) -> list[Exchange]:
    return drive(tmp_path_factory.mktemp("schema"))


def described(exchanges: list[Exchange]) -> Iterator[tuple[str, httpx.Request, httpx.Response]]:
    for request, response in exchanges:
        yield f"{request.method} {request.url.path} -> {response.status_code}", request, response


def test_the_drive_reaches_every_accounting_operation_and_status(exchanges):
    """The drive covers every operation of the definition the simulator models, and failures."""
    statuses = {r.status_code for _, r in exchanges}
    assert {200, 201, 204, 400, 401, 404, 429} <= statuses
    reached = {operation(q.method, q.url.path)["operationId"] for q, _ in exchanges}
    modelled = {
        op["operationId"]
        for path, operations in definition()["paths"].items()
        for op in operations.values()
        if path.startswith(ACCOUNTING + "/") and not NOT_MODELLED.search(path)
    }
    assert reached == modelled


def test_every_answer_meets_the_definition(exchanges):
    """Each answer's status is declared for its operation, and its body meets the schema."""
    problems = []
    for what, request, response in described(exchanges):
        try:
            schema = answer_schema(request.method, request.url.path, response.status_code)
        except KeyError as err:
            problems.append(f"{what}: status not in the definition ({err})")
            continue
        if response.status_code == 204:
            if response.content:
                problems.append(f"{what}: a 204 with a body")
            continue
        errors = [e.message for e in validator(schema).iter_errors(response.json())]
        problems += [f"{what}: {message}" for message in errors[:3]]
    assert problems == []


def test_every_body_the_library_sends_meets_the_definition(exchanges):
    """The client's and the orchestrator's POST bodies (creates, exports) meet the request
    schemas, strictly."""
    posts = [(q, r) for q, r in exchanges if q.method == "POST" and RAW not in q.headers]
    assert len(posts) >= 11
    assert sum("export" in q.url.path for q, _ in posts) == 3
    for request, _ in posts:
        schema = request_schema("POST", request.url.path)
        body = json.loads(request.content)
        assert [e.message for e in validator(schema).iter_errors(body)] == [], body


def test_validation_catches_what_the_definition_does_not_allow():
    """The validators can fail: an invented field, a wrong type, an undeclared status."""
    batch = validator({"$ref": "#/components/schemas/AccountingBatch"})
    assert not batch.is_valid({"id": 1, "glEntryId": 5})
    assert not batch.is_valid({"id": "1"})
    assert batch.is_valid({"id": 1, "closedFlag": None})  # nullable
    export = validator({"$ref": "#/components/schemas/GLExport"})
    assert not export.is_valid({"transactions": [{"glEntryIds": 1010}]})
    with pytest.raises(KeyError):
        answer_schema("POST", "/finance/accounting/batches", 200)
    strict = validator(request_schema("POST", "/finance/accounting/batches"))
    loose = validator(request_schema("POST", "/finance/accounting/batches"), loose=True)
    body = {"processedRecordIds": [1], "batchIdentifier": None}
    assert (strict.is_valid(body), loose.is_valid(body)) == (False, True)
