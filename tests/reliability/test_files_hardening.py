"""The journal and the output files against links, special files, collisions, damage, races."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
import subprocess
import sys
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cw_glbatch import (
    BatchRequest,
    ConfigurationError,
    ConnectWiseClient,
    JournalError,
    ResultsNotWrittenError,
    XmlBatchReader,
    process_file,
)
from cw_glbatch._cli import main
from cw_glbatch._journal import Journal
from cw_glbatch.testing import FakeConnectWise, Fault
from tests.helpers import plain_batches, write_input

POST = {"method": "POST", "path": "/finance/accounting/batches"}
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX files and locks")


@pytest.fixture
def job(tmp_path):
    """Five batches in in.xml and a simulator that has their GL entries."""
    batches = plain_batches(5)
    write_input(tmp_path / "in.xml", batches)
    fake = FakeConnectWise()
    fake.add_unposted(i for b in batches for i in b.gl_rec_ids)
    return batches, fake, tmp_path


def run(fake, folder, inp="in.xml", ok="ok.xml", bad="failed.xml", **options):
    with fake.client() as client:
        return process_file(client, folder / inp, folder / ok, folder / bad, **options)


def listing(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# -- links and special files -------------------------------------------------------------------


@posix_only
def test_journal_through_a_symlink_is_refused_and_its_target_untouched(tmp_path):
    """Journal() refuses a symbolic link and writes nothing to what it points to."""
    target = tmp_path / "unrelated.txt"
    target.write_text("keep me\n")
    os.chmod(target, 0o644)
    (tmp_path / "ok.xml.journal").symlink_to(target)
    with pytest.raises(JournalError, match="symbolic link"):
        Journal(tmp_path / "ok.xml.journal")
    assert target.read_text() == "keep me\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


@posix_only
def test_dangling_journal_link_creates_nothing_at_its_target(tmp_path):
    """A journal link to a missing file is refused; no file appears at the link's target."""
    (tmp_path / "j").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(JournalError, match="symbolic link"):
        Journal(tmp_path / "j")
    assert not (tmp_path / "elsewhere").exists()


@posix_only
def test_journal_that_is_a_fifo_is_refused_without_hanging(tmp_path):
    """A FIFO where the journal goes is refused at once (it is not a regular file)."""
    os.mkfifo(tmp_path / "j")
    with pytest.raises(JournalError, match="not a regular file"):
        Journal(tmp_path / "j")


@posix_only
def test_new_journal_is_owner_only(tmp_path):
    """A journal is created with mode 0600."""
    Journal(tmp_path / "j").close()
    assert stat.S_IMODE((tmp_path / "j").stat().st_mode) == 0o600


# -- the path checks before anything is sent ----------------------------------------------------


def _collisions(folder):
    (folder / "adir").mkdir()
    (folder / "ok.xml.journal").symlink_to(folder / "nowhere")
    return {
        "success equals fail": ("in.xml", "x.xml", "x.xml", "the success file and the fail file"),
        "success equals input": ("in.xml", "in.xml", "bad.xml", "input would be overwritten"),
        "success is input via a link": ("in.xml", "link.xml", "bad.xml", "the same file"),
        "fail is the journal": ("in.xml", "ok2.xml", "ok2.xml.journal", "fail file and the jour"),
        "success is a directory": ("in.xml", "adir", "bad.xml", "is a directory"),
        "fail in a missing folder": ("in.xml", "ok2.xml", "no/bad.xml", "does not exist"),
        "journal is a link": ("in.xml", "ok.xml", "bad.xml", "journal .* is a symbolic link"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "success equals fail",
        "success equals input",
        "success is input via a link",
        "fail is the journal",
        "success is a directory",
        "fail in a missing folder",
        "journal is a link",
    ],
)
@posix_only
def test_unusable_paths_are_refused_before_anything(job, case):
    """Each path problem raises ConfigurationError: no request sent, no file created or changed."""
    _, fake, folder = job
    (folder / "link.xml").symlink_to(folder / "in.xml")
    inp, ok, bad, message = _collisions(folder)[case]
    before = listing(folder)
    with pytest.raises(ConfigurationError, match=message):
        run(fake, folder, inp, ok, bad)
    assert fake.requests == []
    assert listing(folder) == before
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["in.xml", "link.xml", "adir", "ok.xml.journal"]
    )


@posix_only
def test_device_node_as_success_file_is_refused(job):
    """--success naming a device node is refused; the node is left as it was."""
    _, fake, folder = job
    with fake.client() as client, pytest.raises(ConfigurationError, match="not a regular file"):
        process_file(client, folder / "in.xml", "/dev/null", folder / "bad.xml")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert fake.requests == []


@posix_only
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_folder_that_cannot_be_written_is_refused(job):
    """An output folder without write permission is refused before anything is sent."""
    _, fake, folder = job
    locked = folder / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ConfigurationError, match="cannot write the success file"):
            run(fake, folder, ok="locked/ok.xml")
    finally:
        locked.chmod(0o700)
    assert fake.requests == []


def test_in_place_retry_of_the_fail_file_is_allowed(job):
    """The fail file may be the input: the documented retry in place."""
    _, fake, folder = job
    (folder / "failed.xml").write_bytes((folder / "in.xml").read_bytes())
    report = run(fake, folder, inp="failed.xml", ok="ok.xml", bad="failed.xml")
    assert report.counts["created"] == 5
    assert list(XmlBatchReader(folder / "failed.xml")) == []


@pytest.mark.parametrize("concurrency", [0, -1, 1.5, True])
def test_concurrency_out_of_range_is_refused(job, concurrency):
    """process_file refuses a concurrency that is not a whole number of at least 1."""
    _, fake, folder = job
    with pytest.raises(ConfigurationError, match="concurrency"):
        run(fake, folder, concurrency=concurrency)
    assert fake.requests == []


# -- the journal file: torn, damaged, finished ---------------------------------------------------


def test_torn_last_line_is_cut_before_appending(tmp_path):
    """A torn last line is removed, so what is appended next starts on a line of its own."""
    path = tmp_path / "j"
    path.write_text('{"journal":1,"baseline":0,"stamp":"S","source":null}\n{"i":17,"f":"3a6')
    journal = Journal(path)
    journal.sending(0, "ab", "S")
    journal.close()
    lines = path.read_text().splitlines()
    assert [json.loads(line).get("s") for line in lines] == [None, "sending"]
    Journal(path).close()  # and a third run reads it without complaint


DAMAGED = {
    "random bytes": b"\x8f\xff\x00garbage\x93\n\x01\x02",
    "a number": b"123\n",
    "null": b"null\n",
    "a header without fields": b'{"journal":1}\n',
    "a baseline that is not a whole number": b'{"journal":1,"baseline":"x","stamp":"S"}\n',
    "an entry before any header": b'{"i":0,"f":"ab","id":"S","s":"sending"}\n',
    "an entry with a bad index": (
        b'{"journal":1,"baseline":0,"stamp":"S"}\n{"i":"zero","f":"a","id":"S","s":"sending"}\n'
    ),
    "bytes without any line": b"\x8f\xff\x00garbage",
    "an unknown status": (
        b'{"journal":1,"baseline":0,"stamp":"S"}\n{"i":0,"f":"a","id":"S","s":"gone"}\n'
    ),
}


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_damaged_journal_is_a_journal_error_with_what_to_do(job, content):
    """Each damaged journal gives JournalError saying what to do; nothing sent, file kept."""
    _, fake, folder = job
    (folder / "ok.xml.journal").write_bytes(content)
    with pytest.raises(JournalError, match=r"ok.xml.journal:\d+: the journal is damaged .*delete"):
        run(fake, folder)
    assert fake.requests == []
    assert (folder / "ok.xml.journal").read_bytes() == content


def test_damaged_journal_exits_2_in_the_cli(job, capsys, monkeypatch):
    """The CLI reports a damaged journal on one line, exit 2, no traceback."""
    _, fake, folder = job
    (folder / "ok.xml.journal").write_bytes(b"null\n")
    with fake.serve() as server:
        for name, value in server.environ.items():
            monkeypatch.setenv(name, value)
        code = main(["create", "--input", str(folder / "in.xml"), "--success",
                     str(folder / "ok.xml"), "--fail", str(folder / "failed.xml")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("cw-glbatch: error: ")
    assert "damaged" in err
    assert "Traceback" not in err


def test_in_place_retry_killed_before_removing_its_journal_finishes(job, monkeypatch):
    """--input failed.xml --fail failed.xml, killed after the files were replaced but before the
    journal was removed: the same command finishes the job, sending nothing."""
    batches, fake, folder = job
    unknown = BatchRequest("U", [900_001])  # ConnectWise lacks this entry: it keeps failing
    write_input(folder / "failed.xml", [*batches[:4], unknown])
    monkeypatch.setattr(Journal, "remove", lambda self: self.close())  # "killed" just before
    first = run(fake, folder, inp="failed.xml", ok="ok2.xml", bad="failed.xml")
    monkeypatch.undo()
    assert (folder / "ok2.xml.journal").exists()
    files = listing(folder)
    requests = len(fake.requests)
    again = run(fake, folder, inp="failed.xml", ok="ok2.xml", bad="failed.xml")
    assert len(fake.requests) == requests
    assert (again.counts["created"], again.counts["failed"]) == (4, 1)
    assert (first.counts["created"], first.counts["failed"]) == (4, 1)
    assert not (folder / "ok2.xml.journal").exists()
    assert listing(folder) == {k: v for k, v in files.items() if k != "ok2.xml.journal"}


def _unsettled_in_place_retry(fake, folder):
    """Retry failed.xml in place while a POST's answer is lost and every lookup fails."""
    fake.fail_next(Fault.committed(524), method="POST")  # created; the answer never came
    fake.fail_next(None, *[Fault.status(503)] * 40, method="GET")  # all but the baseline read
    with fake.client(max_retries=0) as client:
        report = process_file(
            client, folder / "failed.xml", folder / "ok.xml", folder / "failed.xml"
        )
    fake.clear_faults()
    return report


def test_unsettled_in_place_retry_is_refused_with_what_to_do(job):
    """A retry in place that left batches unsettled cannot be resumed (its input was rewritten):
    the same command sends nothing, keeps every file, and says how to settle them."""
    batches, fake, folder = job
    write_input(folder / "failed.xml", batches[:2])
    first = _unsettled_in_place_retry(fake, folder)
    # one OutcomeUnknown, one created whose id was not learned
    assert (first.unsettled, (folder / "ok.xml.journal").exists()) == (2, True)
    files, requests = listing(folder), len(fake.requests)
    with pytest.raises(JournalError, match=r"retry in place .* another --success file"):
        run(fake, folder, inp="failed.xml", bad="failed.xml")
    assert (len(fake.requests), listing(folder)) == (requests, files)
    with fake.client() as client:  # what the message says to do settles the unknown batch
        report = process_file(
            client, folder / "failed.xml", folder / "ok2.xml", folder / "failed.xml"
        )
    assert (report.counts["created"], report.unsettled, len(fake.batches)) == (1, 0, 2)
    assert len(list(XmlBatchReader(folder / "ok.xml"))) == 1  # created without its id: kept


def test_another_input_does_not_start_over_an_unsettled_run(job):
    """A run that left batches unsettled is not replaced by a run of another input: refused,
    nothing sent, the journal kept."""
    batches, fake, folder = job
    write_input(folder / "failed.xml", batches[:2])
    _unsettled_in_place_retry(fake, folder)
    requests = len(fake.requests)
    with pytest.raises(JournalError, match="left batches unsettled"):
        run(fake, folder, inp="in.xml")
    assert len(fake.requests) == requests
    assert (folder / "ok.xml.journal").exists()


def test_stale_temporaries_of_the_outputs_are_removed(job):
    """Temporary files a killed run left beside the outputs are removed; others are kept."""
    _, fake, folder = job
    for name in (".ok.xml.ab12cd34.tmp", ".failed.xml.x_y9z8w7.tmp", ".other.xml.ab12cd34.tmp"):
        (folder / name).write_text("<Batches>")
    run(fake, folder)
    assert sorted(p.name for p in folder.iterdir()) == [
        ".other.xml.ab12cd34.tmp",
        "failed.xml",
        "in.xml",
        "ok.xml",
    ]


# -- results that cannot be written --------------------------------------------------------------


def test_disk_full_after_creating_keeps_the_journal_and_exits_4(job, capsys, monkeypatch):
    """Writing fails after batches were created: exit 4 naming the command; that command then
    finishes the job without creating anything twice."""
    _, fake, folder = job
    from cw_glbatch import _writer

    real_write = _writer._AtomicFile.write
    calls = []

    def full_disk(self, xml):
        calls.append(xml)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, xml)

    argv = ["create", "--input", str(folder / "in.xml"), "--success", str(folder / "ok.xml"),
            "--fail", str(folder / "failed.xml"), "--concurrency", "1"]  # fmt: skip
    with fake.serve() as server:
        for name, value in server.environ.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(_writer._AtomicFile, "write", full_disk)
        code = main(argv)
        err = capsys.readouterr().err
        monkeypatch.setattr(_writer._AtomicFile, "write", real_write)
        assert code == 4
        assert "No space left on device" in err
        assert "Traceback" not in err
        assert err.strip().endswith("To finish: cw-glbatch " + " ".join(argv))
        assert (folder / "ok.xml.journal").exists()
        created = len(fake.batches)
        assert created >= 3
        assert main(argv) == 0
    assert len(fake.batches) == 5
    assert fake.count_requests(**POST) == 5
    assert len(list(XmlBatchReader(folder / "ok.xml"))) == 5


def test_results_not_written_is_raised_by_process_file(job, monkeypatch):
    """process_file raises ResultsNotWrittenError (with the journal's path) after sending."""
    _, fake, folder = job
    from cw_glbatch import _writer

    def fail(self):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(_writer._AtomicFile, "replace", fail)
    with pytest.raises(ResultsNotWrittenError, match="run the same command again") as caught:
        run(fake, folder)
    assert caught.value.journal == str(folder / "ok.xml.journal")
    assert len(fake.batches) == 5


# -- two runs at once ---------------------------------------------------------------------------


class _HoldingServer:
    """A loopback server that accepts connections and answers nothing until closed."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self.got_one = threading.Event()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except OSError:
            return
        if data:
            self.requests.append(data)
            self.got_one.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self._conns:
            conn.close()


@posix_only
def test_second_run_on_the_same_files_exits_2_at_once_sending_nothing(job):
    """While one cw-glbatch process runs, a second on the same files exits 2 and sends nothing."""
    _, _, folder = job
    server = _HoldingServer()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CW_")}
    env.update(
        CW_BASE_URL=f"http://127.0.0.1:{server.port}/v4_6_release/apis/3.0",
        CW_COMPANY_ID="acme", CW_PUBLIC_KEY="pub", CW_PRIVATE_KEY="priv", CW_CLIENT_ID="cid",
    )  # fmt: skip
    command = [
        sys.executable, "-m", "cw_glbatch", "create", "--input", str(folder / "in.xml"),
        "--success", str(folder / "ok.xml"), "--fail", str(folder / "failed.xml"),
    ]  # fmt: skip
    first = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    try:
        assert server.got_one.wait(60), "the first run never asked anything"
        second = subprocess.run(command, check=False, env=env, capture_output=True, timeout=60)
        assert second.returncode == 2
        assert b"another cw-glbatch run is using" in second.stderr
        assert b"Traceback" not in second.stderr
        assert len(server.requests) == 1  # the first run's only
    finally:
        first.kill()
        first.wait()
        first.stderr.close()  # type: ignore[union-attr]
        server.close()


def test_dry_run_after_a_finished_run_counts_carried_batches(job, capsys, monkeypatch):
    """A dry run after a finished run says the batches exist already, not that it would send."""
    _, fake, folder = job
    files = (folder / "in.xml", folder / "ok.xml", folder / "failed.xml")
    with fake.serve() as server:  # one ConnectWise throughout: the files record which
        with ConnectWiseClient.from_env(server.environ) as client:
            process_file(client, *files)
            posts = fake.count_requests(**POST)
            report = process_file(client, *files, dry_run=True)
        assert (report.counts["created"], report.counts["planned"]) == (5, 0)
        assert fake.count_requests(**POST) == posts
        for name, value in server.environ.items():
            monkeypatch.setenv(name, value)
        main(["create", "--input", str(folder / "in.xml"), "--success", str(folder / "ok.xml"),
              "--fail", str(folder / "failed.xml"), "--dry-run"])  # fmt: skip
    assert "0 batches would be created, 0 would fail, 5 already created" in capsys.readouterr().out


def test_another_input_into_a_success_file_of_other_batches_is_refused(job, monkeypatch):
    """A finished run's success file (its journal left behind) is not replaced by another
    input's results: refused before anything is sent, the file unchanged, no journal kept."""
    _, fake, folder = job
    monkeypatch.setattr(Journal, "remove", lambda self: self.close())  # "killed" just before
    run(fake, folder)
    monkeypatch.undo()
    before = (folder / "ok.xml").read_bytes()
    fake.add_unposted([900_001])
    write_input(folder / "next.xml", [BatchRequest("N1", [900_001])])
    sent = len(fake.requests)
    with pytest.raises(ConfigurationError, match=r"not in .*next\.xml.*another --success"):
        run(fake, folder, inp="next.xml")
    assert [r for r in fake.requests[sent:] if r.method == "POST"] == []
    assert (folder / "ok.xml").read_bytes() == before


def test_retrying_the_fail_file_into_the_first_success_file_is_refused(job):
    """Retrying failed.xml with the first run's --success is refused: the first run's created
    batches would otherwise be recorded nowhere."""
    batches, fake, folder = job
    write_input(folder / "in.xml", [*batches, BatchRequest("X", [999_999_999])])
    assert run(fake, folder).counts == {"created": 5, "failed": 1, "planned": 0}
    before = (folder / "ok.xml").read_bytes()
    sent = len(fake.requests)
    with pytest.raises(ConfigurationError, match=r"records 5 created batch\(es\)"):
        run(fake, folder, inp="failed.xml")
    assert len(fake.requests) == sent
    assert (folder / "ok.xml").read_bytes() == before
    assert not (folder / "ok.xml.journal").exists()


KILLED_BEFORE_REMOVING_THE_JOURNAL = """
import os, signal, sys
from cw_glbatch._cli import main
from cw_glbatch._journal import Journal
Journal.remove = lambda self: os.kill(os.getpid(), signal.SIGKILL)
sys.exit(main(sys.argv[1:]))
"""


@posix_only
def test_in_place_retry_sigkilled_before_removing_its_journal_finishes(job):
    """A real process SIGKILLed after its files were replaced, before its journal was removed:
    the same command exits as the run did, sends nothing, and removes the journal."""
    batches, fake, folder = job
    write_input(folder / "failed.xml", [*batches[:4], BatchRequest("U", [900_001])])
    args = ["create", "--input", str(folder / "failed.xml"), "--success", str(folder / "ok2.xml"),
            "--fail", str(folder / "failed.xml")]  # fmt: skip
    with fake.serve() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CW_")}
        env.update(server.environ)
        killed = subprocess.run(
            [sys.executable, "-c", KILLED_BEFORE_REMOVING_THE_JOURNAL, *args],
            check=False, env=env, capture_output=True, timeout=60,
        )  # fmt: skip
        assert killed.returncode == -9
        assert (folder / "ok2.xml.journal").exists()
        requests = len(fake.requests)
        again = subprocess.run(
            [sys.executable, "-m", "cw_glbatch", *args],
            check=False, env=env, capture_output=True, timeout=60,
        )  # fmt: skip
    assert again.returncode == 1, again.stderr  # one batch failed, as in the killed run
    assert b"created 4, failed 1" in again.stdout
    assert len(fake.requests) == requests
    assert not (folder / "ok2.xml.journal").exists()
    assert [b.identifier for b in XmlBatchReader(folder / "failed.xml")] == ["U"]


def test_journal_that_cannot_be_removed_is_left_with_a_warning(job, monkeypatch, caplog):
    """A journal that cannot be deleted at the end does not fail a finished run; the next run
    of the same command recognises it as finished and sends nothing."""
    _, fake, folder = job
    real_unlink = os.unlink

    def refuse(path, *args, **kwargs):
        if str(path).endswith(".journal"):
            raise PermissionError(errno.EACCES, "Permission denied")
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", refuse)
    report = run(fake, folder)
    monkeypatch.undo()
    assert report.counts["created"] == 5
    assert "could not remove the journal" in caplog.text
    requests = len(fake.requests)
    assert run(fake, folder).counts["created"] == 5
    assert len(fake.requests) == requests
    assert not (folder / "ok.xml.journal").exists()


def _tmpfs(folder, options: str):
    """Mount a tmpfs on ``folder`` (only where this process may: root on Linux), then unmount."""
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        check=False, capture_output=True,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)  # -l: even if a file is open


@pytest.fixture
def tiny_disk(tmp_path):
    """A 32 KiB filesystem."""
    yield from _tmpfs(tmp_path / "tiny", "size=32k")


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder on a read-only filesystem (not writable even by root)."""
    yield from _tmpfs(tmp_path / "ro", "ro,size=32k")


def test_read_only_folder_is_refused_before_anything(job, read_only_folder):
    """An output folder that cannot be written (a read-only filesystem) is refused up front."""
    _, fake, folder = job
    with (
        fake.client() as client,
        pytest.raises(ConfigurationError, match="cannot write the success file"),
    ):
        process_file(client, folder / "in.xml", read_only_folder / "ok.xml", folder / "bad.xml")
    assert fake.requests == []
    assert sorted(p.name for p in folder.iterdir()) == ["in.xml", "ro"]


@posix_only
def test_a_real_full_disk_keeps_the_journal_and_the_same_call_finishes(tmp_path, tiny_disk):
    """On a disk that fills up mid-run: ResultsNotWrittenError, no temporary left, the journal
    kept; once there is room, the same call creates the rest, each batch exactly once."""
    batches = plain_batches(400)
    write_input(tmp_path / "in.xml", batches)
    fake = FakeConnectWise()
    fake.add_unposted(i for b in batches for i in b.gl_rec_ids)
    ok, bad = tiny_disk / "ok.xml", tiny_disk / "failed.xml"
    with fake.client() as client, pytest.raises(ResultsNotWrittenError):
        process_file(client, tmp_path / "in.xml", ok, bad, concurrency=4)
    assert 0 < len(fake.batches) < 400
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["ok.xml.journal"]
    subprocess.run(["mount", "-o", "remount,size=4m", str(tiny_disk)], check=True)
    with fake.client() as client:
        report = process_file(client, tmp_path / "in.xml", ok, bad, concurrency=4)
    assert report.counts["created"] == 400
    assert fake.count_requests(**POST) == 400
    assert len(list(XmlBatchReader(ok))) == 400
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["failed.xml", "ok.xml"]


def test_finish_record_that_cannot_be_written_leaves_no_temporary(job, monkeypatch):
    """The journal's finishing record fails (disk full): ResultsNotWrittenError, the earlier
    files untouched, no temporary left; the same call then finishes sending nothing twice."""
    _, fake, folder = job
    (folder / "ok.xml").write_text("<Batches/>\n")

    def full(self, record):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Journal, "finish", full)
    with pytest.raises(ResultsNotWrittenError):
        run(fake, folder)
    monkeypatch.undo()
    assert sorted(p.name for p in folder.iterdir()) == ["in.xml", "ok.xml", "ok.xml.journal"]
    assert (folder / "ok.xml").read_text() == "<Batches/>\n"
    assert run(fake, folder).counts["created"] == 5
    assert fake.count_requests(**POST) == 5


_JOURNAL = (
    b'{"journal":1,"baseline":5,"stamp":"S","source":null}\n'
    b'{"i":0,"f":"ab","id":"S","s":"sending"}\n{"i":0,"f":"ab","id":"S","s":"created","b":7}\n'
)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_damage_to_a_journal_loads_or_is_a_journal_error(tmp_path_factory, data):
    """Bytes cut, inserted or flipped anywhere in a journal: it loads, or JournalError says so."""
    content = bytearray(_JOURNAL)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(content)))
        content[at : at + data.draw(st.integers(0, 8))] = data.draw(st.binary(max_size=6))
    path = tmp_path_factory.mktemp("journal") / "j"
    path.write_bytes(bytes(content))
    with contextlib.suppress(JournalError):
        Journal(path).close()
