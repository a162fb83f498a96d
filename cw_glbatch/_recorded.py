"""What earlier success and fail files record: the one reader of their outcomes.

`XmlResultWriter` writes ``<Batches site="..." company="...">`` and, per batch, its
``<batchId>`` (success file) or ``<error>`` (fail file). A later run reads them back here, keyed
by the batch's GL entry ids (`ids_digest`):

- from the success file, every batch it records is created (``<batchId>`` may be missing when
  the run that wrote it could not learn the id);
- from a fail file given as input, the batches marked ``OutcomeUnknown`` may exist.

Reading streams with defusedxml. A file that is missing or not such a file records nothing:
the run then decides from ConnectWise's answers alone.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import attrs
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from ._journal import ids_digest
from ._models import OUTCOME_UNKNOWN
from ._plan import Known

__all__ = ["Recorded", "read_recorded"]

_CHUNK = 1 << 20


@attrs.frozen
class Recorded:
    """What one file records.

    Attributes:
        connectwise: ``(site, company)`` the file was written against, when it says.
        batches: What it records of each batch, by `ids_digest` of its GL entry ids.
    """

    connectwise: tuple[str, str] | None
    batches: dict[bytes, Known]


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
    batches: dict[bytes, Known] = {}
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
                batches[ids_digest(map(int, texts))] = known
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
