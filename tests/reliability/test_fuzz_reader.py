"""Hostile input: the reader only ever raises InputError or reports per-batch errors, quickly."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cw_glbatch import BatchRequest, InputError, XmlBatchReader

SAMPLES = Path(__file__).parents[1] / "samples"
DOCUMENTS = [
    (SAMPLES / name).read_bytes()
    for name in (
        "seed_corrected.xml",
        "per_batch_problems.xml",
        "seed_verbatim.xml",
        "gl_entry_ids.xml",
    )
]
SNIPPETS = [
    b"<", b">", b"&", b"&amp;", b"&#0;", b"&#x1F600;", b"<!DOCTYPE x>", b"<!ENTITY a 'b'>",
    b"<![CDATA[1]]>", b"<?pi x?>", b"<!-- -->", b"</Batch>", b"<Batch>", b"<glRecId>",
    b"</glRecIds>", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"\xc3\x28", b'"', b"'", b" x=\"1\"",
    b"2147483648", b"-1", b"\n" * 3, b"<glEntryIds>", b"</glEntryIds>", b",", b",,",
    b"<exportInvoicesFlag>", b"</summarizeExpenses>",
]  # fmt: skip


@st.composite
def mutated(draw):
    """A valid document with a few bytes flipped, cut, repeated or inserted."""
    data = bytearray(draw(st.sampled_from(DOCUMENTS)))
    for _ in range(draw(st.integers(1, 6))):
        where = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["flip", "delete", "insert", "repeat", "truncate"]))
        if kind == "flip" and where < len(data):
            data[where] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[where : where + draw(st.integers(1, 20))]
        elif kind == "insert":
            data[where:where] = draw(st.sampled_from(SNIPPETS) | st.binary(max_size=8))
        elif kind == "repeat":
            data[where:where] = data[where : where + draw(st.integers(1, 200))]
        else:
            del data[where:]
    return bytes(data)


def read_all(data: bytes) -> list[BatchRequest]:
    return list(XmlBatchReader(io.BytesIO(data)))


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None, max_examples=500)
@given(mutated())
def test_mutated_documents_fail_only_cleanly(data):
    """Any mutation: InputError with a position, or batches whose problems are in errors."""
    error: InputError | None = None
    try:
        batches = read_all(data)
    except InputError as err:
        batches, error = [], err
    if error is not None:
        assert error.line is not None
        assert str(error).startswith("<stream>:")
    for batch in batches:
        assert isinstance(batch.errors, tuple)
        assert all(isinstance(e, str) and e.startswith("line ") for e in batch.errors)
        assert all(0 < i < 2**31 for i in batch.gl_rec_ids)


class _Endless(io.RawIOBase):
    """A stream of ``head`` then ``fill`` repeated up to ``size`` bytes, made as it is read."""

    def __init__(self, head: bytes, fill: bytes, size: int) -> None:
        self._head, self._fill, self._left = head, fill, size
        self.read_so_far = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        if self._head:
            chunk, self._head = self._head[: len(buffer)], self._head[len(buffer) :]
        else:
            chunk = (self._fill * (len(buffer) // len(self._fill) + 1))[
                : min(len(buffer), self._left)
            ]
            self._left -= len(chunk)
        buffer[: len(chunk)] = chunk
        self.read_so_far += len(chunk)
        return len(chunk)


@pytest.mark.parametrize(
    ("head", "fill", "words"),
    [
        (b"<Batches><Batch><batchIdentifier>", b"x", "longer than 4096"),  # a 2 GB text node
        (b"<Batches><Batch><glRecIds><glRecId>", b"7", "longer than 4096"),
        (b"<Batches><Batch><glEntryIds>", b"7,", "longer than 262144"),
        (b"<Batches><Batch><exportInvoicesFlag>", b"t", "longer than 4096"),
        (b"<Batches><Batch>", b"<x>", "nested more than"),  # 100,000-deep and beyond
        (b"<Batches><Batch><memo>", b"x", "more than 65536 characters"),
    ],
    ids=[
        "2GB-identifier",
        "2GB-id",
        "2GB-id-list",
        "2GB-option",
        "deep-nesting",
        "huge-unknown-element",
    ],
)
def test_oversized_input_is_refused_quickly(head, fill, words):
    """2 GB of one value, endless nesting, huge unknown content: refused after reading little."""
    stream = _Endless(head, fill, 2 * 1024**3)
    with pytest.raises(InputError, match=words):
        list(XmlBatchReader(io.BufferedReader(stream)))
    assert stream.read_so_far < 10 * 1024**2  # it stopped after reading almost none of it
