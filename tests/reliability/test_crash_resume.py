"""SIGKILL a real cw-glbatch run at random points, run the same command again: all accounted."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from cw_glbatch import InputError, XmlBatchReader
from cw_glbatch.testing import FakeConnectWise

from ._support import plain_batches, write_input

BATCHES = 120
_rng = random.Random(20261124)
# Kill points: after this many POSTs reached the server; "end": a moment after the last one,
# while the run looks ids up, writes the files or removes its journal.
POINTS = [*sorted(_rng.sample(range(1, BATCHES), 5)), "end", "end"]


def command(folder) -> list[str]:
    return [
        sys.executable, "-m", "cw_glbatch", "create", "--input", str(folder / "in.xml"),
        "--success", str(folder / "ok.xml"), "--fail", str(folder / "failed.xml"),
        "--concurrency", "4",
    ]  # fmt: skip


def environment(server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CW_")}
    return {**env, **server.environ}


def posts(fake: FakeConnectWise) -> int:
    return fake.count_requests("POST", "/finance/accounting/batches")


def wait_for(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the run did not get there in time")
        time.sleep(0.001)


@pytest.mark.parametrize("point", POINTS, ids=[f"kill-after-{p}" for p in POINTS])
def test_killed_run_resumes_with_the_same_command(tmp_path, invariants, point):
    """Killed with SIGKILL at a random point, the same command finishes the job exactly once."""
    batches = plain_batches(BATCHES)
    write_input(tmp_path / "in.xml", batches)
    fake = FakeConnectWise()
    fake.add_unposted(i for b in batches for i in b.gl_rec_ids)
    fake.set_latency(0.004)
    with fake.serve() as server:
        run = subprocess.Popen(
            command(tmp_path), env=environment(server), stdout=subprocess.DEVNULL
        )
        try:
            if point == "end":
                wait_for(lambda: posts(fake) >= BATCHES or run.poll() is not None)
                time.sleep(_rng.uniform(0, 0.05))
            else:
                wait_for(lambda: posts(fake) >= point)
            run.send_signal(signal.SIGKILL)
        finally:
            run.wait()
        # Whatever the moment, no half-written file is ever in place.
        for name in ("ok.xml", "failed.xml"):
            if (tmp_path / name).exists():
                try:
                    list(XmlBatchReader(tmp_path / name))
                except InputError as err:  # pragma: no cover - the failure being guarded
                    pytest.fail(f"a killed run left a broken {name}: {err}")
        again = subprocess.run(
            command(tmp_path), env=environment(server), capture_output=True, check=False
        )
    assert again.returncode == 0, again.stderr.decode()
    invariants(batches, tmp_path / "ok.xml", tmp_path / "failed.xml", fake)
    assert len(fake.batches) == BATCHES
    assert not (tmp_path / "ok.xml.journal").exists()
