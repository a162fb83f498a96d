"""The accounting loop through the simulator: export, post, batch, export again finds nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from defusedxml.ElementTree import parse

from cw_glbatch import GLExport, RunReport, XmlBatchReader, acreate_batches, create_batches
from cw_glbatch._cli import main
from cw_glbatch.testing import FakeConnectWise, async_client

from .test_docs import python_blocks

GUIDE = Path(__file__).parent.parent / "docs" / "guide.md"


@pytest.fixture
def server(monkeypatch):
    """A simulator on loopback with CW_* set for it, holding unposted transactions."""
    fake = FakeConnectWise()
    fake.populate(40, seed=5)
    with fake.serve() as server:
        for name in ("CW_SITE", "CW_BASE_URL", "CW_CODEBASE", "CW_API_VERSION"):
            monkeypatch.delenv(name, raising=False)
        for name, value in server.environ.items():
            monkeypatch.setenv(name, value)
        yield fake


def test_guide_loop_example_runs(server):
    """The guide's loop example runs as written against a simulated tenant and posts it all."""
    (loop,) = [block for block in python_blocks(GUIDE) if "export_gl" in block.code]
    waiting = server.unposted_ids
    namespace: dict = {"__name__": "guide"}
    exec(loop.compiled(), namespace)  # noqa: S102 - our own documentation
    assert len(namespace["ledger"]) == len(namespace["export"].records) > 0
    assert set(namespace["export"].gl_entry_ids) == waiting
    assert server.unposted_ids == frozenset()


def test_loop_in_process():
    """Export, post, one batch per kind: every exported GL entry is batched, none twice."""
    fake = FakeConnectWise()
    fake.populate(60, seed=3)
    waiting = fake.unposted_ids
    with fake.client() as client:
        export = client.export_gl()
        assert set(export.gl_entry_ids) == waiting
        report = create_batches(client, export.batch_requests())
        assert (report.ok, report.counts["created"]) == (True, 3)
        again = client.export_gl()
    assert (again.gl_entry_ids, again.records) == ((), ())
    assert fake.unposted_ids == frozenset()
    for batch in fake.batches:
        kinds = [batch.export_invoices, batch.export_expenses, batch.export_products]
        assert kinds.count(True) == 1  # one kind per batch, as ConnectWise advises
    batched = [i for batch in fake.batches for i in batch.gl_entry_ids]
    assert sorted(batched) == sorted(waiting)


def test_loop_one_kind_leaves_the_others():
    """Batching the invoices alone leaves the expenses and products to the next export."""
    fake = FakeConnectWise()
    fake.populate(60, seed=4)
    with fake.client() as client:
        export = client.export_gl()
        create_batches(client, export.batch_requests(["invoices"]))
        again = client.export_gl()
    assert again.gl_entry_ids_of("invoices") == ()
    assert set(again.gl_entry_ids) == set(export.gl_entry_ids) - set(
        export.gl_entry_ids_of("invoices")
    )


def test_loop_over_loopback_via_the_cli(server, tmp_path, capsys):
    """cw-glbatch export, then create, then export again: no GL entry id is left."""
    batches, export_file = tmp_path / "batches.xml", tmp_path / "export.json"
    waiting = server.unposted_ids
    assert main(["export", "--batches", str(batches), "--export", str(export_file)]) == 0
    exported = GLExport.from_json(json.loads(export_file.read_text("utf-8")))
    assert set(exported.gl_entry_ids) == waiting
    read = list(XmlBatchReader(batches))
    assert sorted(i for batch in read for i in batch.gl_rec_ids) == sorted(waiting)
    success, fail = tmp_path / "created.xml", tmp_path / "failed.xml"
    code = main(["create", "--input", str(batches), "--success", str(success), "--fail", str(fail)])
    assert code == 0
    assert parse(fail).getroot().findall("Batch") == []
    created = parse(success).getroot().findall("Batch")
    assert len(created) == len(read)
    assert all(batch.findtext("batchId") for batch in created)
    capsys.readouterr()
    assert main(["export", "--batches", str(tmp_path / "again.xml"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["gl_entry_ids"] == 0
    assert list(XmlBatchReader(tmp_path / "again.xml")) == []
    assert server.unposted_ids == frozenset()


def test_loop_with_the_async_client():
    """The async client runs the same loop: export, acreate_batches, export again, re-export."""
    fake = FakeConnectWise()
    fake.populate(40, seed=6)
    waiting = fake.unposted_ids

    async def main() -> tuple[GLExport, RunReport, GLExport, GLExport]:
        async with async_client(fake) as client:
            export = await client.export_gl()
            report = await acreate_batches(client, export.batch_requests())
            again = await client.export_gl()
            batch = await client.export_batch(fake.batches[0].id)
        return export, report, again, batch

    export, report, again, batch = asyncio.run(main())
    assert set(export.gl_entry_ids) == waiting
    assert (report.ok, report.counts["created"]) == (True, 3)
    assert again.gl_entry_ids == ()
    assert sorted(batch.gl_entry_ids) == sorted(fake.batches[0].gl_entry_ids)
    flags = [(b.export_invoices, b.export_expenses, b.export_products) for b in fake.batches]
    assert all(kinds.count(True) == 1 for kinds in flags)  # each batch's options were sent
