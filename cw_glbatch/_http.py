"""What requests look like and what answers and failures mean, with no I/O of their own.

The client builds requests and reads responses through these functions only; deciding that a
response is an error, which error, and what ConnectWise said about it happens here.
"""

from __future__ import annotations

import base64
import email.utils
import html
import ipaddress
import json
import re
import ssl
import time
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timezone
from http import HTTPStatus
from typing import Any, Literal, get_args
from urllib.parse import quote, urlsplit

import httpx

from . import _exceptions as exc
from ._exceptions import ApiError, FieldError
from ._export import GLExport
from ._models import AccountingBatch
from ._redact import redact_text
from ._retry import Failure
from ._spool import MAX_GL_REC_ID

__all__ = [
    "COMPANY_INFO_PATH",
    "AnswerTooLarge",
    "auth_headers",
    "batch_body",
    "condition_string",
    "decode_batch",
    "decode_export",
    "decode_json",
    "error_for_response",
    "export_body",
    "identifier_conditions",
    "is_condition_safe",
    "is_json",
    "is_loopback",
    "json_value",
    "next_link",
    "origin_of",
    "retry_after_seconds",
    "thru_date_text",
    "transport_error",
    "transport_failure",
]

_STATUS_ERRORS: dict[int, type[ApiError]] = {
    400: exc.ValidationError,
    401: exc.AuthenticationError,
    403: exc.PermissionDeniedError,
    404: exc.NotFoundError,
    409: exc.ConflictError,
    429: exc.RateLimitError,
}
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_LINK = re.compile(r"<([^>]*)>\s*;([^,]*)")
_MAX_QUOTED = 200  # characters of a non-JSON body kept in a message
COMPANY_INFO_PATH = "/login/companyinfo/"  # + company id: where the codebase is looked up
_UNSAFE_IN_CONDITIONS = frozenset("\"'\\")


class AnswerTooLarge(httpx.HTTPError):
    """An answer's decoded body passed the client's size cap (raised by the client)."""


def auth_headers(
    company_id: str, public_key: str, private_key: str, client_id: str
) -> dict[str, str]:
    """The two headers ConnectWise authenticates every request with."""
    token = base64.b64encode(f"{company_id}+{public_key}:{private_key}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}", "clientId": client_id}


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
    bad = [v for v in ids if type(v) is not int or not 0 < v <= MAX_GL_REC_ID]
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


def is_condition_safe(value: str) -> bool:
    """Whether ``value`` can be written as a ``conditions`` string without any escape.

    ConnectWise documents no escape for a quote inside a ``conditions`` string, so values
    holding ``"``, ``'`` or a backslash are never put in one.
    """
    return not any(c in value for c in _UNSAFE_IN_CONDITIONS)


def condition_string(value: str) -> str:
    """``value`` as a string literal in ConnectWise's ``conditions`` syntax.

    Raises:
        ValueError: ``value`` holds a quote or a backslash (see `is_condition_safe`).
    """
    if not is_condition_safe(value):
        raise ValueError(f"{value!r} holds a quote or a backslash: look it up another way")
    return f'"{value}"'


def identifier_conditions(
    identifiers: Iterable[str], *, min_id: int | None = None, max_length: int = 1500
) -> list[str]:
    """``batchIdentifier in (...)`` conditions covering ``identifiers``, each short enough.

    Each condition, URL-encoded, stays within ``max_length`` characters so the request URL stays
    under the ~2,000 characters ConnectWise and proxies accept. With ``min_id``, each also says
    ``and id > min_id``.

    Raises:
        ValueError: An identifier holds a quote or a backslash (see `is_condition_safe`).
    """
    suffix = f" and id > {min_id}" if min_id is not None else ""
    fixed = len(quote(f"batchIdentifier in (){suffix}", safe=""))
    comma = len(quote(",", safe=""))
    chunks: list[list[str]] = [[]]
    size = fixed
    for identifier in dict.fromkeys(identifiers):
        literal = condition_string(identifier)
        cost = len(quote(literal, safe="")) + (comma if chunks[-1] else 0)
        if chunks[-1] and size + cost > max_length:
            chunks.append([])
            size = fixed
            cost -= comma
        chunks[-1].append(literal)
        size += cost
    return [f"batchIdentifier in ({','.join(chunk)}){suffix}" for chunk in chunks if chunk]


def next_link(link_header: str | None) -> str | None:
    """The URL of ``rel="next"`` in a ``Link`` header, if any."""
    if not link_header:
        return None
    for url, params in _LINK.findall(link_header):
        rels = re.findall(r'rel\s*=\s*"?([^";]+)"?', params)
        if any("next" in rel.split() for rel in rels):
            return str(url)
    return None


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: given as seconds, or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def is_loopback(url: str) -> bool:
    """True when ``url``'s host is this machine (127.0.0.0/8, ::1, localhost)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _describe_body(content: bytes, content_type: str) -> tuple[str, Mapping[str, Any] | None]:
    """A readable message for a body, and the body as JSON when it is a JSON object."""
    text = content.decode("utf-8", "replace").strip()
    if "json" in content_type or text.startswith("{"):
        try:
            data = json_value(text)
        except ValueError:
            data = None
        if isinstance(data, Mapping):
            return str(data.get("message") or ""), data
    if not text:
        return "", None
    title = _TITLE.search(text)
    if title or "html" in content_type:
        words = html.unescape(_TAG.sub(" ", title.group(1) if title else text))
        text = " ".join(words.split())
    if len(text) > _MAX_QUOTED:
        text = text[: _MAX_QUOTED - 3] + "..."
    return text, None


def _field_errors(data: Mapping[str, Any] | None) -> tuple[FieldError, ...]:
    entries = data.get("errors") if data else None
    if not isinstance(entries, list):
        return ()
    return tuple(
        FieldError(
            str(entry.get("message") or entry.get("code") or "invalid"),
            field=str(entry["field"]) if entry.get("field") is not None else None,
            code=str(entry["code"]) if entry.get("code") is not None else None,
        )
        for entry in entries
        if isinstance(entry, Mapping)
    )


def error_for_response(
    method: str,
    path: str,
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    outcome_unknown: bool = False,
) -> ApiError:
    """The exception for an error response, carrying what ConnectWise said.

    ``outcome_unknown`` (the verdict of `_retry.decide` for this answer) gives
    `OutcomeUnknownError`: a POST that may have been processed. Otherwise each status maps to its
    class, and any other 5xx to `ServerError`.
    """
    message, data = _describe_body(content, headers.get("content-type", ""))
    code = data.get("code") if data else None
    kwargs: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "code": str(code) if code is not None else None,
        "field_errors": _field_errors(data),
    }
    message = message or _default_message(status)
    if outcome_unknown:
        return exc.OutcomeUnknownError(
            f"{message} (the batch may or may not have been created)", **kwargs
        )
    if status == 429:
        return exc.RateLimitError(
            message, retry_after=retry_after_seconds(headers.get("retry-after")), **kwargs
        )
    cls = _STATUS_ERRORS.get(status) or (exc.ServerError if status >= 500 else ApiError)
    return cls(message, **kwargs)


def _default_message(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


# Transport failures after which a request certainly did not reach the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Failures that will not go away by trying again.
_PERMANENT = (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.ProxyError)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, in lower case."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _untrusted_certificate(err: httpx.HTTPError) -> bool:
    cause: BaseException | None = err
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:  # (mocks can chain an error to itself)
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(err)


# Answers that came but cannot be used: the server got the request.
_UNUSABLE_ANSWER = (AnswerTooLarge, httpx.DecodingError)


def transport_failure(err: httpx.HTTPError, *, answered: bool = False) -> Failure:
    """What an httpx failure means for `_retry.decide`.

    ``answered``: the failure came after the answer's status (while reading its body). An
    answer too large or that cannot be decoded came after the request arrived: with its status
    known it is `Failure.PERMANENT` (asking again gets the same answer; `decide` weighs the
    status first), without one `Failure.AFTER_SENDING`.
    """
    if isinstance(err, _UNUSABLE_ANSWER):
        return Failure.PERMANENT if answered else Failure.AFTER_SENDING
    if isinstance(err, _PERMANENT) or _untrusted_certificate(err):
        return Failure.PERMANENT
    if isinstance(err, _NOT_SENT):
        return Failure.NOT_CONNECTED
    return Failure.AFTER_SENDING


def transport_error(
    method: str,
    path: str,
    err: httpx.HTTPError,
    timeout: float,
    *,
    outcome_unknown: bool,
    host: str = "",
    secrets: Iterable[str] = (),
) -> ApiError:
    """The exception for a request that got no usable response (``outcome_unknown`` as decided).

    ``host`` names the server that was tried, for the message. ``secrets`` are redacted from
    the failure's text, which may quote what the server sent.
    """
    server = host or "the server"
    detail = redact_text(str(err), secrets)
    if outcome_unknown:
        what = "timed out" if isinstance(err, httpx.TimeoutException) else f"failed ({detail})"
        return exc.OutcomeUnknownError(
            f"the request {what} after it was sent; the batch may or may not have been created",
            method=method,
            path=path,
        )
    if isinstance(err, httpx.TimeoutException):
        return exc.ApiTimeoutError(
            f"no answer within {timeout:g} s from {server} ({type(err).__name__})",
            method=method,
            path=path,
        )
    if isinstance(err, _UNUSABLE_ANSWER):
        return ApiError(f"the answer cannot be used: {detail}", method=method, path=path)
    if _untrusted_certificate(err):
        return exc.ApiConnectionError(
            f"{server}: its TLS certificate is not trusted ({detail}); pass verify= a CA bundle "
            "if it is signed by a private authority",
            method=method,
            path=path,
        )
    return exc.ApiConnectionError(
        f"cannot connect to {server}: {detail or type(err).__name__}", method=method, path=path
    )


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
