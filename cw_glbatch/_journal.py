"""The run journal: what a run did, made durable as it happens, so a killed run can resume.

A journal is a file of JSON lines, appended to and fsynced, readable by its owner only:

- a header: ``{"journal": 1, "baseline": N, "stamp": "...", "source": "sha256 or null"}``, with
  the highest batch id before the run began, the timestamp the run names batches with, and a
  digest of the input file when there is one;
- ``{"i": index, "f": fingerprint, "id": identifier, "s": "sending"}``, durable before the
  batch's POST leaves;
- ``{"i": ..., "f": ..., "id": ..., "s": "created" | "failed", "b": batch id, "e": error}`` when
  its result is known.

A run that finds a journal resumes it: batches recorded as created are not sent again, batches
that were sent without a known result are looked up before anything is sent, and the rest are
sent as usual. A killed process can leave a torn last line; it is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from typing import Any

import attrs
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from ._exceptions import JournalError
from ._models import BatchRequest, BatchResult

__all__ = ["Journal", "file_digest", "fingerprint", "ids_digest", "previous_successes"]

_VERSION = 1


def ids_digest(ids: Iterable[int]) -> bytes:
    """16 bytes standing for a batch's GL entry ids, in order."""
    return hashlib.sha256(",".join(map(str, ids)).encode()).digest()[:16]


def fingerprint(request: BatchRequest) -> str:
    """A short digest of what a request asks for: its identifier as written and its ids."""
    text = f"{request.identifier}\0{','.join(map(str, request.gl_rec_ids))}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@attrs.frozen
class Entry:
    """What the journal says of one batch: the last record about it wins."""

    fingerprint: str
    identifier: str
    status: str  # "sending", "created" or "failed"
    batch_id: int | None = None


class Journal:
    """An append-only, fsynced record of a run, resumed when it already exists."""

    def __init__(self, path: str | os.PathLike[str], *, source: str | None = None) -> None:
        self.path = os.fspath(path)
        self.entries: dict[int, Entry] = {}
        # Batches an earlier, finished run created (from its success file), by `ids_digest`.
        self.carried: dict[bytes, tuple[str, int]] = {}
        self.baseline: int | None = None
        self.stamp: str | None = None
        self.source = source
        self.resumed = os.path.exists(self.path)
        if self.resumed:
            self._load()
        self._pending: list[str] = []
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file = os.fdopen(fd, "a", encoding="utf-8")

    def _load(self) -> None:
        with open(self.path, encoding="utf-8") as stream:
            text = stream.read()
        lines = text.split("\n")
        for number, line in enumerate(lines, 1):
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                if number == len(lines):  # a torn last line: the process died mid-write
                    break
                raise JournalError(
                    f"{self.path}:{number}: the journal is damaged. It records a run that did "
                    "not finish; check that run's batches in ConnectWise, then delete the file."
                ) from None
            self._apply(record)
        if self.baseline is None:
            if self.entries:
                raise JournalError(f"{self.path}: not a cw_glbatch journal (no header)")
            self.resumed = False  # killed before it recorded anything: nothing was sent

    def _apply(self, record: dict[str, Any]) -> None:
        if "journal" in record:
            if record["journal"] != _VERSION:
                raise JournalError(f"{self.path}: journal version {record['journal']} is unknown")
            if self.source and record.get("source") and record["source"] != self.source:
                raise JournalError(
                    f"{self.path} records an unfinished run of a different input file. "
                    "Run that input again to finish it, or delete the journal if you are sure "
                    "its batches are accounted for."
                )
            self.baseline, self.stamp = int(record["baseline"]), str(record["stamp"])
            return
        self.entries[int(record["i"])] = Entry(
            str(record["f"]), str(record["id"]), str(record["s"]), record.get("b")
        )

    def begin(self, baseline: int, stamp: str) -> int:
        """Record the header of a new run; return the run's baseline (a resumed run's first)."""
        if self.baseline is None:
            self.baseline, self.stamp = baseline, stamp
            self._add(
                {"journal": _VERSION, "baseline": baseline, "stamp": stamp, "source": self.source}
            )
            self.sync()
        return self.baseline

    def sending(self, index: int, print_: str, identifier: str) -> None:
        """Record that batch ``index`` is about to be sent; `sync` before sending it."""
        self._add({"i": index, "f": print_, "id": identifier, "s": "sending"})

    def result(self, index: int, print_: str, result: BatchResult) -> None:
        """Record what became of batch ``index``."""
        record: dict[str, Any] = {
            "i": index,
            "f": print_,
            "id": result.identifier,
            "s": result.status,
        }
        if result.batch_id is not None:
            record["b"] = result.batch_id
        if result.error is not None:
            record["e"] = {"code": result.error.code, "status": result.error.status}
        self._add(record)

    def _add(self, record: dict[str, Any]) -> None:
        self._pending.append(json.dumps(record, separators=(",", ":")) + "\n")

    def sync(self) -> None:
        """Write what was recorded and make it durable."""
        if self._pending:
            self._file.write("".join(self._pending))
            self._pending.clear()
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Sync and close; the file stays for a later run to resume."""
        self.sync()
        self._file.close()

    def remove(self) -> None:
        """Close and delete: the run finished and its results are safely stored."""
        if not self._file.closed:
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def previous_successes(path: str | os.PathLike[str]) -> dict[bytes, tuple[str, int]]:
    """The batches an earlier run's success file records: `ids_digest` -> (identifier, batch id).

    Read streaming with defusedxml. A file that is missing or not a success file gives nothing:
    the run then decides from ConnectWise's answers alone.
    """
    found: dict[bytes, tuple[str, int]] = {}
    try:
        for _, element in iterparse(os.fspath(path), events=("end",), forbid_dtd=True):
            if element.tag != "Batch":
                continue
            identifier = (element.findtext("batchIdentifier") or "").strip()
            batch_id = (element.findtext("batchId") or "").strip()
            ids = [int(e.text or "") for e in element.iterfind("glRecIds/glRecId")]
            if identifier and batch_id.isdigit() and ids:
                found[ids_digest(ids)] = (identifier, int(batch_id))
            element.clear()
    except (OSError, ValueError, SyntaxError, DefusedXmlException):
        return {}
    return found


def file_digest(path: str | os.PathLike[str]) -> str | None:
    """SHA-256 of a file's bytes, or None if it cannot be read (the reader will say why)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()
