"""What the tests share: constants, input builders, and the invariants of a finished run."""

from __future__ import annotations

import collections
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from defusedxml.ElementTree import fromstring

from cw_glbatch import BatchRequest, XmlBatchReader
from cw_glbatch.testing import FakeConnectWise

SAMPLES = Path(__file__).parent / "samples"
SEED_IDS = (320042, 320044, 320045, 320046, 320047, 320048, 320043, 320049)  # the seed's sample
BATCHES_PATH = "/finance/accounting/batches"
POST = {"method": "POST", "path": BATCHES_PATH}  # count_requests/fail_next filter: creates


def requests_for(count: int, size: int = 3, start: int = 320100) -> list[BatchRequest]:
    """``count`` requests named B0, B1, ... of ``size`` consecutive ids from ``start``."""
    return [
        BatchRequest(f"B{n}", range(start + n * size, start + (n + 1) * size)) for n in range(count)
    ]


def plain_batches(count: int, size: int = 3, first: int = 500_000) -> list[BatchRequest]:
    """``count`` valid batches of ``size`` consecutive ids, half of them named."""
    return [
        BatchRequest(f"R{n}" if n % 2 else None, range(first + n * size, first + (n + 1) * size))
        for n in range(count)
    ]


def input_xml(batches: list[BatchRequest]) -> str:
    """An input document holding ``batches`` (identifiers escaped for XML)."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<Batches>\n']
    for batch in batches:
        parts.append("  <Batch>\n")
        if batch.identifier is not None:
            text = batch.identifier.replace("&", "&amp;").replace("<", "&lt;")
            parts.append(f"    <batchIdentifier>{text}</batchIdentifier>\n")
        parts.append("    <glRecIds>")
        parts.extend(f"<glRecId>{i}</glRecId>" for i in batch.gl_rec_ids)
        parts.extend(f"<glRecId>{v}</glRecId>" for v in batch.invalid_gl_rec_ids)
        parts.append("</glRecIds>\n  </Batch>\n")
    parts.append("</Batches>\n")
    return "".join(parts)


def write_input(path: Path, batches: list[BatchRequest]) -> None:
    """An input file holding ``batches``."""
    path.write_text(input_xml(batches), encoding="utf-8")


def simulated_input(folder: Path, count: int) -> tuple[list[BatchRequest], FakeConnectWise]:
    """``count`` batches written to ``folder/in.xml``, and a simulator holding their entries."""
    batches = plain_batches(count)
    write_input(folder / "in.xml", batches)
    return batches, simulator_for(batches)


def simulator_for(batches: list[BatchRequest], **options: object) -> FakeConnectWise:
    """A simulator holding the GL entries of ``batches`` as unposted."""
    fake = FakeConnectWise(**options)  # type: ignore[arg-type]
    fake.add_unposted(i for b in batches for i in b.gl_rec_ids)
    return fake


def posts(fake: FakeConnectWise) -> int:
    """How many creates the simulator received."""
    return fake.count_requests(**POST)


def cli_command(folder: Path, *extra: str) -> list[str]:
    """``cw-glbatch create`` of ``folder/in.xml`` into ``ok.xml`` and ``failed.xml``."""
    return [
        sys.executable, "-m", "cw_glbatch", "create", "--input", str(folder / "in.xml"),
        "--success", str(folder / "ok.xml"), "--fail", str(folder / "failed.xml"), *extra,
    ]  # fmt: skip


def cli_environment(environ: dict[str, str]) -> dict[str, str]:
    """This process's environment without CW_* settings, plus ``environ``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("CW_")}, **environ}


def wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    """Poll ``condition`` until it holds (a test waiting on another process, not a timing)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the run did not get there in time")
        time.sleep(0.001)


def _key(batch: BatchRequest) -> tuple[tuple[int, ...], tuple[str, ...]]:
    return batch.gl_rec_ids, batch.invalid_gl_rec_ids


def check_invariants(
    inputs: list[BatchRequest], success: Path, fail: Path, fake: FakeConnectWise
) -> None:
    """The four invariants of a finished run."""
    created = list(XmlBatchReader(success))
    failed = list(XmlBatchReader(fail))
    # 1. The two files partition the input batches exactly (as multisets, by content).
    assert sorted(map(_key, created + failed)) == sorted(map(_key, inputs))
    # 2. The simulator holds exactly one batch per created identifier, and no other batch.
    named = collections.Counter(b.batch_identifier for b in fake.batches)
    assert [name for name, n in named.items() if n > 1] == []
    assert set(named) == {b.identifier for b in created}
    # 3. Every GL entry id is in at most one batch.
    entries = [entry for b in fake.batches for entry in b.gl_entry_ids]
    assert len(entries) == len(set(entries))
    # 4. The success file's batch ids are the simulator's.
    written = {
        (e.findtext("batchIdentifier"), e.findtext("batchId"))
        for e in fromstring(success.read_bytes())
    }
    assert written == {(b.batch_identifier, str(b.id)) for b in fake.batches}
