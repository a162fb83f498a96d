"""What a ConnectWise answer holds: its body as JSON, and the batch or GL export in it.

Validation at the boundary: each function either gives a checked value or raises `ApiError`
naming the request (method and path) and what was wrong with the answer. No I/O.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from ._exceptions import ApiError
from ._export import GLExport
from ._models import AccountingBatch

__all__ = ["decode_batch", "decode_export", "decode_json", "is_json", "json_value"]


def json_value(text: str | bytes) -> Any:
    """``text`` parsed as JSON; `ValueError` for anything that is not (nesting too deep too)."""
    try:
        return json.loads(text)
    except RecursionError:  # a hostile answer nested thousands deep
        raise ValueError("JSON nested too deeply") from None


def is_json(content: bytes) -> bool:
    """Whether ``content`` is a JSON document."""
    try:
        json_value(content)
    except ValueError:
        return False
    return True


def decode_json(response: httpx.Response, method: str, path: str) -> Any:
    try:
        return json_value(response.content)
    except ValueError:
        raise ApiError(
            "the answer is not JSON: " + response.text[:200],
            method=method,
            path=path,
            status=response.status_code,
        ) from None


def decode_batch(data: object, method: str, path: str) -> AccountingBatch:
    try:
        return AccountingBatch.from_json(data)
    except ValueError as err:
        raise ApiError(f"unexpected batch in the answer: {err}", method=method, path=path) from None


def decode_export(
    data: object, method: str, path: str, *, batch_identifier: str | None = None
) -> GLExport:
    """A ``GLExport`` answer decoded; `ApiError` if it is not one or its ids cannot be read."""
    try:
        return GLExport.from_json(data, batch_identifier=batch_identifier)
    except ValueError as err:
        raise ApiError(
            f"unexpected GL export in the answer: {err}", method=method, path=path
        ) from None
