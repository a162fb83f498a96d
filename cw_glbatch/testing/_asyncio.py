"""The simulator for asyncio code: an AsyncConnectWiseClient wired to it in process."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from cw_glbatch._async_client import AsyncConnectWiseClient

from ._fake import FakeConnectWise
from ._inprocess import answer_in_process
from ._wire import IN_PROCESS_ORIGIN

__all__ = ["async_client"]


async def _no_sleep(seconds: float) -> None:
    """Retries wait for nothing in tests."""


def _async_transport(fake: FakeConnectWise) -> httpx.MockTransport:
    """Answers in a worker thread, so injected latency does not hold up the event loop."""

    async def answer(request: httpx.Request) -> httpx.Response:
        await request.aread()
        return await asyncio.to_thread(answer_in_process, fake.handle, request, fake.faults.pause)

    return httpx.MockTransport(answer)


def async_client(fake: FakeConnectWise, **options: Any) -> AsyncConnectWiseClient:
    """An `AsyncConnectWiseClient` wired to ``fake`` in process, with sleeping turned off.

    The simulator answers in a worker thread: its latency and trickled answers wait there,
    not on the event loop. The twin of ``fake.client()``; ``options`` are the client's
    constructor arguments.

    Example::

        async with async_client(fake) as client:
            await client.create_batch("B1", ids)
    """
    settings: dict[str, Any] = {
        "base_url": IN_PROCESS_ORIGIN + fake.api_path,
        "transport": _async_transport(fake),
        "sleep": _no_sleep,
        **fake.credentials,
    }
    settings.update(options)
    return AsyncConnectWiseClient(**settings)
