"""Lists as ConnectWise answers them: conditions, orderBy, pages with a Link header, fields."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import attrs

from ._conditions import (
    ConditionError,
    check_fields,
    field_paths,
    matches,
    parse_conditions,
    value_at,
)
from ._wire import Response, SimRequest, error_body

__all__ = ["listing", "one_or_list", "ordered", "page_of", "select"]

_MAX_PAGE_SIZE = 1000


def page_of(
    items: Sequence[Any],
    query: Mapping[str, str],
    origin: str,
    path: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """One page of ``items`` as ConnectWise answers lists, with a ``Link`` header.

    Numbered pages (``page``, ``pageSize``) link ``first``, ``prev``, ``next`` and ``last``;
    with the header ``pagination-type: forward-only``, pages follow ``pageId`` (the last id
    of the page before) and link ``next`` only. The page parameter comes last in each link.
    """
    try:
        size = int(query.get("pageSize", "25"))
        number = int(query.get("page", "1"))
        after = int(query.get("pageId", "0"))
    except ValueError:
        return Response(400, error_body("InvalidObject", "page, pageSize, pageId must be numbers"))
    if number < 1 or not 1 <= size <= _MAX_PAGE_SIZE:
        return Response(
            400,
            error_body("InvalidObject", f"page must be 1 or more, pageSize 1 to {_MAX_PAGE_SIZE}"),
        )
    if (headers or {}).get("pagination-type", "").lower() == "forward-only":
        return _forward_page(items, query, origin + path, size, after)
    start = (number - 1) * size
    last = max(1, -(-len(items) // size))
    links = {"first": 1, "prev": number - 1, "next": number + 1, "last": last}
    if number == 1:
        del links["prev"]
    if start + size >= len(items):
        del links["next"]
    link = ", ".join(
        f'<{_link(origin + path, query, "page", n)}>; rel="{rel}"' for rel, n in links.items()
    )
    return Response(200, list(items[start : start + size]), {"Link": link})


def _forward_page(
    items: Sequence[Any], query: Mapping[str, str], url: str, size: int, after: int
) -> Response:
    if "orderBy" in query or "page" in query:
        return Response(
            400, error_body("InvalidObject", "forward-only paging takes no orderBy and no page")
        )
    rest = sorted((i for i in items if i["id"] > after), key=lambda i: int(i["id"]))
    chunk = rest[:size]
    headers = {}
    if len(rest) > size:
        headers["Link"] = f'<{_link(url, query, "pageId", chunk[-1]["id"])}>; rel="next"'
    return Response(200, chunk, headers)


def _link(url: str, query: Mapping[str, str], parameter: str, value: int) -> str:
    """``url`` with ``query`` and then ``parameter`` (always last, as ConnectWise writes it)."""
    kept = {k: v for k, v in query.items() if k not in ("page", "pageId")}
    return f"{url}?{urlencode({**kept, parameter: str(value)})}"


def select(records: list[dict[str, Any]], conditions: str) -> list[dict[str, Any]]:
    """The records matching ``conditions``; `ConditionError` if they are not valid."""
    node = parse_conditions(conditions)
    if records:
        check_fields(node, set().union(*map(field_paths, records)))
    return [record for record in records if matches(node, record)]


def ordered(
    records: list[dict[str, Any]], query: Mapping[str, str]
) -> list[dict[str, Any]] | Response:
    """``records`` in ``orderBy`` order (one field, any case, ``asc`` or ``desc``)."""
    order = query.get("orderBy", "").strip()
    if not order:
        return records
    match = re.fullmatch(r"([\w/]+)(?:\s+(asc|desc))?", order, re.IGNORECASE)
    if not match:
        return Response(400, error_body("InvalidObject", f"orderBy {order!r} is not valid"))
    field, direction = match.group(1).lower(), (match.group(2) or "asc").lower()
    return sorted(
        records,
        key=lambda r: (value_at(r, field) is None, value_at(r, field)),
        reverse=direction == "desc",
    )


def _projected(page: Response, query: Mapping[str, str]) -> Response:
    """The page with only the ``fields`` asked for (all when none is)."""
    fields = [f.strip() for f in query.get("fields", "").split(",") if f.strip()]
    if not fields or page.status != 200:
        return page
    wanted = {f.lower() for f in fields}
    body = [{k: v for k, v in record.items() if k.lower() in wanted} for record in page.body]
    return attrs.evolve(page, body=body)


def listing(
    records: list[dict[str, Any]], request: SimRequest, *, count: bool, filtered: bool = False
) -> Response:
    """A list answer: its count, or its page with ``orderBy`` and ``fields`` applied.

    Unless ``filtered`` already, ``conditions`` select the records first; a field no record has
    is refused (400) as ConnectWise refuses a field its resource lacks.
    """
    conditions = request.query.get("conditions")
    if conditions and not filtered:
        try:
            records = select(records, conditions)
        except ConditionError as err:
            return Response(400, error_body("InvalidObject", f"conditions: {err}"))
    if count:
        return Response(200, {"count": len(records)})
    in_order = ordered(records, request.query)
    if isinstance(in_order, Response):
        return in_order
    page = page_of(in_order, request.query, request.origin, request.path, request.headers)
    return _projected(page, request.query)


def one_or_list(records: list[dict[str, Any]], tail: str, request: SimRequest) -> Response:
    """``…`` (the list), ``…/count``, or ``…/{id}`` (one record, else 404)."""
    if tail.lstrip("/").isdigit():
        wanted = int(tail.lstrip("/"))
        found = [r for r in records if r["id"] == wanted]
        if found:
            return Response(200, found[0])
        return Response(404, error_body("NotFound", f"record {wanted} not found"))
    return listing(records, request, count=tail == "/count")
