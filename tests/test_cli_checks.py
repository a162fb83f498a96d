"""The CLI refuses options out of range and credentials it cannot send: exit 2, one line."""

from __future__ import annotations

import pytest

from cw_glbatch import ConfigurationError, ConnectWiseClient
from cw_glbatch._cli import main
from cw_glbatch.testing import FakeConnectWise

CREDENTIALS = {"company_id": "acme", "public_key": "pub", "private_key": "priv"}


@pytest.fixture
def files(tmp_path):
    (tmp_path / "in.xml").write_text(
        "<Batches><Batch><glRecIds><glRecId>1</glRecId></glRecIds></Batch></Batches>"
    )
    return ["--input", str(tmp_path / "in.xml"), "--success", str(tmp_path / "ok.xml"),
            "--fail", str(tmp_path / "bad.xml")]  # fmt: skip


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--timeout", "nan"),
        ("--timeout", "inf"),
        ("--timeout", "0"),
        ("--timeout", "-1"),
        ("--concurrency", "0"),
        ("--max-retries", "-1"),
        ("--max-requests-per-minute", "0"),
    ],
)
def test_option_out_of_range_exits_2(files, tmp_path, capsys, option, value):
    """An option out of range stops the command with exit 2 and a message naming the option."""
    with pytest.raises(SystemExit) as stopped:
        main(["create", *files, option, value])
    err = capsys.readouterr().err
    assert stopped.value.code == 2
    assert f"argument {option}: " in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.xml"]


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 0, -1.0])
def test_client_refuses_a_timeout_out_of_range(timeout):
    """ConnectWiseClient refuses a timeout that is not a finite number above 0."""
    with pytest.raises(ConfigurationError, match="timeout must be"):
        ConnectWiseClient(base_url="https://h/api", client_id="c", timeout=timeout, **CREDENTIALS)


@pytest.mark.parametrize("per_minute", [0, -5, float("nan")])
def test_client_refuses_a_request_rate_out_of_range(per_minute):
    """ConnectWiseClient refuses a request ceiling that is not above 0."""
    with pytest.raises(ConfigurationError, match="max_requests_per_minute"):
        ConnectWiseClient(
            base_url="https://h/api", client_id="c", max_requests_per_minute=per_minute,
            **CREDENTIALS,
        )  # fmt: skip


def test_non_ascii_client_id_exits_2_sending_nothing(files, tmp_path, capsys, monkeypatch):
    """A clientId with a non-ASCII character: exit 2, one line naming the setting, nothing sent."""
    fake = FakeConnectWise()
    with fake.serve() as server:
        for name, value in server.environ.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("CW_CLIENT_ID", "clïent")
        code = main(["create", *files])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "CW_CLIENT_ID" in err
    assert "Traceback" not in err
    assert fake.requests == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.xml"]


def test_plain_http_refusal_speaks_to_cli_users():
    """Refusing plain HTTP to another host tells CLI users what they can do."""
    with pytest.raises(ConfigurationError, match=r"https:// address \(the cw-glbatch command"):
        ConnectWiseClient(base_url="http://example.com/api", client_id="c", **CREDENTIALS)


@pytest.mark.parametrize(
    ("success", "fail"),
    [("adir", "bad.xml"), ("same.xml", "same.xml"), ("ok.xml", "ok.xml.journal")],
    ids=["success is a directory", "success is fail", "fail is the journal"],
)
def test_unusable_paths_exit_2_sending_nothing(tmp_path, capsys, monkeypatch, success, fail):
    """Paths that cannot be used: exit 2, one line, nothing sent, no file created."""
    (tmp_path / "in.xml").write_text(
        "<Batches><Batch><glRecIds><glRecId>1</glRecId></glRecIds></Batch></Batches>"
    )
    (tmp_path / "adir").mkdir()
    fake = FakeConnectWise()
    with fake.serve() as server:
        for name, value in server.environ.items():
            monkeypatch.setenv(name, value)
        code = main(["create", "--input", str(tmp_path / "in.xml"), "--success",
                     str(tmp_path / success), "--fail", str(tmp_path / fail)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("cw-glbatch: error: ")
    assert fake.requests == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "in.xml"]
