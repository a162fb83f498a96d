"""Journal group commit: one fsync for a group of batches, each durable before its POST leaves."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator

import httpx
import pytest

from cw_glbatch import BatchRequest, ConnectWiseClient, create_batches
from cw_glbatch._group import GROUP_AT_LEAST, WINDOW_PER_WORKER, dispatch_now
from tests.helpers import (
    cli_command,
    cli_environment,
    plain_batches,
    posts,
    requests_for,
    simulator_for,
    wait_for,
    write_input,
)

CONCURRENCY = 8


class _AtHand:
    """An input that says its length, as a list or a reader does: groups form from it."""

    def __init__(self, items: Iterator[BatchRequest], length: int) -> None:
        self._items = items
        self._length = length

    def __iter__(self) -> _AtHand:
        return self

    def __next__(self) -> BatchRequest:
        return next(self._items)

    def __length_hint__(self) -> int:
        return self._length


@pytest.mark.parametrize(
    ("concurrency", "held", "jobs", "workers_idle", "at_hand_now"),
    [
        (8, 1, 1, False, (True, False)),  # workers busy: wait for more to share the fsync
        (8, 7, 7, False, (True, False)),
        (8, 8, 8, False, (True, True)),  # one job per worker
        (8, 9, 8, True, (True, True)),
        (8, 1, 1, True, (True, True)),  # idle workers: waiting would only leave them idle
        (8, 5, 0, True, (True, False)),  # nothing for a worker: no hurry
        (8, 31, 0, False, (True, False)),
        (8, 32, 0, False, (True, True)),  # long enough: report them
        (8, 32, 3, False, (True, True)),
        (1, 1, 1, False, (True, False)),  # fewer workers: still GROUP_AT_LEAST jobs per fsync
        (1, 3, 3, False, (True, False)),
        (1, 4, 4, False, (True, True)),
        (1, 4, 0, False, (True, True)),  # (the window at C=1 is 4)
        (2, 2, 2, True, (True, True)),
        (16, 15, 15, False, (True, False)),
        (16, 16, 16, False, (True, True)),
        (8, 1, 1, False, (False, True)),  # the next batch may be long in coming: send now
        (1, 1, 1, False, (False, True)),
        (8, 3, 0, False, (False, False)),  # nothing for a worker: no hurry
    ],
)
def test_dispatch_rule(concurrency, held, jobs, workers_idle, at_hand_now):
    """A group is handed over at one job per worker (at least 4), when long, when the
    workers are idle, or at once when the input is not at hand."""
    at_hand, now = at_hand_now
    decision = dispatch_now(
        held=held,
        jobs=jobs,
        concurrency=concurrency,
        workers_idle=workers_idle,
        input_at_hand=at_hand,
    )
    assert decision is now


class _DurableRecords:
    """Wraps os.fsync: on each fsync of the journal, reads the file afresh and keeps the
    identifiers its "sending" records hold at that moment (what that fsync made durable)."""

    def __init__(self, path) -> None:
        self.path = path
        self.journal_fsyncs = 0
        self.durable: set[str] = set()
        self._fsync = os.fsync

    def fsync(self, fd: int) -> None:
        self._fsync(fd)
        if self.path.exists() and os.path.samestat(os.fstat(fd), os.stat(self.path)):
            self.journal_fsyncs += 1
            lines = self.path.read_text(encoding="utf-8").splitlines()
            records = [json.loads(line) for line in lines]
            self.durable = {r["id"] for r in records if r.get("s") == "sending"}


class _CheckingTransport(httpx.BaseTransport):
    """The simulator's transport; each POST first checks its batch's record is durable, then
    waits until the run has read a window further (or all), so that the workers are never all
    idle while the run decides (the groups fill) and the run never waits for a held POST."""

    def __init__(
        self, inner: httpx.BaseTransport, records: _DurableRecords, count: int, ahead: int
    ) -> None:
        self.inner, self.records, self.count, self.ahead = inner, records, count, ahead
        self.read = -1  # the index of the last batch the run read
        self.progress = threading.Condition()
        self.not_durable: list[str] = []

    def reading(self, batches):
        for index, batch in enumerate(batches):
            with self.progress:
                self.read = index
                self.progress.notify_all()
            yield batch
        with self.progress:
            self.read = self.count
            self.progress.notify_all()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            identifier = json.loads(request.content)["batchIdentifier"]
            if identifier not in self.records.durable:
                self.not_durable.append(identifier)
            index = int(identifier[1:])  # B0, B1, ...
            with self.progress:
                ahead = min(index + self.ahead, self.count)
                assert self.progress.wait_for(lambda: self.read >= ahead, timeout=30)
        return self.inner.handle_request(request)


@pytest.fixture(scope="module", params=[CONCURRENCY, 1], ids=["C=8", "C=1"])
def checked_run(request, tmp_path_factory):
    """create_batches of 400 batches with a journal, POSTs checked against fsyncs."""
    concurrency, count = request.param, 400
    batches = requests_for(count)
    fake = simulator_for(batches)
    path = tmp_path_factory.mktemp("checked") / "run.journal"
    records = _DurableRecords(path)
    ahead = WINDOW_PER_WORKER * concurrency  # more than a group, and no more than the window
    transport = _CheckingTransport(fake.transport(), records, count, ahead)
    with pytest.MonkeyPatch.context() as patch, fake.client(transport=transport) as client:
        patch.setattr(os, "fsync", records.fsync)
        report = create_batches(
            client,
            _AtHand(transport.reading(batches), count),
            concurrency=concurrency,
            journal=path,
        )
    assert report.counts["created"] == count
    assert len(fake.batches) == count
    return concurrency, count, records, transport


def test_fsyncs_per_batch(checked_run):
    """The journal fsyncs once per group: at C=8 once per 8 POSTs, at C=1 once per 4."""
    concurrency, count, records, _ = checked_run
    group = max(concurrency, GROUP_AT_LEAST)
    # 1 header, 1 for the first batch alone (idle workers), the groups, the ids, the end.
    assert count / group <= records.journal_fsyncs <= count / group + 4
    if concurrency == CONCURRENCY:
        assert records.journal_fsyncs <= count * 0.25  # the target of issue 16


def test_no_post_leaves_before_its_record_is_durable(checked_run):
    """Every POST finds its batch's "sending" record in the journal as last fsynced."""
    _, count, records, transport = checked_run
    assert transport.not_durable == []
    assert len(records.durable) == count


class _GatedTransport(httpx.BaseTransport):
    """The simulator's transport, holding every POST until ``gate`` is set."""

    def __init__(self, inner: httpx.BaseTransport, gate: threading.Event) -> None:
        self.inner, self.gate = inner, gate

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            assert self.gate.wait(timeout=30)
        return self.inner.handle_request(request)


def test_interrupted_run_journals_its_held_group_as_not_sent(tmp_path):
    """A run interrupted while holding a group journals those batches as not sent (last
    record "unsent"); the same call sends each once, without looking them up first."""
    batches = requests_for(20)
    fake = simulator_for(batches)
    path = tmp_path / "run.journal"
    gate = threading.Event()  # POSTs wait: the workers are busy while the run decides

    def interrupted():
        yield from batches[:10]  # B0 alone (idle workers), B1-B8 as a group, B9 held
        gate.set()
        raise KeyboardInterrupt

    transport = _GatedTransport(fake.transport(), gate)
    with fake.client(transport=transport) as client, pytest.raises(KeyboardInterrupt):
        create_batches(client, _AtHand(interrupted(), 20), concurrency=CONCURRENCY, journal=path)
    last = {}
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        record = json.loads(line)
        last[record["id"]] = record["s"]
    assert last["B9"] == "unsent"
    assert "B9" not in {b.batch_identifier for b in fake.batches}
    lookups_before = len(fake.requests)
    with fake.client() as client:
        report = create_batches(client, batches, concurrency=CONCURRENCY, journal=path)
    assert report.counts["created"] == 20
    assert sorted(b.batch_identifier for b in fake.batches) == sorted(f"B{n}" for n in range(20))
    lookups = [r.query.get("conditions") or "" for r in fake.requests[lookups_before:]]
    assert not [c for c in lookups if '"B9"' in c]


class _Watched:
    """A client whose creates say when they begin; A's answer waits until the input has been
    asked for the batch after B (so B is read while A is on the wire)."""

    def __init__(self, client: ConnectWiseClient) -> None:
        self._client = client
        self.begun = {name: threading.Event() for name in "ABC"}
        self.asked_after_b = threading.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self._client, name)

    def create_batch(self, identifier: str, gl_rec_ids: object, **options: object) -> object:
        self.begun[identifier].set()
        if identifier == "A":
            assert self.asked_after_b.wait(timeout=10)
        return self._client.create_batch(identifier, gl_rec_ids, **options)


@pytest.mark.parametrize("concurrency", [1, 8])
def test_a_batch_read_from_a_generator_is_sent_before_the_next_is_read(tmp_path, concurrency):
    """An input that does not know its length may be slow to give its next batch: each batch
    read from it is sent before the next is asked for, not held for a group."""
    batches = [BatchRequest(name, [n]) for n, name in enumerate("ABC", start=1)]
    fake = simulator_for(batches)
    with fake.client() as inner:
        client = _Watched(inner)

        def trickled():  # a producer fed by a queue: B's POST must leave before C comes
            yield batches[0]
            assert client.begun["A"].wait(timeout=10)
            yield batches[1]
            client.asked_after_b.set()
            assert client.begun["B"].wait(timeout=10), "B was held until the next batch came"
            yield batches[2]

        report = create_batches(
            client, trickled(), concurrency=concurrency, journal=tmp_path / "run.journal"
        )
    assert report.counts["created"] == 3
    assert sorted(b.batch_identifier for b in fake.batches) == ["A", "B", "C"]


BATCHES = 200
_SENDING = re.compile(r'"id":"([^"]*)","s":"sending"')
KILL_AFTER = [1, 9, 130]  # POSTs received before the SIGKILL


@pytest.mark.parametrize("point", KILL_AFTER, ids=[f"kill-after-{p}" for p in KILL_AFTER])
def test_killed_group_commit_run_resumes_exactly_once(tmp_path, invariants, point):
    """A CLI run at C=8 killed mid-group: every POST received had its record on disk, and the
    same command finishes the job, nothing created twice, nothing lost."""
    batches = plain_batches(BATCHES)
    write_input(tmp_path / "in.xml", batches)
    fake = simulator_for(batches)
    fake.set_latency(0.004)
    command = cli_command(tmp_path, "--concurrency", str(CONCURRENCY))
    journal = tmp_path / "ok.xml.journal"
    with fake.serve() as server:
        environ = cli_environment(server.environ)
        run = subprocess.Popen(command, env=environ, stdout=subprocess.DEVNULL)
        try:
            wait_for(lambda: posts(fake) >= point)
            run.send_signal(signal.SIGKILL)
        finally:
            run.wait()
        if journal.exists():  # (else the run had finished: nothing to check)
            sending = set(_SENDING.findall(journal.read_text(encoding="utf-8")))
            assert {b.batch_identifier for b in fake.batches} <= sending
        again = subprocess.run(command, env=environ, capture_output=True, check=False)
    assert again.returncode == 0, again.stderr.decode()
    invariants(batches, tmp_path / "ok.xml", tmp_path / "failed.xml", fake)
    assert len(fake.batches) == BATCHES
    assert not journal.exists()
