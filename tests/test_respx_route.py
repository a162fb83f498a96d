"""route_to_simulator: one line lets a respx mock answer ConnectWise requests from the simulator."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from cw_glbatch import BatchRequest, ConnectWiseClient, create_batches
from cw_glbatch.testing import FakeConnectWise, Fault, route_to_simulator

TESTING_DOC = Path(__file__).parents[1] / "docs" / "testing.md"


def test_the_documented_respx_test_passes(respx_mock, connectwise):
    """The respx example in docs/testing.md runs and passes as written."""
    text = TESTING_DOC.read_text(encoding="utf-8").split("## Mocking with respx in one line", 1)[1]
    code = re.search(r"```python\n(.*?)```", text, re.DOTALL).group(1)
    namespace: dict[str, object] = {}
    exec(compile(code, "testing.md", "exec"), namespace)  # noqa: S102
    namespace["test_my_job_creates_its_batch"](respx_mock, connectwise)
    assert len(connectwise.fake.batches) == 1


def test_every_request_of_a_run_goes_to_the_simulator(respx_mock):
    """A run through a site= client makes the documented requests, all answered by the fake."""
    fake = FakeConnectWise()
    ids = fake.populate(2)
    route = route_to_simulator(respx_mock, fake)
    with ConnectWiseClient(site="eu.myconnectwise.net", **fake.credentials) as client:
        report = create_batches(client, [BatchRequest(gl_rec_ids=ids)])
    assert report.ok
    assert [(r.method, r.path) for r in fake.requests] == [
        ("GET", "/login/companyinfo/acme"),
        ("GET", "/finance/accounting/batches"),
        ("POST", "/finance/accounting/batches"),
        ("GET", "/finance/accounting/batches"),
    ]
    assert fake.requests[1].query == {"orderBy": "id desc", "pageSize": "1", "fields": "id"}
    assert fake.requests[3].query == {
        "pageSize": "1000",
        "conditions": "id > 0",
        "orderBy": "id asc",
        "page": "1",
    }
    assert route.call_count == 4
    assert {str(c.request.url.host) for c in route.calls} == {"eu.myconnectwise.net"}


def test_only_the_given_host_is_routed(respx_mock):
    """With host=, requests to other hosts are not answered by the simulator."""
    fake = FakeConnectWise()
    route_to_simulator(respx_mock, fake, host="eu.myconnectwise.net")
    other = respx_mock.get("https://elsewhere.example/x").respond(204)
    with httpx.Client() as http:
        assert http.get("https://elsewhere.example/x").status_code == 204
    assert other.call_count == 1
    assert fake.requests == []


def test_faults_reach_the_client_through_respx(respx_mock):
    """A fault injected into the simulator arrives as it would in process (a lost answer)."""
    fake = FakeConnectWise()
    ids = fake.populate(1)
    route_to_simulator(respx_mock, fake)
    fake.fail_next(Fault.lost(), method="POST")
    with ConnectWiseClient(site="eu.myconnectwise.net", **fake.credentials) as client:
        report = create_batches(client, [BatchRequest("X", ids)])
    assert [(r.identifier, r.status, r.batch_id) for r in report.results] == [("X", "created", 1)]
    assert fake.count_requests("POST") == 1  # looked up, found, not sent again


async def _async_get(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(url)


def test_async_clients_are_answered_too(respx_mock):
    """An httpx.AsyncClient's requests are answered by the simulator as well."""
    import asyncio

    fake = FakeConnectWise()
    route_to_simulator(respx_mock, fake)
    response = asyncio.run(_async_get("https://eu.myconnectwise.net/login/companyinfo/acme"))
    assert response.json()["Codebase"] == "v2025_1/"
