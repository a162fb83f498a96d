"""The values that flow through a run: what to create, and what became of it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import attrs

from ._exceptions import ApiError, FieldError

__all__ = ["BatchError", "BatchRequest", "BatchResult", "Status"]

Status = Literal["created", "failed"]


def _tuple_of_int(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(values)


def _tuple_of_str(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _tuple_of_field_errors(values: Iterable[FieldError]) -> tuple[FieldError, ...]:
    return tuple(values)


@attrs.frozen
class BatchRequest:
    """One batch to create: a label and the GL entry record ids to put in it.

    `XmlBatchReader` yields these, one per ``<Batch>``; callers may also build them directly.
    Sequences given for the tuple fields are converted to tuples.

    Attributes:
        identifier: The ``batchIdentifier`` as written in the file, or ``None`` when absent
            (the run then supplies one).
        gl_rec_ids: The GL entry record ids that could be read, in file order.
        line: Line of the ``<Batch>`` start tag in the input, ``0`` when not read from a file.
        errors: Problems found while reading, each starting with its line. A batch with errors
            is never sent; it is reported failed with them.
        invalid_gl_rec_ids: ``<glRecId>`` contents that are not valid ids, verbatim, so that a
            fail file gives them back for correction instead of dropping them.
        unknown_xml: Elements or text inside the ``<Batch>`` that the reader does not know,
            re-serialized, kept for the same reason.
    """

    identifier: str | None
    gl_rec_ids: tuple[int, ...] = attrs.field(converter=_tuple_of_int)
    line: int = 0
    errors: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    invalid_gl_rec_ids: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    unknown_xml: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)


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
    if instance.status == "created" and value is not None:
        raise ValueError("a created BatchResult cannot carry an error")


def _check_status(instance: BatchResult, attribute: object, value: str) -> None:
    if value not in ("created", "failed"):
        raise ValueError(f"status must be 'created' or 'failed', not {value!r}")


@attrs.frozen
class BatchResult:
    """What became of one `BatchRequest`.

    Attributes:
        request: The request, as read.
        identifier: The ``batchIdentifier`` actually used (the request's own, the run's
            ``CONNECTWISE.BATCHID`` variable, or a generated one); ``None`` if none was assigned.
        status: ``"created"`` or ``"failed"``.
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
