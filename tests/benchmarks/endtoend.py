"""End-to-end figures: the library against what a user would write; the simulator runs apart."""

from __future__ import annotations

import importlib.util
import statistics
from pathlib import Path
from typing import Any

from harness import FIRST_ID, IDS_PER_BATCH, LATENCY, Row, run_against_simulator, write_input

CONCURRENCY = 8
ONE_MILLION = 1_000_000


def _run(
    name: str,
    path: Path,
    batches: int,
    latency: float,
    per_batch: int = IDS_PER_BATCH,
    **arguments: Any,
) -> dict[str, Any]:
    """One run of child ``name`` over ``path`` against a fresh simulator; checks it created all."""
    answer, seen = run_against_simulator(
        name,
        latency=latency,
        entries=batches * per_batch,
        input_file=str(path),
        **arguments,
    )
    if not answer["created"] == seen["batches"] == batches:
        raise RuntimeError(f"{name} created {answer['created']} of {batches}: {seen}")
    return {**answer, **{f"server_{key}": value for key, value in seen.items()}}


def end_to_end(folder: Path, batches: int, repeat: int) -> list[Row]:
    """C=8, 20 ms: against the latency bound and a hand-written pool; fsyncs and requests."""
    path = folder / "e2e.xml"
    write_input(path, batches, IDS_PER_BATCH, FIRST_ID)
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "hand_pool": []}
    for r in range(repeat):
        for name in sorted(runs, reverse=bool(r % 2)):  # alternate who goes first
            runs[name].append(_run(name, path, batches, LATENCY, concurrency=CONCURRENCY))
    ours = statistics.median(run["seconds"] for run in runs["ours"])
    pool = statistics.median(run["seconds"] for run in runs["hand_pool"])
    bound = batches * LATENCY / CONCURRENCY
    fsyncs = max(runs["ours"], key=lambda run: run["journal_fsyncs"])
    requests = max(runs["ours"], key=lambda run: run["server_requests"])
    pool_requests = max(run["server_requests"] for run in runs["hand_pool"]) / batches
    lookups = requests["server_lookups_by_id"] + requests["server_lookups_by_name"]
    others = requests["server_requests"] - requests["server_posts"] - lookups - 1
    setting = f"C={CONCURRENCY}, {LATENCY * 1000:.0f} ms"
    return [
        Row(
            "e2e-bound",
            f"End to end / latency bound, {setting}, simulator in its own process",
            f"{ours:.2f} s for {batches:,} batches",
            f"{bound:.2f} s = {batches:,} POSTs × {LATENCY * 1000:.0f} ms / {CONCURRENCY} "
            f"(the hand-written pool: {pool / bound:.2f}× the bound)",
            ours / bound,
            "≤ 1.15",
            ours / bound <= 1.15,
        ),
        Row(
            "e2e-pool",
            f"End to end / hand-written httpx thread pool, {setting}, same server",
            f"{ours:.2f} s",
            f"{pool:.2f} s: defusedxml iterparse, {CONCURRENCY} threads, one httpx.Client",
            ours / pool,
            "≤ 1.03",
            ours / pool <= 1.03,
        ),
        Row(
            "fsyncs",
            f"Journal fsyncs per batch, {setting}",
            f"{fsyncs['journal_fsyncs']:,} journal fsyncs for {batches:,} batches "
            f"(+ {fsyncs['other_fsyncs']} for the result files)",
            f"{batches:,} POSTs, each after its record is durable",
            fsyncs["journal_fsyncs"] / batches,
            "≤ 0.25",
            fsyncs["journal_fsyncs"] / batches <= 0.25,
        ),
        Row(
            "requests",
            f"Requests per batch, happy path, {setting}",
            f"{requests['server_requests']:,} received: {requests['server_posts']:,} POSTs, "
            f"1 highest-id read, {requests['server_lookups_by_id']} lookups by id, "
            f"{requests['server_lookups_by_name']} by name, {others} other",
            f"{batches:,} batches (the hand-written pool: {pool_requests:.3f} per batch)",
            requests["server_requests"] / batches,
            "≤ 1.005",
            requests["server_requests"] / batches <= 1.005,
            digits=3,
        ),
    ]


def sequential(folder: Path, batches: int) -> list[Row]:
    """pyconnectwise as it must be used (one batch after another) against ours at C=1 and C=8."""
    path = folder / "sequential.xml"
    write_input(path, batches, IDS_PER_BATCH, FIRST_ID)
    figure = f"End to end, sequential: ours C=1 / pyconnectwise, {LATENCY * 1000:.0f} ms"
    if importlib.util.find_spec("pyconnectwise") is None:
        return [Row("pyconnectwise", figure, "", "pyconnectwise is not installed", None, "", None)]
    ours = _run("ours", path, batches, LATENCY, concurrency=1)["seconds"]
    eight = _run("ours", path, batches, LATENCY, concurrency=CONCURRENCY)["seconds"]
    theirs = _run("pyconnectwise", path, batches, LATENCY)["seconds"]
    return [
        Row(
            "pyconnectwise",
            figure,
            f"{ours:.2f} s for {batches:,} batches at C=1 ({eight:.2f} s at C={CONCURRENCY})",
            f"{theirs:.2f} s: pyconnectwise {_version('pyconnectwise')}, one batch at a time",
            ours / theirs,
            "",
            None,
        )
    ]


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def client_cpu(calls: int) -> list[Row]:
    """CPU per create_batch over loopback, against a bare httpx POST of the same body."""
    ids = 10
    with_warmup = (calls + 50) * 2 * ids
    answer, _ = run_against_simulator(
        "client_cpu",
        latency=0,
        entries=with_warmup,
        calls=calls,
        ids_per_batch=ids,
        first_id=FIRST_ID,
    )
    ours, bare = answer["ours"], answer["bare"]
    return [
        Row(
            "client-cpu",
            "Client CPU per request over loopback / bare httpx",
            f"{ours * 1e6:.0f} µs per create_batch ({calls:,} calls, {ids} ids each)",
            f"{bare * 1e6:.0f} µs: httpx.Client.post of the same JSON, .json() of the answer",
            ours / bare,
            "≤ 1.3",
            ours / bare <= 1.3,
        )
    ]


def memory(folder: Path, batches: int) -> list[Row]:
    """RSS growth of process_file over many batches, against the hand-written pool's."""
    path = folder / "memory.xml"
    per_batch = 5
    write_input(path, batches, per_batch, FIRST_ID)
    ours = _run("ours", path, batches, 0, per_batch, concurrency=CONCURRENCY)
    pool = _run("hand_pool", path, batches, 0, per_batch, concurrency=CONCURRENCY)
    path.unlink()
    growth = ours["growth_mb"]
    judged = batches >= ONE_MILLION  # a smaller run is not extrapolated
    return [
        Row(
            "memory",
            f"RSS growth for {batches:,} batches end to end, C={CONCURRENCY}, fresh process",
            f"{growth:.1f} MB ({growth * 1024 / batches:.2f} KB per batch) in "
            f"{ours['seconds']:.0f} s, {ours['cpu_seconds'] * 1e6 / batches:.0f} µs CPU per batch",
            f"hand-written pool: {pool['growth_mb']:.1f} MB in {pool['seconds']:.0f} s",
            growth / pool["growth_mb"],
            "≤ 100 MB at 1 M" + ("" if judged else " (not judged below 1 M)"),
            growth <= 100 if judged else None,
        )
    ]
