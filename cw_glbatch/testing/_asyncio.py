"""The simulator for asyncio code: an AsyncConnectWiseClient wired to it in process."""

from __future__ import annotations

from typing import Any

from cw_glbatch._async_client import AsyncConnectWiseClient

from ._fake import FakeConnectWise
from ._wire import IN_PROCESS_ORIGIN

__all__ = ["async_client"]


async def _no_sleep(seconds: float) -> None:
    """Retries wait for nothing in tests."""


def async_client(fake: FakeConnectWise, **options: Any) -> AsyncConnectWiseClient:
    """An `AsyncConnectWiseClient` wired to ``fake`` in process, with sleeping turned off.

    The twin of ``fake.client()``; ``options`` are the client's constructor arguments.

    Example::

        async with async_client(fake) as client:
            await client.create_batch("B1", ids)
    """
    settings: dict[str, Any] = {
        "base_url": IN_PROCESS_ORIGIN + fake.api_path,
        "transport": fake.transport(),
        "sleep": _no_sleep,
        **fake.credentials,
    }
    settings.update(options)
    return AsyncConnectWiseClient(**settings)
