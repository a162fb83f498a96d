"""XmlResultWriter: the success and fail files, written incrementally and replaced atomically."""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from types import TracebackType
from typing import IO

from ._export import gl_ids_in
from ._models import BATCH_OPTIONS, BatchError, BatchRequest, BatchResult

__all__ = ["XmlResultWriter", "batches_document", "replace_atomically"]

_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'
# Characters XML 1.0 cannot hold, even as references; written as visible \uXXXX escapes.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


def xml_text(value: str) -> str:
    r"""``value`` as XML character data: markup escaped, ``\\r`` kept, illegal characters shown."""
    value = value.translate(_ESCAPES)
    if _NOT_XML.search(value):
        value = _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
    return value


def _element(name: str, value: object, indent: str) -> str:
    return f"{indent}<{name}>{xml_text(str(value))}</{name}>\n"


def _error_xml(error: BatchError) -> str:
    parts = ["    <error>\n"]
    if error.status is not None:
        parts.append(_element("status", error.status, "      "))
    if error.code is not None:
        parts.append(_element("code", error.code, "      "))
    parts.append(_element("message", error.message, "      "))
    if error.field_errors:
        parts.append("      <fieldErrors>\n")
        for field_error in error.field_errors:
            parts.append("        <fieldError>\n")
            if field_error.field is not None:
                parts.append(_element("field", field_error.field, "          "))
            if field_error.code is not None:
                parts.append(_element("code", field_error.code, "          "))
            parts.append(_element("message", field_error.message, "          "))
            parts.append("        </fieldError>\n")
        parts.append("      </fieldErrors>\n")
    parts.append("    </error>\n")
    return "".join(parts)


def _option_xml(request: BatchRequest) -> str:
    parts = []
    for field, element in BATCH_OPTIONS.items():
        value = getattr(request, field)
        if value is not None:
            text = ("true" if value else "false") if isinstance(value, bool) else value
            parts.append(_element(element, text, "    "))
    return "".join(parts)


def _ids_xml(request: BatchRequest, *, as_read: bool) -> str:
    """``<glRecIds>`` with every id; or, ``as_read``, the ids as the input gave them."""
    ids: list[int] | tuple[int, ...] = request.gl_rec_ids
    lists = request.gl_entry_id_lists if as_read else ()
    if lists:  # the ids of the lists are written as the lists; the rest as <glRecId>
        listed = collections.Counter(i for text in lists for i in gl_ids_in(text))
        ids = [i for i in ids if not _take(listed, i)]
    parts = []
    if ids or request.invalid_gl_rec_ids or not lists:
        parts.append("    <glRecIds>\n")
        parts.extend(f"      <glRecId>{i}</glRecId>\n" for i in ids)
        parts.extend(_element("glRecId", value, "      ") for value in request.invalid_gl_rec_ids)
        parts.append("    </glRecIds>\n")
    parts.extend(_element("glEntryIds", text, "    ") for text in lists)
    return "".join(parts)


def _take(counts: collections.Counter[int], value: int) -> bool:
    if counts[value]:
        counts[value] -= 1
        return True
    return False


def batch_xml(result: BatchResult) -> str:
    """One ``<Batch>`` element for ``result``, as the success or fail file holds it.

    It is valid input: the reader skips ``<batchId>`` and ``<error>``. The batch's options
    (``<exportInvoicesFlag>``, ...) are echoed. A created batch lists every id as a
    ``<glRecId>``; a failed one gives back what was read (``<glEntryIds>`` lists as written, and
    values the reader could not use, ``invalid_gl_rec_ids`` and ``unknown_xml``) so it keeps
    failing, with its reason, until someone corrects it.
    """
    request = result.request
    identifier = result.identifier if result.identifier is not None else request.identifier
    parts = ["  <Batch>\n"]
    if identifier is not None:
        parts.append(_element("batchIdentifier", identifier, "    "))
    if result.batch_id is not None:
        parts.append(f"    <batchId>{result.batch_id}</batchId>\n")
    parts.append(_option_xml(request))
    parts.append(_ids_xml(request, as_read=result.status == "failed"))
    parts.extend(f"    {fragment}\n" for fragment in request.unknown_xml)
    if result.error is not None:
        parts.append(_error_xml(result.error))
    parts.append("  </Batch>\n")
    return "".join(parts)


class _AtomicFile:
    """A ``<Batches>`` document built in a temp file beside its target, then renamed over it."""

    def __init__(self, path: str | os.PathLike[str], root: str = "Batches") -> None:
        self.path = os.path.abspath(os.fspath(path))
        self._root = root  # the root start tag's name and attributes
        directory, name = os.path.split(self.path)
        # mkstemp creates the file readable and writable by its owner only.
        fd, self.temp_path = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
        self._file: IO[str] = open(fd, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
        self._sha256 = hashlib.sha256()
        self._put(_DECLARATION)
        self.count = 0

    def _put(self, text: str) -> None:
        self._file.write(text)
        self._sha256.update(text.encode("utf-8"))

    def write(self, xml: str) -> None:
        if not self.count:
            self._put(f"<{self._root}>\n")
        self._put(xml)
        self.count += 1

    def finish(self) -> str:
        """Complete the document and make it durable, still under its temporary name.

        Returns the SHA-256 of the file's bytes.
        """
        self._put("</Batches>\n" if self.count else f"<{self._root}/>\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self._sha256.hexdigest()

    def replace(self) -> None:
        """Put the finished document in place in one step, and make the rename durable."""
        os.replace(self.temp_path, self.path)
        _fsync_directory(os.path.dirname(self.path))

    def discard(self) -> None:
        with contextlib.suppress(OSError):  # a full disk fails the flush; the file still closes
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp_path)


def _fsync_directory(path: str) -> None:
    if os.name != "posix":  # pragma: no cover - directories cannot be opened elsewhere
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class XmlResultWriter:
    """Writes each `BatchResult` to the success file (created) or the fail file (failed).

    Results are written as they come, so memory stays flat. The files are built under temporary
    names in their own directories and put in place together when the writer closes cleanly:
    a reader never sees half a file, and a run that fails (an exception leaves the ``with``
    block) leaves any earlier files untouched. Both files always exist after a clean close,
    holding ``<Batches/>`` when nothing belongs there. Each file can be fed back as input; the
    fail file retries exactly the batches that failed. New files are readable by their owner only.

    Args:
        success_file: Where created batches go, each with its ConnectWise ``batchId``.
        fail_file: Where failed batches go, each with an ``<error>``.
        connectwise: ``(site, company)`` the batches were sent to, written on both files'
            ``<Batches site="..." company="...">`` so a later run carries the success file over
            only against the same ConnectWise (`process_file` passes the client's).

    Example::

        with XmlResultWriter(success_file="created.xml", fail_file="failed.xml") as writer:
            report = create_batches(client, XmlBatchReader("batches.xml"), on_result=writer.write)
    """

    def __init__(
        self,
        *,
        success_file: str | os.PathLike[str],
        fail_file: str | os.PathLike[str],
        connectwise: tuple[str, str] | None = None,
    ) -> None:
        success_path = os.path.abspath(os.fspath(success_file))
        fail_path = os.path.abspath(os.fspath(fail_file))
        if os.path.normcase(success_path) == os.path.normcase(fail_path):
            raise ValueError(f"the success and fail files must differ; both are {success_path}")
        root = "Batches"
        if connectwise is not None:
            site, company = (xml_text(value).replace('"', "&quot;") for value in connectwise)
            root = f'Batches site="{site}" company="{company}"'
        self._success = _AtomicFile(success_path, root)
        try:
            self._fail = _AtomicFile(fail_path, root)
        except BaseException:
            self._success.discard()
            raise
        self._open = True

    @property
    def created(self) -> int:
        """How many results went to the success file."""
        return self._success.count

    @property
    def failed(self) -> int:
        """How many results went to the fail file."""
        return self._fail.count

    def write(self, result: BatchResult) -> None:
        """Add ``result`` to the success file if it was created, else to the fail file."""
        if not self._open:
            raise ValueError("this XmlResultWriter is closed")
        if result.status == "planned":
            raise ValueError("a dry run's planned batches are not written: nothing was created")
        target = self._success if result.status == "created" else self._fail
        target.write(batch_xml(result))

    def close(self) -> None:
        """Finish both files and put them in place. Closing again does nothing."""
        if self._open:
            self._finish()
            self._put_in_place()

    def _finish(self) -> tuple[str, str]:
        """Complete both files under their temporary names; return their SHA-256 digests."""
        self._open = False
        try:
            return self._success.finish(), self._fail.finish()
        except BaseException:
            self._discard()
            raise

    def _put_in_place(self) -> None:
        """Rename the finished files over their paths, success file first."""
        self._success.replace()
        self._fail.replace()

    def abort(self) -> None:
        """Discard what was written; files already at the paths stay as they were."""
        if self._open:
            self._open = False
            self._discard()

    def _discard(self) -> None:
        """Remove both temporary files, finished or not."""
        self._success.discard()
        self._fail.discard()

    def __enter__(self) -> XmlResultWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __repr__(self) -> str:
        return (
            f"XmlResultWriter(success_file={self._success.path!r}, fail_file={self._fail.path!r})"
        )


def batches_document(requests: Iterable[BatchRequest]) -> str:
    """A batches input file holding ``requests``, as `XmlBatchReader` reads it."""
    body = "".join(batch_xml(BatchResult(r, r.identifier, "planned")) for r in requests)
    return f"{_DECLARATION}<Batches>\n{body}</Batches>\n" if body else f"{_DECLARATION}<Batches/>\n"


def replace_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` in one step: a temporary file beside it, synced, renamed.

    A reader never sees half a file, and a failure leaves the old file as it was.
    """
    target = os.path.abspath(os.fspath(path))
    directory, name = os.path.split(target)
    fd, temp_path = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with open(fd, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_path)
        raise
    _fsync_directory(directory)
