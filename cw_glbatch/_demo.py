"""`cw-glbatch demo` and `cw-glbatch simulator`: the task on the built-in simulator."""

from __future__ import annotations

import contextlib
import shlex
import tempfile
import threading
from pathlib import Path

from ._batches import process_file
from .testing import FakeConnectWise

__all__ = ["DEMO_INPUT", "run_demo", "run_simulator"]

# The seed's batch (its sample, corrected), two more, and one bound to fail: GL entry 999001
# does not exist in the simulated ConnectWise.
DEMO_INPUT = """\
<?xml version="1.0" encoding="utf-8"?>
<Batches>
  <Batch>
    <batchIdentifier>221106</batchIdentifier>
    <glRecIds>
      <glRecId>320042</glRecId>
      <glRecId>320044</glRecId>
      <glRecId>320045</glRecId>
      <glRecId>320046</glRecId>
      <glRecId>320047</glRecId>
      <glRecId>320048</glRecId>
      <glRecId>320043</glRecId>
      <glRecId>320049</glRecId>
    </glRecIds>
  </Batch>
  <Batch>
    <batchIdentifier>221107</batchIdentifier>
    <glRecIds><glRecId>320050</glRecId><glRecId>320051</glRecId></glRecIds>
  </Batch>
  <Batch>
    <!-- no batchIdentifier: the run gives it a timestamp -->
    <glRecIds><glRecId>320052</glRecId></glRecIds>
  </Batch>
  <Batch>
    <batchIdentifier>221109</batchIdentifier>
    <glRecIds><glRecId>320053</glRecId><glRecId>999001</glRecId></glRecIds>
  </Batch>
</Batches>
"""
_UNPOSTED = range(320042, 320060)


def run_demo(folder: Path | None) -> int:
    """Write the sample input, serve the simulator on loopback, run the task, show the files."""
    folder = Path(tempfile.mkdtemp(prefix="cw-glbatch-demo-")) if folder is None else folder
    folder.mkdir(parents=True, exist_ok=True)
    source, success, fail = folder / "batches.xml", folder / "created.xml", folder / "failed.xml"
    source.write_text(DEMO_INPUT, encoding="utf-8")
    fake = FakeConnectWise()
    fake.add_unposted(_UNPOSTED)
    with fake.serve() as server, server.client() as client:
        print(f"ConnectWise simulator running at {server.url}")
        print(f"input:        {source} (4 batches; the last names a GL entry ConnectWise lacks)")
        report = process_file(client, source, success, fail)
    print(
        f"created {report.counts['created']}, failed {report.counts['failed']} "
        f"in {report.elapsed:.2f} s, {report.requests} requests"
    )
    print(f"success file: {success}")
    print(f"fail file:    {fail}\n")
    for path in (success, fail):
        print(f"--- {path.name} ---")
        print(path.read_text(encoding="utf-8"))
    retry = shlex.join(["cw-glbatch", "create", "--input", str(fail), "--success",
                        str(folder / "created-retry.xml"), "--fail", str(fail)])  # fmt: skip
    print(
        "The fail file is valid input. After fixing the batch (or the GL entry in ConnectWise),\n"
        f"retry exactly the failed batches with:\n  {retry}"
    )
    planned = report.counts["created"] == 3 and report.counts["failed"] == 1
    return 0 if planned else 1


def run_simulator(host: str, port: int, populate: int, stop: threading.Event | None = None) -> int:
    """Serve a simulator with ``populate`` unposted entries until interrupted (or ``stop``)."""
    fake = FakeConnectWise()
    ids = fake.populate(populate, seed=0) if populate else []
    with fake.serve(host, port) as server:
        print(f"ConnectWise simulator at {server.url} (API root {server.base_url})")
        if ids:
            print(f"unposted GL entries: {ids[0]} to {ids[-1]}")
        print("use it with:")
        print("  export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in server.environ.items()))
        print("press Ctrl-C to stop", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            (stop or threading.Event()).wait()
    return 0
