"""The simulator's fault kinds: proxy statuses before and after acting, trickles, cut answers."""

from __future__ import annotations

import json
import socket
import struct
import threading

import httpx
import pytest

from cw_glbatch.testing import FakeConnectWise, Fault

BATCHES = "/finance/accounting/batches"
BODY = {
    "batchIdentifier": "B1",
    "processedRecordIds": [1],
    "exportInvoicesFlag": True,
    "exportExpensesFlag": True,
    "exportProductsFlag": True,
}


def headers(fake: FakeConnectWise) -> dict[str, str]:
    with fake.client() as client:
        return dict(client._headers)


def in_process(fake: FakeConnectWise) -> httpx.Client:
    """A plain httpx client on the simulator's transport, with the right credentials."""
    return httpx.Client(
        transport=fake.transport(),
        base_url="https://connectwise.invalid" + fake.api_path,
        headers=headers(fake),
    )


@pytest.fixture(params=["in process", "over HTTP"])
def way_in(request):
    """Yields a function giving an httpx.Client on the API root of a fake, either way in."""
    servers = []

    def connect(fake: FakeConnectWise) -> httpx.Client:
        if request.param == "in process":
            return in_process(fake)
        server = fake.serve()
        servers.append(server)
        return httpx.Client(base_url=server.base_url, headers=headers(fake))

    yield connect
    for server in servers:
        server.close()


def post(http: httpx.Client) -> httpx.Response:
    return http.post(BATCHES, content=json.dumps(BODY))


@pytest.mark.parametrize("status", [520, 524])
def test_committed_status_comes_after_the_batch_is_created(way_in, status):
    """Fault.committed(520/524): the batch exists, the client gets the status and an HTML page."""
    fake = FakeConnectWise()
    fake.add_unposted([1])
    fake.fail_next(Fault.committed(status), method="POST")
    with way_in(fake) as http:
        response = post(http)
    assert response.status_code == status
    assert response.headers["content-type"] == "text/html"
    assert response.text.startswith("<!DOCTYPE html>")
    assert str(status) in response.text
    assert [b.gl_entry_ids for b in fake.batches] == [(1,)]
    assert (fake.requests[-1].fault, fake.requests[-1].status) == ("committed", status)


@pytest.mark.parametrize("status", [502, 503, 504, 521, 522, 523, 525, 526])
def test_proxy_statuses_before_acting_create_nothing(way_in, status):
    """Named proxy statuses that prove non-delivery: HTML page, and no batch is created."""
    fake = FakeConnectWise()
    fake.add_unposted([1])
    fake.fail_next(Fault.named(str(status)), method="POST")
    with way_in(fake) as http:
        response = post(http)
    assert (response.status_code, response.headers["content-type"]) == (status, "text/html")
    assert "<html>" in response.text
    assert fake.batches == []
    assert fake.unposted_ids == {1}


def test_committed_fault_can_carry_any_body(way_in):
    """Fault.committed(201, body=b"") gives a 2xx that is not JSON, after the batch exists."""
    fake = FakeConnectWise()
    fake.add_unposted([1])
    fake.fail_next(Fault.committed(201, body=b"<html>ok</html>"), method="POST")
    with way_in(fake) as http:
        response = post(http)
    assert (response.status_code, response.content) == (201, b"<html>ok</html>")
    assert len(fake.batches) == 1


def test_truncated_answer_stops_half_way_after_acting(way_in):
    """Fault.truncated(): the client gets half the body and a closed connection; batch exists."""
    fake = FakeConnectWise()
    fake.add_unposted([1])
    fake.fail_next(Fault.truncated(), method="POST")
    with way_in(fake) as http, pytest.raises(httpx.RemoteProtocolError):
        post(http)
    assert len(fake.batches) == 1
    assert fake.requests[-1].fault == "truncated"


def test_truncated_answer_without_body_stops_in_the_head(way_in):
    """A cut DELETE answer (no body) stops inside the head: no status reaches the client."""
    fake = FakeConnectWise()
    fake.add_unposted([1])
    with way_in(fake) as http:
        post(http)
        fake.fail_next(Fault.truncated(), method="DELETE")
        with pytest.raises(httpx.RemoteProtocolError):
            http.delete(BATCHES + "/1")
    assert fake.batches == []  # the delete was done


def test_trickle_sends_the_answer_in_pieces(way_in):
    """Fault.trickle(chunk, delay): a pause before each piece, the whole answer arrives."""
    waits: list[float] = []
    fake = FakeConnectWise(sleep=waits.append)
    fake.add_unposted([1])
    fake.fail_next(Fault.trickle(chunk=10, delay=0.25), method="POST")
    with way_in(fake) as http:
        response = post(http)
    assert response.is_success
    assert response.json()["exportSettings"]["batchIdentifier"] == "B1"
    assert waits == [0.25] * -(-len(response.content) // 10)
    assert len(fake.batches) == 1


def test_trickle_is_refused_with_bad_settings():
    """A trickle needs at least one byte per piece and no negative delay."""
    with pytest.raises(ValueError, match="chunk"):
        Fault.trickle(chunk=0)
    with pytest.raises(ValueError, match="delay"):
        Fault.trickle(delay=-1)


@pytest.mark.parametrize(
    ("name", "fault"),
    [
        ("520", Fault.committed(520)),
        ("524", Fault.committed(524)),
        ("521", Fault.status(521)),
        ("503", Fault.status(503)),
        ("500", Fault.status(500)),
        ("429", Fault.too_many_requests(1)),
        ("reset", Fault.reset()),
        (" Lost ", Fault.lost()),
        ("trickle", Fault.trickle()),
        ("truncated", Fault.truncated()),
    ],
)
def test_faults_by_name(name, fault):
    """Fault.named maps CLI names to faults: 520/524 after acting, other statuses before."""
    assert Fault.named(name) == fault


@pytest.mark.parametrize("name", ["", "200", "600", "slow", "5O3"])
def test_unknown_fault_names_are_refused(name):
    """A name that is no fault is refused, saying what is accepted."""
    with pytest.raises(ValueError, match="reset, lost, trickle, truncated"):
        Fault.named(name)


def test_rate_limit_window_follows_the_injected_clock():
    """The rate limit reads the injected clock: full at N, free again once the window passed."""
    now = [1000.0]
    fake = FakeConnectWise(clock=lambda: now[0])
    fake.set_rate_limit(2, per=3.0)
    with in_process(fake) as http:
        statuses = [http.get(BATCHES).status_code for _ in range(3)]
        now[0] += 1.0
        statuses.append(http.get(BATCHES).status_code)
        now[0] += 2.0
        statuses.append(http.get(BATCHES).status_code)
    assert statuses == [200, 200, 429, 429, 200]


def test_rate_limit_retry_after_is_what_is_left_of_the_window():
    """Retry-After says how long until the oldest request leaves the window (rounded up)."""
    now = [50.0]
    fake = FakeConnectWise(clock=lambda: now[0])
    fake.set_rate_limit(1, per=10.0)
    with in_process(fake) as http:
        http.get(BATCHES)
        now[0] += 6.5
        response = http.get(BATCHES)
    assert (response.status_code, response.headers["retry-after"]) == (429, "4")


def test_client_hanging_up_prints_no_traceback(capsys):
    """A client that resets its connection mid-request leaves nothing on stderr."""
    fake = FakeConnectWise()
    with fake.serve() as server:
        done = threading.Event()
        shutdown_request = server._server.shutdown_request

        def noted(request):
            shutdown_request(request)
            done.set()

        server._server.shutdown_request = noted  # type: ignore[method-assign]
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        sock = socket.create_connection((host, int(port)))
        sock.sendall(b"GET /login/companyinfo/acme HTTP/1.1\r\nHost: x\r\n")  # no end of head
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # a reset
        assert done.wait(10)
    assert capsys.readouterr().err == ""


def test_error_bodies_are_connectwise_s(way_in):
    """429 has ConnectWise's throttling body; 500 is ConnectWiseApi; errors is null if no field."""
    fake = FakeConnectWise()
    fake.fail_next(Fault.too_many_requests(retry_after=2), Fault.status(500), method="GET")
    with way_in(fake) as http:
        throttled, failed, missing = (http.get(BATCHES + "/1") for _ in range(3))
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "2")
    assert throttled.json()["error"] == "ConnectWiseAPI"
    assert "Too many requests" in throttled.json()["message"]
    assert failed.status_code == 500
    assert (failed.json()["code"], failed.json()["errors"]) == ("ConnectWiseApi", None)
    assert (missing.status_code, missing.json()["errors"]) == (404, None)


def test_missing_permission_answers_security(way_in):
    """Without the Accounting Interface permission: 403 with code Security."""
    with way_in(FakeConnectWise(accounting_access=False)) as http:
        response = http.get(BATCHES)
    assert (response.status_code, response.json()["code"]) == (403, "Security")


def test_fault_kinds_work_through_the_pytest_fixture(connectwise):
    """The connectwise fixture's simulator takes the new kinds: a 524 after the batch exists."""
    from cw_glbatch import ApiError

    ids = connectwise.fake.populate(2)
    connectwise.fake.fail_next(Fault.committed(524), method="POST")
    with pytest.raises(ApiError):  # how the client classifies a 524 is its own rule
        connectwise.client.create_batch("B", ids)
    assert [b.gl_entry_ids for b in connectwise.fake.batches] == [tuple(ids)]
    assert [r.fault for r in connectwise.fake.requests if r.status == 524] == ["committed"]
