"""stop=threading.Event(): end a run early, journal what was on the wire, resume exactly once."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from cw_glbatch import BatchRequest, create_batches, process_file
from cw_glbatch._batches import STOPPED_BY_CALLER
from cw_glbatch.testing import FakeConnectWise

from .helpers import check_invariants, simulated_input


class StopsWhileSending:
    """Wraps a client: sets ``stop`` while the POST of batch ``at`` is on the wire, once
    ``posts_before`` POSTs have begun (the batches before it, whatever the threads' timing)."""

    def __init__(self, client, stop: threading.Event, at: str, posts_before: int = 0) -> None:
        self.client, self.stop, self.at = client, stop, at
        self.posts_before = posts_before
        self.posted_after_stop: list[str] = []
        self.posted: list[str] = []
        self.begun = threading.Condition()

    @property
    def requests_sent(self) -> int:
        return self.client.requests_sent

    def __getattr__(self, name: str):
        return getattr(self.client, name)  # origin, company_id, batch_entry_ids

    def highest_batch_id(self) -> int:
        return self.client.highest_batch_id()

    def create_batch(self, identifier, gl_rec_ids):
        if self.stop.is_set():
            self.posted_after_stop.append(identifier)
        with self.begun:
            self.posted.append(identifier)
            self.begun.notify_all()
            if identifier == self.at:
                assert self.begun.wait_for(lambda: len(self.posted) > self.posts_before, 10)
                self.stop.set()  # the request below is on the wire when the run learns of it
        return self.client.create_batch(identifier, gl_rec_ids)

    def list_batches(self, conditions=None, *, order_by=None):
        return self.client.list_batches(conditions, order_by=order_by)

    def find_batches(self, identifiers, *, min_id=None):
        return self.client.find_batches(identifiers, min_id=min_id)


def journal_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_stop_ends_create_batches_and_journals_the_batch_on_the_wire(tmp_path):
    """After stop is set nothing is posted; the POST on the wire is journaled as created."""
    fake = FakeConnectWise()
    ids = fake.populate(10)
    requests = [BatchRequest(f"B{n}", [ids[n]]) for n in range(10)]
    stop = threading.Event()
    seen = []
    with fake.client() as real:
        client = StopsWhileSending(real, stop, at="B3")
        report = create_batches(
            client,
            requests,
            concurrency=1,
            stop=stop,
            on_result=seen.append,
            journal=tmp_path / "run.journal",
        )
    assert client.posted == ["B0", "B1", "B2", "B3"]
    assert client.posted_after_stop == []
    assert report.stopped == STOPPED_BY_CALLER
    assert not report.ok
    assert [b.batch_identifier for b in fake.batches] == ["B0", "B1", "B2", "B3"]
    assert [r.identifier for r in seen] == [r.identifier for r in report.results]
    assert {r.identifier for r in seen} <= {"B0", "B1", "B2"}
    created = {
        r["id"] for r in journal_records(tmp_path / "run.journal") if r.get("s") == "created"
    }
    assert created == {"B0", "B1", "B2", "B3"}


def test_stopped_process_file_writes_nothing_and_the_same_call_finishes(tmp_path):
    """A stopped process_file leaves no files but the journal; running it again creates the rest,
    each batch once, and sends nothing twice."""
    batches, fake = simulated_input(tmp_path, 40)
    stop = threading.Event()
    files = (tmp_path / "in.xml", tmp_path / "ok.xml", tmp_path / "bad.xml")
    with fake.client() as real:
        stopper = StopsWhileSending(real, stop, at="R11", posts_before=11)
        report = process_file(stopper, *files, concurrency=4, stop=stop)
        assert report.stopped == STOPPED_BY_CALLER
        assert not files[1].exists()
        assert not files[2].exists()
        assert (tmp_path / "ok.xml.journal").exists()
        first_posts = fake.count_requests("POST")
        assert 12 <= first_posts < 40
        report = process_file(real, *files, concurrency=4)
    assert report.ok
    assert report.counts["created"] == 40
    assert fake.count_requests("POST") == 40  # every batch posted exactly once over both runs
    assert not (tmp_path / "ok.xml.journal").exists()
    check_invariants(batches, files[1], files[2], fake)
