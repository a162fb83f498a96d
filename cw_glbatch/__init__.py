"""cw_glbatch: create GL batches in ConnectWise PSA from an XML file of GL entry ids."""

from importlib import metadata as _metadata

from ._exceptions import (
    ApiConnectionError,
    ApiError,
    ApiTimeoutError,
    AuthenticationError,
    ClientClosedError,
    ConflictError,
    CwGlBatchError,
    FieldError,
    InputError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from ._models import BatchError, BatchRequest, BatchResult
from ._reader import XmlBatchReader
from ._writer import XmlResultWriter

try:
    __version__ = _metadata.version("cw-glbatch")
except (
    _metadata.PackageNotFoundError
):  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "ApiTimeoutError",
    "AuthenticationError",
    "BatchError",
    "BatchRequest",
    "BatchResult",
    "ClientClosedError",
    "ConflictError",
    "CwGlBatchError",
    "FieldError",
    "InputError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "ValidationError",
    "XmlBatchReader",
    "XmlResultWriter",
    "__version__",
]
