"""Exceptions raised by cw_glbatch.

The tree::

    CwGlBatchError
    ├── InputError                   the input file cannot be used (file:line:column in the message)
    ├── JournalError                 a run journal belongs to another input, is damaged or in use
    ├── ConnectWiseMismatchError     a journal or success file records another ConnectWise
    ├── ResultsNotWrittenError       batches were sent, the result files could not be written
    ├── ConfigurationError          the client cannot be set up as asked (missing credentials, ...)
    ├── ClientClosedError            a call on a closed ConnectWiseClient
    └── ApiError                     ConnectWise answered with an error, or could not be reached
        ├── ValidationError          400 (with ConnectWise's field errors)
        ├── AuthenticationError      401
        ├── PermissionDeniedError    403
        ├── NotFoundError            404
        ├── ConflictError            409
        ├── RateLimitError           429
        ├── ServerError              5xx
        ├── OutcomeUnknownError      a POST may or may not have been processed
        └── ApiConnectionError       the request did not get an answer
            └── ApiTimeoutError

No message, ``repr`` or attribute of these exceptions holds a credential: the client builds them
from the method, the path and ConnectWise's answer only.
"""

from __future__ import annotations

import attrs

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "ApiTimeoutError",
    "AuthenticationError",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "ConnectWiseMismatchError",
    "CwGlBatchError",
    "FieldError",
    "InputError",
    "JournalError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResultsNotWrittenError",
    "ServerError",
    "ValidationError",
]


class CwGlBatchError(Exception):
    """Base class of every exception cw_glbatch raises on purpose."""


class InputError(CwGlBatchError):
    """The input cannot be used as a whole; nothing was sent.

    ``str(error)`` reads ``file:line:column: what is wrong. What to do.``

    Attributes:
        source: The file's path, or a name for a stream (``<stream>`` when it has none).
        line: 1-based line of the problem, or ``None`` when it is not about a position.
        column: 1-based column, or ``None``.
        reason: The message without the position.
    """

    def __init__(
        self, reason: str, *, source: str, line: int | None = None, column: int | None = None
    ) -> None:
        self.source = source
        self.line = line
        self.column = column
        self.reason = reason
        where = source
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {reason}")


class ConfigurationError(CwGlBatchError):
    """The client or a run cannot be set up as asked; nothing was sent.

    A credential is missing or cannot be sent, a URL is unsafe, an option is out of range, or an
    output path cannot be used (files that collide, a directory, a folder that is missing).
    """


class JournalError(CwGlBatchError):
    """A run journal cannot be used: another input's unfinished run, damaged, or in use.

    Nothing was sent. The message says what to do: run the input the journal belongs to, or
    delete the journal once its batches are accounted for.
    """


class ConnectWiseMismatchError(CwGlBatchError):
    """A journal or success file records runs against another ConnectWise site or company.

    Nothing was sent: what it records would be wrong here (batches reported created that this
    ConnectWise does not have). The message says what to do: run against the ConnectWise it
    names, or give other output files.
    """


class ResultsNotWrittenError(CwGlBatchError):
    """Batches may have been created, but the result files could not be written.

    The disk filled up, or a permission changed, during the run. The journal keeps what was
    created: once the cause is fixed, the same call finishes the job without sending anything
    twice. The earlier result files, if any, are as they were.

    Attributes:
        journal: The path of the journal that keeps the run.
    """

    def __init__(self, message: str, *, journal: str) -> None:
        self.journal = journal
        super().__init__(message)


class ClientClosedError(CwGlBatchError):
    """A request was made on a ConnectWiseClient that has been closed."""


@attrs.frozen
class FieldError:
    """One entry of ConnectWise's ``errors[]``: a problem with one field of the request.

    Attributes:
        message: What ConnectWise said about the field.
        field: The field's name, e.g. ``processedRecordIds``, when given.
        code: ConnectWise's code for it, e.g. ``InvalidField``, when given.
    """

    message: str
    field: str | None = None
    code: str | None = None

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ApiError(CwGlBatchError):
    """ConnectWise answered a request with an error, or the request got no usable answer.

    Attributes:
        message: A readable description (ConnectWise's message when it sent one).
        method: HTTP method of the request.
        path: Path of the request below the API root, without query string.
        status: HTTP status, or ``None`` when no answer arrived.
        code: ConnectWise's error code (``InvalidObject``, ``Unauthorized``, ...), when given.
        field_errors: ConnectWise's ``errors[]``, one :class:`FieldError` each.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        status: int | None = None,
        code: str | None = None,
        field_errors: tuple[FieldError, ...] = (),
    ) -> None:
        self.message = message
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.field_errors = field_errors
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = []
        if self.method or self.path:
            parts.append(f"{self.method} {self.path}".strip() + ":")
        if self.status is not None:
            parts.append(str(self.status))
        if self.code:
            parts.append(self.code)
        head = " ".join(parts)
        text = f"{head} {self.message}" if head else self.message
        if self.field_errors:
            text += " (" + "; ".join(str(f) for f in self.field_errors) + ")"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ValidationError(ApiError):
    """400: ConnectWise refused the request's content; see ``field_errors``."""


class AuthenticationError(ApiError):
    """401: the company id, public key or private key is wrong, or the key is inactive."""


class PermissionDeniedError(ApiError):
    """403: the API member lacks a permission (Finance > Accounting Interface) or clientId."""


class NotFoundError(ApiError):
    """404: the record or the path does not exist."""


class ConflictError(ApiError):
    """409: the request conflicts with the record's current state."""


class RateLimitError(ApiError):
    """429: ConnectWise throttled the caller; ``retry_after`` is its hint in seconds, if any."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        method: str = "",
        path: str = "",
        status: int | None = 429,
        code: str | None = None,
        field_errors: tuple[FieldError, ...] = (),
    ) -> None:
        self.retry_after = retry_after
        super().__init__(
            message, method=method, path=path, status=status, code=code, field_errors=field_errors
        )


class ServerError(ApiError):
    """5xx: ConnectWise, or a proxy in front of it, failed to handle the request."""


class OutcomeUnknownError(ApiError):
    """A POST was sent, but whether ConnectWise processed it is unknown.

    Raised for a read timeout, a connection dropped after sending, and answers that may come
    after the change was committed: 408, and any 5xx except 503, 521, 522, 523, 525 and 526.
    The client never re-sends such a request: the caller must look the record up first
    (``create_batches`` does), so that nothing is created twice.
    """


class ApiConnectionError(ApiError):
    """The request could not be completed: connection refused, reset, TLS failure, ..."""


class ApiTimeoutError(ApiConnectionError):
    """The request timed out."""
