"""What earlier result files record, kept compactly: the same answers as a dict of `Known`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cw_glbatch import BatchError, BatchRequest, BatchResult, XmlResultWriter
from cw_glbatch._journal import ids_digest
from cw_glbatch._plan import Known
from cw_glbatch._recorded import FirstRecord, RecordedBatches, read_recorded

DIGESTS = [bytes(16), *(ids_digest([n]) for n in range(1, 6))]  # the all-zero one included

knowns = st.one_of(
    st.builds(
        Known,
        st.just("created"),
        st.text(max_size=60),
        st.one_of(st.none(), st.integers(0, 2**70)),
    ),
    st.builds(Known, st.just("unknown"), st.text(max_size=60)),
)


@given(st.lists(st.tuples(st.sampled_from(DIGESTS), knowns), max_size=40))
def test_recorded_batches_answer_as_a_dict(records):
    """Any records (added again: the later wins): the same lookups, length and keys as a dict."""
    batches, model = RecordedBatches(), {}
    for digest, known in records:
        batches.add(digest, known)
        model[digest] = known
    assert {digest: batches.get(digest) for digest in DIGESTS} == {
        digest: model.get(digest) for digest in DIGESTS
    }
    assert len(batches) == len(model)
    listed = {bytes(15) + b"\x01" if d == bytes(16) else d for d in model}  # (its stand-in)
    assert set(batches) == listed


def test_count_missing_stops_reading_once_all_are_found():
    """Recorded batches absent from the digests are counted; reading stops at the last found."""
    batches = RecordedBatches()
    for n in (1, 2):
        batches.add(ids_digest([n]), Known("created", f"B{n}", n))

    def digests(then_fail: bool) -> Iterator[bytes]:
        yield ids_digest([2])
        yield ids_digest([9])
        yield ids_digest([1])
        if then_fail:
            raise AssertionError("read past the last recorded batch")

    assert batches.count_missing(digests(then_fail=True)) == 0
    assert batches.count_missing(iter([ids_digest([2]), ids_digest([9])])) == 1


def test_first_record_wins_then_falls_back():
    """The first file's record of a batch wins; a batch only the second records comes from it."""
    success, marks = RecordedBatches(), RecordedBatches()
    success.add(ids_digest([1]), Known("created", "A", 10))
    marks.add(ids_digest([1]), Known("unknown", "A"))
    marks.add(ids_digest([2]), Known("unknown", "B"))
    either = FirstRecord(success, marks)
    assert either.get(ids_digest([1])) == Known("created", "A", 10)
    assert either.get(ids_digest([2])) == Known("unknown", "B")
    with pytest.raises(KeyError):
        either[ids_digest([3])]
    assert (len(either), bool(either), bool(FirstRecord(RecordedBatches()))) == (2, True, False)


def test_success_file_reads_back_what_was_written(tmp_path):
    """Identifiers (non-ASCII, quotes), batch ids and their absence read back from the file."""
    success, fail = tmp_path / "created.xml", tmp_path / "failed.xml"
    results = [
        BatchResult(BatchRequest("Zürich \"Q1\" 'ü'", [1, 2]), "Zürich \"Q1\" 'ü'", "created", 7),
        BatchResult(BatchRequest(None, [3]), "20261126T091500Z-K7Q2XM", "created"),
        BatchResult(BatchRequest("F", [4]), "F", "failed", error=BatchError("refused", 400)),
    ]
    with XmlResultWriter(success_file=success, fail_file=fail) as writer:
        for result in results:
            writer.write(result)
    recorded = read_recorded(success, "success")
    assert recorded is not None
    assert dict(recorded.batches.items()) == {
        ids_digest([1, 2]): Known("created", "Zürich \"Q1\" 'ü'", 7),
        ids_digest([3]): Known("created", "20261126T091500Z-K7Q2XM", None),
    }


def test_every_record_is_found_after_the_table_grows():
    """Thousands of records (the table grows several times): each lookup finds its own."""
    batches = RecordedBatches()
    for n in range(3_000):
        batches.add(ids_digest([n + 1]), Known("created", f"B{n}", n))
    assert all(batches[ids_digest([n + 1])] == Known("created", f"B{n}", n) for n in range(3_000))
