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
torn last line; it is cut off before anything is appended. When the run is over, a
``{"done": {...}}`` record says what the result files hold (their digests and the counts), durable
before they are put in place, so that a run killed between putting them in place and removing the
journal is recognised as finished (`_finish`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from json.encoder import encode_basestring_ascii as _json_text
from typing import Any

import attrs

from ._exceptions import ConnectWiseMismatchError, FieldError, JournalError
from ._lockedfile import open_locked, read_all
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
logger = logging.getLogger("cw_glbatch")


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

    Opening it takes an exclusive lock that lasts until `close` or `remove`, so two runs never
    share one journal (and so the files it belongs to). The file is never reached through a
    symbolic link, must be a regular file, and is created readable by its owner only.

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
        self.recorded_source: str | None = None
        self.finished: dict[str, Any] | None = None
        self._pending: list[str] = []
        fd, created = open_locked(self.path)
        try:
            self.resumed = self._load(fd)
            # Whether a batch of this run or the one it resumes may have been sent.
            self.sent_any = bool(self.entries)
        except BaseException:
            if created:
                os.unlink(self.path)
            os.close(fd)
            raise
        self._file = os.fdopen(fd, "a", encoding="utf-8")

    def _damaged(self, number: int, what: str) -> JournalError:
        return JournalError(
            f"{self.path}:{number}: the journal is damaged ({what}). It records a run that did "
            "not finish: check that run's batches in ConnectWise, then delete the file."
        )

    def _load(self, fd: int) -> bool:
        """Read what the file records; cut a torn last line off. True if anything was."""
        data = read_all(fd)
        whole = data.rfind(b"\n") + 1
        if not whole and data and data[: len(_HEADER_START)] != _HEADER_START[: len(data)]:
            raise self._damaged(1, "it does not start with a journal header")
        for number, line in enumerate(data[:whole].split(b"\n")[:-1], 1):
            if not line:
                continue
            try:
                record = json.loads(line.decode("utf-8"))
                self._apply(record)
            except JournalError:
                raise
            except (ValueError, TypeError, KeyError) as err:
                raise self._damaged(number, _describe(err)) from None
            if self.baseline is None and not self.finished:
                raise self._damaged(number, "no header before the first record")
        if whole < len(data):  # a torn last line: the process died mid-write, before the fsync
            os.ftruncate(fd, whole)
        if self.baseline is None:
            return False  # killed before it recorded anything: nothing was sent
        if self.source_differs and self.finished is None:
            raise JournalError(
                f"{self.path} records an unfinished run of a different input file. "
                "Run that input again to finish it, or delete the journal if you are sure "
                "its batches are accounted for."
            )
        return True

    @property
    def source_differs(self) -> bool:
        """Whether the journal records a run of another input than this run's."""
        return bool(self.source and self.recorded_source and self.recorded_source != self.source)

    def _apply(self, record: object) -> None:
        if not isinstance(record, dict):
            raise TypeError(f"a record is {type(record).__name__}, not an object")
        if "journal" in record:
            self._check_header(record)
            self.baseline = _whole(record["baseline"], "baseline")
            self.stamp = _text(record["stamp"], "stamp")
            source = record.get("source")
            self.recorded_source = None if source is None else _text(source, "source")
            return
        if "done" in record:
            done = record["done"]
            if not isinstance(done, dict):
                raise TypeError("the finishing record is not an object")
            self.finished = done
            return
        if "floor" in record:
            self.floor = _whole(record["floor"], "floor")
            return
        index, state = _whole(record["i"], "i"), _status(record["s"])
        if state == "unsent":
            self.entries.pop(index, None)
            return
        error = error_from_record(record["e"]) if "e" in record else None
        if state == "failed" and error is not None and error.code == OUTCOME_UNKNOWN:
            state = "unknown"  # written so by versions that had no "unknown" record
        elif state == "failed" and (error is None or not is_final_answer(error.status)):
            self.entries.pop(index, None)  # (likewise) certainly not created: send it again
            return
        batch_id = record.get("b")
        known = Known(
            "sent" if state == "sending" else state,  # type: ignore[arg-type]
            _text(record["id"], "id"),
            None if batch_id is None else _whole(batch_id, "b"),
            error if state == "failed" else None,
        )
        self.entries[index] = Entry(_text(record["f"], "f"), known)

    def _check_header(self, record: dict[str, Any]) -> None:
        if record["journal"] != _VERSION:
            raise JournalError(f"{self.path}: journal version {record['journal']!r} is unknown")
        site, company = record.get("site"), record.get("company")
        current = self.connectwise
        if site is None or company is None:  # written by versions that did not record them
            return
        site, company = _text(site, "site"), _text(company, "company")
        if current and not same_connectwise((site, company), current):
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
        self.sent_any = True
        # The records written for every batch are formatted directly: what json.dumps would
        # write (a test holds them equal), in a tenth of the time.
        self._pending.append(f'{_batch_record(index, fingerprint, identifier)},"s":"sending"}}\n')

    def result(self, index: int, fingerprint: str, result: BatchResult) -> None:
        """Record what became of batch ``index``."""
        error = result.error
        if result.status == "created" and result.identifier is not None:
            start = _batch_record(index, fingerprint, result.identifier)
            known = "" if result.batch_id is None else f',"b":{int(result.batch_id)}'
            self._pending.append(f'{start},"s":"created"{known}}}\n')
            return
        record: dict[str, Any] = {"i": index, "f": fingerprint, "id": result.identifier}
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

    def forget(self) -> None:
        """Empty the journal, keeping it (and its lock): the run it recorded is complete."""
        self._file.flush()
        os.ftruncate(self._file.fileno(), 0)
        os.fsync(self._file.fileno())
        self.entries.clear()
        self.baseline = self.floor = self.stamp = self.recorded_source = self.finished = None
        self.resumed = self.sent_any = False

    def finish(self, record: dict[str, Any]) -> None:
        """Record, durably, that the run is over and what its result files hold."""
        self._add({"done": record})
        self.sync()

    def close(self) -> None:
        """Sync and close (releasing the lock); the file stays for a later run to resume.

        The file is closed even when the sync fails (a full disk): the records that could not
        be written are lost, which is safe, since a batch without its result record is looked
        up before anything is sent again.
        """
        if self._file.closed:
            return
        try:
            self.sync()
        finally:
            self._pending.clear()
            with contextlib.suppress(OSError):
                self._file.close()

    def remove(self) -> None:
        """Delete and close: the run finished and its results are safely stored.

        If the file cannot be deleted (its folder became read-only), it is left with a warning:
        it records a finished run, which the next run of the same files recognises.
        """
        try:
            os.unlink(self.path)  # before closing, so the lock is held until the file is gone
        except FileNotFoundError:
            pass
        except OSError as err:
            logger.warning("could not remove the journal %s (%s)", self.path, err.strerror)
        if not self._file.closed:
            self._file.close()


_HEADER_START = b'{"journal":'


def _batch_record(index: int, fingerprint: str, identifier: str) -> str:
    """The start of a batch's record, as json.dumps writes it: ``{"i":..,"f":..,"id":..``."""
    return f'{{"i":{int(index)},"f":{_json_text(fingerprint)},"id":{_json_text(identifier)}'


def _whole(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name!r} is {value!r}, not a whole number")
    return value


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name!r} is {value!r}, not a string")
    return value


def _status(value: object) -> str:
    if value not in _STATUSES:
        raise TypeError(f"'s' is {value!r}, not one of {', '.join(sorted(_STATUSES))}")
    return str(value)


_STATUSES = frozenset({"sending", "created", "failed", "unknown", "unsent"})


def _describe(err: Exception) -> str:
    if isinstance(err, KeyError):
        return f"a record lacks {err.args[0]!r}"
    if isinstance(err, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(err, json.JSONDecodeError):
        return f"not JSON: {err.msg}"
    return str(err)


def error_record(error: BatchError) -> dict[str, Any]:
    """``error`` as the journal keeps it: everything the fail file needs."""
    return {
        "status": error.status,
        "code": error.code,
        "message": error.message,
        "fields": [[f.field, f.code, f.message] for f in error.field_errors],
    }


def error_from_record(data: dict[str, Any]) -> BatchError:
    """The `BatchError` a journal record keeps (older records hold status and code only).

    Raises:
        TypeError: ``data`` is not what `error_record` writes.
    """
    if not isinstance(data, dict):
        raise TypeError(f"'e' is {data!r}, not an object")
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
