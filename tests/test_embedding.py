"""What users embedding the library rely on: the client protocol, typed options, in-memory input."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from cw_glbatch import (
    BatchRequest,
    BatchResult,
    ConfigurationError,
    XmlBatchReader,
    create_batches,
    process_file,
)
from cw_glbatch._batches import _then
from cw_glbatch.testing import FakeConnectWise

TESTING_DOC = Path(__file__).parents[1] / "docs" / "testing.md"


def doc_snippet(heading: str) -> str:
    """The first Python block under ``heading`` in docs/testing.md."""
    text = TESTING_DOC.read_text(encoding="utf-8")
    section = text.split(f"\n{heading}\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_documented_fake_runs_create_batches():
    """The fake in docs/testing.md runs create_batches to the end (its own asserts hold)."""
    namespace: dict[str, object] = {}
    exec(compile(doc_snippet("## A fake client of your own"), "testing.md", "exec"), namespace)  # noqa: S102
    report = namespace["report"]
    assert [r.identifier for r in report.results][1] == "B2"
    assert namespace["fake"].batches[1].batch_identifier == "B2"


def test_documented_fake_type_checks_and_option_typos_do_not(tmp_path):
    """mypy --strict accepts the documented fake and the real client as a BatchClient, and
    refuses a misspelt process_file option."""
    api = pytest.importorskip("mypy.api")
    (tmp_path / "fake_client.py").write_text(doc_snippet("## A fake client of your own"))
    (tmp_path / "real_client.py").write_text(
        textwrap.dedent(
            """
            from cw_glbatch import (
                AsyncBatchClient,
                AsyncConnectWiseClient,
                BatchClient,
                ConnectWiseClient,
            )

            def as_protocol(client: ConnectWiseClient) -> BatchClient:
                return client

            def as_async_protocol(client: AsyncConnectWiseClient) -> AsyncBatchClient:
                return client
            """
        )
    )
    (tmp_path / "typo.py").write_text(
        textwrap.dedent(
            """
            from cw_glbatch import ConnectWiseClient, process_file

            def run(client: ConnectWiseClient) -> None:
                process_file(client, "in.xml", "ok.xml", "bad.xml", concurency=4)
            """
        )
    )
    out, err, _status = api.run(
        [
            "--strict",
            str(tmp_path / "fake_client.py"),
            str(tmp_path / "real_client.py"),
            str(tmp_path / "typo.py"),
        ]
    )
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 1, out + err
    assert 'typo.py:5: error: Unexpected keyword argument "concurency"' in errors[0]


@pytest.mark.parametrize(
    ("options", "error"),
    [({"concurency": 4}, TypeError), ({"concurrency": 0}, ConfigurationError)],
    ids=["misspelt", "out-of-range"],
)
def test_bad_option_fails_before_anything_is_created(tmp_path, samples, options, error):
    """A misspelt or out-of-range process_file option raises before the journal or any request."""
    fake = FakeConnectWise()
    with fake.client() as client, pytest.raises(error, match="concur"):
        process_file(
            client,
            samples / "seed_corrected.xml",
            tmp_path / "ok.xml",
            tmp_path / "bad.xml",
            **options,
        )
    assert list(tmp_path.iterdir()) == []
    assert fake.requests == []


def test_process_file_passes_on_result_every_result_in_order(tmp_path):
    """process_file's on_result gets each batch once, in input order, with its outcome."""
    fake = FakeConnectWise()
    ids = fake.populate(6)
    (tmp_path / "in.xml").write_text(
        "<Batches>"
        + "".join(
            f"<Batch><batchIdentifier>B{n}</batchIdentifier><glRecIds>"
            f"<glRecId>{ids[n]}</glRecId></glRecIds></Batch>"
            for n in range(6)
        )
        + "</Batches>"
    )
    seen: list[BatchResult] = []
    with fake.client() as client:
        process_file(
            client,
            tmp_path / "in.xml",
            tmp_path / "ok.xml",
            tmp_path / "bad.xml",
            concurrency=3,
            on_result=seen.append,
        )
    created = {b.batch_identifier: b.id for b in fake.batches}  # (sent 3 at a time: any order)
    assert [(r.identifier, r.status, r.batch_id) for r in seen] == [
        (f"B{n}", "created", created[f"B{n}"]) for n in range(6)
    ]


def test_on_result_is_called_after_the_writer():
    """The combined callback calls the writer first, then the user's on_result."""
    calls: list[str] = []
    both = _then(lambda r: calls.append("writer"), lambda r: calls.append("user"))
    both(BatchResult(BatchRequest(gl_rec_ids=[1]), "X", "created"))
    assert calls == ["writer", "user"]


def test_batch_request_needs_only_its_ids():
    """BatchRequest(gl_rec_ids=...) has no identifier, line 0 and no errors."""
    request = BatchRequest(gl_rec_ids=[5, 6])
    assert (request.identifier, request.gl_rec_ids, request.line, request.errors) == (
        None,
        (5, 6),
        0,
        (),
    )


def test_ids_repeated_across_requests_are_refused_before_sending():
    """A request repeating an earlier request's id fails locally; the earlier one is created."""
    fake = FakeConnectWise()
    ids = fake.populate(4)
    requests = [
        BatchRequest("A", ids[:2]),
        BatchRequest("B", [ids[2], ids[1]]),
        BatchRequest("C", ids[3:]),
    ]
    with fake.client() as client:
        report = create_batches(client, requests)
    assert [r.status for r in report.results] == ["created", "failed", "created"]
    error = report.results[1].error
    assert (error.code, error.message) == (
        "InvalidInput",
        f"GL entry ids already in an earlier batch of this run: [{ids[1]}]",
    )
    assert [b.batch_identifier for b in fake.batches] == ["A", "C"]
    assert fake.count_requests("POST") == 2


def test_repeats_a_reader_reported_are_not_reported_twice(tmp_path):
    """A file's repeated id carries the reader's message only, not the run's as well."""
    fake = FakeConnectWise()
    ids = fake.populate(2)
    (tmp_path / "in.xml").write_text(
        f"<Batches><Batch><glRecIds><glRecId>{ids[0]}</glRecId></glRecIds></Batch>"
        f"<Batch><glRecIds><glRecId>{ids[1]}</glRecId><glRecId>{ids[0]}</glRecId></glRecIds>"
        "</Batch></Batches>"
    )
    with fake.client() as client:
        report = create_batches(client, XmlBatchReader(tmp_path / "in.xml"))
    assert [r.status for r in report.results] == ["created", "failed"]
    assert report.results[1].error.message == (
        f"line 1: glRecId {ids[0]} is already in an earlier batch of this file"
    )
