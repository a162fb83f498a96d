"""The values that flow through a run: what to create, and what became of it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar, get_args

import attrs

from ._exceptions import ApiError, FieldError

__all__ = [
    "BATCH_OPTIONS",
    "INVALID_INPUT",
    "NOT_SENT",
    "OUTCOME_UNKNOWN",
    "STATUSES",
    "TEXT_OPTIONS",
    "AccountingBatch",
    "BatchError",
    "BatchRequest",
    "BatchResult",
    "Progress",
    "RunReport",
    "Status",
]

T = TypeVar("T")

Status = Literal["created", "failed", "planned"]
STATUSES: tuple[Status, ...] = get_args(Status)

# This library's own `BatchError.code`s, for batches ConnectWise gave no answer about.
INVALID_INPUT = "InvalidInput"  # the batch cannot be sent as it is
NOT_SENT = "NotSent"  # the run stopped before sending it
OUTCOME_UNKNOWN = "OutcomeUnknown"  # sent, and whether it was created could not be told

# The per-batch options of a request: BatchRequest's field, and the XML element that carries it.
BATCH_OPTIONS: dict[str, str] = {
    "export_invoices": "exportInvoicesFlag",
    "export_expenses": "exportExpensesFlag",
    "export_products": "exportProductsFlag",
    "summarize_expenses": "summarizeExpenses",
    "gl_interface_identifier": "glInterfaceIdentifier",
}
TEXT_OPTIONS = frozenset({"gl_interface_identifier"})  # the others are true or false


def _tuple_of_int(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(values)


def _tuple_of_str(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _tuple_of_field_errors(values: Iterable[FieldError]) -> tuple[FieldError, ...]:
    return tuple(values)


@attrs.frozen
class BatchRequest:
    """One batch to create: a label and the GL entry record ids to put in it.

    `XmlBatchReader` yields these, one per ``<Batch>``; callers may also build them directly,
    e.g. ``BatchRequest(gl_rec_ids=[320042, 320044])``. Sequences given for the tuple fields are
    converted to tuples. A run refuses, before sending anything, a request without ids and one
    repeating an id of an earlier request, as the reader does for a file.

    Attributes:
        identifier: The ``batchIdentifier`` as written in the file, or ``None`` (the default)
            when absent: the run then supplies one.
        gl_rec_ids: The GL entry record ids that could be read, in file order.
        line: Line of the ``<Batch>`` start tag in the input, ``0`` when not read from a file.
        errors: Problems found while reading, each starting with its line. A batch with errors
            is never sent; it is reported failed with them.
        invalid_gl_rec_ids: ``<glRecId>`` contents that are not valid ids, verbatim, so that a
            fail file gives them back for correction instead of dropping them.
        unknown_xml: Elements or text inside the ``<Batch>`` that the reader does not know,
            re-serialized, kept for the same reason.
        gl_entry_id_lists: The ``<glEntryIds>`` values as written (``"1010,1011,1012"``), a
            tuple; the valid ids in them are in ``gl_rec_ids`` too. Kept so that a fail file
            gives the lists back as they were; callers building requests leave it empty.
        export_invoices: ``exportInvoicesFlag`` for the batch; ``None`` when not given (sent
            as ``true``, as are the other two flags when not given).
        export_expenses: ``exportExpensesFlag``; ``None`` when not given.
        export_products: ``exportProductsFlag``; ``None`` when not given.
        summarize_expenses: ``summarizeExpenses``; ``None`` when not given (not sent).
        gl_interface_identifier: ``glInterfaceIdentifier``; ``None`` when not given (not sent).
    """

    identifier: str | None = None
    gl_rec_ids: tuple[int, ...] = attrs.field(default=(), converter=_tuple_of_int)
    line: int = 0
    errors: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    invalid_gl_rec_ids: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    unknown_xml: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    # No converter: it would cost every request, and only the reader fills this in.
    gl_entry_id_lists: tuple[str, ...] = attrs.field(default=(), kw_only=True)
    export_invoices: bool | None = attrs.field(default=None, kw_only=True)
    export_expenses: bool | None = attrs.field(default=None, kw_only=True)
    export_products: bool | None = attrs.field(default=None, kw_only=True)
    summarize_expenses: bool | None = attrs.field(default=None, kw_only=True)
    gl_interface_identifier: str | None = attrs.field(default=None, kw_only=True)

    def batch_options(self) -> dict[str, Any]:
        """The options given for the batch, as `ConnectWiseClient.create_batch` keywords."""
        values = {name: getattr(self, name) for name in BATCH_OPTIONS}
        return {name: value for name, value in values.items() if value is not None}


@attrs.frozen
class BatchError:
    """Why a batch was not created, structured as ConnectWise reports it.

    Attributes:
        message: What went wrong, readable on its own.
        status: The HTTP status ConnectWise answered with, ``None`` when the batch was not sent
            or no answer arrived.
        code: ConnectWise's error code (``InvalidObject``, ...), or this library's own for
            batches it did not send (``InvalidInput``, ``NotSent``, ``DuplicateIdentifier``,
            ``OutcomeUnknown``).
        field_errors: ConnectWise's per-field errors.
    """

    message: str
    status: int | None = None
    code: str | None = None
    field_errors: tuple[FieldError, ...] = attrs.field(default=(), converter=_tuple_of_field_errors)

    @classmethod
    def from_api_error(cls, error: ApiError) -> BatchError:
        """The structured form of an `ApiError` raised by the client."""
        return cls(error.message, error.status, error.code, error.field_errors)

    def __str__(self) -> str:
        head = " ".join(str(p) for p in (self.status, self.code) if p is not None)
        text = f"{head}: {self.message}" if head else self.message
        if self.field_errors:
            text += " (" + "; ".join(str(f) for f in self.field_errors) + ")"
        return text


def _check_outcome(instance: BatchResult, attribute: object, value: BatchError | None) -> None:
    if instance.status == "failed" and value is None:
        raise ValueError("a failed BatchResult needs an error")
    if instance.status != "failed" and value is not None:
        raise ValueError(f"a {instance.status} BatchResult cannot carry an error")


def _check_status(instance: BatchResult, attribute: object, value: str) -> None:
    if value not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, not {value!r}")


@attrs.frozen
class BatchResult:
    """What became of one `BatchRequest`.

    Attributes:
        request: The request, as read.
        identifier: The ``batchIdentifier`` actually used (the request's own, the run's
            ``CONNECTWISE.BATCHID`` variable, or a generated one); ``None`` if none was assigned.
        status: ``"created"``, ``"failed"``, or ``"planned"`` (a dry run found nothing wrong
            and would send it).
        batch_id: ConnectWise's id of the created batch.
        error: Why the batch failed; ``None`` when it was created.
    """

    request: BatchRequest
    identifier: str | None
    status: Status = attrs.field(validator=_check_status)
    batch_id: int | None = None
    error: BatchError | None = attrs.field(default=None, validator=_check_outcome)

    @property
    def ok(self) -> bool:
        """True when the batch was created."""
        return self.status == "created"


def _optional(data: Mapping[str, Any], key: str, kind: type[T]) -> T | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{key} is {type(value).__name__}, expected {kind.__name__}")
    return value


@attrs.frozen
class AccountingBatch:
    """A GL batch as ConnectWise's ``GET /finance/accounting/batches`` describes it.

    Attributes:
        id: ConnectWise's record id of the batch.
        batch_identifier: The label shown as "Batch ID" in the Accounting Interface.
        closed: ``closedFlag``.
        export_invoices: ``exportInvoicesFlag``.
        export_expenses: ``exportExpensesFlag``.
        export_products: ``exportProductsFlag``.
        date_entered: ``_info.dateEntered``, as ConnectWise writes it (ISO 8601, UTC).
    """

    id: int
    batch_identifier: str | None = None
    closed: bool | None = None
    export_invoices: bool | None = None
    export_expenses: bool | None = None
    export_products: bool | None = None
    date_entered: str | None = None

    @classmethod
    def from_json(cls, data: object) -> AccountingBatch:
        """Decode one ``AccountingBatch`` object; `ValueError` if it is not one."""
        if not isinstance(data, Mapping):
            raise ValueError(f"expected an object, got {type(data).__name__}")
        batch_id = _optional(data, "id", int)
        if batch_id is None:
            raise ValueError("the batch has no id")
        info = data.get("_info")
        return cls(
            id=batch_id,
            batch_identifier=_optional(data, "batchIdentifier", str),
            closed=_optional(data, "closedFlag", bool),
            export_invoices=_optional(data, "exportInvoicesFlag", bool),
            export_expenses=_optional(data, "exportExpensesFlag", bool),
            export_products=_optional(data, "exportProductsFlag", bool),
            date_entered=_optional(info, "dateEntered", str) if isinstance(info, Mapping) else None,
        )


@attrs.frozen
class Progress:
    """How far a run has got: what `create_batches` passes to its ``progress`` callback.

    Attributes:
        done: Batches whose result is known (or, for a few, being looked up), in input order.
        total: How many batches the input holds, or ``None`` when that is not known.
        created: Batches created so far (including those carried over or resumed).
        failed: Batches failed so far.
        planned: Batches a dry run would create.
    """

    done: int
    total: int | None
    created: int = 0
    failed: int = 0
    planned: int = 0

    @property
    def unsettled(self) -> int:
        """Batches done whose outcome is still being looked up (a POST without an answer)."""
        return self.done - self.created - self.failed - self.planned


@attrs.frozen
class RunReport:
    """What a run did.

    Attributes:
        results: Every `BatchResult`, in input order; empty when the run was asked not to keep
            them (``keep_results=False``, as `process_file` does: its results are in the files).
        counts: How many batches ended in each status: ``created``, ``failed``, ``planned``.
        elapsed: Seconds the run took.
        requests: HTTP requests the client sent during the run.
        stopped: Why sending stopped before the end (authentication refused, ConnectWise
            unreachable), or ``None``. The batches not sent are failed with that reason.
        dry_run: Whether this was a dry run (nothing was created).
        stop_error: The error that made the run stop early, or ``None``: an
            `AuthenticationError` (401), a `PermissionDeniedError` (403), a `NotFoundError` for
            a company id ConnectWise does not know, an `ApiConnectionError`, ...
        unsettled: How many batches the run could not settle: created but with their id not
            learned, or failed ``OutcomeUnknown``. The journal is kept for them;
            running the same command again settles them.
    """

    results: tuple[BatchResult, ...]
    counts: Mapping[str, int]
    elapsed: float
    requests: int = 0
    stopped: str | None = None
    dry_run: bool = False
    stop_error: ApiError | None = attrs.field(default=None, eq=False, repr=False)
    unsettled: int = 0

    @property
    def created(self) -> tuple[BatchResult, ...]:
        """The kept results of batches created."""
        return tuple(r for r in self.results if r.status == "created")

    @property
    def failed(self) -> tuple[BatchResult, ...]:
        """The kept results of batches not created."""
        return tuple(r for r in self.results if r.status == "failed")

    @property
    def total(self) -> int:
        """How many batches the run saw."""
        return sum(self.counts.values())

    @property
    def ok(self) -> bool:
        """True when every batch was created with its id, and the run was not stopped."""
        return not self.counts.get("failed") and self.stopped is None and not self.unsettled
