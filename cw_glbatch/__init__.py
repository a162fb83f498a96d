"""cw_glbatch: create GL batches in ConnectWise PSA from an XML file of GL entry ids."""

from ._async_batches import DEFAULT_CANCEL_GRACE, acreate_batches, aprocess_file
from ._async_client import AsyncConnectWiseClient
from ._batches import BATCH_ID_VARIABLE, DEFAULT_CONCURRENCY, create_batches, process_file
from ._client import ConnectWiseClient
from ._connection import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from ._exceptions import (
    ApiConnectionError,
    ApiError,
    ApiTimeoutError,
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    ConflictError,
    ConnectWiseMismatchError,
    CwGlBatchError,
    FieldError,
    InputError,
    JournalError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ResultsNotWrittenError,
    ServerError,
    ValidationError,
)
from ._export import GLExport, GLExportRecord
from ._models import AccountingBatch, BatchError, BatchRequest, BatchResult, Progress, RunReport
from ._paging import DEFAULT_PAGE_SIZE
from ._protocols import AsyncBatchClient, BatchClient
from ._reader import XmlBatchReader
from ._version import __version__
from ._writer import XmlResultWriter

__all__ = [
    "BATCH_ID_VARIABLE",
    "DEFAULT_CANCEL_GRACE",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_TIMEOUT",
    "AccountingBatch",
    "ApiConnectionError",
    "ApiError",
    "ApiTimeoutError",
    "AsyncBatchClient",
    "AsyncConnectWiseClient",
    "AuthenticationError",
    "BatchClient",
    "BatchError",
    "BatchRequest",
    "BatchResult",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "ConnectWiseClient",
    "ConnectWiseMismatchError",
    "CwGlBatchError",
    "FieldError",
    "GLExport",
    "GLExportRecord",
    "InputError",
    "JournalError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "Progress",
    "RateLimitError",
    "ResultsNotWrittenError",
    "RunReport",
    "ServerError",
    "ValidationError",
    "XmlBatchReader",
    "XmlResultWriter",
    "__version__",
    "acreate_batches",
    "aprocess_file",
    "create_batches",
    "process_file",
]
