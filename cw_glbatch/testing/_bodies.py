"""Request bodies, read as ConnectWise reads them: the definition's fields and types. No I/O.

Working integrations send ``"id": 0`` and ``null`` for optional fields they leave unset
(pyconnectwise's model dump does), so ``null`` counts as absent. A field the definition does
not name is refused (400), so a client sending a misspelt field is caught in tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from ._wire import Response, error_body

__all__ = ["CREATE_BATCH", "EXPORT", "BodySchema", "invalid", "read_body"]

FieldType = Literal["string", "boolean", "integer", "integers", "strings", "date-time", "summary"]
_SUMMARIES = ("Default", "Condensed", "Detailed")
_MAX_ID = 2**31 - 1


class BodySchema:
    """The fields of one request body, by name, and the resource its errors name."""

    def __init__(
        self, name: str, resource: str, fields: Mapping[str, FieldType], required: Sequence[str]
    ) -> None:
        self.name = name
        self.resource = resource
        self.fields = fields
        self.required = tuple(required)


_FLAGS: dict[str, FieldType] = {
    "exportInvoicesFlag": "boolean",
    "exportExpensesFlag": "boolean",
    "exportProductsFlag": "boolean",
}
CREATE_BATCH = BodySchema(
    "CreateAccountingBatchRequest",
    "accountingBatch",
    {
        "id": "integer",
        "batchIdentifier": "string",
        "glInterfaceIdentifier": "string",
        **_FLAGS,
        "processedRecordIds": "integers",
        "summarizeExpenses": "boolean",
    },
    ["processedRecordIds"],
)
EXPORT = BodySchema(
    "ExportAccountingBatchRequest",
    "batchExportParameters",
    {
        "batchIdentifier": "string",
        "glInterfaceIdentifier": "string",
        "thruDate": "date-time",
        "locationId": "integer",
        "summarizeInvoices": "summary",
        **_FLAGS,
        "exportPaymentsFlag": "boolean",
        "includedInvoiceIds": "integers",
        "excludedInvoiceIds": "integers",
        "includedExpenseIds": "integers",
        "excludedExpenseIds": "integers",
        "includedPaymentIds": "integers",
        "includedProductIds": "strings",
        "excludedProductIds": "strings",
    },
    [],
)


def invalid(schema: BodySchema, field: str, message: str) -> Response:
    """ConnectWise's 400 for a field it refuses."""
    return Response(
        400,
        error_body(
            "InvalidObject",
            f"{schema.resource} object is invalid",
            [
                {
                    "code": "InvalidField",
                    "message": message,
                    "resource": schema.resource,
                    "field": field,
                }
            ],
        ),
    )


def _is_integer(value: object) -> bool:
    return (
        isinstance(value, int) and not isinstance(value, bool) and -_MAX_ID - 1 <= value <= _MAX_ID
    )


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


_CHECKS: dict[FieldType, tuple[Callable[[object], bool], str]] = {
    "string": (lambda v: isinstance(v, str), "a string"),
    "boolean": (lambda v: isinstance(v, bool), "true or false"),
    "integer": (_is_integer, "a 32-bit integer"),
    "integers": (lambda v: isinstance(v, list) and all(map(_is_integer, v)), "a list of integers"),
    "strings": (
        lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
        "a list of strings",
    ),
    "date-time": (_date_time, "a date and time (ISO 8601)"),
    "summary": (lambda v: v in _SUMMARIES, "one of " + ", ".join(_SUMMARIES)),
}


def read_body(raw: bytes, schema: BodySchema) -> dict[str, Any] | Response:
    """The body's fields (``null`` ones dropped), or ConnectWise's 400 saying what is wrong."""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return Response(400, error_body("InvalidObject", "the request body is not JSON"))
    if not isinstance(body, dict):
        return Response(400, error_body("InvalidObject", "the request body must be a JSON object"))
    fields: dict[str, Any] = {}
    for field, value in body.items():
        kind = schema.fields.get(field)
        if kind is None:
            return invalid(schema, field, f"{field} is not a field of {schema.name}")
        if value is None:
            continue
        check, wanted = _CHECKS[kind]
        if not check(value):
            return invalid(schema, field, f"{field} must be {wanted}")
        fields[field] = value
    for field in schema.required:
        if field not in fields:
            return invalid(schema, field, f"{field} is required")
    return fields
