"""What a run needs of a client: the members `create_batches` and `acreate_batches` call.

`ConnectWiseClient` and `AsyncConnectWiseClient` satisfy these; so does a fake written in a few
lines (docs/testing.md shows one). Keeping the list short keeps such fakes short: a run reads
the highest batch id once, creates batches, looks batches up by id range or identifier, and
proves a batch found is its own by its GL entries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Protocol

from ._models import AccountingBatch

__all__ = ["AsyncBatchClient", "BatchClient"]


class BatchClient(Protocol):
    """The members of a client that `create_batches` and `process_file` use.

    A run calls `highest_batch_id` once (it also checks the credentials), `create_batch` once
    per batch (again only after a lookup found nothing), `list_batches` with
    ``conditions="id > N"`` and ``order_by="id asc"`` to learn the ids of the batches it
    created, `find_batches` to look batches up by identifier, and `batch_entry_ids` to prove a
    batch found holds the request's GL entries. It reads `requests_sent` before and after, for
    the report; a journaled run (`process_file`) records `origin` and `company_id`.
    """

    @property
    def company_id(self) -> str:
        """The company the client logs in as (journals and result files record it)."""
        ...

    @property
    def origin(self) -> str:
        """The server the client talks to, ``scheme://host[:port]`` (recorded with the company)."""
        ...

    @property
    def requests_sent(self) -> int:
        """How many HTTP requests the client has sent (0 is fine for a fake)."""
        ...

    def highest_batch_id(self) -> int:
        """The largest batch id that exists, 0 when there is none."""
        ...

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
    ) -> object:
        """Create one batch; raise an `ApiError` subclass when it is not created.

        A request with options of its own (``<exportInvoicesFlag>``...) passes them as these
        keywords (`BatchRequest.batch_options()`); a fake may take them as ``**options``.
        """
        ...

    def list_batches(
        self, conditions: str | None = None, *, order_by: str | None = None
    ) -> Iterable[AccountingBatch]:
        """Every batch matching ``conditions``, in ``order_by`` order."""
        ...

    def find_batches(
        self, identifiers: Iterable[str], *, min_id: int | None = None
    ) -> Iterable[AccountingBatch]:
        """The batches named one of ``identifiers`` whose id is greater than ``min_id``."""
        ...

    def batch_entry_ids(self, batch_id: int) -> Iterable[int]:
        """The GL entry ids batch ``batch_id`` holds."""
        ...


class AsyncBatchClient(Protocol):
    """The members of a client that `acreate_batches` and `aprocess_file` use.

    The same as `BatchClient`, as coroutines; `list_batches` is an async iterator.
    """

    @property
    def company_id(self) -> str:
        """The company the client logs in as (journals and result files record it)."""
        ...

    @property
    def origin(self) -> str:
        """The server the client talks to, ``scheme://host[:port]`` (recorded with the company)."""
        ...

    @property
    def requests_sent(self) -> int:
        """How many HTTP requests the client has sent (0 is fine for a fake)."""
        ...

    async def highest_batch_id(self) -> int:
        """The largest batch id that exists, 0 when there is none."""
        ...

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
    ) -> object:
        """Create one batch; raise an `ApiError` subclass when it is not created.

        A request with options of its own (``<exportInvoicesFlag>``...) passes them as these
        keywords (`BatchRequest.batch_options()`); a fake may take them as ``**options``.
        """
        ...

    def list_batches(
        self, conditions: str | None = None, *, order_by: str | None = None
    ) -> AsyncIterator[AccountingBatch]:
        """Every batch matching ``conditions``, in ``order_by`` order."""
        ...

    async def find_batches(
        self, identifiers: Iterable[str], *, min_id: int | None = None
    ) -> Iterable[AccountingBatch]:
        """The batches named one of ``identifiers`` whose id is greater than ``min_id``."""
        ...

    async def batch_entry_ids(self, batch_id: int) -> Iterable[int]:
        """The GL entry ids batch ``batch_id`` holds."""
        ...
