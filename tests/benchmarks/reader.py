"""The reader's figures: its speed against bare expat and lxml; its memory in a fresh process."""

from __future__ import annotations

import pyexpat
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from harness import Row, in_child, write_input

from cw_glbatch import XmlBatchReader

SPEED_IDS = 1_000_000
PER_BATCH = 100


def _lxml_iterparse(path: Path) -> Callable[[], None]:
    """What a user would write with lxml: iterparse each <Batch>, take its ids, free it."""
    from lxml import etree  # type: ignore[import-untyped]

    def read() -> None:
        for _, batch in etree.iterparse(
            str(path), events=("end",), tag="Batch", resolve_entities=False, no_network=True
        ):
            batch.findtext("batchIdentifier")
            [int(e.text) for e in batch.iterfind("glRecIds/glRecId")]
            batch.clear(keep_tail=True)
            while batch.getprevious() is not None:
                del batch.getparent()[0]

    return read


def reader_speed(folder: Path, repeat: int) -> list[Row]:
    path = folder / "reader.xml"
    write_input(path, SPEED_IDS // PER_BATCH, PER_BATCH)

    def bare() -> None:
        with path.open("rb") as stream:
            pyexpat.ParserCreate().ParseFile(stream)

    def reader() -> None:
        for _ in XmlBatchReader(path):  # iter() checks the whole file first
            pass

    ways = {"bare": bare, "reader": reader, "lxml": _lxml_iterparse(path)}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeat):  # interleaved, so that a slow moment hits all three
        for name, way in ways.items():
            start = time.perf_counter()
            way()
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(runs) for name, runs in times.items()}
    ours = median["reader"]
    measured = f"{ours:.3f} s ({SPEED_IDS / ours / 1e6:.2f} M ids/s)"
    to_expat = ours / median["bare"]
    return [
        Row(
            "reader-expat",
            f"Reader / bare expat ({SPEED_IDS:,} glRecIds, whole-file check included)",
            measured,
            f"{median['bare']:.3f} s: pyexpat ParseFile, no handlers",
            to_expat,
            "≤ 5×",
            to_expat <= 5,
        ),
        Row(
            "reader-lxml",
            f"Reader / lxml iterparse ({SPEED_IDS:,} glRecIds)",
            measured,
            f"{median['lxml']:.3f} s: lxml iterparse per <Batch>, checks nothing",
            ours / median["lxml"],
            "",
            None,
        ),
    ]


def reader_memory(folder: Path, ids: int) -> list[Row]:
    path = folder / "memory.xml"
    write_input(path, ids // PER_BATCH, PER_BATCH)
    size = path.stat().st_size
    result = in_child("read", input_file=str(path))
    path.unlink()
    assert result["ids"] == ids, result
    return [
        Row(
            "reader-memory",
            f"Reader peak RSS growth ({ids:,} glRecIds), fresh process",
            f"{result['growth_mb']:.1f} MB",
            f"file size {size / 2**20:.0f} MB",
            result["growth_mb"] / (size / 2**20),
            "",
            None,
        )
    ]
