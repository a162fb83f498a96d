"""The measured programs, each run in a fresh interpreter: ``children.py NAME JSON-ARGUMENTS``.

Each prints one JSON line. Each imports only what it uses, and memory growth is measured from
the child's own state just before the work: the peak RSS (VmHWM) is reset to the current RSS
through ``/proc/self/clear_refs``, and growth is VmHWM after the work minus VmRSS before it.
"""

from __future__ import annotations

import base64
import collections
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cw_glbatch import ConnectWiseClient

BATCHES_PATH = "/finance/accounting/batches"

# -- memory, from the child's own start --------------------------------------------------------


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_start() -> int:
    """Reset the peak RSS to the current RSS (Linux 4.0+); return the current RSS in KiB."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
        clear_refs.write("5")
    return _status_kb("VmRSS")


def growth_mb(start_kb: int) -> float:
    """Peak RSS since `memory_start` minus the RSS then, in MB (2**20 bytes)."""
    return (_status_kb("VmHWM") - start_kb) / 1024


# -- counting fsyncs in this process -------------------------------------------------------------


class FsyncCounter:
    """Wraps ``os.fsync`` and ``os.fdatasync`` to count calls, by the file each one syncs.

    It sees calls made through the ``os`` module (as the journal and the writer make them), not
    system calls made in C; `count_journal` refuses a run that made no journal fsync at all.
    """

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        for name in ("fsync", "fdatasync"):
            setattr(os, name, self._counted(getattr(os, name)))

    def _counted(self, original: Callable[[Any], None]) -> Callable[[Any], None]:
        def counted(fd: Any) -> None:
            number = fd if isinstance(fd, int) else fd.fileno()
            target = os.readlink(f"/proc/self/fd/{number}")
            with self._lock:
                self.counts["journal" if target.endswith(".journal") else "other"] += 1
            original(fd)

        return counted

    def count_journal(self) -> int:
        if not self.counts["journal"]:
            raise RuntimeError("no journal fsync was seen: the counting method needs updating")
        return self.counts["journal"]


# -- the simulator, in a process of its own ----------------------------------------------------


def simulator(latency: float, entries: int, first_id: int) -> None:
    """Serve ``entries`` unposted GL entries, ids from ``first_id`` on, until stdin closes."""
    from cw_glbatch.testing import FakeConnectWise

    fake = FakeConnectWise()
    fake.add_unposted(range(first_id, first_id + entries))
    fake.set_latency(latency)
    with fake.serve() as server:
        connection = {"url": server.url, "base_url": server.base_url, "codebase": fake.codebase}
        print(json.dumps({**connection, **fake.credentials}), flush=True)
        sys.stdin.read()
        conditions = [r.query.get("conditions", "") for r in fake.requests if r.method == "GET"]
        counts = {
            "requests": fake.count_requests(),
            "posts": fake.count_requests("POST"),
            "lookups_by_id": sum(c.startswith("id >") for c in conditions),
            "lookups_by_name": sum("batchIdentifier" in c for c in conditions),
            "batches": len(fake.batches),
        }
    print(json.dumps(counts), flush=True)


# -- the library ---------------------------------------------------------------------------------


def _client(connection: dict[str, str]) -> ConnectWiseClient:
    from cw_glbatch import ConnectWiseClient

    return ConnectWiseClient(
        base_url=connection["base_url"],
        company_id=connection["company_id"],
        public_key=connection["public_key"],
        private_key=connection["private_key"],
        client_id=connection["client_id"],
    )


def ours(connection: dict[str, str], input_file: str, concurrency: int) -> dict[str, Any]:
    """`process_file` against the simulator: time, CPU, memory growth, requests, fsyncs."""
    from cw_glbatch import process_file

    folder = Path(input_file).parent
    for name in ("ok.xml", "failed.xml"):  # a fresh run: nothing to carry over from the last
        (folder / name).unlink(missing_ok=True)
    fsyncs = FsyncCounter()
    client = _client(connection)
    memory = memory_start()
    cpu, start = time.process_time(), time.perf_counter()
    with client:
        report = process_file(
            client, input_file, folder / "ok.xml", folder / "failed.xml", concurrency=concurrency
        )
    return {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu,
        "growth_mb": growth_mb(memory),
        "created": report.counts["created"],
        "failed": report.counts["failed"],
        "journal_fsyncs": fsyncs.count_journal(),
        "other_fsyncs": fsyncs.counts["other"],
    }


def read(input_file: str) -> dict[str, Any]:
    """The reader over a whole file: ids read and memory growth."""
    from cw_glbatch import XmlBatchReader

    memory = memory_start()
    ids = sum(len(batch.gl_rec_ids) for batch in XmlBatchReader(input_file))
    return {"ids": ids, "growth_mb": growth_mb(memory)}


# -- what a user would otherwise write -----------------------------------------------------------


def read_plainly(input_file: str) -> list[tuple[str, list[int]]]:
    """The batches of a file, read the usual careful way: defusedxml's iterparse."""
    from defusedxml.ElementTree import iterparse

    batches = []
    for _, element in iterparse(input_file, forbid_dtd=True):
        if element.tag == "Batch":
            ids = [int(e.text or "") for e in element.iter("glRecId")]
            batches.append((element.findtext("batchIdentifier") or "", ids))
            element.clear()
    return batches


def batch_body(identifier: str, ids: list[int]) -> dict[str, Any]:
    return {
        "batchIdentifier": identifier,
        "processedRecordIds": ids,
        "exportInvoicesFlag": True,
        "exportExpensesFlag": True,
        "exportProductsFlag": True,
    }


def _headers(connection: dict[str, str]) -> dict[str, str]:
    login = f"{connection['company_id']}+{connection['public_key']}:{connection['private_key']}"
    return {
        "Authorization": "Basic " + base64.b64encode(login.encode()).decode(),
        "clientId": connection["client_id"],
        "Accept": "application/json",
    }


def _write_plainly(input_file: str, results: list[tuple[str, int]]) -> None:
    with open(Path(input_file).parent / "results.txt", "w", encoding="utf-8") as out:
        out.writelines(f"{identifier}\t{status}\n" for identifier, status in results)


def hand_pool(connection: dict[str, str], input_file: str, concurrency: int) -> dict[str, Any]:
    """A competent hand-written httpx thread pool: read, POST each batch, write the statuses.

    One shared `httpx.Client` (keep-alive, a connection per thread), ``concurrency`` threads,
    no journal, no lookups, no retries: the same POSTs with no safety at all.
    """
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    memory = memory_start()
    start = time.perf_counter()
    batches = read_plainly(input_file)
    limits = httpx.Limits(max_connections=concurrency)
    url = connection["base_url"] + BATCHES_PATH
    with httpx.Client(headers=_headers(connection), limits=limits, timeout=30) as http:

        def post(batch: tuple[str, list[int]]) -> tuple[str, int]:
            response = http.post(url, json=batch_body(*batch))
            response.json()
            return batch[0], response.status_code

        with ThreadPoolExecutor(concurrency) as pool:
            results = list(pool.map(post, batches))
    _write_plainly(input_file, results)
    return {
        "seconds": time.perf_counter() - start,
        "growth_mb": growth_mb(memory),
        "created": sum(200 <= status < 300 for _, status in results),
    }


def pyconnectwise(connection: dict[str, str], input_file: str) -> dict[str, Any]:
    """pyconnectwise's client, one batch after another (it offers no concurrency of its own).

    Its client always builds ``https://`` URLs; the subclass changes only the scheme, to reach
    the simulator on loopback, and keeps the codebase it is given (0.6.1.2 drops it). It sends
    each request through ``requests.request``: a new connection per request, as it does
    against ConnectWise.
    """
    from pyconnectwise import ConnectWiseManageAPIClient

    class OverLoopback(ConnectWiseManageAPIClient):
        def __init__(self, codebase: str) -> None:
            super().__init__(
                connection["company_id"],
                connection["url"].removeprefix("http://"),
                connection["client_id"],
                connection["public_key"],
                connection["private_key"],
                codebase=codebase,
            )
            self.codebase = codebase

        def _get_url(self) -> str:
            return f"http://{self.manage_url}/{self.codebase.strip('/')}/apis/3.0"

    start = time.perf_counter()
    batches = read_plainly(input_file)
    client = OverLoopback(connection["codebase"])
    endpoint = client.finance.accounting.batches
    results = []
    for identifier, ids in batches:
        endpoint.post(data=batch_body(identifier, ids))  # raises on any error status
        results.append((identifier, 201))
    _write_plainly(input_file, results)
    return {"seconds": time.perf_counter() - start, "created": len(results)}


def client_cpu(
    connection: dict[str, str], calls: int, ids_per_batch: int, first_id: int
) -> dict[str, Any]:
    """CPU time per request of `ConnectWiseClient.create_batch` and of a bare httpx POST.

    Sequential, over loopback, the simulator in its own process (so its CPU is not counted);
    the two alternate in rounds so that neither gets the warmer process.
    """
    import httpx

    next_id = iter(range(first_id, 2**31))
    url = connection["base_url"] + BATCHES_PATH
    rounds, warmup = 5, 50
    spent = {"ours": 0.0, "bare": 0.0}
    with (
        _client(connection) as client,
        httpx.Client(headers=_headers(connection)) as http,
    ):

        def call_ours(n: int) -> None:
            client.create_batch(f"C{n}", [next(next_id) for _ in range(ids_per_batch)])

        def call_bare(n: int) -> None:
            body = batch_body(f"H{n}", [next(next_id) for _ in range(ids_per_batch)])
            response = http.post(url, json=body)
            response.raise_for_status()
            response.json()

        for n in range(warmup):
            call_ours(-n - 1)
            call_bare(-n - 1)
        pair: list[tuple[str, Callable[[int], None]]] = [("ours", call_ours), ("bare", call_bare)]
        for r in range(rounds):
            for name, call in pair if r % 2 else pair[::-1]:
                begin = time.process_time()
                for n in range(r * calls // rounds, (r + 1) * calls // rounds):
                    call(n)
                spent[name] += time.process_time() - begin
    return {name: seconds / calls for name, seconds in spent.items()}


if __name__ == "__main__":
    name, arguments = sys.argv[1], json.loads(sys.argv[2])
    answer = globals()[name](**arguments)
    if answer is not None:
        print(json.dumps(answer))
