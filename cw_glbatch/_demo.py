"""`cw-glbatch demo` and `cw-glbatch simulator`: the task on the built-in simulator."""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import ssl
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from ._batches import process_file
from ._exceptions import ConfigurationError
from ._preflight import journal_path
from .testing import FakeConnectWise, Fault

__all__ = ["DEMO_INPUT", "fault_option", "run_demo", "run_simulator"]

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


def _add_demo_books(fake: FakeConnectWise) -> None:
    """The unposted records the demo's GL entries 320042 to 320059 belong to."""
    fake.add_invoice([320042, 320043], detail_ids=range(320044, 320049), tax_ids=[320049])
    fake.add_invoice([320050], tax_ids=[320051])
    fake.add_unposted([320052], kind="expense")
    fake.add_unposted([320053], kind="procurement")
    fake.add_invoice([320054, 320055], detail_ids=[320056], tax_ids=[320057])
    fake.add_unposted([320058], kind="expense")
    fake.add_unposted([320059], kind="procurement")


def _check_demo_folder(folder: Path, files: tuple[Path, ...]) -> None:
    """Make ``folder`` if it is missing; refuse one holding a file the demo would replace."""
    if folder.exists() and not folder.is_dir():
        raise ConfigurationError(
            f"--dir {folder} is a file: give a folder (it is made if missing)."
        )
    present = [path.name for path in files if os.path.lexists(path)]
    if present:
        raise ConfigurationError(
            f"--dir {folder} already holds {', '.join(present)}, which the demo would replace: "
            "give a new or empty folder; nothing was written."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigurationError(f"--dir {folder} cannot be made: {err.strerror}.") from None


def run_demo(folder: Path | None) -> int:
    """Write the sample input, serve the simulator on loopback, run the task, show the files."""
    folder = Path(tempfile.mkdtemp(prefix="cw-glbatch-demo-")) if folder is None else folder
    source, success, fail = folder / "batches.xml", folder / "created.xml", folder / "failed.xml"
    _check_demo_folder(folder, (source, success, fail, Path(journal_path(success))))
    source.write_text(DEMO_INPUT, encoding="utf-8")
    fake = FakeConnectWise()
    _add_demo_books(fake)
    with fake.serve() as server, server.client() as client:
        print(f"ConnectWise simulator running at {server.url}")
        before = client.export_gl().gl_entry_ids
        print(f"export:       {len(before)} GL entries not yet in a batch (posted to a ledger)")
        print(f"input:        {source} (4 batches; the last names a GL entry ConnectWise lacks)")
        report = process_file(client, source, success, fail)
        after = client.export_gl().gl_entry_ids
    print(f"export again: {len(after)} GL entries left, {len(before) - len(after)} now in batches")
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
    # The three batches take 11 of the 18 exported GL entries; the fourth is refused whole.
    planned = report.counts["created"] == 3 and report.counts["failed"] == 1
    planned = planned and len(before) - len(after) == 11
    return 0 if planned else 1


def fault_option(text: str) -> tuple[Fault, float]:
    """``KIND:RATE`` (``524:0.05``, ``reset:0.1``) as the fault and the chance of it."""
    kind, colon, rate = text.rpartition(":")
    if not colon:
        raise argparse.ArgumentTypeError(f"{text!r}: give KIND:RATE, e.g. 524:0.05")
    try:
        fault = Fault.named(kind)
        chance = float(rate)
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give KIND:RATE, e.g. 524:0.05 ({err})"
        ) from None
    if not 0 <= chance <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: the rate is a chance from 0 to 1")
    return fault, chance


def run_simulator(
    host: str,
    port: int,
    populate: int,
    stop: threading.Event | None = None,
    *,
    latency: float = 0.0,
    jitter: float = 0.0,
    faults: Sequence[tuple[Fault, float]] = (),
    seed: int = 0,
    cert: Path | None = None,
    key: Path | None = None,
) -> int:
    """Serve a simulator with ``populate`` unposted entries until Ctrl-C, SIGTERM or ``stop``.

    ``latency`` (± ``jitter``) seconds delay every answer; each of ``faults`` strikes a request
    with its chance, drawn with ``seed``; ``cert`` and ``key`` (PEM files) serve HTTPS.

    Raises:
        ConfigurationError: The settings cannot work (negative times, chances over 1 in all,
            a certificate or key that cannot be read or used).
    """
    if latency < 0 or jitter < 0:
        raise ConfigurationError("--latency and --jitter are seconds, 0 or more")
    if (cert is None) != (key is None):
        raise ConfigurationError("--cert and --key go together: give both to serve HTTPS")
    rates: dict[Fault, float] = {}
    for fault, chance in faults:
        rates[fault] = rates.get(fault, 0.0) + chance
    if sum(rates.values()) > 1:
        raise ConfigurationError("the --fault rates add up to more than 1")
    context = None
    if cert is not None and key is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(cert, key)
        except OSError as err:  # ssl.SSLError is one too
            raise ConfigurationError(
                f"cannot serve HTTPS with --cert {cert} and --key {key}: {err.strerror or err}"
            ) from None
    fake = FakeConnectWise()
    ids = fake.populate(populate, seed=seed) if populate else []
    fake.set_latency(latency, jitter=jitter, seed=seed)
    if rates:
        fake.fail_randomly(rates, seed=seed)
    with (
        _stopped_by_sigterm(stop) as stopping,
        fake.serve(host, port, ssl_context=context) as server,
    ):
        print(f"ConnectWise simulator at {server.url} (API root {server.base_url})")
        if ids:
            print(f"unposted GL entries: {ids[0]} to {ids[-1]}")
        if rates or latency:
            shown = ", ".join(f"{_fault_name(f)} {c:g}" for f, c in rates.items()) or "none"
            print(f"latency {latency:g} s ± {jitter:g} s; faults: {shown}; seed {seed}")
        print("use it with:")
        print("  export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in server.environ.items()))
        if context is not None:
            print("  (and trust the certificate's authority, e.g. export SSL_CERT_FILE=ca.pem)")
        print("press Ctrl-C to stop", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stopping.wait()
    return 0


@contextlib.contextmanager
def _stopped_by_sigterm(stop: threading.Event | None) -> Iterator[threading.Event]:
    """``stop`` (or a new event), also set by SIGTERM in the main thread (docker stop)."""
    event = stop or threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    previous = signal.signal(signal.SIGTERM, lambda number, frame: event.set())
    try:
        yield event
    finally:
        signal.signal(signal.SIGTERM, previous)


def _fault_name(fault: Fault) -> str:
    return str(fault.status_code) if fault.status_code else fault.kind
