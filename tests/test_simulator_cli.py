"""`cw-glbatch simulator`: latency, faults with a seed, and HTTPS from a certificate and key."""

from __future__ import annotations

import argparse
import signal
import ssl
import subprocess
import sys

import httpx
import pytest
import trustme

from cw_glbatch._cli import main
from cw_glbatch._demo import fault_option
from cw_glbatch.testing import Fault


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("524:0.05", (Fault.committed(524), 0.05)),
        ("503:1", (Fault.status(503), 1.0)),
        ("reset:0", (Fault.reset(), 0.0)),
        ("truncated:0.5", (Fault.truncated(), 0.5)),
    ],
)
def test_fault_option_reads_kind_and_rate(text, expected):
    """--fault KIND:RATE gives the fault Fault.named gives, and its chance."""
    assert fault_option(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("524", "give KIND:RATE"),
        ("slow:0.1", "unknown fault 'slow'"),
        ("503:often", "give KIND:RATE"),
        ("503:1.5", "from 0 to 1"),
        ("503:nan", "from 0 to 1"),
    ],
)
def test_fault_option_refuses_what_it_cannot_read(text, words):
    """A --fault that is not KIND:RATE with a known kind and a chance is refused, saying why."""
    with pytest.raises(argparse.ArgumentTypeError, match=words):
        fault_option(text)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--latency", "-1"], "0 or more"),
        (["--jitter", "-0.5"], "0 or more"),
        (["--fault", "503:0.6", "--fault", "reset:0.5"], "add up to more than 1"),
        (["--cert", "c.pem"], "go together"),
        (["--cert", "missing.pem", "--key", "missing.pem"], "cannot serve HTTPS"),
    ],
)
def test_bad_simulator_settings_exit_2_before_serving(capsys, argv, words):
    """Settings that cannot work: exit 2, one line saying what, no traceback, nothing served."""
    assert main(["simulator", *argv]) == 2
    captured = capsys.readouterr()
    assert words in captured.err
    assert "Traceback" not in captured.err
    assert "simulator at" not in captured.out


@pytest.mark.parametrize(
    ("argv", "words"),
    [(["--port", "99999"], "a port is 0 to 65535"), (["--populate", "-5"], "must be 0 or more")],
    ids=["port", "populate"],
)
def test_out_of_range_simulator_numbers_are_usage_errors(capsys, argv, words):
    """A port past 65535 or a negative --populate: exit 2 naming the option, no traceback."""
    with pytest.raises(SystemExit) as info:
        main(["simulator", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert words in err
    assert "Traceback" not in err


def test_simulator_serves_https_with_faults_from_the_command_line(tmp_path):
    """The real command serves HTTPS from --cert/--key and injects --fault with --seed."""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    command = [sys.executable, "-m", "cw_glbatch", "simulator", "--cert", str(cert),
               "--key", str(key), "--fault", "503:1", "--latency", "0.01", "--jitter",
               "0.005", "--seed", "3", "--populate", "5"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        printed = [process.stdout.readline()]
        while "press Ctrl-C" not in printed[-1]:  # then it waits, ready for the signal
            printed.append(process.stdout.readline())
        url = printed[0].split(" at ", 1)[1].split(" ", 1)[0]
        context = ssl.create_default_context()
        ca.configure_trust(context)
        with httpx.Client(verify=context) as http:
            answers = [http.get(url + "/login/companyinfo/acme") for _ in range(3)]
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)
    assert url.startswith("https://127.0.0.1:")
    assert [(a.status_code, a.headers["content-type"]) for a in answers] == [(503, "text/html")] * 3
    assert "latency 0.01 s ± 0.005 s; faults: 503 1; seed 3\n" in printed
    assert (process.returncode, err) == (0, "")


def test_simulator_stops_cleanly_on_sigterm():
    """SIGTERM (docker stop, systemd) stops the simulator with exit 0 and no traceback."""
    command = [sys.executable, "-m", "cw_glbatch", "simulator", "--populate", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    while "press Ctrl-C" not in process.stdout.readline():
        pass
    process.terminate()
    _, err = process.communicate(timeout=10)
    assert (process.returncode, err) == (0, "")
