"""ConnectWiseClient: the accounting-batch calls of the ConnectWise PSA REST API, over httpx.

The calls themselves (what is sent, what answers mean, retries, paging) are written once in
`_calls`; this client drives them with blocking I/O, shared safely by threads.
"""

from __future__ import annotations

import os
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from types import TracebackType
from typing import TypeVar

import httpx

from ._bounds import DEFAULT_MAX_ANSWER_BYTES, bound_transports, send_bounded
from ._calls import ClientBase
from ._conditions import FindPlan
from ._connection import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, LIMITS, ssl_context
from ._exceptions import ConfigurationError
from ._export import GLExport
from ._http import SummarizeInvoices
from ._models import AccountingBatch
from ._paging import DEFAULT_PAGE_SIZE, batches_pager, entries_pager
from ._steps import Call, Pause, Reply

__all__ = ["ConnectWiseClient"]

T = TypeVar("T")


class ConnectWiseClient(ClientBase):
    """A client for ConnectWise PSA's accounting-batch API.

    Give either ``site`` (the server's host; the API root is looked up once from
    ``/login/companyinfo/{company_id}`` unless ``codebase`` is given) or ``base_url`` (the full
    API root). All arguments are keyword-only.

    Args:
        site: Host of the ConnectWise server, e.g. ``api-na.myconnectwise.net``; a
            ``scheme://`` prefix and a port are allowed.
        base_url: The full API root, e.g. ``https://host/v4_6_release/apis/3.0``.
        company_id: The company id used to log in.
        public_key: The API member's public key.
        private_key: The API member's private key. Never logged, shown or put in errors.
        client_id: The integration's ``clientId`` (from the ConnectWise developer portal).
        codebase: The codebase (``v2025_1/``) when known; skips the lookup.
        timeout: Seconds allowed for each request, from sending it to the last byte of the
            answer (a finite number above 0). A POST that runs out of it before its status came
            has an unknown outcome.
        max_retries: How many times a failed request may be sent again when that is safe.
        http_client: An `httpx.Client` to send requests with; the caller keeps ownership and
            closes it. Its base URL and authentication are not used.
        transport: An httpx transport for a client this object creates and owns
            (``FakeConnectWise().transport()`` in tests).
        api_version: Sent as ``Accept: application/vnd.connectwise.com+json; version=...``.
        max_requests_per_minute: A ceiling on the request rate, shared by all threads using
            this client, to stay under ConnectWise's throttling.
        allow_insecure_http: Allow ``http://`` to a host that is not this machine.
        verify: A CA bundle path or an `ssl.SSLContext` to verify the server's certificate with,
            instead of the default trust store. Verification cannot be turned off.
        max_answer_bytes: The largest decoded 2xx answer accepted; a larger one cannot be used
            (a create answered 2xx is still created). ConnectWise's answers are far smaller. Of
            an error answer only the first 1 MiB is read: the error's message says when its
            body was cut there.
        sleep: The function used to wait between retries and for the request ceiling (tests
            pass a fake).
        clock: The monotonic clock the request ceiling reads (tests pass a fake).

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
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        api_version: str | None = None,
        max_requests_per_minute: float | None = None,
        allow_insecure_http: bool = False,
        verify: str | os.PathLike[str] | ssl.SSLContext | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        sleep: Callable[[float], None] = time.sleep,
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
        if isinstance(http_client, httpx.AsyncClient):
            raise ConfigurationError(
                "http_client is an httpx.AsyncClient: use AsyncConnectWiseClient for it, or pass "
                "an httpx.Client"
            )
        self._sleep = sleep
        self._root_lock = threading.Lock()
        self._owns_http = http_client is None
        self._http: httpx.Client | None = http_client or httpx.Client(
            transport=transport, timeout=timeout, verify=ssl_context(verify), limits=LIMITS
        )
        # Outside this client's requests (no deadline set in the thread) the wrapped sockets
        # behave as before, so a caller's own httpx.Client is bounded only while we use it.
        bound_transports(self._http)

    def __repr__(self) -> str:
        return self._describe(closed=self._http is None)

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connections this client opened. Closing again does nothing."""
        http, self._http = self._http, None
        if http is not None and self._owns_http:
            http.close()

    def __enter__(self) -> ConnectWiseClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the accounting calls --------------------------------------------------------------

    @property
    def api_root(self) -> str:
        """The API root, e.g. ``https://host/v2025_1/apis/3.0`` (looked up on first use)."""
        return self._known_api_root()

    def create_batch(
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

        Returns:
            ConnectWise's answer: the GL export of the batch's transactions (no batch id).

        Raises:
            OutcomeUnknownError: The request was sent but its outcome is unknown (no answer,
                408, or a 5xx other than 503, 521, 522, 523, 525, 526); it is not sent again.
                Look the identifier up before deciding to retry.
            ValidationError: ConnectWise refused the batch (e.g. an id already batched).
            ApiError: Any other failure, after the retries that were safe.
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
        return self._run(call)

    def export_gl(
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
        """Export the GL transactions not yet in a batch: ``POST /finance/accounting/export``.

        It changes nothing in ConnectWise, so it is retried like a GET. Post the export to your
        ledger, then create batches holding its `GLExport.gl_entry_ids` (one batch per kind:
        `GLExport.batch_requests`) so the transactions are not exported again.

        Args:
            thru_date: Export transactions up to this date (a `datetime.date`, a
                `datetime.datetime`, or ISO 8601 text); all when ``None``.
            location_id: Only this ConnectWise location (``locationId``).
            export_invoices: Include invoices (``exportInvoicesFlag``).
            export_expenses: Include expenses (``exportExpensesFlag``).
            export_products: Include products, i.e. procurement (``exportProductsFlag``).
            export_payments: ``exportPaymentsFlag``; not sent when ``None``.
            included_invoice_ids: Only these invoices (ids of ``/unpostedinvoices``).
            excluded_invoice_ids: Leave these invoices out.
            included_expense_ids: Only these expenses (ids of ``/unpostedexpenses``).
            excluded_expense_ids: Leave these expenses out.
            included_payment_ids: Only these payments.
            included_product_ids: Only these products (ConnectWise's ids are strings here).
            excluded_product_ids: Leave these products out.
            summarize_invoices: ``"Default"``, ``"Condensed"`` or ``"Detailed"``.
            batch_identifier: ``batchIdentifier`` (at most 50 characters).
            gl_interface_identifier: ``glInterfaceIdentifier``.

        Returns:
            The `GLExport`: its records, typed, and the answer's JSON kept whole.

        Raises:
            ValueError: An argument ConnectWise would refuse (nothing is sent).
            ApiError: The export failed, after the retries that were safe; also when the answer
                is not a GL export or holds ids that cannot be read.
        """
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
        return self._run(call)

    def export_batch(self, batch_id: int) -> GLExport:
        """Export a batch again: ``POST /finance/accounting/batches/{id}/export``.

        The GL export of the transactions batch ``batch_id`` holds, as creating it answered:
        for posting them to a ledger again (the ledger step failed after the batch was made,
        or an audit). It changes nothing, so it is retried like a GET.

        Raises:
            NotFoundError: There is no batch ``batch_id``.
            ApiError: As for `export_gl`.
        """
        return self._run(self._export_batch_call(batch_id))

    def get_batch(self, batch_id: int) -> AccountingBatch:
        """The batch with ConnectWise id ``batch_id``; `NotFoundError` if there is none."""
        return self._run(self._get_batch_call(batch_id))

    def delete_batch(self, batch_id: int) -> None:
        """Delete the batch with ConnectWise id ``batch_id``, which frees its GL entries."""
        self._run(self._delete_batch_call(batch_id))

    def list_batches(
        self,
        conditions: str | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        order_by: str | None = None,
    ) -> Iterator[AccountingBatch]:
        """Every batch matching ``conditions`` (ConnectWise's syntax), fetching page by page.

        Follows the ``Link: rel="next"`` header when ConnectWise sends one (this covers
        forward-only paging too), and page numbers otherwise.
        """
        pager = batches_pager(self.api_root, conditions, page_size=page_size, order_by=order_by)
        while pager.url is not None:
            yield from self._drive(self._page_call(pager))

    def find_batches(
        self, identifiers: Iterable[str], *, min_id: int | None = None
    ) -> list[AccountingBatch]:
        r"""The batches whose identifier is one of ``identifiers``, in few requests.

        Asks ``batchIdentifier in (...)`` in chunks that keep each URL short. ConnectWise
        documents no escape for quotes inside ``conditions``, so identifiers holding ``"``,
        ``'`` or ``\`` are never put in one: they are found by listing the batches with an id
        above ``min_id`` (all batches without it) and comparing in Python. With ``min_id``, only
        batches with a greater id (created after the batch ``min_id``).
        """
        plan = FindPlan.of(identifiers, min_id)
        found: list[AccountingBatch] = []
        for condition in plan.conditions:
            found.extend(self.list_batches(condition))
        if plan.odd:
            listing = self.list_batches(plan.listing, order_by="id asc")
            found.extend(batch for batch in listing if batch.batch_identifier in plan.odd)
        return found

    def batch_entry_ids(self, batch_id: int) -> list[int]:
        """The ``id`` of every entry of batch ``batch_id`` (``GET /batches/{id}/entries``).

        ConnectWise's ``BatchEntry`` has an ``id`` and no other id field; this library takes it
        to be the GL entry's id (an assumption, see docs/reliability.md).
        """
        pager = entries_pager(self.api_root, batch_id)
        ids: list[int] = []
        while pager.url is not None:
            ids.extend(self._drive(self._page_call(pager)))
        return ids

    def highest_batch_id(self) -> int:
        """The largest batch id that exists now, 0 when there is none.

        Ids only grow, so batches created later all have a greater id (see ``find_batches``).
        """
        return self._run(self._highest_batch_id_call())

    # -- driving calls ---------------------------------------------------------------------

    def _known_api_root(self) -> str:
        """The API root, looked up once whatever the number of threads asking."""
        with self._root_lock:
            if self._api_root is None:
                self._api_root = self._drive(self._discover_api_root_call())
            return self._api_root

    def _run(self, call: Call[T]) -> T:
        """Drive ``call``, the API root known first."""
        if self._api_root is None:
            self._known_api_root()
        return self._drive(call)

    def _drive(self, call: Call[T]) -> T:
        reply: Reply | None = None
        try:
            while True:
                step = call.send(reply)
                if isinstance(step, Pause):
                    self._sleep(step.seconds)
                    reply = None
                    continue
                http, request = self._build_request(self._http, step)
                if self._pacer is not None and (delay := self._pacer.reserve()) > 0:
                    self._sleep(delay)
                reply = self._reply(
                    send_bounded(http, request, timeout=self._timeout, limit=self._max_answer_bytes)
                )
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            call.close()
