"""The run journal: durable records, resume without resending, refusal of foreign journals."""

from __future__ import annotations

import json
import os
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cw_glbatch import (
    BatchRequest,
    BatchResult,
    JournalError,
    XmlBatchReader,
    create_batches,
    process_file,
)
from cw_glbatch._journal import Journal, fingerprint
from cw_glbatch.testing import FakeConnectWise
from tests.helpers import POST, plain_batches, write_input


@pytest.fixture
def setup(tmp_path):
    batches = plain_batches(10)
    write_input(tmp_path / "in.xml", batches)
    fake = FakeConnectWise()
    fake.add_unposted(i for b in batches for i in b.gl_rec_ids)
    return batches, fake, tmp_path


def records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_journal_records_each_batch_before_and_after_sending(setup):
    """A sending record precedes each POST; each result follows; the header has the baseline."""
    _, fake, folder = setup
    journal = folder / "run.journal"
    with fake.client() as client:
        create_batches(client, XmlBatchReader(folder / "in.xml"), journal=journal, concurrency=1)
    lines = records(journal)
    assert (lines[0]["journal"], lines[0]["baseline"]) == (1, 0)
    order = [(r["i"], r["s"]) for r in lines[1:] if "i" in r]
    for index in range(10):
        assert order.index((index, "sending")) < order.index((index, "created"))
    last = {r["i"]: r for r in lines[1:] if "i" in r}
    assert {i: (r["s"], r["b"]) for i, r in last.items()} == {
        i: ("created", batch.id) for i, batch in enumerate(fake.batches)
    }
    assert lines[-1] == {"floor": 10}


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_journal_is_owner_only(setup):
    """The journal is created readable by its owner only."""
    _, fake, folder = setup
    with fake.client() as client:
        create_batches(client, plain_batches(1), journal=folder / "run.journal")
    assert stat.S_IMODE((folder / "run.journal").stat().st_mode) == 0o600


def test_clean_finish_removes_the_journal(setup):
    """process_file removes its journal once the files are in place."""
    _, fake, folder = setup
    with fake.client() as client:
        process_file(client, folder / "in.xml", folder / "ok.xml", folder / "failed.xml")
    assert sorted(p.name for p in folder.iterdir()) == ["failed.xml", "in.xml", "ok.xml"]


def interrupted_run(fake, folder, stop_after: int) -> None:
    """Run the task and interrupt it (as a crash would) once some batches are done."""

    def explode(progress):
        if progress.done == stop_after:
            raise KeyboardInterrupt

    from cw_glbatch._batches import create_batches as create  # the writer-less core

    journal = Journal(folder / "ok.xml.journal", source=_digest(folder / "in.xml"))
    with fake.client() as client, pytest.raises(KeyboardInterrupt):
        create(
            client,
            XmlBatchReader(folder / "in.xml"),
            progress=explode,
            journal=journal,
            concurrency=2,
        )
    journal.close()  # a journal passed in stays open (and locked) until its owner closes it


def _digest(path):
    from cw_glbatch._journal import file_digest

    return file_digest(path)


def test_resume_sends_nothing_twice(setup, invariants):
    """After an interrupted run, the same call finishes it without resending created batches."""
    batches, fake, folder = setup
    interrupted_run(fake, folder, stop_after=4)
    created_before = len(fake.batches)
    posts_before = fake.count_requests(**POST)
    assert 4 <= created_before < 10
    with fake.client() as client:
        report = process_file(client, folder / "in.xml", folder / "ok.xml", folder / "failed.xml")
    assert report.counts["created"] == 10
    assert fake.count_requests(**POST) - posts_before == 10 - created_before
    invariants(batches, folder / "ok.xml", folder / "failed.xml", fake)
    assert not (folder / "ok.xml.journal").exists()


def test_in_flight_batch_is_looked_up_not_resent(setup, invariants):
    """A batch sent before the crash but not recorded as answered is found by lookup."""
    batches, fake, folder = setup
    journal = Journal(folder / "ok.xml.journal", source=_digest(folder / "in.xml"))
    journal.begin(0, "20260101T000000Z")
    first = next(iter(XmlBatchReader(folder / "in.xml")))
    journal.sending(0, fingerprint(first), "20260101T000000Z")
    journal.close()
    with fake.client() as client:  # the POST went out before the crash, and created the batch
        client.create_batch("20260101T000000Z", first.gl_rec_ids)
    with fake.client() as client:
        report = process_file(client, folder / "in.xml", folder / "ok.xml", folder / "failed.xml")
    assert report.counts["created"] == 10
    assert fake.count_requests(**POST) == 10  # the one before the crash, and nine more
    invariants(batches, folder / "ok.xml", folder / "failed.xml", fake)


def test_in_flight_batch_not_created_is_sent(setup, invariants):
    """A batch the journal records as sending, which never reached ConnectWise, is looked up,
    not found, and sent on resume: once."""
    batches, fake, folder = setup
    journal = Journal(folder / "ok.xml.journal", source=_digest(folder / "in.xml"))
    journal.begin(0, "20260101T000000Z-ABCDEF")
    first = next(iter(XmlBatchReader(folder / "in.xml")))
    journal.sending(0, fingerprint(first), "20260101T000000Z-ABCDEF")
    journal.close()  # the process died before its POST left
    with fake.client() as client:
        report = process_file(client, folder / "in.xml", folder / "ok.xml", folder / "failed.xml")
    assert report.counts["created"] == 10
    assert fake.count_requests(**POST) == 10
    # sent under its journaled name (concurrent sends: not necessarily the first created)
    named = [b for b in fake.batches if b.batch_identifier == "20260101T000000Z-ABCDEF"]
    assert [tuple(b.gl_entry_ids) for b in named] == [tuple(first.gl_rec_ids)]
    lookups = [r.query.get("conditions") for r in fake.requests if r.method == "GET"]
    assert lookups[1] == 'batchIdentifier in ("20260101T000000Z-ABCDEF") and id > 0'
    invariants(batches, folder / "ok.xml", folder / "failed.xml", fake)
    assert not (folder / "ok.xml.journal").exists()


def test_torn_last_line_is_ignored(setup):
    """A journal whose last line was cut by a crash still resumes."""
    folder = setup[2]
    path = folder / "ok.xml.journal"
    path.write_text('{"journal":1,"baseline":0,"stamp":"S","source":null}\n{"i":0,"f":"ab')
    journal = Journal(path)
    assert (journal.resumed, journal.baseline, journal.entries) == (True, 0, {})
    journal.close()


def test_damaged_journal_is_refused(setup):
    """A journal damaged in the middle is refused with what to do."""
    folder = setup[2]
    path = folder / "run.journal"
    path.write_text('{"journal":1,"baseline":0,"stamp":"S"}\ngarbage\n{"i":0}\n')
    with pytest.raises(JournalError, match=r"run.journal:2: the journal is damaged"):
        Journal(path)


def test_journal_of_another_input_is_refused_before_sending(setup):
    """A journal left by a run of a different file stops the run before any request."""
    _, fake, folder = setup
    interrupted_run(fake, folder, stop_after=2)
    other = folder / "other.xml"
    write_input(other, [BatchRequest("X", [1])])
    requests_before = len(fake.requests)
    with fake.client() as client, pytest.raises(JournalError, match="different input file"):
        process_file(client, other, folder / "ok.xml", folder / "failed.xml")
    assert len(fake.requests) == requests_before


def test_changed_batch_is_refused(setup):
    """Resuming create_batches with a batch that differs from the journal's record is refused."""
    _, fake, folder = setup
    with fake.client() as client:
        create_batches(client, plain_batches(2), journal=folder / "j")
        with pytest.raises(JournalError, match="batch 1 of this input differs"):
            create_batches(client, [BatchRequest("other", [7])], journal=folder / "j")


def test_same_command_twice_changes_nothing(setup, invariants):
    """A second run of a finished job carries the created batches over and sends nothing."""
    batches, fake, folder = setup
    with fake.client() as client:
        process_file(client, folder / "in.xml", folder / "ok.xml", folder / "failed.xml")
        first = (folder / "ok.xml").read_bytes()
        posts = fake.count_requests(**POST)
        again = process_file(client, folder / "in.xml", folder / "ok.xml", folder / "failed.xml")
    assert again.counts["created"] == 10
    assert fake.count_requests(**POST) == posts
    assert (folder / "ok.xml").read_bytes() == first
    invariants(batches, folder / "ok.xml", folder / "failed.xml", fake)


def test_empty_journal_is_a_fresh_start(setup):
    """A journal killed before its header (nothing sent yet) does not block the next run."""
    _, fake, folder = setup
    (folder / "ok.xml.journal").write_text("")
    with fake.client() as client:
        report = process_file(client, folder / "in.xml", folder / "ok.xml", folder / "failed.xml")
    assert report.counts["created"] == 10


@given(
    index=st.integers(min_value=0, max_value=10**12),
    digest=st.text(max_size=20),
    identifier=st.text(max_size=60),
    batch_id=st.none() | st.integers(min_value=1, max_value=10**15),
)
def test_batch_records_are_what_json_writes(tmp_path_factory, index, digest, identifier, batch_id):
    """The sending and created records, formatted directly, are json.dumps's, byte for byte."""
    journal = Journal(tmp_path_factory.mktemp("j") / "run.journal")
    request = BatchRequest("B", [1])
    journal.sending(index, digest, identifier)
    journal.result(index, digest, BatchResult(request, identifier, "created", batch_id))
    journal.close()
    created = {"i": index, "f": digest, "id": identifier, "s": "created"}
    if batch_id is not None:
        created["b"] = batch_id
    expected = [{"i": index, "f": digest, "id": identifier, "s": "sending"}, created]
    text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in expected)
    with open(journal.path, encoding="utf-8") as written:
        assert written.read() == text
