"""Lists as ConnectWise answers them: ``orderBy``, ``fields``, pages and the ``Link`` header."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from ._wire import Response, SimRequest, error_body

__all__ = ["listing", "one_or_list", "page_of", "shape"]

_MAX_PAGE_SIZE = 1000


def page_of(items: Sequence[Any], query: Mapping[str, str], origin: str, path: str) -> Response:
    """One page of ``items`` as ConnectWise answers lists: ``page``/``pageSize`` and a Link."""
    try:
        number = int(query.get("page", "1"))
        size = int(query.get("pageSize", "25"))
    except ValueError:
        return Response(400, error_body("InvalidObject", "page and pageSize must be numbers"))
    if number < 1 or not 1 <= size <= _MAX_PAGE_SIZE:
        return Response(
            400,
            error_body("InvalidObject", f"page must be 1 or more, pageSize 1 to {_MAX_PAGE_SIZE}"),
        )
    start = (number - 1) * size
    chunk = items[start : start + size]
    links = [f'<{_page_url(origin, path, query, 1)}>; rel="first"']
    if start + size < len(items):
        links.append(f'<{_page_url(origin, path, query, number + 1)}>; rel="next"')
        last = max(1, -(-len(items) // size))
        links.append(f'<{_page_url(origin, path, query, last)}>; rel="last"')
    return Response(200, list(chunk), {"Link": ", ".join(links)})


def _page_url(origin: str, path: str, query: Mapping[str, str], number: int) -> str:
    return f"{origin}{path}?{urlencode({**query, 'page': str(number)})}"


def shape(
    records: list[dict[str, Any]], query: Mapping[str, str]
) -> list[dict[str, Any]] | Response:
    """Apply ``orderBy`` and ``fields`` to list records."""
    order = query.get("orderBy", "").strip()
    if order:
        match = re.fullmatch(r"(\w+)(?:\s+(asc|desc))?", order, re.IGNORECASE)
        if not match:
            return Response(400, error_body("InvalidObject", f"orderBy {order!r} is not valid"))
        field, direction = match.group(1), (match.group(2) or "asc").lower()
        records = sorted(
            records,
            key=lambda r: (r.get(field) is None, r.get(field)),
            reverse=direction == "desc",
        )
    fields = [f.strip() for f in query.get("fields", "").split(",") if f.strip()]
    if fields:
        records = [{f: r[f] for f in fields if f in r} for r in records]
    return records


def listing(records: list[dict[str, Any]], request: SimRequest, *, count: bool) -> Response:
    """A list answer: its count, or its page with ``orderBy`` and ``fields`` applied."""
    if count:
        return Response(200, {"count": len(records)})
    shaped = shape(records, request.query)
    if isinstance(shaped, Response):
        return shaped
    return page_of(shaped, request.query, request.origin, request.path)


def one_or_list(records: list[dict[str, Any]], tail: str, request: SimRequest) -> Response:
    """``…`` (the list), ``…/count``, or ``…/{id}`` (one record, else 404)."""
    if tail.lstrip("/").isdigit():
        wanted = int(tail.lstrip("/"))
        found = [r for r in records if r["id"] == wanted]
        if found:
            return Response(200, found[0])
        return Response(404, error_body("NotFound", f"record {wanted} not found"))
    return listing(records, request, count=tail == "/count")
