"""Security: TLS verification, no redirects, secrets in no artefact, owner-only files."""

from __future__ import annotations

import base64
import logging
import os
import ssl
import stat

import httpx
import pytest
import trustme

from cw_glbatch import ApiConnectionError, ApiError, ConnectWiseClient, create_batches, process_file
from cw_glbatch._journal import Journal
from cw_glbatch.testing import FakeConnectWise, Fault
from tests.helpers import simulated_input

SECRET_KEY = "s3cr3t-Pr1vate-KEY"
CLIENT_ID = "9c1d2e3f-aaaa-bbbb-cccc-0123456789ab"


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https_server(authority):
    """The simulator over HTTPS with a certificate for 127.0.0.1 signed by a private authority."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    fake = FakeConnectWise()
    fake.populate(3, start=1)
    with fake.serve(ssl_context=context) as server:
        yield server


def test_untrusted_certificate_is_refused_without_retrying(https_server):
    """A certificate no trusted authority signed is refused, clearly, and not retried."""
    assert https_server.url.startswith("https://127.0.0.1:")
    with https_server.client(sleep=lambda s: None) as client:
        with pytest.raises(ApiConnectionError, match="certificate is not trusted") as info:
            client.get_batch(1)
        assert client.requests_sent == 1
    assert "pass verify= a CA bundle" in str(info.value)
    assert https_server.fake.requests == []  # the TLS handshake failed: no request was read


def test_custom_ca_bundle_is_trusted(https_server, authority, tmp_path):
    """verify= a CA bundle path makes the private authority's certificate trusted."""
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    with https_server.client(verify=str(bundle)) as client:
        assert client.highest_batch_id() == 0


def test_custom_ssl_context_is_trusted(https_server, authority):
    """verify= an SSLContext works too."""
    context = ssl.create_default_context()
    authority.configure_trust(context)
    with https_server.client(verify=context) as client:
        assert client.highest_batch_id() == 0


def test_redirect_to_another_host_never_carries_credentials():
    """Even with an httpx client that follows redirects, a redirect is not followed."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "cw.example.com":
            return httpx.Response(307, headers={"Location": "https://attacker.example/steal"})
        return httpx.Response(200, json=[])

    http = httpx.Client(transport=httpx.MockTransport(answer), follow_redirects=True)
    client = ConnectWiseClient(
        base_url="https://cw.example.com/v1/apis/3.0",
        http_client=http,
        company_id="acme",
        public_key="pub",
        private_key=SECRET_KEY,
        client_id=CLIENT_ID,
    )
    with client, pytest.raises(ApiError, match="307"):
        client.get_batch(1)
    assert [r.url.host for r in seen] == ["cw.example.com"]
    http.close()


def test_no_secret_in_any_artefact(tmp_path, caplog):
    """After a run full of faults, no file, log, report or error holds a credential."""
    batches, _ = simulated_input(tmp_path, 40)
    fake = FakeConnectWise(private_key=SECRET_KEY, client_id=CLIENT_ID)
    fake.add_unposted(i for b in batches for i in b.gl_rec_ids)
    fake.fail_randomly(
        {Fault.lost(): 0.1, Fault.reset(): 0.1, Fault.status(500): 0.1, Fault.status(401): 0.02},
        seed=3,
    )
    texts = []
    with caplog.at_level(logging.DEBUG), fake.client(max_retries=2) as client:
        texts.append(repr(client))
        report = process_file(
            client, tmp_path / "in.xml", tmp_path / "ok.xml", tmp_path / "failed.xml"
        )
        # A journal that stays (as after a crash), to search it as well.
        create_batches(client, batches[:5], journal=tmp_path / "kept.journal")
        texts.append(repr(report))
        wrong = fake.client(private_key="wrong-" + SECRET_KEY)
        with pytest.raises(ApiError) as info:
            wrong.get_batch(1)
        wrong.close()
        texts += [str(info.value), repr(info.value), repr(vars(info.value))]
    texts += [p.read_text(encoding="utf-8", errors="replace") for p in tmp_path.iterdir()]
    texts += [caplog.text]
    token = base64.b64encode(f"acme+{fake.public_key}:{SECRET_KEY}".encode()).decode()
    assert caplog.records, "nothing was logged: the check would prove nothing"
    assert (tmp_path / "kept.journal").stat().st_size > 0
    for secret in (SECRET_KEY, token, CLIENT_ID):
        assert not [t for t in texts if secret in t], secret


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_outputs_and_journal_are_owner_only(tmp_path):
    """Success, fail and journal files are created readable by their owner only."""
    _, fake = simulated_input(tmp_path, 3)
    with fake.client() as client:
        process_file(client, tmp_path / "in.xml", tmp_path / "ok.xml", tmp_path / "failed.xml")
    Journal(tmp_path / "j.journal").close()
    for name in ("ok.xml", "failed.xml", "j.journal"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
