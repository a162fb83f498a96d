"""What a failed exchange means: the exception for an error answer or a transport failure.

`error_for_response` reads what ConnectWise said (its ``code``, ``message`` and ``errors[]``, or
the title of a proxy's page) into the `ApiError` subclass for the status; `transport_failure`
sorts an httpx failure into the `Failure` kind `_retry.decide` weighs, and `transport_error`
words it for the user, credentials redacted. No I/O.
"""

from __future__ import annotations

import email.utils
import html
import re
import ssl
import time
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

import httpx

from . import _exceptions as exc
from ._answers import json_value
from ._bounds import AnswerTooLarge
from ._exceptions import ApiError, FieldError
from ._redact import redact_text
from ._retry import Failure

__all__ = ["error_for_response", "retry_after_seconds", "transport_error", "transport_failure"]

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


_MAX_QUOTED = 200  # characters of a non-JSON body kept in a message


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
    cut_at: int | None = None,
) -> ApiError:
    """The exception for an error response, carrying what ConnectWise said.

    ``outcome_unknown`` (the verdict of `_retry.decide` for this answer) gives
    `OutcomeUnknownError`: a POST that may have been processed. Otherwise each status maps to its
    class, and any other 5xx to `ServerError`. ``cut_at``: ``content`` is the first ``cut_at``
    bytes of a larger body, which the message says.
    """
    message, data = _describe_body(content, headers.get("content-type", ""))
    message = message or _default_message(status)
    if cut_at is not None:
        message = f"{message} (its body was cut at {cut_at:,} bytes)"
    code = data.get("code") if data else None
    kwargs: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "code": str(code) if code is not None else None,
        "field_errors": _field_errors(data),
    }
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
