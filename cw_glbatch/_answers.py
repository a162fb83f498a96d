"""What a ConnectWise answer holds: its body as JSON, and the batch or GL export in it.

An `Answer` is a response as received (status, headers, the body read whole): plain values,
no connection behind it. Validation at the boundary: each function either gives a checked
value or raises `ApiError` naming the request (method and path) and what was wrong with the
answer. No I/O.
"""

from __future__ import annotations

import codecs
import email.message
import enum
import json
from collections.abc import Mapping
from typing import Any

import attrs

from ._exceptions import ApiError
from ._export import GLExport
from ._models import AccountingBatch

__all__ = [
    "UNPARSED",
    "Answer",
    "decode_batch",
    "decode_export",
    "decode_json",
    "json_value",
    "with_json",
]


class _Unparsed(enum.Enum):
    UNPARSED = "unparsed"


UNPARSED = _Unparsed.UNPARSED  # an answer whose body was not parsed as JSON yet


@attrs.frozen
class Answer:
    """A response as received: its status, its headers, and its body read whole and decoded."""

    status: int
    headers: Mapping[str, str]  # case-insensitive (httpx's headers)
    content: bytes
    cut_at: int | None = None  # an error answer's body was cut after this many bytes
    body_json: Any = attrs.field(default=UNPARSED, eq=False, repr=False)  # see `with_json`

    @property
    def text(self) -> str:
        """The body as text, decoded as httpx would: in the charset the server named, else UTF-8.

        Never raises: a charset that cannot decode with replacements (UTF-16 without a byte
        order mark, ``idna``, ``base64``, ...) reads as UTF-8, where httpx's ``.text`` raises.
        """
        try:
            return self.content.decode(_charset(self.headers.get("content-type")), "replace")
        except (UnicodeError, LookupError):  # a server chose the charset: anything goes
            return self.content.decode("utf-8", "replace")


def _charset(content_type: str | None) -> str:
    """The known charset a ``Content-Type`` names, else ``utf-8`` (httpx's choice for `.text`)."""
    if content_type is None:
        return "utf-8"
    message = email.message.Message()
    message["content-type"] = content_type
    charset = message.get_content_charset(failobj=None)
    try:
        return codecs.lookup(charset).name if charset else "utf-8"
    except LookupError:
        return "utf-8"


def json_value(text: str | bytes) -> Any:
    """``text`` parsed as JSON; `ValueError` for anything that is not (nesting too deep too)."""
    try:
        return json.loads(text)
    except RecursionError:  # a hostile answer nested thousands deep
        raise ValueError("JSON nested too deeply") from None


def with_json(answer: Answer) -> Answer:
    """``answer`` with its body parsed as JSON, for `decode_json`; `ValueError` if it is not."""
    return attrs.evolve(answer, body_json=json_value(answer.content))


def decode_json(answer: Answer, method: str, path: str) -> Any:
    """The body of ``answer`` as JSON (parsed once); `ApiError` quoting its start if not JSON."""
    if answer.body_json is not UNPARSED:
        return answer.body_json
    try:
        return json_value(answer.content)
    except ValueError:
        raise ApiError(
            "the answer is not JSON: " + answer.text[:200],
            method=method,
            path=path,
            status=answer.status,
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
