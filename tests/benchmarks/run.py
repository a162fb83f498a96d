"""Benchmarks for cw_glbatch: each figure as a ratio against what a user would otherwise write.

    python tests/benchmarks/run.py [--quick] [--markdown] [--only reader,e2e,...] [--save F]
    python tests/benchmarks/run.py --render F [F ...] [--markdown]   # from saved figures

Every baseline is measured in the same run. What is measured runs in fresh child processes
(children.py) and the simulator in a process of its own. --quick uses smaller inputs (about a
minute on 2 cores; CI runs it, printing the figures without asserting them); --markdown writes
docs/benchmarks.md. Not collected by pytest: timings are never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from endtoend import client_cpu, end_to_end, memory, sequential
from harness import Row
from reader import reader_memory, reader_speed

ROOT = Path(__file__).resolve().parents[2]

# A group of figures: (folder, quick) -> its rows. The longest runs last.
FIGURES: dict[str, Callable[[Path, bool], list[Row]]] = {
    "reader": lambda folder, quick: reader_speed(folder, 3 if quick else 5),
    "e2e": lambda folder, quick: end_to_end(folder, 800 if quick else 2_000, 1 if quick else 3),
    "client": lambda folder, quick: client_cpu(2_000 if quick else 10_000),
    "sequential": lambda folder, quick: sequential(folder, 100 if quick else 500),
    "reader-memory": lambda folder, quick: reader_memory(
        folder, 1_000_000 if quick else 10_000_000
    ),
    "memory": lambda folder, quick: memory(folder, 20_000 if quick else 1_000_000),
}

METHOD = """\
How each figure is measured:

- **Fresh processes.** Each measured program runs in a child interpreter started for it alone
  (`tests/benchmarks/children.py`). The simulator (`FakeConnectWise` behind `SimulatorServer`)
  runs in another child process, started afresh for every run, so its CPU and memory are not
  the client's and the GIL is not shared.
- **Memory** is the growth of the child's own RSS: the peak (VmHWM) is reset to the current RSS
  through `/proc/self/clear_refs` just before the work, and growth is VmHWM after the work minus
  VmRSS before it. Nothing is inherited from the runner.
- **Reader / bare expat.** The same 1,000,000-id file (100 consecutive ids per batch, the
  standard layout, so the reader's fast path reads it), read whole: pyexpat with no handlers
  against iterating `XmlBatchReader`, whose first `next()` checks the whole file. lxml's
  `iterparse` (per `<Batch>`, freeing each) is what a user of lxml would write; it checks
  nothing and sees a bad element only when it gets there. Medians of interleaved runs.
- **End to end** runs `process_file` (journal, result files, lookups) and a hand-written pool
  (defusedxml `iterparse`, a `ThreadPoolExecutor` of 8 threads sharing one `httpx.Client`, the
  same POSTs, the statuses written to a text file; no journal, no lookups, no retries) against
  the same simulator, answering each request after 20 ms, with 10 ids per batch. Each run
  checks that every batch was created. The latency bound is POSTs × 20 ms / 8; every other
  request (the highest-id read, the lookups) counts against it.
- **Journal fsyncs** are counted in the measured process by wrapping `os.fsync` and
  `os.fdatasync` and sorting each call by the file it syncs (`/proc/self/fd`): calls on the
  `.journal` file against the others (the two result files and their folder). This sees calls
  made through Python's `os` module, which is how the journal syncs; the count refuses a run
  with no journal fsync at all rather than report 0.
- **Requests per batch** are counted by the simulator (every request it received). The run
  reads the highest batch id once, then looks up the ids of the batches it created once per
  500 created batches (`LEARN_IDS_EVERY` in `_learning.py`; in a thread of its own while the
  run goes on sending) with `id > last seen`, and by name for any that query missed (at C > 1,
  batches created while the previous lookup was answered).
- **Client CPU** is `time.process_time()` of the client process over sequential calls to the
  simulator on loopback with no latency, alternating rounds of `create_batch` and a bare
  `httpx.Client.post` of the same JSON body with `.json()` of the answer, after a warm-up.
- **pyconnectwise** (GPL-3.0, a benchmark-only dependency) sends through `requests.request`,
  a new connection per request, and offers no concurrency; it is run one batch after another,
  its URL scheme changed to `http://` to reach the simulator (it always builds `https://`).
"""

# Said under the table for a figure whose target is not met (and only then).
WHY_NOT_MET = {
    "reader-expat": "The file is of the standard layout, so the fast path reads it: one bare "
    "expat pass for well-formedness while regular expressions read each `<Batch>` and `int` "
    "reads its ids at once. What remains beyond bare expat is Python work per batch (the "
    "layout checks, the id bitmap, spooling the checked batch before the first is given out, "
    "building each `BatchRequest` on the way out); see the load average, since the ratio "
    "moves with it.",
    "fsyncs": "The journal fsyncs once per group of batches handed to the workers together "
    "(`_group.dispatch_now`: one job per worker, or fewer when the workers would otherwise be "
    "idle), plus once for its header, once after each lookup and once at the end.",
    "e2e-bound": "The hand-written pool, which does nothing between its POSTs, takes the ratio "
    "shown in the baseline column: that much of the gap is the CPU each request costs the "
    "client and the simulator on 2 cores shared with other processes (see the load average), "
    "not the library. What the run adds beyond the pool (the e2e-pool row) is its own work per "
    "batch in the one dispatching thread: a journal fsync per group of POSTs (fsync row), more "
    "CPU per batch than a bare `create_batch` (CPU per batch in the memory row against the "
    "client-CPU row), and its lookups (requests row).",
    "e2e-pool": "The pool does nothing between POSTs. Per batch, `process_file` also journals "
    "the batch durably before the POST leaves (one fsync per group, in the one dispatching "
    "thread), fingerprints the request, "
    "writes the result files, and looks up the ids of the created batches once per 500.",
    "client-cpu": "`create_batch` adds request counting, the retry loop, error decoding and the "
    "`GLExport` value to the same httpx call.",
    "memory": "What grows per batch is mostly the run's record of the identifiers the input "
    "gives, to refuse a repeated one: 16 bytes of digest each in a table at most two thirds "
    "full (`DigestSet`: 32 MB at 1 M batches; growing gives the old table back as it moves "
    "it); identifiers the run generates cost nothing. A traced run (tracemalloc, 50,000 "
    "batches, in process) found no other growth per batch in the library. The hand-written "
    "pool, which holds every batch and every future, grows far more.",
    "requests": "At C > 1 most lookups by id are followed by one by name, for the batches "
    "created while the previous lookup was answered.",
}


def table(runs: list[dict[str, Any]]) -> str:
    """docs/benchmarks.md from one run, or from several runs that measured other groups."""
    quick = runs[0]["quick"]
    if any(run["quick"] != quick for run in runs):
        raise SystemExit("the runs were in different modes (--quick or not): render them apart")
    codes = [run["code"] for run in runs]
    code = (
        codes[0]
        if len(set(codes)) == 1
        else "; ".join(
            f"run {n} ({', '.join(run['groups'])}): {run['code']}" for n, run in enumerate(runs, 1)
        )
    )
    rows = [Row(**row) for run in runs for row in run["rows"]]
    header = ["Figure", "Measured", "Baseline (same run)", "Ratio", "Target", "Met"]
    command = "python tests/benchmarks/run.py" + (" --quick" if quick else "") + " --markdown"
    unmet = [row for row in rows if row.met is False]
    produced = f"in one run of `{command}`"
    if len(runs) > 1:
        produced = (
            f"in {len(runs)} runs of `{command}`, one after another, each measuring the groups "
            "named below (`--only`, `--save`, then `--render` of the saved runs)"
        )
    loads = "; ".join(
        (f"run {n} ({', '.join(run['groups'])}): " if len(runs) > 1 else "")
        + f"load average {run['loads'][0]:.1f} at the start, {run['loads'][1]:.1f} at the end"
        for n, run in enumerate(runs, 1)
    )
    lines = [
        "# Benchmarks",
        "",
        f"Produced {produced}; every ratio is against a baseline measured in the "
        "same run, and is a ratio of times unless said otherwise. The baselines need the "
        "`bench` extra: `pip install -e '.[bench]'`. On a loaded machine a ratio within a few "
        "per cent of its target can land either side of it from one run to the next.",
        "",
        f"Code measured: `{code}`.",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}"
        + (" (quick mode: smaller inputs)" if quick else "")
        + f"; {loads} (other processes share the cores: ratios hold better than absolute "
        "times)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row.cells()) + " |" for row in rows),
        "",
        f"Targets met: {sum(row.met is True for row in rows)} of "
        f"{sum(row.met is not None for row in rows)}.",
        "",
    ]
    if unmet:
        lines += ["Not met, and why:", ""]
        lines += [f"- **{row.figure}**: {WHY_NOT_MET.get(row.key, '')}" for row in unmet]
        lines.append("")
    lines.append(METHOD)
    return "\n".join(lines)


def measure(chosen: list[str], quick: bool) -> dict[str, Any]:
    """Run the chosen groups; a group that fails gives a row saying so, and the rest go on."""
    started, load, code = time.perf_counter(), os.getloadavg()[0], _code_version()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder_name:
        for name in chosen:
            begun = time.perf_counter()
            try:
                rows += FIGURES[name](Path(folder_name), quick)
            except Exception as err:
                print(f"{name} failed: {err}", file=sys.stderr)
                failure = str(err).splitlines()[0]
                rows.append(Row(name, f"{name}: FAILED", failure, "", None, "", None))
            print(f"({name}: {time.perf_counter() - begun:.0f} s)", file=sys.stderr)
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    loads = [load, os.getloadavg()[0]]
    return {
        "quick": quick,
        "groups": chosen,
        "loads": loads,
        "code": code,
        "rows": [attrs.asdict(row) for row in rows],
    }


def _code_version() -> str:
    """The commit measured, marked when the work tree differs from it."""

    def git(*arguments: str) -> subprocess.CompletedProcess[str]:
        command = ["git", "-C", str(ROOT), *arguments]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    head = git("rev-parse", "--short", "HEAD")
    if head.returncode:
        return "unknown (not a git checkout)"
    changed = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head.stdout.strip() + (" with uncommitted changes" if changed else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs, about a minute")
    parser.add_argument("--markdown", action="store_true", help="write docs/benchmarks.md")
    parser.add_argument("--only", help=f"comma-separated groups: {','.join(FIGURES)}")
    parser.add_argument("--save", type=Path, help="also write the figures to this JSON file")
    parser.add_argument(
        "--render",
        type=Path,
        nargs="+",
        help="measure nothing: show the figures --save wrote (several runs that measured "
        "other groups: their rows in one table, each run's code and load named)",
    )
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(FIGURES)
    unknown = set(chosen) - FIGURES.keys()
    if unknown:
        parser.error(f"unknown groups: {', '.join(sorted(unknown))}")
    if args.render:
        runs = [json.loads(path.read_text(encoding="utf-8")) for path in args.render]
    else:
        runs = [measure(chosen, args.quick)]
    if args.save:
        args.save.write_text(json.dumps(runs[0], indent=1, ensure_ascii=False), encoding="utf-8")
    rows = [Row(**row) for run in runs for row in run["rows"]]
    text = table(runs)
    print(text)
    for row in rows:
        if row.met is not None:
            print(f"target {'MET' if row.met else 'NOT MET'}: {row.figure} ({row.target})")
    if args.markdown:
        (ROOT / "docs" / "benchmarks.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
