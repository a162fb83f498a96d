"""The fail file gives back what was read, or the reader refuses the file with a position."""

from __future__ import annotations

import tracemalloc

import pytest

from cw_glbatch import BatchError, BatchResult, InputError, XmlBatchReader, XmlResultWriter


def read_one(path, body: str):
    path.write_text(f"<Batches>\n<Batch>\n{body}\n</Batch>\n</Batches>\n")
    [batch] = list(XmlBatchReader(path))
    return batch


def fed_back(tmp_path, batch):
    """The batch as read again from the fail file it was written to."""
    error = BatchError("; ".join(batch.errors), code="InvalidInput")
    with XmlResultWriter(success_file=tmp_path / "ok.xml", fail_file=tmp_path / "bad.xml") as w:
        w.write(BatchResult(batch, batch.identifier, "failed", error=error))
    [again] = list(XmlBatchReader(tmp_path / "bad.xml"))
    return again


@pytest.mark.parametrize(
    ("body", "second"),
    [
        (
            "<batchIdentifier>a</batchIdentifier><batchIdentifier>b</batchIdentifier>"
            "<glRecIds><glRecId>1</glRecId></glRecIds>",
            "<batchIdentifier>b</batchIdentifier>",
        ),
        (
            "<glRecIds><glRecId>1</glRecId></glRecIds>"
            "<glRecIds><glRecId>2</glRecId><glRecId>3</glRecId></glRecIds>",
            "<glRecIds><glRecId>2</glRecId><glRecId>3</glRecId></glRecIds>",
        ),
    ],
    ids=["two batchIdentifier", "two glRecIds"],
)
def test_a_second_element_comes_back_and_keeps_failing(tmp_path, body, second):
    """A second <batchIdentifier> or <glRecIds> is kept verbatim: fed back, it fails again."""
    batch = read_one(tmp_path / "in.xml", body)
    assert batch.unknown_xml == (second,)
    assert batch.errors
    again = fed_back(tmp_path, batch)
    assert again.unknown_xml == (second,)
    assert (again.identifier, again.gl_rec_ids) == (batch.identifier, batch.gl_rec_ids)
    assert any("a second <" in error for error in again.errors)


@pytest.mark.parametrize(
    ("body", "line", "column"),
    [
        ('<Batch batchIdentifier="X"><glRecIds><glRecId>1</glRecId></glRecIds></Batch>', 3, 1),
        ('<Batch><batchIdentifier id="1">X</batchIdentifier></Batch>', 3, 8),
        ('<Batch><glRecIds kind="gl"><glRecId>1</glRecId></glRecIds></Batch>', 3, 8),
        ('<Batch><glRecIds><glRecId ref="9">1</glRecId></glRecIds></Batch>', 3, 18),
    ],
    ids=["Batch", "batchIdentifier", "glRecIds", "glRecId"],
)
def test_attributes_on_the_format_elements_refuse_the_file(tmp_path, body, line, column):
    """An attribute the format would drop refuses the file, with its line and column."""
    path = tmp_path / "in.xml"
    path.write_text(f'<?xml version="1.0"?>\n<Batches>\n{body}\n</Batches>\n')
    with pytest.raises(InputError, match="has attributes") as caught:
        list(XmlBatchReader(path))
    assert (caught.value.line, caught.value.column) == (line, column)


def test_one_huge_batch_is_read_in_little_memory(tmp_path):
    """200,000 ids in one batch are checked with a few MiB, not a Python object per id."""
    path = tmp_path / "in.xml"
    ids = "".join(f"<glRecId>{n}</glRecId>" for n in range(1, 200_001))
    path.write_text(f"<Batches><Batch><glRecIds>{ids}</glRecIds></Batch></Batches>")
    tracemalloc.start()
    try:
        spool = XmlBatchReader(path)._read()  # the whole check, before the first batch
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    spool.close()
    assert peak < 6 * 1024 * 1024
