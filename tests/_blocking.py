"""An AsyncConnectWiseClient behind ConnectWiseClient's blocking interface.

The client tests run against both clients through it, so that the async client is held to
every behaviour the sync one is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from cw_glbatch import AccountingBatch, AsyncConnectWiseClient

T = TypeVar("T")


class BlockingAsyncClient:
    """Runs each call of an AsyncConnectWiseClient to completion on a private event loop."""

    def __init__(self, client: AsyncConnectWiseClient) -> None:
        self.client = client
        self._loop = asyncio.new_event_loop()

    def _wait(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coroutine)

    def __repr__(self) -> str:
        return repr(self.client)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)  # (private state, for tests that look at it)

    @property
    def api_root(self) -> str:
        return self._wait(self.client.api_root())

    @property
    def requests_sent(self) -> int:
        return self.client.requests_sent

    def create_batch(self, *args: Any, **kwargs: Any) -> Any:
        return self._wait(self.client.create_batch(*args, **kwargs))

    def get_batch(self, batch_id: int) -> AccountingBatch:
        return self._wait(self.client.get_batch(batch_id))

    def delete_batch(self, batch_id: int) -> None:
        self._wait(self.client.delete_batch(batch_id))

    def find_batches(self, *args: Any, **kwargs: Any) -> list[AccountingBatch]:
        return self._wait(self.client.find_batches(*args, **kwargs))

    def batch_entry_ids(self, batch_id: int) -> list[int]:
        return self._wait(self.client.batch_entry_ids(batch_id))

    def highest_batch_id(self) -> int:
        return self._wait(self.client.highest_batch_id())

    def list_batches(self, *args: Any, **kwargs: Any) -> Iterator[AccountingBatch]:
        batches = self.client.list_batches(*args, **kwargs)
        try:
            while True:
                try:
                    yield self._wait(batches.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._wait(batches.aclose())

    def close(self) -> None:
        self._wait(self.client.aclose())

    def __enter__(self) -> BlockingAsyncClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
        self._loop.close()
