"""What earlier success and fail files record: the one reader of their outcomes.

`XmlResultWriter` writes ``<Batches site="..." company="...">`` and, per batch, its
``<batchId>`` (success file) or ``<error>`` (fail file). A later run reads them back here, keyed
by the batch's GL entry ids (`ids_digest`):

- from the success file, every batch it records is created (``<batchId>`` may be missing when
  the run that wrote it could not learn the id);
- from a fail file given as input, the batches marked ``OutcomeUnknown`` may exist.

Reading streams with defusedxml. A file that is missing or not such a file records nothing:
the run then decides from ConnectWise's answers alone. What a file records is kept compactly
(`RecordedBatches`: some 70 bytes a batch, where a dict of `Known` took about 260), since a
rerun into a success file of a million batches holds all of it for the whole run.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

import attrs
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from ._digest_set import DigestMap
from ._journal import ids_digest
from ._models import OUTCOME_UNKNOWN
from ._plan import Known

__all__ = ["FirstRecord", "Recorded", "RecordedBatches", "read_recorded"]

_CHUNK = 1 << 20
_NO_ID = -1  # (in `RecordedBatches`: a created batch whose id the file does not give)


class RecordedBatches(Mapping[bytes, Known]):
    """What a file records of each batch, by `ids_digest`: a ``created`` or ``unknown`` `Known`.

    Stored as columns (state, batch id, identifier bytes) with the digests in a `DigestMap`,
    and a `Known` made when one is asked for. A digest added again takes the later record.
    """

    def __init__(self) -> None:
        self._rows = DigestMap()  # digest -> row
        self._created = bytearray()  # by row: 1 created, 0 unknown
        self._batch_ids = array("q")  # by row; _NO_ID when not known, or in _big_ids
        self._big_ids: dict[int, int] = {}  # by row: ids beyond 64 bits (not ConnectWise's)
        self._texts = bytearray()  # the identifiers' UTF-8, one after another
        self._ends = array("Q")  # by row: where its identifier ends in _texts

    def add(self, digest: bytes, known: Known) -> None:
        """Record ``known`` for the batch of ``digest``."""
        row, batch_id = len(self._created), known.batch_id
        self._rows.put(digest, row)
        self._created.append(known.state == "created")
        if batch_id is not None and batch_id >= 1 << 63:
            self._big_ids[row], batch_id = batch_id, None
        self._batch_ids.append(_NO_ID if batch_id is None else batch_id)
        self._texts += known.identifier.encode("utf-8", "surrogatepass")
        self._ends.append(len(self._texts))

    def __getitem__(self, digest: bytes) -> Known:
        row = self._rows.get(digest)
        if row is None:
            raise KeyError(digest)
        start = self._ends[row - 1] if row else 0
        identifier = self._texts[start : self._ends[row]].decode("utf-8", "surrogatepass")
        if not self._created[row]:
            return Known("unknown", identifier)
        batch_id = self._batch_ids[row]
        if batch_id == _NO_ID:
            return Known("created", identifier, self._big_ids.get(row))
        return Known("created", identifier, batch_id)

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._rows)

    def count_missing(self, digests: Iterable[bytes]) -> int:
        """How many recorded batches are none of ``digests`` (read until every one is found)."""
        left = len(self)
        found = bytearray(len(self._created))  # by row
        for digest in digests if left else ():
            row = self._rows.get(digest)
            if row is not None and not found[row]:
                found[row] = 1
                left -= 1
                if not left:
                    break
        return left


class FirstRecord(Mapping[bytes, Known]):
    """What the first of several files' records says of each batch (a read-only ChainMap)."""

    def __init__(self, *records: RecordedBatches) -> None:
        self._records = records

    def __getitem__(self, digest: bytes) -> Known:
        for batches in self._records:
            known = batches.get(digest)
            if known is not None:
                return known
        raise KeyError(digest)

    def __len__(self) -> int:
        return len({digest for batches in self._records for digest in batches})

    def __iter__(self) -> Iterator[bytes]:
        return iter({digest: None for batches in self._records for digest in batches})

    def __bool__(self) -> bool:
        return any(self._records)


@attrs.frozen
class Recorded:
    """What one file records.

    Attributes:
        connectwise: ``(site, company)`` the file was written against, when it says.
        batches: What it records of each batch, by `ids_digest` of its GL entry ids.
    """

    connectwise: tuple[str, str] | None
    batches: RecordedBatches


def read_recorded(
    path: str | os.PathLike[str], kind: Literal["success", "fail"]
) -> Recorded | None:
    """The created batches of a success file, or the ``OutcomeUnknown`` ones of a fail file.

    Returns None when the file is missing, unreadable, not such a file, or (for ``"fail"``)
    holds no ``OutcomeUnknown`` mark; the last is checked with a plain byte scan first, so
    reading an ordinary input file costs little.
    """
    if kind == "fail" and not _mentions(path, OUTCOME_UNKNOWN.encode()):
        return None
    batches = RecordedBatches()
    connectwise = None
    try:
        for event, element in iterparse(os.fspath(path), ("start", "end"), forbid_dtd=True):
            if event == "start":
                if element.tag == "Batches":
                    site, company = element.get("site"), element.get("company")
                    connectwise = (site, company) if site and company else None
                continue
            if element.tag != "Batch":
                continue
            known = _known(element, kind)
            texts = [(e.text or "").strip() for e in element.iterfind("glRecIds/glRecId")]
            if known is not None and all(t.isdigit() for t in texts):  # else it was never sent
                batches.add(ids_digest(map(int, texts)), known)
            element.clear()
    except (OSError, ValueError, SyntaxError, DefusedXmlException):
        return None
    return Recorded(connectwise, batches)


def _known(element: Any, kind: str) -> Known | None:
    identifier = (element.findtext("batchIdentifier") or "").strip()
    code = (element.findtext("error/code") or "").strip()
    if not identifier:
        return None
    if kind == "fail":
        return Known("unknown", identifier) if code == OUTCOME_UNKNOWN else None
    batch_id = (element.findtext("batchId") or "").strip()
    return Known("created", identifier, int(batch_id) if batch_id.isdigit() else None)


def _mentions(path: str | os.PathLike[str], word: bytes) -> bool:
    try:
        with open(path, "rb") as stream:
            tail = b""
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                if word in tail + chunk:
                    return True
                tail = chunk[-len(word) :]
    except OSError:
        return False
    return False
