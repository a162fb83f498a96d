"""AsyncConnectWiseClient: what only the async client has (the shared behaviour is in
test_client.py, which runs every client test against both clients)."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from cw_glbatch import (
    AsyncConnectWiseClient,
    ClientClosedError,
    ConfigurationError,
    ConnectWiseClient,
    OutcomeUnknownError,
)
from cw_glbatch.testing import FakeConnectWise, Fault, async_client

from .test_client import BATCHES, CREDENTIALS, ROOT, SITE, batch_json


def test_concurrent_tasks_look_the_codebase_up_once(respx_mock):
    """Tasks starting together on a site= client fetch /login/companyinfo once."""
    info = respx_mock.get(f"https://{SITE}/login/companyinfo/acme").respond(
        json={"Codebase": "v2025_1/"}
    )
    batch = respx_mock.get(f"{BATCHES}/7").respond(json=batch_json(7))

    async def main() -> list[int]:
        async with AsyncConnectWiseClient(site=SITE, **CREDENTIALS) as client:
            found = await asyncio.gather(*(client.get_batch(7) for _ in range(5)))
            assert await client.api_root() == ROOT
        return [b.id for b in found]

    assert asyncio.run(main()) == [7] * 5
    assert (info.call_count, batch.call_count) == (1, 5)


def test_async_with_closes_and_a_closed_client_says_so():
    """Leaving `async with` closes the client; a later call raises ClientClosedError."""
    fake = FakeConnectWise()

    async def main() -> None:
        async with async_client(fake) as client:
            assert await client.highest_batch_id() == 0
        with pytest.raises(ClientClosedError, match="AsyncConnectWiseClient is closed"):
            await client.highest_batch_id()
        assert "closed" in repr(client)

    asyncio.run(main())


def test_each_client_refuses_the_other_kind_of_httpx_client():
    """ConnectWiseClient refuses an httpx.AsyncClient and vice versa, naming the right one."""

    async def main() -> None:
        async with httpx.AsyncClient() as http:
            with pytest.raises(ConfigurationError, match="use AsyncConnectWiseClient"):
                ConnectWiseClient(base_url=ROOT, http_client=http, **CREDENTIALS)  # type: ignore[arg-type]
        with (
            httpx.Client() as http,
            pytest.raises(ConfigurationError, match="use ConnectWiseClient"),
        ):
            AsyncConnectWiseClient(base_url=ROOT, http_client=http, **CREDENTIALS)  # type: ignore[arg-type]

    asyncio.run(main())


def test_from_env_builds_an_async_client():
    """AsyncConnectWiseClient.from_env reads the same variables and gives the async client."""
    environ = {
        "CW_BASE_URL": ROOT,
        "CW_COMPANY_ID": "acme",
        "CW_PUBLIC_KEY": "p",
        "CW_PRIVATE_KEY": "k",
        "CW_CLIENT_ID": "c",
    }
    client = AsyncConnectWiseClient.from_env(environ)
    assert type(client) is AsyncConnectWiseClient
    assert repr(client) == f"AsyncConnectWiseClient({ROOT!r}, company_id='acme')"
    asyncio.run(client.aclose())


def test_the_simulator_answers_the_async_client_with_its_faults():
    """Through the simulator's transport, a lost answer to a POST is an OutcomeUnknownError
    and a 503 is sent again; the batch exists once."""
    fake = FakeConnectWise()
    ids = fake.populate(2)
    fake.fail_next(Fault.lost(), Fault.status(503), method="POST")

    async def main() -> None:
        async with async_client(fake) as client:
            with pytest.raises(OutcomeUnknownError):
                await client.create_batch("A", ids[:1])
            await client.create_batch("B", ids[1:])
            assert [b.batch_identifier async for b in client.list_batches()] == ["A", "B"]

    asyncio.run(main())
    assert fake.count_requests("POST") == 3


def test_the_simulators_latency_waits_off_the_event_loop():
    """Two requests to the in-process simulator wait out its latency at the same time."""
    both_waiting = threading.Barrier(2)
    fake = FakeConnectWise(sleep=lambda seconds: both_waiting.wait(timeout=10))
    fake.set_latency(1.0)

    async def main() -> None:
        async with async_client(fake) as client:
            await asyncio.gather(client.highest_batch_id(), client.highest_batch_id())

    asyncio.run(main())  # on the event loop, the first wait would hold the second back
    assert fake.count_requests("GET") >= 2


def test_a_trickled_answer_waits_off_the_event_loop():
    """Two trickled answers from the in-process simulator are read at the same time."""
    both_waiting = threading.Barrier(2)
    fake = FakeConnectWise(sleep=lambda seconds: both_waiting.wait(timeout=10))
    fake.fail_next(Fault.trickle(chunk=100_000), Fault.trickle(chunk=100_000), method="GET")

    async def main() -> None:
        async with async_client(fake) as client:
            await asyncio.gather(client.highest_batch_id(), client.highest_batch_id())

    asyncio.run(main())


def test_over_loopback_http():
    """The async client works over a real socket against the simulator's server."""
    fake = FakeConnectWise()
    ids = fake.populate(3)

    async def main(base_url: str) -> list[int]:
        async with AsyncConnectWiseClient(base_url=base_url, **fake.credentials) as client:
            await client.create_batch("L", ids)
            return [b.id for b in await client.find_batches(["L"])]

    with fake.serve() as server:
        assert asyncio.run(main(server.base_url)) == [1]


def test_pacer_reserves_slots_without_sleeping():
    """RequestPacer.reserve (what the async client awaits) gives each caller the next slot."""
    from cw_glbatch._retry import RequestPacer

    def no_sleep(seconds: float) -> None:
        raise AssertionError("reserve must not sleep")

    pacer = RequestPacer(120, clock=lambda: 10.0, sleep=no_sleep)
    assert [pacer.reserve() for _ in range(3)] == [0.0, 0.5, 1.0]
