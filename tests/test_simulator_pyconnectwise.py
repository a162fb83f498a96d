"""Conformance: pyconnectwise, an independent client from PyPI, against the simulator over HTTPS.

pyconnectwise (pinned in the test extra) is built from ConnectWise's own definition and is
used against real tenants; what it does here it does against ConnectWise. Two of its own bugs are
worked around, not modelled: a ``codebase`` passed to its constructor is never stored (only the
company-info lookup sets it), so it is left to look the codebase up; it hard-codes ``https://``,
so the simulator serves HTTPS (trustme's certificate, trusted through ``REQUESTS_CA_BUNDLE``) and
``manage_url`` is ``host:port``; and it imports ``datetime.UTC`` (Python 3.11) while claiming
Python 3.10, so on 3.10 the alias is added before importing it.
"""

from __future__ import annotations

import datetime
import ssl
import warnings
from collections.abc import Iterator

import pytest
import trustme

if not hasattr(datetime, "UTC"):  # it imports datetime.UTC (Python 3.11) yet claims 3.10
    datetime.UTC = datetime.timezone.utc  # type: ignore[attr-defined]

with warnings.catch_warnings():  # its models use pydantic 1's Field(example=...)
    warnings.simplefilter("ignore", DeprecationWarning)
    from pyconnectwise import ConnectWiseManageAPIClient
    from pyconnectwise.exceptions import MalformedRequestException, NotFoundException
    from pyconnectwise.models.manage import CreateAccountingBatchRequest

from cw_glbatch.testing import FakeConnectWise, SimulatorServer

from ._glexport import gl_entry_ids_of
from ._openapi import request_schema, validator


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> tuple[ssl.SSLContext, str]:
    """A server context with a trustme certificate for 127.0.0.1, and the CA bundle's path."""
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return context, str(bundle)


@pytest.fixture
def fake() -> FakeConnectWise:
    fake = FakeConnectWise()
    fake.populate(60, seed=21)
    return fake


@pytest.fixture
def server(fake, tls, monkeypatch) -> Iterator[SimulatorServer]:
    context, bundle = tls
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    with fake.serve(ssl_context=context) as server:
        yield server


@pytest.fixture
def api(fake, server) -> ConnectWiseManageAPIClient:
    """pyconnectwise's client for the simulator; it looks the codebase up itself."""
    return ConnectWiseManageAPIClient(
        company_name=fake.company_id,
        manage_url=server.url.removeprefix("https://"),  # it adds https:// itself
        client_id=fake.client_id,
        public_key=fake.public_key,
        private_key=fake.private_key,
    )


def create(api, identifier: str, ids: list[int]):
    """Create a batch from pyconnectwise's own request model, dumped as it dumps it."""
    body = CreateAccountingBatchRequest(
        batch_identifier=identifier,
        processed_record_ids=ids,
        export_invoices_flag=True,
        export_expenses_flag=True,
        export_products_flag=True,
    ).model_dump(by_alias=True)
    return api.finance.accounting.batches.post(data=body)


def test_it_looks_the_codebase_up(fake, api):
    """Its company-info lookup finds the simulator's codebase, and the API under it."""
    assert api.codebase == fake.codebase
    assert api._get_url().endswith(fake.api_path)


def test_create_from_its_model_dump(fake, api):
    """Its model dump (null optional fields, "id": null) creates the batch; the answer parses."""
    ids = sorted(fake.unposted_ids)[:4]
    dump = CreateAccountingBatchRequest(
        batch_identifier="PCW-1", processed_record_ids=ids, export_invoices_flag=True,
        export_expenses_flag=True, export_products_flag=True,
    ).model_dump(by_alias=True)  # fmt: skip
    assert dump["id"] is None
    assert dump["summarizeExpenses"] is None
    assert validator(request_schema("POST", "/finance/accounting/batches"), loose=True).is_valid(
        dump
    )
    export = create(api, "PCW-1", ids)
    assert gl_entry_ids_of(export.model_dump(by_alias=True)) == set(ids)
    (batch,) = fake.batches
    assert (batch.batch_identifier, batch.gl_entry_ids) == ("PCW-1", tuple(ids))


def test_refusal_is_its_malformed_request(fake, api):
    """A GL entry already batched: ConnectWise's 400, which it raises as MalformedRequest."""
    ids = sorted(fake.unposted_ids)[:1]
    create(api, "first", ids)
    with pytest.raises(MalformedRequestException):
        create(api, "second", ids)


def make_batches(fake, api, count: int) -> list[int]:
    entries = sorted(fake.unposted_ids)
    for n in range(count):
        create(api, f"PCW-{n}", [entries[n]])
    return [b.id for b in fake.batches]


def test_its_paging_reads_every_page(fake, api):
    """Its paginated .all() follows the Link header across three pages to the last batch."""
    ids = make_batches(fake, api, 12)
    pages = api.finance.accounting.batches.paginated(1, 5)
    assert (pages.next_page, pages.last_page) == (2, 3)
    assert [b.id for b in pages.all()] == ids


def test_list_with_conditions_and_count(fake, api):
    """Its list with conditions, and its count, match the simulator's batches."""
    make_batches(fake, api, 12)
    batches = api.finance.accounting.batches
    found = batches.get(params={"conditions": "batchIdentifier like 'PCW-1*' and id > 2"})
    assert [b.batch_identifier for b in found] == ["PCW-10", "PCW-11"]
    assert batches.count.get().count == 12
    assert batches.count.get(params={"conditions": "closedFlag = False"}).count == 12


def test_get_and_delete(fake, api):
    """Its get returns the batch; its delete removes it, after which get is NotFound."""
    make_batches(fake, api, 3)
    one = api.finance.accounting.batches.id(2)
    assert (one.get().id, one.get().batch_identifier) == (2, "PCW-1")
    one.delete()
    with pytest.raises(NotFoundException):
        one.get()
    assert [b.id for b in fake.batches] == [1, 3]


def test_unposted_lists(fake, api):
    """Its unposted invoice, expense and procurement lists parse, and hold the open records."""
    accounting = api.finance.accounting
    listed = {
        "invoice": accounting.unpostedinvoices.get(params={"pageSize": 1000}),
        "expense": accounting.unpostedexpenses.get(params={"pageSize": 1000}),
        "procurement": accounting.unpostedprocurement.get(params={"pageSize": 1000}),
    }
    assert all(listed.values())
    held = {kind: {r.id for r in rows} for kind, rows in listed.items()}
    export = accounting.export.post(
        data={"exportInvoicesFlag": True, "exportExpensesFlag": True, "exportProductsFlag": True}
    ).model_dump(by_alias=True)
    assert {t["id"] for t in export["transactions"]} == held["invoice"]
    assert len(export["expenses"]) == len(held["expense"])
    assert gl_entry_ids_of(export) == fake.unposted_ids
