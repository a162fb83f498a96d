"""cw_glbatch: create GL batches in ConnectWise PSA from an XML file of GL entry ids."""

from ._batches import BATCH_ID_VARIABLE, DEFAULT_CONCURRENCY, create_batches, process_file
from ._client import DEFAULT_MAX_RETRIES, DEFAULT_PAGE_SIZE, DEFAULT_TIMEOUT, ConnectWiseClient
from ._exceptions import (
    ApiConnectionError,
    ApiError,
    ApiTimeoutError,
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    ConflictError,
    CwGlBatchError,
    FieldError,
    InputError,
    JournalError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from ._models import (
    AccountingBatch,
    BatchError,
    BatchRequest,
    BatchResult,
    GLExport,
    Progress,
    RunReport,
)
from ._reader import XmlBatchReader
from ._version import __version__
from ._writer import XmlResultWriter

__all__ = [
    "BATCH_ID_VARIABLE",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_TIMEOUT",
    "AccountingBatch",
    "ApiConnectionError",
    "ApiError",
    "ApiTimeoutError",
    "AuthenticationError",
    "BatchError",
    "BatchRequest",
    "BatchResult",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "ConnectWiseClient",
    "CwGlBatchError",
    "FieldError",
    "GLExport",
    "InputError",
    "JournalError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "Progress",
    "RateLimitError",
    "RunReport",
    "ServerError",
    "ValidationError",
    "XmlBatchReader",
    "XmlResultWriter",
    "__version__",
    "create_batches",
    "process_file",
]
