"""SIGKILL a real cw-glbatch run at random points, run the same command again: all accounted."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import pytest

from cw_glbatch import InputError, XmlBatchReader
from tests.helpers import (
    cli_command,
    cli_environment,
    plain_batches,
    posts,
    simulator_for,
    wait_for,
    write_input,
)

BATCHES = 120
_rng = random.Random(20261124)
# Kill points: after this many POSTs reached the server; "end": a moment after the last one,
# while the run looks ids up, writes the files or removes its journal.
POINTS = [*sorted(_rng.sample(range(1, BATCHES), 5)), "end", "end"]


# The async twin of the CLI run: aprocess_file with an AsyncConnectWiseClient from CW_* variables.
ASYNC_RUN = """
import asyncio, sys
from cw_glbatch import AsyncConnectWiseClient, aprocess_file

async def main():
    async with AsyncConnectWiseClient.from_env() as client:
        report = await aprocess_file(client, *sys.argv[1:4], concurrency=4)
    return 0 if report.ok else 1

sys.exit(asyncio.run(main()))
"""


def run_command(folder, flavour: str) -> list[str]:
    """The CLI run of ``folder``'s files (``"sync"``), or its twin with aprocess_file."""
    if flavour == "sync":
        return cli_command(folder, "--concurrency", "4")
    files = [str(folder / name) for name in ("in.xml", "ok.xml", "failed.xml")]
    return [sys.executable, "-c", ASYNC_RUN, *files]


# The async run carries out the same run: an early, a middle and an end point are enough for it.
CASES = [(p, "sync") for p in POINTS] + [(p, "async") for p in (POINTS[0], POINTS[2], "end")]


@pytest.mark.parametrize(("point", "flavour"), CASES, ids=[f"kill-after-{p}-{f}" for p, f in CASES])
def test_killed_run_resumes_with_the_same_command(tmp_path, invariants, point, flavour):
    """Killed with SIGKILL at a random point, the same command finishes the job exactly once."""
    batches = plain_batches(BATCHES)
    write_input(tmp_path / "in.xml", batches)
    fake = simulator_for(batches)
    fake.set_latency(0.004)
    with fake.serve() as server:
        run = subprocess.Popen(
            run_command(tmp_path, flavour),
            env=cli_environment(server.environ),
            stdout=subprocess.DEVNULL,
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
            run_command(tmp_path, flavour),
            env=cli_environment(server.environ),
            capture_output=True,
            check=False,
        )
    assert again.returncode == 0, again.stderr.decode()
    invariants(batches, tmp_path / "ok.xml", tmp_path / "failed.xml", fake)
    assert len(fake.batches) == BATCHES
    assert not (tmp_path / "ok.xml.journal").exists()


def test_killed_then_resumed_while_down_then_when_back(tmp_path, invariants):
    """SIGKILL mid-run; the same command while ConnectWise is down reports nothing it sent as
    not sent and keeps the journal; the same command when it is back finishes exactly once."""
    batches = plain_batches(60)
    write_input(tmp_path / "in.xml", batches)
    fake = simulator_for(batches)
    fake.set_latency(0.01)
    command = cli_command(tmp_path, "--concurrency", "4", "--max-retries", "1")
    with fake.serve() as server:
        environ = cli_environment(server.environ)
        run = subprocess.Popen(command, env=environ, stdout=subprocess.DEVNULL)
        try:
            wait_for(lambda: posts(fake) >= 20)
            run.send_signal(signal.SIGKILL)
        finally:
            run.wait()
        port = server.url.rsplit(":", 1)[1]
    # ConnectWise is down: the same command.
    down = subprocess.run(command, env=environ, capture_output=True, text=True, check=False)
    assert down.returncode == 3, down.stderr
    assert "run the same command again to settle them" in down.stderr
    journal = tmp_path / "ok.xml.journal"
    assert journal.exists()
    failed = {b.identifier: b for b in XmlBatchReader(tmp_path / "failed.xml")}
    text = (tmp_path / "failed.xml").read_text()
    unknown = text.count("<code>OutcomeUnknown</code>")
    assert unknown + text.count("<code>NotSent</code>") == len(failed)
    created = {b.batch_identifier for b in fake.batches}
    sent_before = {
        json.loads(line)["id"] for line in journal.read_text().splitlines() if '"i"' in line
    }
    # What ConnectWise has was sent by the killed run: none of it is reported "not sent".
    assert created <= sent_before
    assert unknown == len(sent_before & set(failed))
    # ConnectWise is back, at the same address.
    with fake.serve(port=int(port)) as server:
        back = subprocess.run(command, env=environ, capture_output=True, text=True, check=False)
    assert back.returncode == 0, back.stderr
    invariants(batches, tmp_path / "ok.xml", tmp_path / "failed.xml", fake)
    assert len(fake.batches) == 60
    assert not journal.exists()
