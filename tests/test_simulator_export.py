"""The simulator's books: GL entries apart from record ids, the export endpoints, batching."""

from __future__ import annotations

import json

import httpx
import pytest

from cw_glbatch.testing import FakeConnectWise

from ._glexport import gl_entry_ids_of

BATCHES = "/finance/accounting/batches"
EXPORT = "/finance/accounting/export"
ALL_KINDS = {"exportInvoicesFlag": True, "exportExpensesFlag": True, "exportProductsFlag": True}


@pytest.fixture
def fake() -> FakeConnectWise:
    return FakeConnectWise()


@pytest.fixture
def raw(fake):
    """A plain httpx client on the simulator's transport, with the right credentials."""
    with fake.client() as client:
        headers, root = dict(client._headers), client.api_root
    with httpx.Client(transport=fake.transport(), base_url=root, headers=headers) as http:
        yield http


def export(raw, path=EXPORT, **fields) -> httpx.Response:
    return raw.post(path, content=json.dumps(fields))


def create(raw, ids, identifier="B1") -> httpx.Response:
    body = {"batchIdentifier": identifier, "processedRecordIds": sorted(ids), **ALL_KINDS}
    return raw.post(BATCHES, content=json.dumps(body))


def test_export_holds_every_unposted_gl_entry(fake, raw):
    """An export of all kinds holds exactly the unposted GL entries, grouped by record."""
    ids = fake.populate(60, seed=4)
    response = export(raw, **ALL_KINDS)
    assert response.status_code == 200
    assert gl_entry_ids_of(response.json()) == set(ids)


def test_invoices_carry_several_ids_and_detail_lines(fake, raw):
    """Invoice transactions carry comma-separated glEntryIds, detail and tax lines with ids."""
    invoice = fake.add_invoice([1010, 1011, 1012], detail_ids=[1013, 1014], tax_ids=[1015])
    (transaction,) = export(raw, exportInvoicesFlag=True).json()["transactions"]
    assert transaction["glEntryIds"] == "1010,1011,1012"
    assert [line["id"] for line in transaction["detail"]] == [1013, 1014, 1015]
    assert transaction["detail"][-1]["glTypeId"] == "ST"  # the tax line
    assert transaction["id"] == invoice
    assert invoice not in range(1010, 1016)


def test_record_ids_are_not_gl_entry_ids(fake, raw):
    """Unposted invoice and expense rows have ids of their own, never a GL entry id."""
    ids = set(fake.populate(200, seed=1))
    records = {
        r["id"]
        for kind in ("invoices", "expenses")
        for r in raw.get(f"/finance/accounting/unposted{kind}", params={"pageSize": 1000}).json()
    }
    assert records
    assert not records & ids
    transactions = export(raw, **ALL_KINDS).json()["transactions"]
    assert any("," in t["glEntryIds"] for t in transactions)  # several ids per invoice


def test_export_changes_nothing(fake, raw):
    """An export is read-only: no batch, every entry still unposted."""
    ids = fake.populate(10)
    export(raw, **ALL_KINDS)
    assert (fake.batches, fake.unposted_ids) == ([], set(ids))


def test_export_create_export_again_leaves_nothing(fake, raw):
    """Batching what an export held marks exactly those entries; the next export is empty."""
    fake.populate(40, seed=2)
    first = gl_entry_ids_of(export(raw, **ALL_KINDS).json())
    created = create(raw, first)
    assert created.status_code == 201
    assert gl_entry_ids_of(created.json()) == first
    assert {e for e in first if fake.batch_of(e) is not None} == first
    assert gl_entry_ids_of(export(raw, **ALL_KINDS).json()) == set()


def test_batching_part_of_an_invoice_leaves_the_rest_exported(fake, raw):
    """A batch marks exactly its GL entries: the rest of the invoice is exported next time."""
    fake.add_invoice([1, 2], detail_ids=[3], tax_ids=[4])
    create(raw, [1, 3])
    (transaction,) = export(raw, exportInvoicesFlag=True).json()["transactions"]
    assert transaction["glEntryIds"] == "2"
    assert [line["id"] for line in transaction["detail"]] == [4]


def test_export_takes_only_the_kinds_asked_for(fake, raw):
    """Flags choose the kinds: invoices only gives transactions and nothing else."""
    fake.add_unposted([1], kind="invoice")
    fake.add_unposted([2], kind="expense")
    fake.add_unposted([3], kind="procurement")
    only_expenses = export(raw, exportExpensesFlag=True, exportInvoicesFlag=None).json()
    assert gl_entry_ids_of(only_expenses) == {2}
    assert only_expenses["transactions"] == only_expenses["purchaseTransactions"] == []
    assert gl_entry_ids_of(export(raw, exportProductsFlag=True).json()) == {3}


def test_export_of_no_kind_is_refused(raw):
    """An export that asks for no kind is refused naming exportInvoicesFlag."""
    response = export(raw, exportInvoicesFlag=False)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "exportInvoicesFlag"


def test_export_filters_by_date_location_and_record(fake, raw):
    """thruDate, locationId and the included/excluded record ids narrow the export."""
    fake.add_unposted([1], date="2026-01-10", location_id=1)  # invoice 1001
    fake.add_unposted([2], date="2026-01-20", location_id=1)  # invoice 1002
    fake.add_unposted([3], date="2026-01-10", location_id=2)  # invoice 1003
    fake.add_unposted([4], kind="procurement", date="2026-01-10")  # product "P4"

    def held(**fields) -> set[int]:
        return gl_entry_ids_of(export(raw, **{**ALL_KINDS, **fields}).json())

    assert held(thruDate="2026-01-15T00:00:00Z") == {1, 3, 4}
    assert held(locationId=2) == {3}
    assert held(includedInvoiceIds=[1002], excludedProductIds=["P4"]) == {2}
    assert held(excludedInvoiceIds=[1001, 1003]) == {2, 4}
    assert held(includedProductIds=["P4"], exportInvoicesFlag=False) == {4}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"thruDate": "soon"}, "thruDate"),
        ({"summarizeInvoices": "Brief"}, "summarizeInvoices"),
        ({"includedProductIds": [1]}, "includedProductIds"),
        ({"locationId": "1"}, "locationId"),
        ({"exportAllFlag": True}, "exportAllFlag"),
    ],
)
def test_bad_export_body_is_400(raw, fields, field):
    """Fields of the wrong type, or not in ExportAccountingBatchRequest, are refused."""
    response = export(raw, **ALL_KINDS, **fields)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_batch_export_gives_the_batch_again(fake, raw):
    """POST /batches/{id}/export answers the GLExport of that batch's entries; 404 if none."""
    ids = fake.populate(12, seed=5)
    create(raw, ids[:5])
    create(raw, ids[5:], identifier="B2")
    again = export(raw, BATCHES + "/2/export")
    assert again.status_code == 200
    assert gl_entry_ids_of(again.json()) == set(ids[5:])
    assert again.json()["exportSettings"] == {"batchIdentifier": "B2"}
    assert export(raw, BATCHES + "/9/export").status_code == 404


def test_create_without_identifier_names_the_batch(fake, raw):
    """processedRecordIds is the only required field; the batch is then named by its id."""
    fake.add_unposted([1])
    response = raw.post(BATCHES, content=json.dumps({"processedRecordIds": [1], **ALL_KINDS}))
    assert response.status_code == 201
    assert fake.batches[0].batch_identifier == "1"


def test_create_accepts_id_zero_and_nulls(fake, raw):
    """Bodies real clients send: "id": 0 and null for unset optional fields."""
    fake.add_unposted([1])
    body = {"id": 0, "batchIdentifier": "B", "glInterfaceIdentifier": None,
            "summarizeExpenses": None, "processedRecordIds": [1], **ALL_KINDS}  # fmt: skip
    assert raw.post(BATCHES, content=json.dumps(body)).status_code == 201


def test_populate_is_repeatable(raw):
    """The same seed gives the same records and GL entries."""

    def books(seed: int) -> str:
        fake = FakeConnectWise()
        fake.populate(30, seed=seed)
        with (
            fake.client() as client,
            httpx.Client(
                transport=fake.transport(), base_url=client.api_root, headers=dict(client._headers)
            ) as http,
        ):
            return export(http, **ALL_KINDS).text

    assert books(3) == books(3)
    assert books(3) != books(4)


def test_batch_entries_are_gl_entries(fake, raw):
    """A batch's entries have the GL entry ids as their ids and name their invoice."""
    invoice = fake.add_invoice([7, 8], tax_ids=[9])
    create(raw, [7, 9])
    entries = raw.get(BATCHES + "/1/entries").json()
    assert [e["id"] for e in entries] == [7, 9]
    assert {e["invoice"]["id"] for e in entries} == {invoice}


def test_adding_a_used_id_is_refused(fake):
    """A GL entry id can be added once."""
    fake.add_invoice([5], detail_ids=[6])
    with pytest.raises(ValueError, match="GL entry 6 exists already"):
        fake.add_unposted([6], kind="expense")


def test_a_record_id_is_never_a_gl_entry_id(fake):
    """A GL entry cannot take an id an unposted record has."""
    invoice = fake.add_invoice([5])
    with pytest.raises(ValueError, match=f"{invoice} is the id of an unposted record"):
        fake.add_unposted([invoice])


def test_many_unposted_records_keep_record_ids_clear_of_their_gl_entries():
    """add_unposted over ids past the first record id numbers the records around them."""
    fake = FakeConnectWise()
    fake.add_unposted(range(1, 3001))
    with fake.client() as client:
        assert len(client.export_gl().gl_entry_ids) == 3000
