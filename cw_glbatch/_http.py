"""What requests to ConnectWise look like: where they go, their headers and their JSON bodies.

Pure functions over plain values (no I/O): the API paths, the authentication and User-Agent
headers, the bodies of ``POST /finance/accounting/batches`` and ``POST
/finance/accounting/export`` (refusing with `ValueError`, before anything is sent, a value
ConnectWise would refuse), and the facts about a server's URL the client's settings check.
"""

from __future__ import annotations

import base64
import ipaddress
import json
from collections.abc import Iterable
from datetime import date, datetime, timezone
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import httpx

from ._limits import is_gl_rec_id
from ._version import __version__

__all__ = [
    "BATCHES_PATH",
    "COMPANY_INFO_PATH",
    "EXPORT_PATH",
    "SummarizeInvoices",
    "auth_headers",
    "batch_body",
    "export_body",
    "is_loopback",
    "origin_of",
    "thru_date_text",
    "user_agent",
]

BATCHES_PATH = "/finance/accounting/batches"
EXPORT_PATH = "/finance/accounting/export"
COMPANY_INFO_PATH = "/login/companyinfo/"  # + company id: where the codebase is looked up


def auth_headers(
    company_id: str, public_key: str, private_key: str, client_id: str
) -> dict[str, str]:
    """The two headers ConnectWise authenticates every request with."""
    token = base64.b64encode(f"{company_id}+{public_key}:{private_key}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}", "clientId": client_id}


def user_agent() -> str:
    """The User-Agent header every request carries."""
    return f"cw-glbatch/{__version__} httpx/{httpx.__version__}"


def batch_body(
    identifier: str,
    gl_rec_ids: Iterable[int],
    *,
    export_invoices: bool,
    export_expenses: bool,
    export_products: bool,
    summarize_expenses: bool | None,
    gl_interface_identifier: str | None,
) -> bytes:
    """The JSON body of ``POST /finance/accounting/batches`` (``CreateAccountingBatchRequest``)."""
    body: dict[str, Any] = {
        "batchIdentifier": identifier,
        "processedRecordIds": list(gl_rec_ids),
        "exportInvoicesFlag": export_invoices,
        "exportExpensesFlag": export_expenses,
        "exportProductsFlag": export_products,
    }
    if summarize_expenses is not None:
        body["summarizeExpenses"] = summarize_expenses
    if gl_interface_identifier is not None:
        body["glInterfaceIdentifier"] = gl_interface_identifier
    return json.dumps(body, separators=(",", ":")).encode()


SummarizeInvoices = Literal["Default", "Condensed", "Detailed"]


def thru_date_text(value: date | str) -> str:
    """A thru date as ConnectWise's ``date-time`` text, ``2026-11-30T00:00:00Z``.

    A `datetime.date` or ``"YYYY-MM-DD"`` means that day at 00:00 UTC; a `datetime.datetime` or
    ISO 8601 text with a time is converted to UTC (a time without an offset is taken as UTC).
    `ValueError` for anything else.
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 date and time"
            ) from None
        if len(text) == 10:
            value = value.date()
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.replace(microsecond=0).isoformat() + "Z"


def _id_list(name: str, values: Iterable[int] | None) -> dict[str, list[int]]:
    if values is None:
        return {}
    ids = list(values)
    bad = [v for v in ids if not is_gl_rec_id(v)]
    if bad:
        raise ValueError(f"{name} must hold record ids (whole numbers from 1), not {bad[:5]}")
    return {name: ids}


def export_body(
    *,
    thru_date: date | str | None = None,
    location_id: int | None = None,
    export_invoices: bool = True,
    export_expenses: bool = True,
    export_products: bool = True,
    export_payments: bool | None = None,
    included_invoice_ids: Iterable[int] | None = None,
    excluded_invoice_ids: Iterable[int] | None = None,
    included_expense_ids: Iterable[int] | None = None,
    excluded_expense_ids: Iterable[int] | None = None,
    included_payment_ids: Iterable[int] | None = None,
    included_product_ids: Iterable[str] | None = None,
    excluded_product_ids: Iterable[str] | None = None,
    summarize_invoices: SummarizeInvoices | None = None,
    batch_identifier: str | None = None,
    gl_interface_identifier: str | None = None,
) -> bytes:
    """The JSON body of ``POST /finance/accounting/export`` (``ExportAccountingBatchRequest``).

    The three kind flags are always sent; every other field only when given. `ValueError` for
    a value ConnectWise would refuse.
    """
    body: dict[str, Any] = {
        "exportInvoicesFlag": export_invoices,
        "exportExpensesFlag": export_expenses,
        "exportProductsFlag": export_products,
    }
    if not (export_invoices or export_expenses or export_products or export_payments):
        raise ValueError("nothing to export: every export_* flag is false")
    if thru_date is not None:
        body["thruDate"] = thru_date_text(thru_date)
    if location_id is not None:
        if type(location_id) is not int or location_id < 1:
            raise ValueError(f"location_id must be a whole number from 1, not {location_id!r}")
        body["locationId"] = location_id
    if export_payments is not None:
        body["exportPaymentsFlag"] = export_payments
    body.update(_id_list("includedInvoiceIds", included_invoice_ids))
    body.update(_id_list("excludedInvoiceIds", excluded_invoice_ids))
    body.update(_id_list("includedExpenseIds", included_expense_ids))
    body.update(_id_list("excludedExpenseIds", excluded_expense_ids))
    body.update(_id_list("includedPaymentIds", included_payment_ids))
    for name, products in (
        ("includedProductIds", included_product_ids),
        ("excludedProductIds", excluded_product_ids),
    ):
        if products is not None:
            body[name] = [str(product) for product in products]
    if summarize_invoices is not None:
        if summarize_invoices not in get_args(SummarizeInvoices):
            raise ValueError(
                f"summarize_invoices must be one of {', '.join(get_args(SummarizeInvoices))}, "
                f"not {summarize_invoices!r}"
            )
        body["summarizeInvoices"] = summarize_invoices
    if batch_identifier is not None:
        body["batchIdentifier"] = batch_identifier
    if gl_interface_identifier is not None:
        body["glInterfaceIdentifier"] = gl_interface_identifier
    return json.dumps(body, separators=(",", ":")).encode()


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, in lower case."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def is_loopback(url: str) -> bool:
    """True when ``url``'s host is this machine (127.0.0.0/8, ::1, localhost)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
