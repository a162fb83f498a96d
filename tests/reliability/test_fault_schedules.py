"""Random fault schedules over hundreds of batches, with concurrency: every invariant holds."""

from __future__ import annotations

import collections
import threading

import pytest

from cw_glbatch.testing import Fault
from tests._pairs import FLAVOURS, process
from tests.helpers import simulated_input, simulator_for

FAULTS = {
    Fault.too_many_requests(0): 0.04,
    Fault.status(500): 0.03,
    Fault.status(502): 0.03,
    Fault.status(503): 0.03,
    Fault.status(504): 0.03,
    Fault.reset(): 0.04,
    Fault.lost(): 0.04,
    # Cloudflare in front of ConnectWise: after the origin acted, or before it was reached.
    Fault.committed(520): 0.02,
    Fault.committed(524): 0.02,
    Fault.status(521): 0.01,
    Fault.status(522): 0.01,
    Fault.status(523): 0.01,
    Fault.status(525): 0.01,
    Fault.status(526): 0.01,
    Fault.truncated(): 0.02,
    Fault.committed(201, body=b"<html>proxy page</html>"): 0.01,
}


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("seed", range(8))
def test_random_faults_in_process(tmp_path, invariants, seed, flavour):
    """300 batches, concurrency 6, a quarter of all requests faulty: nothing lost or doubled."""
    batches, fake = simulated_input(tmp_path, 300)
    fake.fail_randomly(FAULTS, seed=seed)
    report = process(
        flavour, fake, tmp_path / "in.xml", tmp_path / "ok.xml", tmp_path / "failed.xml",
        concurrency=6, client_options={"max_retries": 6},
    )  # fmt: skip
    invariants(batches, tmp_path / "ok.xml", tmp_path / "failed.xml", fake)
    kinds = collections.Counter(
        f"{r.fault}{r.status or ''}" for r in fake.requests if r.fault
    )  # status faults counted by code
    print(
        f"\nseed {seed}: {report.counts['created']} created, {report.counts['failed']} failed, "
        f"{len(fake.requests)} requests, faults {dict(sorted(kinds.items()))}"
    )
    assert sum(kinds.values()) > 50, kinds  # the schedule really did inject faults
    # Faults can exhaust a batch's bounded resends; those fail honestly, the rest are created.
    assert report.counts["created"] + report.counts["failed"] == 300
    assert report.counts["created"] >= 290


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_random_faults_over_loopback_http(tmp_path, invariants, flavour):
    """The same over real HTTP, where lost answers are dropped connections."""
    batches, fake = simulated_input(tmp_path, 200)
    fake.fail_randomly(FAULTS, seed=99)
    fake.set_latency(0.001, jitter=0.001, seed=1)
    with fake.serve() as server:
        process(
            flavour, fake, tmp_path / "in.xml", tmp_path / "ok.xml", tmp_path / "failed.xml",
            server=server, concurrency=8, client_options={"max_retries": 6},
        )  # fmt: skip
    invariants(batches, tmp_path / "ok.xml", tmp_path / "failed.xml", fake)


class Clock:
    """A clock that only moves when the run sleeps: waiting costs no real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_rate_limited_server(tmp_path, invariants, flavour):
    """A server allowing 40 requests a second: the run waits as told and creates everything."""
    batches, _ = simulated_input(tmp_path, 120)
    clock = Clock()
    fake = simulator_for(batches, clock=clock)
    fake.set_rate_limit(40, per=1.0)
    report = process(
        flavour, fake, tmp_path / "in.xml", tmp_path / "ok.xml", tmp_path / "failed.xml",
        sleep=clock.sleep, concurrency=4, client_options={"max_retries": 8},
    )  # fmt: skip
    assert report.counts["created"] == 120
    throttled = sum(r.status == 429 for r in fake.requests)
    assert throttled > 0
    assert clock.now - 1000.0 >= 2.0  # 120 creates at 40 a second: at least two seconds waited
    invariants(batches, tmp_path / "ok.xml", tmp_path / "failed.xml", fake)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_latency_spikes(tmp_path, invariants, flavour):
    """Jittered latency with occasional long stalls changes nothing but the time."""
    batches, fake = simulated_input(tmp_path, 100)
    fake.set_latency(0.004, jitter=0.004, seed=5)
    fake.fail_randomly({Fault.lost(): 0.05, Fault.reset(): 0.05}, seed=6, method="POST")
    process(
        flavour, fake, tmp_path / "in.xml", tmp_path / "ok.xml", tmp_path / "failed.xml",
        concurrency=8, client_options={"max_retries": 6},
    )  # fmt: skip
    invariants(batches, tmp_path / "ok.xml", tmp_path / "failed.xml", fake)
