"""The run journal: what a run did, made durable as it happens, so a killed run can resume.

A journal is a file of JSON lines, appended to and fsynced, readable by its owner only:

- a header: ``{"journal": 1, "baseline": N, "stamp": "...", "source": "sha256 or null",
  "site": "https://host", "company": "acme"}``: the highest batch id before the run began, the
  stamp the run names batches with, a digest of the input file when there is one, and the
  ConnectWise the run talks to;
- ``{"i": index, "f": fingerprint, "id": identifier, "s": "sending"}``, durable before the
  batch's POST leaves;
- then what became of it, the last record winning: ``"s": "created"`` (with ``"b"``, the batch
  id, once known), ``"failed"`` (ConnectWise's answer about the batch, in ``"e"``: final, see
  `_retry.is_final_answer`), ``"unknown"`` (whether it was created could not be told) or
  ``"unsent"`` (certainly not created: the run stopped before the POST left, or it was refused
  or never delivered; a resumed run sends it again);
- ``{"floor": N}``: every batch this run created with an id up to N has its id recorded, so a
  resumed run looks only above it.

What the records mean for a resumed run is decided by `_plan.plan`. A killed process can leave a
torn last line; it is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from typing import Any

import attrs

from ._exceptions import ConnectWiseMismatchError, FieldError, JournalError
from ._models import OUTCOME_UNKNOWN, BatchError, BatchRequest, BatchResult
from ._plan import Known
from ._retry import is_final_answer

__all__ = [
    "Entry",
    "Journal",
    "error_from_record",
    "error_record",
    "file_digest",
    "fingerprint",
    "ids_digest",
    "same_connectwise",
]

_VERSION = 1


def ids_digest(ids: Iterable[int]) -> bytes:
    """16 bytes standing for a batch's GL entry ids, in order."""
    return hashlib.sha256(",".join(map(str, ids)).encode()).digest()[:16]


def fingerprint(request: BatchRequest) -> str:
    """A short digest of what a request asks for: identifier as written, ids, options if any.

    Options enter only when given, so a request without them digests as it always did.
    """
    text = f"{request.identifier}\0{','.join(map(str, request.gl_rec_ids))}"
    options = request.batch_options()
    if options:
        text += "\0" + json.dumps(options, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def same_connectwise(recorded: tuple[str, str], current: tuple[str, str]) -> bool:
    """Whether a recorded (site, company) is the current one (company ids ignore case)."""
    return recorded[0] == current[0] and recorded[1].casefold() == current[1].casefold()


@attrs.frozen
class Entry:
    """What the journal says of one batch: its fingerprint and what is known of it."""

    fingerprint: str
    known: Known


class Journal:
    """An append-only, fsynced record of a run, resumed when it already exists.

    Args:
        path: The journal file.
        source: A digest of the input file; a journal of another input is refused.
        connectwise: ``(site, company)`` the run talks to; a journal of another is refused.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        source: str | None = None,
        connectwise: tuple[str, str] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.entries: dict[int, Entry] = {}
        self.baseline: int | None = None
        self.floor: int | None = None
        self.stamp: str | None = None
        self.source = source
        self.connectwise = connectwise
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
            self._check_header(record)
            self.baseline, self.stamp = int(record["baseline"]), str(record["stamp"])
            return
        if "floor" in record:
            self.floor = int(record["floor"])
            return
        index, state = int(record["i"]), str(record["s"])
        if state == "unsent":
            self.entries.pop(index, None)
            return
        error = error_from_record(record["e"]) if "e" in record else None
        if state == "failed" and error is not None and error.code == OUTCOME_UNKNOWN:
            state = "unknown"  # written so by versions that had no "unknown" record
        elif state == "failed" and (error is None or not is_final_answer(error.status)):
            self.entries.pop(index, None)  # (likewise) certainly not created: send it again
            return
        known = Known(
            "sent" if state == "sending" else state,  # type: ignore[arg-type]
            str(record["id"]),
            record.get("b"),
            error if state == "failed" else None,
        )
        self.entries[index] = Entry(str(record["f"]), known)

    def _check_header(self, record: dict[str, Any]) -> None:
        if record["journal"] != _VERSION:
            raise JournalError(f"{self.path}: journal version {record['journal']} is unknown")
        if self.source and record.get("source") and record["source"] != self.source:
            raise JournalError(
                f"{self.path} records an unfinished run of a different input file. "
                "Run that input again to finish it, or delete the journal if you are sure "
                "its batches are accounted for."
            )
        site, company = record.get("site"), record.get("company")
        current = self.connectwise
        if current and site and company and not same_connectwise((site, company), current):
            raise ConnectWiseMismatchError(
                f"{self.path} records an unfinished run against ConnectWise {site} (company "
                f"{company}), not {current[0]} (company {current[1]}). Run the same command "
                "against that ConnectWise to finish it; nothing was sent."
            )

    def begin(self, baseline: int, stamp: str) -> int:
        """Record the header of a new run; return the run's baseline (a resumed run's first)."""
        if self.baseline is None:
            self.baseline, self.stamp = baseline, stamp
            header: dict[str, Any] = {
                "journal": _VERSION,
                "baseline": baseline,
                "stamp": stamp,
                "source": self.source,
            }
            if self.connectwise:
                header["site"], header["company"] = self.connectwise
            self._add(header)
            self.sync()
        return self.baseline

    def sending(self, index: int, fingerprint: str, identifier: str) -> None:
        """Record that batch ``index`` is about to be sent; `sync` before sending it."""
        self._add({"i": index, "f": fingerprint, "id": identifier, "s": "sending"})

    def result(self, index: int, fingerprint: str, result: BatchResult) -> None:
        """Record what became of batch ``index``."""
        record: dict[str, Any] = {"i": index, "f": fingerprint, "id": result.identifier}
        error = result.error
        if result.status == "created":
            record["s"] = "created"
            if result.batch_id is not None:
                record["b"] = result.batch_id
        elif error is not None and error.code == OUTCOME_UNKNOWN:
            record["s"] = "unknown"
            record["e"] = error_record(error)
        elif error is not None and is_final_answer(error.status):
            record["s"] = "failed"  # ConnectWise's answer about the batch: final on resume
            record["e"] = error_record(error)
        else:
            record["s"] = "unsent"  # certainly not created (not sent, refused, unreachable)
        self._add(record)

    def looked_through(self, floor: int) -> None:
        """Record that every batch up to id ``floor`` created by this run has its id recorded."""
        self._add({"floor": floor})

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


def error_record(error: BatchError) -> dict[str, Any]:
    """``error`` as the journal keeps it: everything the fail file needs."""
    return {
        "status": error.status,
        "code": error.code,
        "message": error.message,
        "fields": [[f.field, f.code, f.message] for f in error.field_errors],
    }


def error_from_record(data: dict[str, Any]) -> BatchError:
    """The `BatchError` a journal record keeps (older records hold status and code only)."""
    fields = tuple(FieldError(str(m), field=f, code=c) for f, c, m in data.get("fields") or ())
    message = data.get("message") or "recorded by the run that was resumed"
    return BatchError(str(message), data.get("status"), data.get("code"), fields)


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
