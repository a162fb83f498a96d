"""The two ways to run the task, behind one interface, so behaviour tests run against both:
``create_batches``/``process_file`` with ConnectWiseClient, and ``acreate_batches``/
``aprocess_file`` with AsyncConnectWiseClient (each call run to completion with asyncio.run)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cw_glbatch import (
    AsyncConnectWiseClient,
    RunReport,
    acreate_batches,
    aprocess_file,
    create_batches,
    process_file,
)
from cw_glbatch.testing import FakeConnectWise, SimulatorServer, async_client


class SyncPair:
    """create_batches and process_file with a ConnectWiseClient."""

    @contextmanager
    def client(self, fake: FakeConnectWise, **options: Any) -> Iterator[Any]:
        with fake.client(**options) as client:
            yield client

    @contextmanager
    def server_client(self, server: SimulatorServer, fake: FakeConnectWise) -> Iterator[Any]:
        with server.client(sleep=lambda seconds: None) as client:
            yield client

    def create_batches(self, client: Any, batches: Any, **options: Any) -> RunReport:
        return create_batches(client, batches, **options)

    def process_file(self, client: Any, *paths: Any, **options: Any) -> RunReport:
        return process_file(client, *paths, **options)


class AsyncPair:
    """acreate_batches and aprocess_file with an AsyncConnectWiseClient.

    Each client lives on its own event loop, from creation to aclose (its connections belong
    to that loop); the runs it makes are run to completion on that loop.
    """

    def __init__(self) -> None:
        self._loops: dict[int, asyncio.AbstractEventLoop] = {}

    @contextmanager
    def _on_own_loop(self, client: AsyncConnectWiseClient) -> Iterator[Any]:
        loop = self._loops[id(client)] = asyncio.new_event_loop()
        try:
            yield client
        finally:
            loop.run_until_complete(client.aclose())
            loop.close()
            del self._loops[id(client)]

    def client(self, fake: FakeConnectWise, **options: Any) -> Any:
        return self._on_own_loop(async_client(fake, **options))

    def server_client(self, server: SimulatorServer, fake: FakeConnectWise) -> Any:
        async def no_sleep(seconds: float) -> None:
            pass

        return self._on_own_loop(
            AsyncConnectWiseClient(base_url=server.base_url, sleep=no_sleep, **fake.credentials)
        )

    def create_batches(self, client: Any, batches: Any, **options: Any) -> RunReport:
        run = acreate_batches(client, batches, **options)
        return self._loops[id(client)].run_until_complete(run)

    def process_file(self, client: Any, *paths: Any, **options: Any) -> RunReport:
        run = aprocess_file(client, *paths, **options)
        return self._loops[id(client)].run_until_complete(run)


PAIRS = {"sync": SyncPair(), "async": AsyncPair()}


FLAVOURS = ("sync", "async")


def process(
    flavour: str,
    fake: FakeConnectWise,
    *paths: Path,
    server: SimulatorServer | None = None,
    sleep: Callable[[float], None] | None = None,
    client_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> RunReport:
    """process_file (``"sync"``) or aprocess_file (``"async"``) of ``paths`` against ``fake``.

    In process by default, over loopback HTTP through ``server`` when given; retries wait with
    ``sleep`` (by default not at all).
    """
    settings: dict[str, Any] = dict(client_options or {})
    plain_sleep = sleep or (lambda seconds: None)
    if flavour == "sync":
        settings["sleep"] = plain_sleep
        client = server.client(**settings) if server else fake.client(**settings)
        with client:
            return process_file(client, *paths, **options)

    async def async_sleep(seconds: float) -> None:
        plain_sleep(seconds)

    settings["sleep"] = async_sleep

    async def run() -> RunReport:
        if server is not None:
            base_url = server.base_url
            client = AsyncConnectWiseClient(base_url=base_url, **fake.credentials, **settings)
        else:
            client = async_client(fake, **settings)
        async with client:
            return await aprocess_file(client, *paths, **options)

    return asyncio.run(run())
