"""AsyncConnectWiseClient: ConnectWiseClient's calls as coroutines, over httpx.AsyncClient.

The calls are the very ones `ConnectWiseClient` makes (`_calls`): the same requests, retries,
decisions and errors. Only the I/O differs: requests go through an `httpx.AsyncClient`, and
waits are ``await``-ed.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import date
from types import TracebackType
from typing import TypeVar

import httpx

from ._bounds import DEFAULT_MAX_ANSWER_BYTES, asend_bounded
from ._calls import ClientBase
from ._conditions import FindPlan
from ._connection import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, LIMITS, ssl_context
from ._exceptions import ConfigurationError
from ._export import GLExport
from ._http import SummarizeInvoices
from ._models import AccountingBatch
from ._paging import DEFAULT_PAGE_SIZE, batches_pager, entries_pager
from ._steps import Call, Pause, Reply

__all__ = ["AsyncConnectWiseClient"]

T = TypeVar("T")


class AsyncConnectWiseClient(ClientBase):
    """`ConnectWiseClient` for asyncio: the same arguments, calls and errors, as coroutines.

    Use it with ``async with``, or ``await client.aclose()`` at the end. Every argument means
    what it means for `ConnectWiseClient`, except:

    Args:
        http_client: An `httpx.AsyncClient` to send requests with; the caller keeps ownership.
        transport: An httpx async transport for a client this object creates and owns
            (``FakeConnectWise().transport()`` in tests).
        sleep: The coroutine function used to wait between retries and for the request
            ceiling (tests pass a fake).
        clock: As for `ConnectWiseClient`.
        site: As for `ConnectWiseClient`.
        base_url: As for `ConnectWiseClient`.
        company_id: As for `ConnectWiseClient`.
        public_key: As for `ConnectWiseClient`.
        private_key: As for `ConnectWiseClient`; never logged, shown or put in errors.
        client_id: As for `ConnectWiseClient`.
        codebase: As for `ConnectWiseClient`.
        timeout: As for `ConnectWiseClient`.
        max_retries: As for `ConnectWiseClient`.
        api_version: As for `ConnectWiseClient`.
        max_requests_per_minute: As for `ConnectWiseClient`; shared by all tasks using it.
        allow_insecure_http: As for `ConnectWiseClient`.
        verify: As for `ConnectWiseClient`.
        max_answer_bytes: As for `ConnectWiseClient`.

    Raises:
        ConfigurationError: A required argument is missing or empty, or the URL is unsafe.
    """

    def __init__(
        self,
        *,
        site: str | None = None,
        base_url: str | None = None,
        company_id: str,
        public_key: str,
        private_key: str,
        client_id: str,
        codebase: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        api_version: str | None = None,
        max_requests_per_minute: float | None = None,
        allow_insecure_http: bool = False,
        verify: str | os.PathLike[str] | ssl.SSLContext | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            site=site,
            base_url=base_url,
            company_id=company_id,
            public_key=public_key,
            private_key=private_key,
            client_id=client_id,
            codebase=codebase,
            timeout=timeout,
            max_retries=max_retries,
            api_version=api_version,
            max_requests_per_minute=max_requests_per_minute,
            allow_insecure_http=allow_insecure_http,
            max_answer_bytes=max_answer_bytes,
            clock=clock,
        )
        if http_client is not None and (transport is not None or verify is not None):
            raise ConfigurationError("give transport= or verify= only without http_client=")
        if isinstance(http_client, httpx.Client):
            raise ConfigurationError(
                "http_client is an httpx.Client: use ConnectWiseClient for it, or pass an "
                "httpx.AsyncClient"
            )
        self._sleep = sleep
        self._root_lock = asyncio.Lock()
        self._owns_http = http_client is None
        self._http: httpx.AsyncClient | None = http_client or httpx.AsyncClient(
            transport=transport, timeout=timeout, verify=ssl_context(verify), limits=LIMITS
        )

    def __repr__(self) -> str:
        return self._describe(closed=self._http is None)

    # -- lifecycle -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connections this client opened. Closing again does nothing."""
        http, self._http = self._http, None
        if http is not None and self._owns_http:
            await http.aclose()

    async def __aenter__(self) -> AsyncConnectWiseClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the accounting calls --------------------------------------------------------------

    async def api_root(self) -> str:
        """The API root, e.g. ``https://host/v2025_1/apis/3.0`` (looked up on first use)."""
        async with self._root_lock:
            if self._api_root is None:
                self._api_root = await self._drive(self._discover_api_root_call())
            return self._api_root

    async def create_batch(
        self,
        identifier: str,
        gl_rec_ids: Iterable[int],
        *,
        export_invoices: bool = True,
        export_expenses: bool = True,
        export_products: bool = True,
        summarize_expenses: bool | None = None,
        gl_interface_identifier: str | None = None,
    ) -> GLExport:
        """Create a GL batch holding ``gl_rec_ids``, labelled ``identifier``.

        As `ConnectWiseClient.create_batch`: `OutcomeUnknownError` when the request was sent
        and its outcome is unknown (it is not sent again), `ValidationError` when ConnectWise
        refused the batch, another `ApiError` after the retries that were safe.
        """
        call = self._create_batch_call(
            identifier,
            gl_rec_ids,
            export_invoices=export_invoices,
            export_expenses=export_expenses,
            export_products=export_products,
            summarize_expenses=summarize_expenses,
            gl_interface_identifier=gl_interface_identifier,
        )
        return await self._run(call)

    async def export_gl(
        self,
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
    ) -> GLExport:
        """Export the GL transactions not yet in a batch, as `ConnectWiseClient.export_gl`."""
        call = self._export_gl_call(
            thru_date=thru_date,
            location_id=location_id,
            export_invoices=export_invoices,
            export_expenses=export_expenses,
            export_products=export_products,
            export_payments=export_payments,
            included_invoice_ids=included_invoice_ids,
            excluded_invoice_ids=excluded_invoice_ids,
            included_expense_ids=included_expense_ids,
            excluded_expense_ids=excluded_expense_ids,
            included_payment_ids=included_payment_ids,
            included_product_ids=included_product_ids,
            excluded_product_ids=excluded_product_ids,
            summarize_invoices=summarize_invoices,
            batch_identifier=batch_identifier,
            gl_interface_identifier=gl_interface_identifier,
        )
        return await self._run(call)

    async def export_batch(self, batch_id: int) -> GLExport:
        """Export a batch again, as `ConnectWiseClient.export_batch`."""
        return await self._run(self._export_batch_call(batch_id))

    async def get_batch(self, batch_id: int) -> AccountingBatch:
        """The batch with ConnectWise id ``batch_id``; `NotFoundError` if there is none."""
        return await self._run(self._get_batch_call(batch_id))

    async def delete_batch(self, batch_id: int) -> None:
        """Delete the batch with ConnectWise id ``batch_id``, which frees its GL entries."""
        await self._run(self._delete_batch_call(batch_id))

    async def list_batches(
        self,
        conditions: str | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        order_by: str | None = None,
    ) -> AsyncIterator[AccountingBatch]:
        """Every batch matching ``conditions``, fetching page by page (``async for``)."""
        pager = batches_pager(
            await self.api_root(), conditions, page_size=page_size, order_by=order_by
        )
        while pager.url is not None:
            for batch in await self._drive(self._page_call(pager)):
                yield batch

    async def find_batches(
        self, identifiers: Iterable[str], *, min_id: int | None = None
    ) -> list[AccountingBatch]:
        """The batches whose identifier is one of ``identifiers``, in few requests.

        As `ConnectWiseClient.find_batches` (identifiers with quotes found by a listing).
        """
        plan = FindPlan.of(identifiers, min_id)
        found: list[AccountingBatch] = []
        for condition in plan.conditions:
            found.extend([batch async for batch in self.list_batches(condition)])
        if plan.odd:
            listing = self.list_batches(plan.listing, order_by="id asc")
            found.extend([batch async for batch in listing if batch.batch_identifier in plan.odd])
        return found

    async def batch_entry_ids(self, batch_id: int) -> list[int]:
        """The ``id`` of every entry of batch ``batch_id`` (see `ConnectWiseClient`)."""
        pager = entries_pager(await self.api_root(), batch_id)
        ids: list[int] = []
        while pager.url is not None:
            ids.extend(await self._drive(self._page_call(pager)))
        return ids

    async def highest_batch_id(self) -> int:
        """The largest batch id that exists now, 0 when there is none."""
        return await self._run(self._highest_batch_id_call())

    # -- driving calls ---------------------------------------------------------------------

    async def _run(self, call: Call[T]) -> T:
        """Drive ``call``, the API root known first (looked up once, whatever the tasks)."""
        if self._api_root is None:
            await self.api_root()
        return await self._drive(call)

    async def _drive(self, call: Call[T]) -> T:
        reply: Reply | None = None
        try:
            while True:
                step = call.send(reply)
                if isinstance(step, Pause):
                    await self._sleep(step.seconds)
                    reply = None
                    continue
                http, request = self._build_request(self._http, step)
                if self._pacer is not None and (delay := self._pacer.reserve()) > 0:
                    await self._sleep(delay)
                reply = self._reply(
                    await asend_bounded(
                        http, request, timeout=self._timeout, limit=self._max_answer_bytes
                    )
                )
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            call.close()
