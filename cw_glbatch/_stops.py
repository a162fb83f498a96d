"""Why a run stops sending, in words: which settings an error that stops a run points at."""

from __future__ import annotations

from typing import Literal

from ._exceptions import (
    ApiConnectionError,
    ApiError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
)
from ._http import COMPANY_INFO_PATH

__all__ = ["STOPPED_BY_CALLER", "StopKind", "stop_kind", "stop_reason"]

STOPPED_BY_CALLER = (
    "stopped by the caller before the end; the journal records what was sent. "
    "Run the same call again to finish"
)

StopKind = Literal["credentials", "permission", "company", "unreachable", "error"]
_STOP_WORDS: dict[StopKind, str] = {
    "credentials": "authentication failed",
    "permission": "permission denied",
    "company": "unknown company id",
    "unreachable": "could not reach ConnectWise",
    "error": "ConnectWise failed",
}


def stop_kind(error: ApiError) -> StopKind:
    """What an error that stops a run says about the settings: which ones to check."""
    if isinstance(error, AuthenticationError):
        return "credentials"
    if isinstance(error, PermissionDeniedError):
        return "permission"
    if isinstance(error, NotFoundError) and error.path.startswith(COMPANY_INFO_PATH):
        return "company"  # the codebase lookup: ConnectWise does not know the company id
    if isinstance(error, ApiConnectionError):
        return "unreachable"
    return "error"


def stop_reason(error: ApiError) -> str:
    """Why a run stopped, in words: ``authentication failed: GET ...: 401 ...``."""
    return f"{_STOP_WORDS[stop_kind(error)]}: {error}"
