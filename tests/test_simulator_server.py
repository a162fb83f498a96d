"""The simulator over real loopback HTTP, with a real httpx client."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest

from cw_glbatch import OutcomeUnknownError
from cw_glbatch.testing import FakeConnectWise, Fault


def test_server_answers_a_real_client():
    """A ConnectWiseClient over loopback creates and lists batches, discovering the codebase."""
    fake = FakeConnectWise()
    ids = fake.populate(4)
    with fake.serve() as server:
        assert server.url.startswith("http://127.0.0.1:")
        with server.client() as client:
            client.create_batch("B1", ids[:2])
            assert [b.batch_identifier for b in client.list_batches()] == ["B1"]
        site = server.url  # http:// on loopback is allowed
        from cw_glbatch import ConnectWiseClient

        with ConnectWiseClient(site=site, **fake.credentials) as client:
            assert client.highest_batch_id() == 1
            assert client.api_root == server.base_url


def test_lost_answer_over_http_resets_the_connection():
    """Over HTTP, a lost answer is a dropped connection, and the batch exists."""
    fake = FakeConnectWise()
    fake.add_unposted([1])
    fake.fail_next(Fault.lost(), method="POST")
    with fake.serve() as server, server.client() as client:
        with pytest.raises(OutcomeUnknownError):
            client.create_batch("B", [1])
        assert [b.batch_identifier for b in client.list_batches()] == ["B"]


def test_keep_alive_connections_are_reused():
    """The server keeps connections alive, so a client reuses one for many requests."""
    fake = FakeConnectWise()
    with fake.serve() as server:
        ports = set()
        with httpx.Client() as http:
            for _ in range(5):
                response = http.get(server.url + "/login/companyinfo/acme", extensions={})
                ports.add(response.extensions["network_stream"].get_extra_info("client_addr")[1])
        assert len(ports) == 1


def test_close_is_clean_with_idle_connections_open():
    """Closing the server ends its threads even while a client holds a kept-alive connection."""
    fake = FakeConnectWise()
    server = fake.serve()
    http = httpx.Client()
    http.get(server.url + "/login/companyinfo/acme")  # leaves an idle keep-alive connection
    before = threading.active_count()
    server.close()
    assert not server._thread.is_alive()
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=1),
    ):
        pass
    http.close()
    assert threading.active_count() <= before


def test_concurrent_clients_over_http():
    """Several threads posting over HTTP at once all get their batches."""
    fake = FakeConnectWise()
    ids = fake.populate(80)
    with fake.serve() as server, server.client() as client:
        threads = [
            threading.Thread(target=client.create_batch, args=(f"B{n}", ids[n * 10 : n * 10 + 10]))
            for n in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(b.batch_identifier for b in fake.batches) == [f"B{n}" for n in range(8)]


def test_https_server_serves_others_while_one_client_stays_silent(capsys):
    """A client that connects and never shakes hands neither blocks others nor prints anything."""
    import ssl

    import trustme

    ca = trustme.CA()
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    fake = FakeConnectWise()
    with fake.serve(ssl_context=server_context) as server:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)):  # says nothing at all
            with httpx.Client(verify=client_context, timeout=10) as http:
                answer = http.get(server.url + "/login/companyinfo/acme")
            with pytest.raises(httpx.RemoteProtocolError):  # plain HTTP: the handshake fails
                httpx.get(server.url.replace("https", "http") + "/", timeout=10)
    assert (answer.status_code, answer.json()["Codebase"]) == (200, fake.codebase)
    assert capsys.readouterr().err == ""
