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
sent as usual. A killed process can leave a torn last line; it is cut off before anything is
appended. When the run is over, a ``{"done": {...}}`` record says what the result files hold
(their digests and the counts), durable before they are put in place, so that a run killed
between putting them in place and removing the journal is recognised as finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
from collections.abc import Iterable
from typing import Any

import attrs
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from ._exceptions import JournalError
from ._models import BatchRequest, BatchResult

if os.name == "posix":
    import fcntl

__all__ = ["Journal", "file_digest", "fingerprint", "ids_digest", "previous_successes"]

_VERSION = 1
logger = logging.getLogger("cw_glbatch")


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
    """An append-only, fsynced record of a run, resumed when it already exists.

    Opening it takes an exclusive lock that lasts until `close` or `remove`, so two runs never
    share one journal (and so the files it belongs to). The file is never reached through a
    symbolic link, must be a regular file, and is created readable by its owner only.
    """

    def __init__(self, path: str | os.PathLike[str], *, source: str | None = None) -> None:
        self.path = os.fspath(path)
        self.entries: dict[int, Entry] = {}
        # Batches an earlier, finished run created (from its success file), by `ids_digest`.
        self.carried: dict[bytes, tuple[str, int]] = {}
        self.baseline: int | None = None
        self.stamp: str | None = None
        self.source = source
        self.recorded_source: str | None = None
        self.finished: dict[str, Any] | None = None
        self._pending: list[str] = []
        fd, created = _open_locked(self.path)
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
        data = _read_all(fd)
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
            if record["journal"] != _VERSION:
                raise JournalError(f"{self.path}: journal version {record['journal']!r} is unknown")
            self.baseline = _whole(record["baseline"], "baseline")
            self.stamp = _text(record["stamp"], "stamp")
            source = record.get("source")
            self.recorded_source = None if source is None else _text(source, "source")
        elif "done" in record:
            done = record["done"]
            if not isinstance(done, dict):
                raise TypeError("the finishing record is not an object")
            self.finished = done
        else:
            batch_id = record.get("b")
            self.entries[_whole(record["i"], "i")] = Entry(
                _text(record["f"], "f"),
                _text(record["id"], "id"),
                _status(record["s"]),
                None if batch_id is None else _whole(batch_id, "b"),
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
        self.sent_any = True
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

    def forget(self) -> None:
        """Empty the journal, keeping it (and its lock): the run it recorded is complete."""
        self._file.flush()
        os.ftruncate(self._file.fileno(), 0)
        os.fsync(self._file.fileno())
        self.entries.clear()
        self.baseline = self.stamp = self.recorded_source = self.finished = None
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
_OPEN_FLAGS = os.O_RDWR | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _open_locked(path: str) -> tuple[int, bool]:
    """Open (or create, 0600) ``path`` without following a link, and lock it for this run.

    Returns the descriptor and whether the file was created. Raises `JournalError` for a link,
    a file that is not a regular one, or a journal another process holds.
    """
    while True:
        created = True
        try:
            # O_NONBLOCK: opening a FIFO placed here must not hang; regular files ignore it.
            fd = os.open(path, _OPEN_FLAGS | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            created = False
            try:
                fd = os.open(path, _OPEN_FLAGS | getattr(os, "O_NONBLOCK", 0))
            except FileNotFoundError:
                continue  # removed in between by the run that held it: create it
            except OSError as err:
                if os.path.islink(path):
                    raise JournalError(
                        f"{path} is a symbolic link; a journal is never written through one. "
                        "Remove the link, or choose another --success file."
                    ) from None
                raise JournalError(f"cannot open the journal {path}: {err.strerror}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise JournalError(
                    f"{path} is not a regular file; the journal must be one. "
                    "Remove it, or choose another --success file."
                )
            _lock(fd, path)
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            return fd, created
        os.close(fd)  # the run that held it removed it as we waited: start again


def _lock(fd: int, path: str) -> None:
    if os.name != "posix":  # pragma: no cover - no advisory locks elsewhere
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise JournalError(
            f"another cw-glbatch run is using {path} and the files it belongs to; nothing was "
            "sent. Wait for it to finish (or stop it), then run again."
        ) from None


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


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


_STATUSES = frozenset({"sending", "created", "failed"})


def _describe(err: Exception) -> str:
    if isinstance(err, KeyError):
        return f"a record lacks {err.args[0]!r}"
    if isinstance(err, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(err, json.JSONDecodeError):
        return f"not JSON: {err.msg}"
    return str(err)


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
