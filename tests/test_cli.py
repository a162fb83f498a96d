"""The cw-glbatch command: exit codes, messages, --json, and the demo."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading

import pytest

from cw_glbatch import XmlBatchReader
from cw_glbatch._cli import main
from cw_glbatch._demo import run_simulator
from cw_glbatch.testing import FakeConnectWise, Fault

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"


@pytest.fixture
def server(monkeypatch):
    """A simulator on loopback, with CW_* set for it; entries 320000 to 320099 unposted."""
    fake = FakeConnectWise()
    fake.populate(100, start=320000)
    with fake.serve() as server:
        for name in ("CW_BASE_URL", "CW_CODEBASE", "CW_API_VERSION"):
            monkeypatch.delenv(name, raising=False)
        for name, value in server.environ.items():
            monkeypatch.setenv(name, value)
        yield server


@pytest.fixture
def batches_file(tmp_path):
    path = tmp_path / "in.xml"
    path.write_text(
        "<Batches>"
        "<Batch><batchIdentifier>A</batchIdentifier><glRecIds><glRecId>320001</glRecId></glRecIds></Batch>"
        "<Batch><glRecIds><glRecId>320002</glRecId></glRecIds></Batch>"
        "</Batches>"
    )
    return path


def create(tmp_path, source, *extra):
    return main(
        ["create", "--input", str(source), "--success", str(tmp_path / "ok.xml"),
         "--fail", str(tmp_path / "failed.xml"), *extra]
    )  # fmt: skip


def test_create_all_created_exits_0(server, batches_file, tmp_path, capsys):
    """Every batch created: exit 0 and a summary naming the files."""
    assert create(tmp_path, batches_file) == 0
    out = capsys.readouterr().out
    assert out.startswith("created 2, failed 0 in ")
    assert f"success file: {tmp_path / 'ok.xml'}" in out
    assert len(list(XmlBatchReader(tmp_path / "ok.xml"))) == 2


def test_create_json_summary(server, batches_file, tmp_path, capsys):
    """--json prints a machine-readable summary."""
    assert create(tmp_path, batches_file, "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert {k: summary[k] for k in ("created", "failed", "stopped", "dry_run")} == {
        "created": 2,
        "failed": 0,
        "stopped": None,
        "dry_run": False,
    }
    assert summary["success_file"] == str(tmp_path / "ok.xml")


def test_create_some_failed_exits_1(server, tmp_path):
    """Some batches failed: exit 1, and they are in the fail file."""
    source = tmp_path / "in.xml"
    source.write_text(
        "<Batches><Batch><glRecIds><glRecId>320001</glRecId></glRecIds></Batch>"
        "<Batch><glRecIds><glRecId>999999</glRecId></glRecIds></Batch></Batches>"
    )
    assert create(tmp_path, source) == 1
    assert [b.gl_rec_ids for b in XmlBatchReader(tmp_path / "failed.xml")] == [(999999,)]


def test_create_batch_id_sets_the_variable(server, batches_file, tmp_path):
    """--batch-id names the batches that have no identifier."""
    assert create(tmp_path, batches_file, "--batch-id", "221106") == 0
    assert [b.identifier for b in XmlBatchReader(tmp_path / "ok.xml")] == ["A", "221106"]


@pytest.mark.parametrize(
    "case",
    [
        ("", "--batch-id is empty"),
        ("  ", "--batch-id is empty"),
        ("x" * 51, "--batch-id is longer than 50 characters"),
        ("a\x01b", "--batch-id holds control characters"),
    ],
)
def test_unusable_batch_id_exits_2_before_sending(server, batches_file, tmp_path, capsys, case):
    """--batch-id that cannot name a batch exits 2 with one line; nothing is sent or written."""
    value, problem = case
    assert create(tmp_path, batches_file, "--batch-id", value) == 2
    err = capsys.readouterr().err
    assert f"{problem}: give the identifier for batches that have none" in err
    assert "Traceback" not in err
    assert server.fake.count_requests() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.xml"]


def test_dry_run_exits_0_and_writes_nothing(server, batches_file, tmp_path, capsys):
    """--dry-run creates nothing and writes no files."""
    assert create(tmp_path, batches_file, "--dry-run") == 0
    assert "dry run: 2 batches would be created" in capsys.readouterr().out
    assert not (tmp_path / "ok.xml").exists()
    assert server.fake.batches == []


def test_bad_input_exits_2_with_position_and_no_traceback(server, samples, tmp_path, capsys):
    """A broken input file: exit 2, file:line:column, no traceback."""
    assert create(tmp_path, samples / "seed_verbatim.xml") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cw-glbatch: error: {samples / 'seed_verbatim.xml'}:16:1: ")
    assert "Traceback" not in err


def test_missing_input_exits_2(server, tmp_path, capsys):
    """An input file that does not exist: exit 2."""
    assert create(tmp_path, tmp_path / "nope.xml") == 2
    assert "cannot open the input file" in capsys.readouterr().err


def test_missing_credentials_exit_2_naming_them(monkeypatch, batches_file, tmp_path, capsys):
    """Missing CW_* variables: exit 2, all named."""
    for name in (
        "CW_SITE",
        "CW_BASE_URL",
        "CW_COMPANY_ID",
        "CW_PUBLIC_KEY",
        "CW_PRIVATE_KEY",
        "CW_CLIENT_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    assert create(tmp_path, batches_file) == 2
    assert "CW_SITE (or CW_BASE_URL), CW_COMPANY_ID" in capsys.readouterr().err


def test_wrong_credentials_exit_3(server, batches_file, tmp_path, monkeypatch, capsys):
    """Refused credentials: exit 3; the batches are in the fail file, marked not sent."""
    monkeypatch.setenv("CW_PRIVATE_KEY", "wrong")
    assert create(tmp_path, batches_file) == 3
    assert "stopped: authentication failed" in capsys.readouterr().err
    assert len(list(XmlBatchReader(tmp_path / "failed.xml"))) == 2


def test_unreachable_server_exits_3_naming_the_host(monkeypatch, batches_file, tmp_path, capsys):
    """A server that cannot be reached: exit 3."""
    monkeypatch.setenv("CW_SITE", "http://127.0.0.1:9")  # the discard port: refused
    monkeypatch.setenv("CW_CODEBASE", "v2025_1/")
    for name in ("CW_COMPANY_ID", "CW_PUBLIC_KEY", "CW_PRIVATE_KEY", "CW_CLIENT_ID"):
        monkeypatch.setenv(name, "x")
    assert create(tmp_path, batches_file, "--max-retries", "0") == 3
    err = capsys.readouterr().err
    assert "cannot connect to 127.0.0.1:9" in err
    assert "cw-glbatch: check CW_SITE (set in the environment)" in err


def test_env_file_supplies_credentials(server, batches_file, tmp_path, monkeypatch):
    """--env-file reads CW_* settings from a dotenv-style file."""
    env = tmp_path / ".env"
    env.write_text(
        "# ConnectWise\nexport CW_PRIVATE_KEY='simulator-private'\nCW_CLIENT_ID=\""
        + server.fake.client_id
        + '"\n'
    )
    monkeypatch.setenv("CW_PRIVATE_KEY", "wrong")
    monkeypatch.delenv("CW_CLIENT_ID")
    assert create(tmp_path, batches_file, "--env-file", str(env)) == 0


def test_missing_env_file_exits_2(batches_file, tmp_path, capsys):
    """An env file that does not exist: exit 2 naming it."""
    assert create(tmp_path, batches_file, "--env-file", str(tmp_path / "nope.env")) == 2
    assert f"cannot read {tmp_path / 'nope.env'}: No such file" in capsys.readouterr().err


def test_malformed_env_file_exits_2(batches_file, tmp_path, capsys):
    """An env file line without NAME=value: exit 2 naming the line."""
    env = tmp_path / ".env"
    env.write_text("CW_SITE=x\nnonsense\n")
    assert create(tmp_path, batches_file, "--env-file", str(env)) == 2
    assert f"{env}:2: expected NAME=value" in capsys.readouterr().err


def test_validate_lists_problems_by_line(samples, capsys):
    """validate lists each batch's problems and exits 1 when there are any."""
    assert main(["validate", "--input", str(samples / "per_batch_problems.xml")]) == 1
    out = capsys.readouterr().out
    assert f"{samples / 'per_batch_problems.xml'}:22: this <Batch> has no <glRecIds>" in out
    assert "(batch at line 22)" in out
    assert out.rstrip().endswith("8 batches, 13 problems")


def test_validate_clean_file_exits_0_with_json(samples, capsys):
    """validate --json on a good file: exit 0, no problems."""
    assert main(["validate", "--input", str(samples / "seed_corrected.xml"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"batches": 1, "problems": []}


def test_usage_error_exits_2(capsys):
    """A bad command line: argparse's exit 2."""
    with pytest.raises(SystemExit) as info:
        main(["create", "--concurrency", "0"])
    assert info.value.code == 2


def test_demo_runs_the_whole_task(tmp_path, capsys):
    """demo serves the simulator, runs the task, shows both files, and exits 0."""
    assert main(["demo", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "created 3, failed 1" in out
    assert [b.identifier for b in XmlBatchReader(tmp_path / "created.xml")][:2] == [
        "221106",
        "221107",
    ]
    assert [b.identifier for b in XmlBatchReader(tmp_path / "failed.xml")] == ["221109"]
    assert "cw-glbatch create --input" in out


def test_demo_shows_the_export_loop(tmp_path, capsys):
    """demo exports before and after the run: the created batches' GL entries leave the export."""
    assert main(["demo", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "export:       18 GL entries not yet in a batch" in out
    assert "export again: 7 GL entries left, 11 now in batches" in out


def test_demo_refuses_a_dir_that_is_a_file(tmp_path, capsys):
    """demo --dir naming a file exits 2 with one line saying to give a folder."""
    (tmp_path / "f").write_text("mine", encoding="utf-8")
    assert main(["demo", "--dir", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert f"--dir {tmp_path / 'f'} is a file: give a folder" in err
    assert "Errno" not in err
    assert (tmp_path / "f").read_text(encoding="utf-8") == "mine"


def test_demo_refuses_a_dir_holding_its_files(tmp_path, capsys):
    """demo --dir already holding batches.xml exits 2 and leaves the user's file as it was."""
    (tmp_path / "batches.xml").write_text("mine", encoding="utf-8")
    assert main(["demo", "--dir", str(tmp_path)]) == 2
    assert "already holds batches.xml, which the demo would replace" in capsys.readouterr().err
    assert (tmp_path / "batches.xml").read_text(encoding="utf-8") == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batches.xml"]


def test_demo_makes_a_missing_dir(tmp_path, capsys):
    """demo --dir naming a missing folder (and its parents) makes it and runs."""
    assert main(["demo", "--dir", str(tmp_path / "a" / "b")]) == 0
    assert (tmp_path / "a" / "b" / "created.xml").is_file()


def test_simulator_command_serves_until_stopped(capsys):
    """simulator prints where it listens and the CW_* settings, and stops cleanly."""
    stop = threading.Event()
    result = []
    thread = threading.Thread(target=lambda: result.append(run_simulator("127.0.0.1", 0, 5, stop)))
    thread.start()
    stop.set()
    thread.join(timeout=10)
    assert result == [0]
    out = capsys.readouterr().out
    assert "ConnectWise simulator at http://127.0.0.1:" in out
    assert "export CW_SITE=http://127.0.0.1:" in out


def test_python_dash_m_runs_the_cli():
    """python -m cw_glbatch is the same command."""
    done = subprocess.run(
        [sys.executable, "-m", "cw_glbatch", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout.split()[0]) == (0, "cw-glbatch")


def test_journal_of_another_input_exits_2_without_traceback(server, batches_file, tmp_path, capsys):
    """A journal left by another input's unfinished run: exit 2, what to do, no traceback."""
    (tmp_path / "ok.xml.journal").write_text(
        '{"journal":1,"baseline":0,"stamp":"S","source":"0000"}\n'
    )
    assert create(tmp_path, batches_file) == 2
    err = capsys.readouterr().err
    assert "records an unfinished run of a different input file" in err
    assert "Traceback" not in err
    assert server.fake.requests == []


# -- running unattended -----------------------------------------------------------------------


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_verbose_before_or_after_the_command_logs_retries(
    server, batches_file, tmp_path, capsys, before
):
    """-v works on either side of the command: the cw_glbatch log at INFO, ISO-timestamped."""
    server.fake.fail_next(Fault.too_many_requests(retry_after=0), method="GET")
    args = ["create", "--input", str(batches_file), "--success", str(tmp_path / "ok.xml"),
            "--fail", str(tmp_path / "failed.xml")]  # fmt: skip
    assert main(["-v", *args] if before else [*args, "-v"]) == 0
    err = capsys.readouterr().err
    assert re.search(
        rf"^{ISO} INFO cw_glbatch: GET /login/companyinfo/acme: HTTP 429; retry 1 of 4", err, re.M
    )
    assert "HTTP Request:" not in err  # httpx's own lines only at -vv


def test_very_verbose_adds_httpx_request_lines(server, batches_file, tmp_path, capsys):
    """-vv (or -v -v around the command) adds httpx's line per request."""
    ok, failed = str(tmp_path / "ok.xml"), str(tmp_path / "failed.xml")
    argv = ["-v", "create", "--input", str(batches_file), "--success", ok, "--fail", failed, "-v"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert re.search(rf"^{ISO} INFO httpx: HTTP Request: POST http://127\.0\.0\.1:", err, re.M)


def test_default_log_shows_no_info(server, batches_file, tmp_path, capsys):
    """Without -v, retries are not logged (warnings and errors are)."""
    server.fake.fail_next(Fault.too_many_requests(retry_after=0), method="GET")
    assert create(tmp_path, batches_file) == 0
    assert "retry 1" not in capsys.readouterr().err


def test_quiet_prints_nothing_on_success(server, batches_file, tmp_path, capsys):
    """-q: no progress, no summary; the exit code says it all."""
    assert create(tmp_path, batches_file, "-q") == 0
    assert capsys.readouterr() == ("", "")
    assert len(list(XmlBatchReader(tmp_path / "ok.xml"))) == 2


def test_progress_is_logged_when_stderr_is_not_a_terminal(server, batches_file, tmp_path, capsys):
    """Off a terminal, progress is a timestamped log line with the figures (here: the last one)."""
    assert create(tmp_path, batches_file) == 0
    err = capsys.readouterr().err
    assert re.search(
        rf"^{ISO} INFO cw_glbatch.progress: 2/2 batches \(100%\), 2 created, 0 failed, [\d.]+/s$",
        err,
        re.M,
    )


@pytest.mark.parametrize("verbosity", [[], ["-vv"]], ids=["default", "-vv"])
def test_401_names_the_settings_and_env_file_never_values(
    server, batches_file, tmp_path, capsys, verbosity
):
    """Refused credentials: the variables to check and the env file named, no value shown."""
    env = tmp_path / "cw.env"
    env.write_text("CW_PRIVATE_KEY=not-the-key-7f3a\n")
    assert create(tmp_path, batches_file, "--env-file", str(env), *verbosity) == 3
    err = capsys.readouterr().err
    assert err.count("cw-glbatch: stopped: authentication failed") == 1
    # the reason is said once; with -v the log also records when it happened
    assert err.count("authentication failed") == (1 if not verbosity else 2)
    assert (
        "cw-glbatch: check CW_COMPANY_ID, CW_PUBLIC_KEY, CW_PRIVATE_KEY and CW_CLIENT_ID "
        f"(set CW_PRIVATE_KEY in {env}, the others in the environment)"
    ) in err
    for value in ("not-the-key-7f3a", server.fake.public_key, server.fake.client_id):
        assert value not in err


def test_unknown_company_id_says_so(server, batches_file, tmp_path, monkeypatch, capsys):
    """A company id ConnectWise does not know is named as such, not as 'could not reach'."""
    monkeypatch.setenv("CW_COMPANY_ID", "nope")
    assert create(tmp_path, batches_file) == 3
    err = capsys.readouterr().err
    assert "stopped: unknown company id: " in err
    assert "does not know the company id 'nope'" in err
    assert "could not reach" not in err
    assert "check CW_COMPANY_ID and CW_SITE" in err


def test_missing_setting_names_the_env_file(monkeypatch, batches_file, tmp_path, capsys):
    """A setting in neither the env file nor the environment: exit 2, the file named."""
    for name in ("CW_SITE", "CW_BASE_URL", "CW_COMPANY_ID", "CW_PUBLIC_KEY", "CW_PRIVATE_KEY",
                 "CW_CLIENT_ID"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    env = tmp_path / "cw.env"
    env.write_text("CW_SITE=x\nCW_COMPANY_ID=acme\nCW_PUBLIC_KEY=p\nCW_PRIVATE_KEY=k\n")
    assert create(tmp_path, batches_file, "--env-file", str(env)) == 2
    err = capsys.readouterr().err
    assert "missing environment variables: CW_CLIENT_ID." in err
    assert f"Looked in {env} and in the environment." in err


def test_dry_run_says_why_each_batch_would_fail(server, samples, tmp_path, capsys):
    """A dry run lists each batch that would fail, by line, with its reason."""
    source = tmp_path / "in.xml"
    source.write_text(
        "<Batches>\n<Batch><glRecIds><glRecId>320001</glRecId></glRecIds></Batch>\n"
        "<Batch><glRecIds><glRecId>x</glRecId></glRecIds></Batch>\n</Batches>\n"
    )
    assert create(tmp_path, source, "--dry-run") == 1
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"{source}: batch at line 3 would fail: line 3: glRecId 'x' is not a GL entry id "
        "(a whole number from 1 to 2147483647)",
        "dry run: 1 batches would be created, 1 would fail",
    ]


def test_dry_run_json_carries_the_reasons(server, tmp_path, capsys):
    """--json in a dry run: would_fail holds line, identifier and reason of each."""
    source = tmp_path / "in.xml"
    source.write_text(
        "<Batches><Batch><batchIdentifier>A</batchIdentifier><glRecIds><glRecId>1</glRecId>"
        "<glRecId>1</glRecId></glRecIds></Batch></Batches>"
    )
    assert create(tmp_path, source, "--dry-run", "--json") == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["would_fail"] == [
        {"batch_line": 1, "identifier": "A", "reason": summary["would_fail"][0]["reason"]}
    ]
    assert "1" in summary["would_fail"][0]["reason"]
    assert "repeat" in summary["would_fail"][0]["reason"]


def test_json_of_a_real_run_has_no_would_fail(server, batches_file, tmp_path, capsys):
    """would_fail is null outside a dry run: the failures are in the fail file."""
    assert create(tmp_path, batches_file, "--json") == 0
    assert json.loads(capsys.readouterr().out)["would_fail"] is None


def test_success_file_of_another_connectwise_exits_2(server, batches_file, tmp_path, capsys):
    """A success file written against another ConnectWise: exit 2, what to do, nothing sent."""
    (tmp_path / "ok.xml").write_text(
        '<Batches site="https://sandbox.example" company="acme"><Batch>'
        "<batchIdentifier>A</batchIdentifier><batchId>9</batchId>"
        "<glRecIds><glRecId>320001</glRecId></glRecIds></Batch></Batches>"
    )
    assert create(tmp_path, batches_file) == 2
    err = capsys.readouterr().err
    assert "records batches created in ConnectWise https://sandbox.example" in err
    assert "Give another --success file" in err
    assert "Traceback" not in err
    assert server.fake.requests == []


def test_unsettled_batches_exit_1_and_say_to_run_again(server, batches_file, tmp_path, capsys):
    """Created, but no id could be learned: exit 1, the journal kept, what to do."""
    from cw_glbatch.testing import Fault

    # Every read after the codebase and baseline reads is refused.
    server.fake.fail_next(None, None, *[Fault.status(400)] * 20, method="GET")
    assert create(tmp_path, batches_file, "--max-retries", "0") == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("created 2, failed 0 in ")
    assert "2 batches are not settled yet" in captured.err
    assert "run the same command again to settle them" in captured.err
    assert (tmp_path / "ok.xml.journal").exists()
    server.fake.clear_faults()
    assert create(tmp_path, batches_file) == 0
    assert not (tmp_path / "ok.xml.journal").exists()
