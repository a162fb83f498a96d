"""Reading a list page by page: which page to ask for next, and the items of each decoded.

ConnectWise pages with ``page``/``pageSize`` and may send ``Link: rel="next"`` (forward-only
paging). A `Pager` follows the link when there is one and counts pages otherwise, and refuses
what would loop or leak: a link to another server, back to a page already read, or a server
ignoring paging (the same page twice). No I/O: the client sends, the pager decides.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

import httpx

from ._answers import Answer, decode_batch, decode_json
from ._exceptions import ApiError
from ._http import BATCHES_PATH, origin_of
from ._models import AccountingBatch

__all__ = ["DEFAULT_PAGE_SIZE", "Pager", "batches_pager", "entries_pager", "next_link"]

DEFAULT_PAGE_SIZE = 1000  # ConnectWise's largest page


_LINK = re.compile(r"<([^>]*)>\s*;([^,]*)")


def next_link(link_header: str | None) -> str | None:
    """The URL of ``rel="next"`` in a ``Link`` header, if any."""
    if not link_header:
        return None
    for url, params in _LINK.findall(link_header):
        rels = re.findall(r'rel\s*=\s*"?([^";]+)"?', params)
        if any("next" in rel.split() for rel in rels):
            return str(url)
    return None


T = TypeVar("T")


class Pager(Generic[T]):
    """Which page of a list to ask for next, from the answers so far, and its items decoded.

    Follows the ``Link: rel="next"`` header when ConnectWise sends one (this covers forward-only
    paging too), and page numbers otherwise; refuses a link to another server or back to a page
    already read.
    """

    def __init__(
        self,
        root: str,
        path: str,
        params: Mapping[str, str | int],
        decode: Callable[[object, str], T],
    ) -> None:
        self._root = root
        self._path = path
        self._params = params
        self._page_size = int(params["pageSize"])
        self._decode = decode
        self._number = 1
        self._followed: set[str] = set()
        self._previous: object = None
        self.url: str | None = root + path  # None once every page was read

    @property
    def query(self) -> dict[str, str | int] | None:
        """The query of the next request (a next link carries its own)."""
        return {**self._params, "page": self._number} if not self._followed else None

    def read(self, answer: Answer) -> list[T]:
        """The items of one page, decoded; moves on to the next page."""
        page = decode_json(answer, "GET", self._path)
        if not isinstance(page, list):
            raise ApiError("expected a list", method="GET", path=self._path)
        if page and page == self._previous and not self._followed:  # a server ignoring paging
            raise ApiError(
                f"page {self._number} repeats the page before it; the server ignores paging",
                method="GET",
                path=self._path,
            )
        self._previous = page
        items = [self._decode(item, self._path) for item in page]
        self.url = next_link(answer.headers.get("link"))
        if self.url is not None:
            self._check_next_link(self.url)
        elif len(page) == self._page_size and not self._followed:
            self._number += 1
            self.url = self._root + self._path
        return items

    def _check_next_link(self, url: str) -> None:
        """Refuse a next-page link to another server, back to a page already read, or broken."""
        try:  # a header can carry anything: control characters, an unclosed IPv6 bracket, ...
            httpx.URL(url)
            origin = origin_of(url) if url.isascii() and url.isprintable() else None
        except (ValueError, httpx.InvalidURL):
            origin = None
        if origin is None:
            problem = "that is not a valid URL"
        elif origin != origin_of(self._root):
            problem = f"to another server ({origin})"
        elif url in self._followed:
            problem = "back to a page already read"
        else:
            self._followed.add(url)
            return
        raise ApiError(
            f"refusing to follow a next-page link {problem}", method="GET", path=self._path
        )


def batches_pager(
    root: str, conditions: str | None, *, page_size: int, order_by: str | None
) -> Pager[AccountingBatch]:
    """The pager of ``GET /finance/accounting/batches`` with these conditions."""
    if not 1 <= page_size <= DEFAULT_PAGE_SIZE:
        raise ValueError(f"page_size must be 1 to {DEFAULT_PAGE_SIZE}, not {page_size}")
    params: dict[str, str | int] = {"pageSize": page_size}
    if conditions:
        params["conditions"] = conditions
    if order_by:
        params["orderBy"] = order_by
    return Pager(root, BATCHES_PATH, params, lambda item, path: decode_batch(item, "GET", path))


def _entry_id(item: object, path: str) -> int:
    entry_id = item.get("id") if isinstance(item, Mapping) else None
    if type(entry_id) is not int:
        raise ApiError(f"an entry without an id: {item!r:.100}", method="GET", path=path)
    return entry_id


def entries_pager(root: str, batch_id: int) -> Pager[int]:
    """The pager of a batch's entry ids (``GET /finance/accounting/batches/{id}/entries``).

    ConnectWise's ``BatchEntry`` has an ``id`` and no other id field; this library takes it to
    be the GL entry's id (an assumption, see docs/reliability.md).
    """
    path = f"{BATCHES_PATH}/{int(batch_id)}/entries"
    return Pager(root, path, {"pageSize": DEFAULT_PAGE_SIZE, "fields": "id"}, _entry_id)
