"""export_gl and GLExport: the request body, retries like a GET, and decoding the answer."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cw_glbatch import (
    ApiError,
    ConnectWiseClient,
    GLExport,
    GLExportRecord,
    NotFoundError,
    OutcomeUnknownError,
    ServerError,
    create_batches,
)
from cw_glbatch._export import KINDS, LINE_LISTS, gl_ids_in
from cw_glbatch._export import SECTIONS as GLEXPORT_SECTIONS
from cw_glbatch._http import export_body, thru_date_text
from cw_glbatch.testing import FakeConnectWise

ROOT = "https://api-na.myconnectwise.net/v2025_1/apis/3.0"
EXPORT = f"{ROOT}/finance/accounting/export"
BATCHES = f"{ROOT}/finance/accounting/batches"
CREDENTIALS = {
    "company_id": "acme",
    "public_key": "pub",
    "private_key": "priv",
    "client_id": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
}


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(sleeps):
    with ConnectWiseClient(base_url=ROOT, sleep=sleeps.append, **CREDENTIALS) as c:
        yield c


@pytest.fixture
def answer(samples) -> dict:
    return json.loads((samples / "gl_export.json").read_text("utf-8"))


# -- the request ------------------------------------------------------------------------------


def test_export_gl_posts_the_three_flags_by_default(respx_mock, client):
    """With no arguments, the body asks for every kind and nothing else."""
    route = respx_mock.post(EXPORT).respond(200, json={})
    client.export_gl()
    request = route.calls.last.request
    assert json.loads(request.content) == {
        "exportInvoicesFlag": True,
        "exportExpensesFlag": True,
        "exportProductsFlag": True,
    }
    assert request.headers["content-type"] == "application/json"
    assert request.headers["clientid"] == CREDENTIALS["client_id"]


def test_export_gl_sends_every_field_by_connectwise_names(respx_mock, client):
    """Each keyword becomes its ExportAccountingBatchRequest field."""
    route = respx_mock.post(EXPORT).respond(200, json={})
    client.export_gl(
        thru_date=date(2026, 11, 30),
        location_id=2,
        export_invoices=True,
        export_expenses=False,
        export_products=False,
        export_payments=False,
        included_invoice_ids=[5, 6],
        excluded_invoice_ids=[7],
        included_expense_ids=[8],
        excluded_expense_ids=[9],
        included_payment_ids=[10],
        included_product_ids=["P1"],
        excluded_product_ids=["P2"],
        summarize_invoices="Condensed",
        batch_identifier="B-1",
        gl_interface_identifier="QB",
    )
    assert json.loads(route.calls.last.request.content) == {
        "thruDate": "2026-11-30T00:00:00Z",
        "locationId": 2,
        "exportInvoicesFlag": True,
        "exportExpensesFlag": False,
        "exportProductsFlag": False,
        "exportPaymentsFlag": False,
        "includedInvoiceIds": [5, 6],
        "excludedInvoiceIds": [7],
        "includedExpenseIds": [8],
        "excludedExpenseIds": [9],
        "includedPaymentIds": [10],
        "includedProductIds": ["P1"],
        "excludedProductIds": ["P2"],
        "summarizeInvoices": "Condensed",
        "batchIdentifier": "B-1",
        "glInterfaceIdentifier": "QB",
    }


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (date(2026, 11, 30), "2026-11-30T00:00:00Z"),
        ("2026-11-30", "2026-11-30T00:00:00Z"),
        ("2026-11-30T10:15:00Z", "2026-11-30T10:15:00Z"),
        ("2026-11-30T10:15:00+02:00", "2026-11-30T08:15:00Z"),
        (datetime(2026, 11, 30, 10, 15, 30, 999), "2026-11-30T10:15:30Z"),
        (datetime(2026, 12, 1, 1, 0, tzinfo=timezone(timedelta(hours=3))), "2026-11-30T22:00:00Z"),
    ],
)
def test_thru_date_is_sent_as_utc_date_time(value, text):
    """Dates, datetimes and ISO text become ConnectWise's date-time in UTC."""
    assert thru_date_text(value) == text


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"thru_date": "30/11/2026"}, "not a date"),
        ({"location_id": 0}, "location_id"),
        ({"summarize_invoices": "Short"}, "Default, Condensed, Detailed"),
        ({"included_invoice_ids": [1, "2"]}, "includedInvoiceIds"),
        ({"export_invoices": False, "export_expenses": False, "export_products": False}, "nothing"),
        ({"batch_identifier": "x" * 51}, "longer than 50"),
    ],
)
def test_values_connectwise_would_refuse_are_refused_before_sending(
    respx_mock, client, options, words
):
    """A bad argument raises ValueError naming it, and no request is sent."""
    route = respx_mock.post(EXPORT).respond(200, json={})
    with pytest.raises(ValueError, match=words):
        client.export_gl(**options)
    assert not route.called


def test_export_body_only_payments_is_allowed():
    """Payments alone is something to export."""
    body = export_body(
        export_invoices=False, export_expenses=False, export_products=False, export_payments=True
    )
    assert json.loads(body)["exportPaymentsFlag"] is True


# -- retried like a GET -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 500, 502, 504])
def test_export_is_retried_where_a_create_is_not(respx_mock, client, sleeps, status):
    """An export changes nothing, so statuses that leave a create unknown are retried."""
    route = respx_mock.post(EXPORT)
    route.side_effect = [httpx.Response(status), httpx.Response(200, json={})]
    client.export_gl()
    assert (route.call_count, len(sleeps)) == (2, 1)


def test_export_read_timeout_is_retried(respx_mock, client):
    """A timeout after sending is retried, not an unknown outcome."""
    route = respx_mock.post(EXPORT)
    route.side_effect = [httpx.ReadTimeout("slow"), httpx.Response(200, json={})]
    client.export_gl()
    assert route.call_count == 2


def test_export_that_keeps_failing_is_a_server_error(respx_mock, client):
    """After the retries, a 500 is a ServerError, never OutcomeUnknownError."""
    route = respx_mock.post(EXPORT).respond(500, json={"code": "ConnectWiseApi", "message": "x"})
    with pytest.raises(ServerError) as info:
        client.export_gl()
    assert not isinstance(info.value, OutcomeUnknownError)
    assert (route.call_count, info.value.method, info.value.path) == (
        5,
        "POST",
        "/finance/accounting/export",
    )


def test_create_is_still_not_resent_on_500(respx_mock, client):
    """The read-only rule is the export's only: a create answered 500 stays unknown."""
    route = respx_mock.post(BATCHES).respond(500)
    with pytest.raises(OutcomeUnknownError):
        client.create_batch("b", [1])
    assert route.call_count == 1


# -- the answer -------------------------------------------------------------------------------


def test_gl_entry_ids_come_from_lists_and_lines_each_once(respx_mock, client, answer):
    """Every GL entry id: comma-separated strings, detail lines, an expense's own id; each once."""
    respx_mock.post(EXPORT).respond(200, json=answer)
    export = client.export_gl()
    assert export.gl_entry_ids == (
        1010, 1011, 1012, 1013, 1014, 1020, 2001, 2004, 2002, 2003, 3001, 3002, 3003,
    )  # fmt: skip


def test_gl_entry_ids_by_kind(respx_mock, client, answer):
    """Invoices, expenses (and expense bills), products (purchases...) are told apart."""
    respx_mock.post(EXPORT).respond(200, json=answer)
    export = client.export_gl()
    assert export.gl_entry_ids_of("invoices") == (1010, 1011, 1012, 1013, 1014, 1020)
    assert export.gl_entry_ids_of("expenses") == (2001, 2004, 2002, 2003)
    assert export.gl_entry_ids_of("products") == (3001, 3002, 3003)
    sections = [r.section for r in export.of_kind("expenses")]
    assert sections == ["expenses", "expenses", "expenseBills"]


def test_records_are_typed_where_users_need_them(respx_mock, client, answer):
    """A record's common fields are typed; a wrong type reads as None; the rest is in data."""
    respx_mock.post(EXPORT).respond(200, json=answer)
    first, second = client.export_gl().transactions
    assert first == GLExportRecord(
        kind="invoices",
        section="transactions",
        id=501,
        document_number="INV-1001",
        document_type="Invoice",
        document_date="2026-11-20T00:00:00Z",
        account_number="1200",
        total=1250.5,
        gl_entry_ids=(1010, 1011, 1012, 1013, 1014),
    )
    assert first.data["someFieldFromANewerVersion"] == {"nested": [1, 2]}
    assert (second.total, second.gl_entry_ids) == (None, (1020, 1011))


def test_unknown_fields_are_kept_in_the_raw_json(respx_mock, client, answer):
    """The answer's JSON is kept whole, fields this library does not know included."""
    respx_mock.post(EXPORT).respond(200, json=answer)
    export = client.export_gl()
    assert export.data == answer
    assert export.data["somethingNew"] is True


def test_empty_export_has_no_ids(respx_mock, client):
    """An export with nothing to post has no records and no ids."""
    respx_mock.post(EXPORT).respond(200, json={"transactions": [], "expenses": []})
    export = client.export_gl()
    assert (export.records, export.gl_entry_ids) == ((), ())


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"transactions": [{"glEntryIds": "1010,x"}]}, "transactions[0].glEntryIds holds 'x'"),
        ({"transactions": [{"glEntryIds": 1010}]}, "glEntryIds is int"),
        ({"transactions": [{"detail": [{"id": "7"}]}]}, "transactions[0].detail[0].id"),
        ({"expenses": {"id": 1}}, "expenses is dict, expected a list"),
        ({"transactions": ["x"]}, "transactions[0] is str"),
    ],
)
def test_ids_that_cannot_be_read_refuse_the_answer(respx_mock, client, change, words):
    """An id that cannot be read is an ApiError naming where: a skipped id would be posted twice."""
    respx_mock.post(EXPORT).respond(200, json=change)
    with pytest.raises(ApiError, match=words.replace("[", r"\[").replace("]", r"\]")):
        client.export_gl()


def test_answer_that_is_not_an_object_is_an_api_error(respx_mock, client):
    """A list or non-JSON answer to an export is an ApiError."""
    respx_mock.post(EXPORT).respond(200, json=[1, 2])
    with pytest.raises(ApiError, match="unexpected GL export"):
        client.export_gl()


def test_create_answer_is_the_same_type(respx_mock, client):
    """create_batch answers a GLExport too, labelled with the identifier it was created with."""
    respx_mock.post(BATCHES).respond(
        201, json={"transactions": [{"glEntryIds": "5,6"}], "exportSettings": {}}
    )
    export = client.create_batch("B-7", [5, 6])
    assert isinstance(export, GLExport)
    assert (export.batch_identifier, export.gl_entry_ids) == ("B-7", (5, 6))


def test_created_batch_with_an_unreadable_export_is_still_created(respx_mock, client, caplog):
    """A 201 whose GL export cannot be read does not raise: the batch exists; a warning says so."""
    body = {"transactions": [{"glEntryIds": "5,?"}]}
    respx_mock.post(BATCHES).respond(201, json=body)
    with caplog.at_level(logging.WARNING, logger="cw_glbatch"):
        export = client.create_batch("B-8", [5])
    assert (export.batch_identifier, export.records, export.data) == ("B-8", (), body)
    assert "created batch 'B-8'; its answer could not be read" in caplog.text


def test_gl_entry_ids_of_refuses_an_unknown_kind():
    """A kind other than invoices, expenses, products is a ValueError."""
    with pytest.raises(ValueError, match="invoices, expenses, products"):
        GLExport(()).gl_entry_ids_of("payments")  # type: ignore[arg-type]


def test_batch_requests_one_per_kind_with_its_flag_alone(answer):
    """The batches of an export: one per kind asked for, in kind order, its flag alone true."""
    export = GLExport.from_json(answer)
    batches = export.batch_requests(["products", "invoices"])
    assert [(b.identifier, b.gl_rec_ids, b.batch_options()) for b in batches] == [
        (
            None,
            (1010, 1011, 1012, 1013, 1014, 1020),
            {"export_invoices": True, "export_expenses": False, "export_products": False},
        ),
        (
            None,
            (3001, 3002, 3003),
            {"export_invoices": False, "export_expenses": False, "export_products": True},
        ),
    ]
    assert GLExport.from_json({"transactions": []}).batch_requests() == []


def test_a_line_without_an_id_is_skipped(respx_mock, client):
    """A line whose id is null or 0 (ConnectWise's "none") holds no GL entry."""
    lines = [{"id": 0, "description": "summary"}, {"id": None}, {"id": 5}]
    respx_mock.post(EXPORT).respond(200, json={"transactions": [{"detail": lines}]})
    assert client.export_gl().gl_entry_ids == (5,)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["transactions", "expenses", "purchaseTransactions", "expenseBills"]),
            st.lists(st.integers(1, 60), max_size=4),
            st.lists(st.integers(1, 60), max_size=3),
        ),
        max_size=8,
    )
)
def test_gl_entry_ids_are_every_id_once_in_order(records):
    """Whatever the records hold, gl_entry_ids lists each id they carry once, first seen first."""
    body: dict[str, list] = {}
    expected: list[int] = []
    for section, listed, lines in records:
        record: dict = {"glEntryIds": ", ".join(map(str, listed))}
        line_list = "purchaseDetail" if section == "purchaseTransactions" else "detail"
        record[line_list] = [{"id": i} for i in lines]
        body.setdefault(section, []).append(record)
    for section in GLEXPORT_SECTIONS:  # the order of the lists, then of records and ids
        for record in body.get(section, []):
            expected += gl_ids_in(record["glEntryIds"])
            expected += [line["id"] for name in LINE_LISTS for line in record.get(name, [])]
    export = GLExport.from_json(body)
    assert export.gl_entry_ids == tuple(dict.fromkeys(expected))
    by_kind = [i for kind in KINDS for i in export.gl_entry_ids_of(kind)]
    assert set(by_kind) == set(expected)


def test_export_batch_posts_to_the_batch_and_is_read_only(respx_mock, client, sleeps):
    """export_batch POSTs to /batches/{id}/export, retries a 502 like a GET, answers a GLExport."""
    route = respx_mock.post(f"{BATCHES}/42/export")
    route.side_effect = [
        httpx.Response(502),
        httpx.Response(200, json={"transactions": [{"glEntryIds": "7,8"}]}),
    ]
    export = client.export_batch(42)
    assert (export.gl_entry_ids, route.call_count, len(sleeps)) == ((7, 8), 2, 1)
    assert json.loads(route.calls.last.request.content) == {
        "exportInvoicesFlag": True,
        "exportExpensesFlag": True,
        "exportProductsFlag": True,
    }


def test_export_batch_gives_back_what_the_batch_holds():
    """Against the simulator: a batch's export lists exactly its GL entries."""
    fake = FakeConnectWise()
    fake.populate(30, seed=2)
    with fake.client() as client:
        batches = client.export_gl().batch_requests()
        create_batches(client, batches)  # concurrent: batches may be created in any order
        exported = []
        for batch in fake.batches:
            again = client.export_batch(batch.id)
            assert again.batch_identifier == batch.batch_identifier
            exported.append(frozenset(again.gl_entry_ids))
        assert sorted(exported, key=sorted) == sorted(
            (frozenset(request.gl_rec_ids) for request in batches), key=sorted
        )
        with pytest.raises(NotFoundError):
            client.export_batch(999)
