"""Learning the ids of created batches in bulk, in a thread of its own, results kept in order."""

from __future__ import annotations

import json
import logging
import threading

import httpx

from cw_glbatch import create_batches
from cw_glbatch._learning import LEARN_IDS_EVERY
from cw_glbatch.testing import Fault
from tests.helpers import requests_for, simulator_for

BATCHES = "/finance/accounting/batches"

COUNT = LEARN_IDS_EVERY + 100


class _ListingWaitsForTheLastPost(httpx.BaseTransport):
    """The simulator's transport; a listing of ``id > N`` (the ids being learned) is answered
    only once the POST of the last batch has arrived."""

    def __init__(self, inner: httpx.BaseTransport, last: str) -> None:
        self.inner, self.last = inner, last
        self.last_posted = threading.Event()
        self.listings_waited: list[bool] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            if json.loads(request.content)["batchIdentifier"] == self.last:
                self.last_posted.set()
        elif request.url.params.get("conditions", "").startswith("id > "):
            self.listings_waited.append(self.last_posted.wait(timeout=30))
        return self.inner.handle_request(request)


def test_the_run_goes_on_sending_while_ids_are_learned(tmp_path):
    """The lookup after 500 created batches does not stop the sending: it is answered only
    after the last batch was sent, and every result still comes out in order, with its id."""
    batches = requests_for(COUNT)
    fake = simulator_for(batches)
    transport = _ListingWaitsForTheLastPost(fake.transport(), f"B{COUNT - 1}")
    given = []
    with fake.client(transport=transport) as client:
        report = create_batches(
            client,
            batches,
            concurrency=8,
            journal=tmp_path / "run.journal",
            on_result=given.append,
            keep_results=False,
        )
    assert transport.listings_waited[0] is True  # (False: it waited 30 s in vain)
    assert len(transport.listings_waited) >= 2  # the one mid-run, and the one at the end
    assert [r.identifier for r in given] == [f"B{n}" for n in range(COUNT)]
    ids = {b.batch_identifier: b.id for b in fake.batches}
    assert [r.batch_id for r in given] == [ids[f"B{n}"] for n in range(COUNT)]
    assert report.counts["created"] == COUNT


def test_ids_that_cannot_be_learned_are_reported_once_per_lookup_not_per_batch(caplog):
    """With every lookup failing, each lookup logs one warning naming how many batches it
    could not learn, not one per batch; they count as unsettled."""
    count = LEARN_IDS_EVERY * 2 + 100
    batches = requests_for(count)
    fake = simulator_for(batches)
    # The first read (the highest batch id) is answered; every later list of batches fails.
    fake.fail_next(None, *[Fault.status(500)] * 10 * count, method="GET", path=BATCHES)
    with caplog.at_level(logging.WARNING, logger="cw_glbatch"), fake.client() as client:
        report = create_batches(client, batches, concurrency=8)
    assert len(fake.batches) == count
    assert report.unsettled == count
    unlearned = [r.getMessage() for r in caplog.records if "could not be learned" in r.getMessage()]
    assert 1 <= len(unlearned) <= count // LEARN_IDS_EVERY + 1
    assert sum(int(m.split()[1]) for m in unlearned) == count
