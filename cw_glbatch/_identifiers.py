"""Which identifier each batch gets, and what makes a request unsendable before any request."""

from __future__ import annotations

import bisect
import collections
import secrets
from array import array
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from ._digest_set import DigestSet
from ._limits import MAX_GL_REC_ID, MAX_IDENTIFIER_LENGTH, is_gl_rec_id
from ._models import TEXT_OPTIONS, BatchRequest
from ._spool import IdBitmap

__all__ = [
    "BATCH_ID_VARIABLE",
    "Identifiers",
    "SeenIds",
    "identifier_problem",
    "request_problems",
    "run_stamp",
]

BATCH_ID_VARIABLE = "CONNECTWISE.BATCHID"
_RUN_PART_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O or 1/I to misread
_RUN_PART_LENGTH = 6  # 30 random bits: two runs in the same second differ


def run_stamp() -> str:
    """The base of the identifiers a run generates: UTC time and a part unique to the run.

    E.g. ``20261126T091500Z-K7Q2XM`` (23 characters, leaving room for ``-N`` suffixes within
    ConnectWise's 50), so two runs started in the same second never generate the same one.
    """
    time = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    part = "".join(secrets.choice(_RUN_PART_ALPHABET) for _ in range(_RUN_PART_LENGTH))
    return f"{time}-{part}"


class SeenIds:
    """The GL entry ids of a run's earlier batches, to refuse a batch that repeats one.

    `XmlBatchReader` refuses such a batch of a file itself; this does the same for requests
    built in memory, before anything is sent (ConnectWise would refuse the second batch).
    """

    def __init__(self) -> None:
        self._bits: IdBitmap | None = None  # reserved on first use; the pages fill as used

    def problem(self, request: BatchRequest) -> str | None:
        """Why ``request`` cannot be sent because an earlier batch holds one of its ids."""
        ids: tuple[object, ...] = request.gl_rec_ids
        if not all(map(is_gl_rec_id, ids)):
            return None  # `request_problems` refuses it already
        if self._bits is None:
            self._bits = IdBitmap()
        repeats = self._bits.add_all(array("i", request.gl_rec_ids))
        if not repeats or request.errors:  # (a reader's batch says so in its errors already)
            return None
        counts = collections.Counter(request.gl_rec_ids)
        earlier = sorted(v for v, n in collections.Counter(repeats).items() if n == counts[v])
        if not earlier:
            return None
        return f"GL entry ids already in an earlier batch of this run: {earlier[:5]}"

    def close(self) -> None:
        """Release the memory."""
        if self._bits is not None:
            self._bits.close()
            self._bits = None


def request_problems(request: BatchRequest) -> list[str]:
    """What is wrong with a request built by a caller (the reader checks the ones it reads)."""
    ids: tuple[object, ...] = request.gl_rec_ids
    problems = []
    if not ids and not request.errors:
        problems.append("the batch has no GL entry ids")
    bad = [i for i in ids if not is_gl_rec_id(i)]
    if bad:
        problems.append(f"not GL entry ids (whole numbers from 1 to {MAX_GL_REC_ID}): {bad[:5]}")
    if len(set(ids)) != len(ids) and not request.errors:
        problems.append("a GL entry id is repeated in the batch")
    for name, value in request.batch_options().items():
        kind = str if name in TEXT_OPTIONS else bool
        if not isinstance(value, kind):
            problems.append(f"{name} must be {kind.__name__} or None, not {value!r}")
    if (request.export_invoices, request.export_expenses, request.export_products) == (
        False,
        False,
        False,
    ):
        problems.append(
            "exportInvoicesFlag, exportExpensesFlag and exportProductsFlag are all false: "
            "ConnectWise needs a batch to export at least one kind"
        )
    return problems


def identifier_problem(identifier: str, source: str) -> str | None:
    """Why ``identifier`` (named ``source`` in the message) cannot name a batch, or None."""
    if not identifier.strip():
        return f"{source} is empty"
    if len(identifier) > MAX_IDENTIFIER_LENGTH:
        return f"{source} is longer than {MAX_IDENTIFIER_LENGTH} characters"
    if any(ord(c) < 32 and c not in "\t\n\r" for c in identifier):
        return f"{source} holds control characters"
    return None


class Identifiers:
    """Chooses each batch's identifier: its own, else the variable, else the run's stamp.

    ``stamp`` is the run's `run_stamp` (the resumed run's, from its journal); a new one is made
    when it is None. ``reserved`` are identifiers the resumed run gave already.

    What it remembers stays small however many batches a run has. The identifiers it generates
    are the base (the variable, else the stamp) numbered 1, 2, 3... (`numbered`), so whether a
    string is one of them follows from its shape and the count so far: they are not stored. The
    identifiers given by callers, or known from the journal or a success file, are kept as
    digests (`DigestSet`, about 32 bytes each), which can only err towards a refusal. Of the
    reserved ones only the numbers of those shaped like generated ones are kept: no other can
    equal a generated one.
    """

    def __init__(
        self, variables: Mapping[str, Any] | None, stamp: str | None, reserved: Iterable[str]
    ) -> None:
        value = (variables or {}).get(BATCH_ID_VARIABLE)
        self._variable = None if value is None else str(value).strip()
        self.stamp = stamp or run_stamp()
        self._base = self.stamp if self._variable is None else self._variable
        self._given = DigestSet()  # given by callers, or known: used whether generated or not
        self._generated = 0  # the numbers 1.._generated of `_base` are used or passed over
        # given to batches by the run this one resumes: the numbers of those of generated shape
        self._reserved = array("q", sorted({n for r in reserved for n in self._numbers(r)}))

    def assign(
        self, request: BatchRequest, known: str | None = None
    ) -> tuple[str | None, str | None]:
        """The identifier to use, and a reason the batch cannot be sent (or None).

        ``known`` is the identifier the batch already has, from the journal of the run being
        resumed or from an earlier run's success file; it is kept.
        """
        if known is not None:
            self._given.add(known)
            return known, None
        if request.identifier is not None:
            identifier = request.identifier
            problem = identifier_problem(identifier, "batchIdentifier")
            if problem:  # refused for what it is; never sent, so it names no batch
                return identifier, problem
            if self._generated_earlier(identifier) or not self._given.add(identifier):
                return identifier, (
                    f"batchIdentifier {identifier!r} is already used by an earlier batch of this "
                    "run; each batch needs its own, or the two could not be told apart"
                )
            return identifier, None
        if self._variable is not None:
            problem = identifier_problem(self._variable, BATCH_ID_VARIABLE)
            if problem:
                return None, problem
        return self._unique(), None

    def _generated_earlier(self, identifier: str) -> bool:
        """Whether ``identifier`` is of generated shape with a number counted already."""
        numbers = self._numbers(identifier)
        # A reserved one is passed over, never generated: used only if given or known.
        return any(n <= self._generated for n in numbers) and not self._is_reserved(numbers)

    def _is_reserved(self, numbers: Iterable[int]) -> bool:
        reserved = self._reserved
        for n in numbers:
            at = bisect.bisect_left(reserved, n)
            if at < len(reserved) and reserved[at] == n:
                return True
        return False

    def _unique(self) -> str:
        """The base numbered with the next number whose identifier is not used nor reserved."""
        while True:
            self._generated += 1
            number = self._generated
            candidate = numbered(self._base, number)
            # (number 1's candidate too when a 50-character base ends in "-N")
            same_as_first = number > 1 and candidate == self._base
            if not (same_as_first or candidate in self._given or self._is_reserved((number,))):
                return candidate

    def _numbers(self, identifier: str) -> list[int]:
        """The numbers ``n`` for which ``numbered(base, n)`` is ``identifier`` (at most two)."""
        if len(identifier) > MAX_IDENTIFIER_LENGTH:
            return []
        numbers = [1] if identifier == self._base else []
        digits = identifier.rpartition("-")[2]
        if (
            digits != identifier
            and digits.isascii()
            and digits.isdigit()
            and 2 <= int(digits) < _NUMBER_LIMIT
            and numbered(self._base, int(digits)) == identifier
        ):
            numbers.append(int(digits))
        return numbers


_NUMBER_LIMIT = 1 << 63  # (a run never counts this far; an array("q") holds the numbers below)


def numbered(base: str, number: int) -> str:
    """The identifier generated as ``number`` from ``base``: ``base``, ``base-2``, ``base-3``...

    Shortened to end in its suffix within 50 characters (``xxx-12`` of a long ``base``).
    """
    suffix = "" if number == 1 else f"-{number}"
    return base[: MAX_IDENTIFIER_LENGTH - len(suffix)] + suffix
