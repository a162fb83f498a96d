"""Every ConnectWise call written once, without I/O, for both clients to drive.

A call is a generator (`_steps.Call`): it yields a `Send` (a request to put on the wire) or a
`Pause` (seconds to wait before sending again) and is sent back the `Reply` to a `Send`.
`ConnectWiseClient` drives calls with blocking httpx, `AsyncConnectWiseClient` with coroutines.
Each call here says which request to make and what its answer holds; the API root is looked up
first when unknown, and every request goes through `_exchange.exchange` (retries, errors), so
the two clients differ only in how they move bytes and wait.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from ._answers import Answer, decode_batch, decode_export, decode_json, json_value
from ._connection import Connection
from ._exceptions import ApiError, NotFoundError
from ._exchange import exchange
from ._export import GLExport
from ._http import BATCHES_PATH, COMPANY_INFO_PATH, EXPORT_PATH, batch_body, export_body, user_agent
from ._limits import MAX_IDENTIFIER_LENGTH
from ._models import AccountingBatch
from ._paging import Pager
from ._steps import Call

__all__ = ["ClientBase"]

_MAX_KEPT_BODY = 2000  # characters of a 2xx answer to a create kept when it is not JSON

logger = logging.getLogger("cw_glbatch")

T = TypeVar("T")


class ClientBase(Connection):
    """The calls of a ConnectWise client, as generators; subclasses only move bytes and wait."""

    def _create_batch_call(
        self,
        identifier: str,
        gl_rec_ids: Iterable[int],
        *,
        export_invoices: bool,
        export_expenses: bool,
        export_products: bool,
        summarize_expenses: bool | None,
        gl_interface_identifier: str | None,
    ) -> Call[GLExport]:
        """Checks the arguments now (before any request), and gives the call."""
        ids = tuple(gl_rec_ids)
        if not identifier or len(identifier) > MAX_IDENTIFIER_LENGTH:
            raise ValueError(
                f"identifier must be 1 to {MAX_IDENTIFIER_LENGTH} characters, not {identifier!r}"
            )
        if not ids:
            raise ValueError("a batch needs at least one GL entry id")
        body = batch_body(
            identifier,
            ids,
            export_invoices=export_invoices,
            export_expenses=export_expenses,
            export_products=export_products,
            summarize_expenses=summarize_expenses,
            gl_interface_identifier=gl_interface_identifier,
        )
        return self._create_batch(identifier, ids, body)

    def _create_batch(self, identifier: str, ids: tuple[int, ...], body: bytes) -> Call[GLExport]:
        answer = yield from self._request("POST", BATCHES_PATH, content=body)
        # Any 2xx means created, even when a proxy replaced the body: keep what came.
        try:
            data = json_value(answer.content) if answer.content else {}
        except ValueError:
            data = {"body": answer.text[:_MAX_KEPT_BODY]}
        try:
            return decode_export(data, "POST", BATCHES_PATH, batch_identifier=identifier)
        except ApiError as err:  # created all the same
            logger.warning("created batch %r; its answer could not be read: %s", identifier, err)
            return GLExport((), identifier, data if isinstance(data, Mapping) else {"body": data})

    def _export_gl_call(self, **options: Any) -> Call[GLExport]:
        """Checks the arguments now (before any request; `ValueError`), and gives the call."""
        identifier = options.get("batch_identifier")
        if identifier is not None and len(identifier) > MAX_IDENTIFIER_LENGTH:
            raise ValueError(f"batch_identifier is longer than {MAX_IDENTIFIER_LENGTH} characters")
        return self._export(EXPORT_PATH, export_body(**options))

    def _export_batch_call(self, batch_id: int) -> Call[GLExport]:
        return self._export(f"{BATCHES_PATH}/{int(batch_id)}/export", export_body())

    def _export(self, path: str, body: bytes) -> Call[GLExport]:
        """An export changes nothing in ConnectWise: it is sent again as a read would be."""
        answer = yield from self._request("POST", path, content=body, read_only=True)
        return decode_export(decode_json(answer, "POST", path), "POST", path)

    def _get_batch_call(self, batch_id: int) -> Call[AccountingBatch]:
        path = f"{BATCHES_PATH}/{int(batch_id)}"
        answer = yield from self._request("GET", path)
        return decode_batch(decode_json(answer, "GET", path), "GET", path)

    def _delete_batch_call(self, batch_id: int) -> Call[None]:
        yield from self._request("DELETE", f"{BATCHES_PATH}/{int(batch_id)}")

    def _highest_batch_id_call(self) -> Call[int]:
        params: dict[str, str | int] = {"orderBy": "id desc", "pageSize": 1, "fields": "id"}
        answer = yield from self._request("GET", BATCHES_PATH, params=params)
        page = decode_json(answer, "GET", BATCHES_PATH)
        if not isinstance(page, list):
            raise ApiError("expected a list of batches", method="GET", path=BATCHES_PATH)
        return decode_batch(page[0], "GET", BATCHES_PATH).id if page else 0

    def _page_call(self, pager: Pager[T]) -> Call[list[T]]:
        """The next page of ``pager``'s list."""
        answer = yield from self._request("GET", pager.url or "", params=pager.query)
        return pager.read(answer)

    # -- sending ---------------------------------------------------------------------------

    def _discover_api_root_call(self) -> Call[str]:
        path = COMPANY_INFO_PATH + quote(self.company_id, safe="")
        unknown = (
            f"ConnectWise at {urlsplit(self._origin).netloc} does not know the company id "
            f"{self.company_id!r}"
        )
        try:
            answer = yield from exchange(
                self, "GET", self._origin + path, path, headers={"User-Agent": user_agent()}
            )
        except NotFoundError as err:
            raise NotFoundError(
                unknown, method="GET", path=path, status=err.status, code=err.code
            ) from err
        info = decode_json(answer, "GET", path)
        codebase = info.get("Codebase") if isinstance(info, Mapping) else None
        if not isinstance(codebase, str) or not codebase.strip("/"):
            raise NotFoundError(
                f"{unknown}; its company info has no Codebase (or pass codebase= or base_url=)",
                method="GET",
                path=path,
                status=answer.status,
            )
        return f"{self._origin}/{codebase.strip('/')}/apis/3.0"

    def _request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        content: bytes | None = None,
        read_only: bool = False,
    ) -> Call[Answer]:
        root = self._api_root
        if root is None:  # (the clients look it up first, once, under a lock)
            root = self._api_root = yield from self._discover_api_root_call()
        if path_or_url.startswith(("http://", "https://")):
            url = path_or_url
            path = urlsplit(url).path.removeprefix(urlsplit(root).path) or "/"
        else:
            url, path = root + path_or_url, path_or_url
        headers = self._post_headers if content is not None else self._headers
        return (
            yield from exchange(
                self,
                method,
                url,
                path,
                params=params,
                content=content,
                headers=headers,
                read_only=read_only,
            )
        )
