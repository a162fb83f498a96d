"""acreate_batches and aprocess_file: the sync run's guarantees, from asyncio, and cancellation."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest

from cw_glbatch import (
    AsyncConnectWiseClient,
    BatchRequest,
    InputError,
    acreate_batches,
    aprocess_file,
)
from cw_glbatch.testing import FakeConnectWise, Fault, async_client

from .helpers import check_invariants, simulated_input


def test_acreate_batches_creates_each_once_in_input_order():
    """Every batch is created once; results come in input order with their ids."""
    fake = FakeConnectWise()
    ids = fake.populate(20)
    requests = [BatchRequest(f"B{n}", ids[n : n + 1]) for n in range(20)]
    fake.fail_randomly({Fault.lost(): 0.2, Fault.status(503): 0.2}, seed=3, method="POST")

    async def main():
        async with async_client(fake, max_retries=8) as client:
            return await acreate_batches(client, requests, concurrency=5)

    report = asyncio.run(main())
    assert [(r.identifier, r.status) for r in report.results] == [
        (f"B{n}", "created") for n in range(20)
    ]
    assert {(r.identifier, r.batch_id) for r in report.results} == {
        (b.batch_identifier, b.id) for b in fake.batches
    }
    assert len(fake.batches) == 20
    assert any(r.fault == "lost" for r in fake.requests)  # the schedule did bite


def test_callbacks_run_on_the_loop_and_async_ones_are_awaited():
    """on_result (a coroutine function here) and progress run on the event loop's thread."""
    fake = FakeConnectWise()
    ids = fake.populate(4)
    threads: set[int] = set()
    seen: list[str | None] = []

    async def on_result(result):
        await asyncio.sleep(0)
        threads.add(threading.get_ident())
        seen.append(result.identifier)

    async def main():
        async with async_client(fake) as client:
            await acreate_batches(
                client,
                [BatchRequest(f"C{n}", [ids[n]]) for n in range(4)],
                on_result=on_result,
                progress=lambda p: threads.add(threading.get_ident()),
            )
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert seen == ["C0", "C1", "C2", "C3"]
    assert threads == {loop_thread}


def test_aprocess_file_writes_both_files(tmp_path):
    """aprocess_file ends with every batch in exactly one file, and no journal."""
    batches, fake = simulated_input(tmp_path, 30)

    async def main():
        async with async_client(fake) as client:
            return await aprocess_file(
                client, tmp_path / "in.xml", tmp_path / "ok.xml", tmp_path / "bad.xml"
            )

    report = asyncio.run(main())
    assert report.counts["created"] == 30
    assert not (tmp_path / "ok.xml.journal").exists()
    check_invariants(batches, tmp_path / "ok.xml", tmp_path / "bad.xml", fake)


def test_aprocess_file_refuses_a_bad_input_before_any_request(tmp_path, samples):
    """A malformed input raises InputError and nothing is sent."""
    fake = FakeConnectWise()

    async def main():
        async with async_client(fake) as client:
            await aprocess_file(
                client, samples / "truncated.xml", tmp_path / "ok.xml", tmp_path / "bad.xml"
            )

    with pytest.raises(InputError):
        asyncio.run(main())
    assert fake.requests == []


class CancelsWhileSending:
    """An AsyncBatchClient that cancels ``task`` while batch ``at``'s POST is on the wire."""

    def __init__(self, client: AsyncConnectWiseClient, at: str) -> None:
        self.client, self.at = client, at
        self.task: asyncio.Task | None = None
        self.posted: list[str] = []

    @property
    def requests_sent(self) -> int:
        return self.client.requests_sent

    def __getattr__(self, name: str):
        return getattr(self.client, name)  # origin, company_id, batch_entry_ids

    async def highest_batch_id(self) -> int:
        return await self.client.highest_batch_id()

    async def create_batch(self, identifier, gl_rec_ids):
        self.posted.append(identifier)
        if identifier == self.at:
            self.task.cancel()
            await asyncio.sleep(0)  # the cancellation is delivered while this POST is pending
        return await self.client.create_batch(identifier, gl_rec_ids)

    def list_batches(self, conditions=None, *, order_by=None):
        return self.client.list_batches(conditions, order_by=order_by)

    async def find_batches(self, identifiers, *, min_id=None):
        return await self.client.find_batches(identifiers, min_id=min_id)


def test_cancelled_aprocess_file_journals_writes_nothing_and_resumes_once(tmp_path):
    """Cancelling stops sending, journals the POST on the wire, writes no file and re-raises;
    the same call again finishes with every batch created exactly once."""
    batches, fake = simulated_input(tmp_path, 40)
    files = (tmp_path / "in.xml", tmp_path / "ok.xml", tmp_path / "bad.xml")

    async def cancelled():
        async with async_client(fake) as client:
            wrapper = CancelsWhileSending(client, at="R11")
            wrapper.task = asyncio.create_task(aprocess_file(wrapper, *files, concurrency=1))
            with pytest.raises(asyncio.CancelledError):
                await wrapper.task
            return wrapper.posted

    posted = asyncio.run(cancelled())
    assert posted[-1] == "R11"  # nothing was posted after the cancellation
    assert [b.batch_identifier for b in fake.batches][-1] == "R11"  # the one on the wire landed
    assert not files[1].exists()
    assert not files[2].exists()
    journal = [json.loads(line) for line in (tmp_path / "ok.xml.journal").read_text().splitlines()]
    assert [r["s"] for r in journal if r.get("id") == "R11"] == ["sending", "created"]
    assert "failed" not in {r.get("s") for r in journal}  # batches not sent are not "answered"

    async def resumed():
        async with async_client(fake) as client:
            return await aprocess_file(client, *files, concurrency=4)

    report = asyncio.run(resumed())
    assert report.counts["created"] == 40
    assert fake.count_requests("POST") == 40  # each batch posted once over both runs
    assert not (tmp_path / "ok.xml.journal").exists()
    check_invariants(batches, files[1], files[2], fake)


def test_cancelled_acreate_batches_reraises_and_calls_on_result_no_more(tmp_path):
    """After a cancel, on_result is not called again and CancelledError reaches the caller."""
    fake = FakeConnectWise()
    ids = fake.populate(12)
    requests = [BatchRequest(f"R{n}", [ids[n]]) for n in range(12)]
    seen: list[str | None] = []

    async def main():
        async with async_client(fake) as client:
            wrapper = CancelsWhileSending(client, at="R5")
            wrapper.task = asyncio.create_task(
                acreate_batches(
                    wrapper,
                    requests,
                    concurrency=1,
                    on_result=lambda r: seen.append(r.identifier),
                    journal=tmp_path / "run.journal",
                )
            )
            with pytest.raises(asyncio.CancelledError):
                await wrapper.task

    asyncio.run(main())
    assert seen == [f"R{n}" for n in range(len(seen))]
    assert len(seen) <= 5
    assert len(fake.batches) == 6  # R0..R5: R5 was on the wire and completed


class AsyncGate(httpx.AsyncBaseTransport):
    """Holds each create until ``parties`` creates are in flight at once (an asyncio barrier)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, parties: int) -> None:
        self.inner = inner
        self.parties = parties
        self.arrived = 0
        self.release: asyncio.Event | None = None
        self.passed = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            if self.release is None:
                self.release = asyncio.Event()
            release = self.release
            self.arrived += 1
            if self.arrived == self.parties:  # the last of the round opens the gate
                self.arrived, self.release = 0, None
                release.set()
            else:  # TimeoutError unless the others arrive too
                await asyncio.wait_for(release.wait(), 10)
            self.passed += 1
        return await self.inner.handle_async_request(request)


def test_async_requests_overlap_up_to_the_concurrency():
    """With concurrency 4, four creates are in flight at once (a barrier of four lets them by)."""
    fake = FakeConnectWise()
    ids = fake.populate(8)
    gate = AsyncGate(fake.transport(), 4)

    async def main():
        async with async_client(fake, transport=gate) as client:
            requests = [BatchRequest(f"O{n}", [ids[n]]) for n in range(8)]
            return await acreate_batches(client, requests, concurrency=4)

    report = asyncio.run(main())
    assert (report.counts["created"], gate.passed) == (8, 8)


class HoldPosts(httpx.AsyncBaseTransport):
    """Holds every create until ``release`` is set; ``entered`` says one is held."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.entered.set()
            await self.release.wait()
        return await self.inner.handle_async_request(request)


def test_cancellation_waits_no_longer_than_the_grace(tmp_path):
    """A request still on the wire when the grace ends does not hold the CancelledError back;
    when it completes later, the run still journals it."""
    fake = FakeConnectWise()
    ids = fake.populate(1)
    journal = tmp_path / "run.journal"

    async def main() -> None:
        hold = HoldPosts(fake.transport())
        async with async_client(fake, transport=hold) as client:
            task = asyncio.create_task(
                acreate_batches(
                    client, [BatchRequest("H", ids)], journal=journal, cancel_grace=0.01
                )
            )
            await hold.entered.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):  # (TimeoutError if it waited for the POST)
                await asyncio.wait_for(task, 5)
            hold.release.set()  # the POST completes now; the run's thread records it
            for _ in range(1000):
                if '"s":"created"' in journal.read_text():
                    break
                await asyncio.sleep(0.01)

    asyncio.run(main())
    assert [b.batch_identifier for b in fake.batches] == ["H"]
    assert '"s":"created"' in journal.read_text()
