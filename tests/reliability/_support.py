"""Helpers for the reliability tests: the invariants of a run, and input files."""

from __future__ import annotations

import collections
from pathlib import Path

from defusedxml.ElementTree import fromstring

from cw_glbatch import BatchRequest, XmlBatchReader
from cw_glbatch.testing import FakeConnectWise


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


def write_input(path: Path, batches: list[BatchRequest]) -> None:
    """An input file holding ``batches``."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<Batches>\n']
    for batch in batches:
        parts.append("  <Batch>\n")
        if batch.identifier is not None:
            parts.append(f"    <batchIdentifier>{batch.identifier}</batchIdentifier>\n")
        parts.append("    <glRecIds>")
        parts.extend(f"<glRecId>{i}</glRecId>" for i in batch.gl_rec_ids)
        parts.extend(f"<glRecId>{v}</glRecId>" for v in batch.invalid_gl_rec_ids)
        parts.append("</glRecIds>\n  </Batch>\n")
    parts.append("</Batches>\n")
    path.write_text("".join(parts), encoding="utf-8")


def plain_batches(count: int, size: int = 3, first: int = 500_000) -> list[BatchRequest]:
    """``count`` valid batches of ``size`` consecutive ids, half of them named."""
    return [
        BatchRequest(f"R{n}" if n % 2 else None, range(first + n * size, first + (n + 1) * size))
        for n in range(count)
    ]


def simulated_input(folder: Path, count: int) -> tuple[list[BatchRequest], FakeConnectWise]:
    """``count`` batches written to ``folder/in.xml``, and a simulator holding their entries."""
    batches = plain_batches(count)
    write_input(folder / "in.xml", batches)
    fake = FakeConnectWise()
    fake.add_unposted(i for b in batches for i in b.gl_rec_ids)
    return batches, fake
