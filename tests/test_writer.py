"""XmlResultWriter: file contents, escaping, atomic replacement, permissions."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from defusedxml.ElementTree import fromstring

from cw_glbatch import (
    BatchError,
    BatchRequest,
    BatchResult,
    FieldError,
    XmlBatchReader,
    XmlResultWriter,
)

REQUEST = BatchRequest("221106", (320042, 320044), line=3)


def created(request: BatchRequest = REQUEST, batch_id: int = 77, identifier: str | None = None):
    return BatchResult(request, identifier or request.identifier, "created", batch_id=batch_id)


def failed(request: BatchRequest = REQUEST, error: BatchError | None = None):
    error = error or BatchError("refused", 400, "InvalidObject")
    return BatchResult(request, request.identifier, "failed", error=error)


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "created.xml", tmp_path / "failed.xml"


def write(paths, *results) -> tuple[str, str]:
    with XmlResultWriter(success_file=paths[0], fail_file=paths[1]) as writer:
        for result in results:
            writer.write(result)
    return paths[0].read_text("utf-8"), paths[1].read_text("utf-8")


def test_nothing_written_gives_two_empty_documents(paths):
    """Both files exist after a clean close, each an empty <Batches/> with a declaration."""
    assert write(paths) == (
        '<?xml version="1.0" encoding="utf-8"?>\n<Batches/>\n',
        '<?xml version="1.0" encoding="utf-8"?>\n<Batches/>\n',
    )


def test_created_batch_goes_to_success_file_with_its_id(paths):
    """A created batch is written with the identifier used and ConnectWise's batchId."""
    request = BatchRequest(None, (5, 6))
    success, fail = write(paths, created(request, batch_id=991, identifier="20261124-1"))
    assert success == textwrap.dedent("""\
        <?xml version="1.0" encoding="utf-8"?>
        <Batches>
          <Batch>
            <batchIdentifier>20261124-1</batchIdentifier>
            <batchId>991</batchId>
            <glRecIds>
              <glRecId>5</glRecId>
              <glRecId>6</glRecId>
            </glRecIds>
          </Batch>
        </Batches>
        """)
    assert fail.endswith("<Batches/>\n")


def test_failed_batch_carries_a_structured_error(paths):
    """A failed batch gets <error> with status, code, message and field errors."""
    error = BatchError(
        "The object is invalid",
        400,
        "InvalidObject",
        [FieldError("GL entry 320044 is already batched", "processedRecordIds", "InvalidField")],
    )
    _, fail = write(paths, failed(error=error))
    found = fromstring(fail).find("Batch/error")
    assert [(e.tag, (e.text or "").strip()) for e in found.iter()] == [
        ("error", ""),
        ("status", "400"),
        ("code", "InvalidObject"),
        ("message", "The object is invalid"),
        ("fieldErrors", ""),
        ("fieldError", ""),
        ("field", "processedRecordIds"),
        ("code", "InvalidField"),
        ("message", "GL entry 320044 is already batched"),
    ]


def test_error_without_status_or_code_omits_them(paths):
    """A local error (not sent) has just its message."""
    _, fail = write(paths, failed(error=BatchError("not sent: authentication failed")))
    assert "<status>" not in fail
    assert "<message>not sent: authentication failed</message>" in fail


def test_markup_characters_are_escaped(paths):
    """<&>"' in identifiers and messages survive as text."""
    request = BatchRequest("""a<b>&"c'""", (1,))
    _, fail = write(paths, failed(request, BatchError("""x < y & "z" > 'w' ]]>""")))
    root = fromstring(fail)
    assert root.findtext("Batch/batchIdentifier") == """a<b>&"c'"""
    assert root.findtext("Batch/error/message") == """x < y & "z" > 'w' ]]>"""


def test_control_characters_are_shown_not_written(paths):
    """Characters XML cannot hold become visible \\uXXXX text; \\r, \\t and \\n are kept."""
    message = "bell\x07 nul\x00 esc\x1b cr\r tab\t nl\n lone\ud800"
    _, fail = write(paths, failed(error=BatchError(message)))
    text = fromstring(fail).findtext("Batch/error/message")
    assert text == "bell\\u0007 nul\\u0000 esc\\u001b cr\r tab\t nl\n lone\\ud800"


def fail_inside(writer: XmlResultWriter) -> None:
    with writer:
        writer.write(failed())
        raise RuntimeError("boom")


def test_exception_in_block_keeps_the_old_files(paths):
    """A run that fails leaves earlier files as they were and no temporary files."""
    old = write(paths, created())
    with pytest.raises(RuntimeError, match="boom"):
        fail_inside(XmlResultWriter(success_file=paths[0], fail_file=paths[1]))
    assert (paths[0].read_text(), paths[1].read_text()) == old
    assert sorted(p.name for p in paths[0].parent.iterdir()) == ["created.xml", "failed.xml"]


def test_killed_process_leaves_the_old_files(paths):
    """A process killed in the middle of writing never leaves a half file in place."""
    old = write(paths, created())
    script = f"""
import os
from cw_glbatch import BatchRequest, BatchResult, XmlResultWriter
w = XmlResultWriter(success_file={str(paths[0])!r}, fail_file={str(paths[1])!r})
for i in range(1, 5000):
    w.write(BatchResult(BatchRequest(str(i), (i,)), str(i), "created", batch_id=i))
os._exit(9)
"""
    done = subprocess.run([sys.executable, "-c", script], check=False)
    assert done.returncode == 9
    assert (paths[0].read_text(), paths[1].read_text()) == old


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_files_are_readable_by_owner_only(paths):
    """Output files are created with mode 0600: they hold accounting data."""
    write(paths, created())
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_same_path_for_both_files_is_refused(tmp_path):
    """The success and fail files must be different files."""
    with pytest.raises(ValueError, match="must differ"):
        XmlResultWriter(success_file=tmp_path / "x.xml", fail_file=tmp_path / "." / "x.xml")


def test_write_after_close_is_refused(paths):
    """A closed writer refuses further results."""
    writer = XmlResultWriter(success_file=paths[0], fail_file=paths[1])
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(created())


def test_counts_follow_what_was_written(paths):
    """created and failed count the results each file received."""
    with XmlResultWriter(success_file=paths[0], fail_file=paths[1]) as writer:
        for result in (created(), failed(), failed()):
            writer.write(result)
    assert (writer.created, writer.failed) == (1, 2)


def test_fail_file_fed_back_yields_exactly_the_failed_batches(paths, samples):
    """Reading the fail file gives back the failed batches, unread values and all."""
    batches = list(XmlBatchReader(samples / "per_batch_problems.xml"))
    results = [
        created(b, batch_id=i) if not b.errors else failed(b, BatchError("; ".join(b.errors)))
        for i, b in enumerate(batches, 1)
    ]
    write(paths, *results)
    again = list(XmlBatchReader(paths[1]))
    bad = [b for b in batches if b.errors]
    assert [(b.identifier, b.gl_rec_ids, b.invalid_gl_rec_ids, b.unknown_xml) for b in again] == [
        (b.identifier, b.gl_rec_ids, b.invalid_gl_rec_ids, b.unknown_xml) for b in bad
    ]
    # Each still fails when fed back, until someone corrects it (repeats across batches
    # excepted: the earlier batch is in the success file now).
    assert [bool(b.errors) for b in again] == [b.identifier != "earlier" for b in bad]


def test_success_file_reads_back_as_the_created_batches(paths, samples):
    """The success file is valid input holding the created batches."""
    (batch,) = XmlBatchReader(samples / "seed_corrected.xml")
    write(paths, created(batch, batch_id=5))
    assert list(XmlBatchReader(paths[0])) == [batch]


def test_failure_while_finishing_keeps_the_old_files(paths, monkeypatch):
    """If making the new files durable fails (disk full, I/O error), the old files stay."""
    old = write(paths, created())
    writer = XmlResultWriter(success_file=paths[0], fail_file=paths[1])
    writer.write(failed())

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        writer.close()
    monkeypatch.undo()
    assert (paths[0].read_text(), paths[1].read_text()) == old
    assert sorted(p.name for p in paths[0].parent.iterdir()) == ["created.xml", "failed.xml"]


@pytest.mark.parametrize("count", [0, 1], ids=["empty", "one batch"])
def test_connectwise_is_recorded_on_both_roots(paths, count):
    """connectwise=(site, company) is written, escaped, on both files' <Batches>, and read back."""
    from cw_glbatch._recorded import read_recorded

    site, company = "https://cw.example:8443", 'a&b"<c'
    with XmlResultWriter(
        success_file=paths[0], fail_file=paths[1], connectwise=(site, company)
    ) as writer:
        for result in [created()][:count]:
            writer.write(result)
    for path in paths:
        root = fromstring(path.read_bytes())
        assert (root.tag, root.get("site"), root.get("company")) == ("Batches", site, company)
    recorded = read_recorded(paths[0], "success")
    assert recorded is not None
    assert recorded.connectwise == (site, company)
    assert len(recorded.batches) == count
    assert len(list(XmlBatchReader(paths[0]))) == count  # still valid input
