"""What every benchmark shares: inputs, child processes, the simulator process, memory, a row.

Everything measured runs in a fresh child process (``children.py``), and the simulator runs in
a process of its own, so the client's figures carry neither the runner's heap nor the
simulator's CPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs

CHILDREN = Path(__file__).with_name("children.py")
LATENCY = 0.02  # seconds the simulator waits before each answer in the end-to-end runs
IDS_PER_BATCH = 10  # in the end-to-end inputs
# The GL entry ids of the end-to-end inputs start here, clear of the simulator's record ids
# (which count up from 1001 and may not be GL entry ids as well).
FIRST_ID = 100_000_000


def write_input(path: Path, batches: int, per_batch: int, first_id: int = 1) -> None:
    """A batches file of ``batches`` × ``per_batch`` consecutive ids from ``first_id``."""
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="utf-8"?>\n<Batches>\n')
        next_id = first_id
        for n in range(batches):
            ids = "".join(
                f"      <glRecId>{i}</glRecId>\n" for i in range(next_id, next_id + per_batch)
            )
            next_id += per_batch
            out.write(
                f"  <Batch>\n    <batchIdentifier>B{n}</batchIdentifier>\n    <glRecIds>\n"
                f"{ids}    </glRecIds>\n  </Batch>\n"
            )
        out.write("</Batches>\n")


def in_child(name: str, **arguments: Any) -> dict[str, Any]:
    """Run ``children.<name>(**arguments)`` in a fresh interpreter; return its JSON answer."""
    done = subprocess.run(
        [sys.executable, str(CHILDREN), name, json.dumps(arguments)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"child {name} failed:\n{done.stderr}")
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def run_against_simulator(
    name: str, *, latency: float, entries: int, **arguments: Any
) -> tuple[dict[str, Any], dict[str, int]]:
    """Run child ``name`` against a fresh simulator process; return both their answers.

    The simulator holds ``entries`` unposted GL entries with ids from `FIRST_ID` on.

    The simulator (``children.simulator``) prints its URL and credentials, serves until its
    stdin closes, then prints what it saw: requests received, POSTs, lookups, batches created.
    """
    simulator = subprocess.Popen(
        [
            sys.executable,
            str(CHILDREN),
            "simulator",
            json.dumps({"latency": latency, "entries": entries, "first_id": FIRST_ID}),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert simulator.stdout is not None
        line = simulator.stdout.readline()
        if not line:
            raise RuntimeError("the simulator process did not start")
        answer = in_child(name, connection=json.loads(line), **arguments)
        out, _ = simulator.communicate("", timeout=600)  # closing its stdin stops it
        seen: dict[str, int] = json.loads(out.strip().splitlines()[-1])
        return answer, seen
    finally:
        if simulator.poll() is None:
            simulator.kill()
            simulator.wait()


@attrs.frozen
class Row:
    """One line of the table: a figure, its same-run baseline, the ratio and its target."""

    key: str  # names the figure in the notes and in --only
    figure: str
    measured: str
    baseline: str
    ratio: float | None
    target: str  # "" for a figure given for information
    met: bool | None  # None: no target
    digits: int = 2  # of the ratio as shown

    def cells(self) -> list[str]:
        ratio = "" if self.ratio is None else f"{self.ratio:.{self.digits}f}"
        met = {True: "yes", False: "**no**", None: "n/a"}[self.met]
        return [self.figure, self.measured, self.baseline, ratio, self.target or "—", met]
