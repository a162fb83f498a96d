"""Invariants of the file format: whatever is written reads back the same."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from cw_glbatch import BatchError, BatchRequest, BatchResult, XmlBatchReader, XmlResultWriter

# Characters XML 1.0 can carry (its Char production), with the awkward ones drawn often.
xml_char = st.one_of(
    st.sampled_from("\t\n\r<>&\"' \x85\u2028\ufffd"),
    st.integers(0x20, 0xD7FF).map(chr),
    st.integers(0xE000, 0xFFFD).map(chr),
    st.integers(0x10000, 0x10FFFF).map(chr),
)
# The reader strips whitespace at the ends of a value, so such identifiers are not drawn.
identifiers = st.none() | st.text(xml_char, min_size=1, max_size=50).filter(
    lambda s: s == s.strip() and s
)


flag = st.none() | st.booleans()
options = st.fixed_dictionaries(
    {
        "export_invoices": flag,
        "export_expenses": flag,
        "export_products": flag,
        "summarize_expenses": flag,
        "gl_interface_identifier": identifiers,
    }
)


@st.composite
def batch_results(draw):
    """A list of results whose requests have distinct ids, as a valid input file would."""
    count = draw(st.integers(0, 12))
    pool = draw(
        st.lists(st.integers(1, 2**31 - 1), min_size=count * 3, max_size=count * 3, unique=True)
    )
    results = []
    for i in range(count):
        ids = pool[i * 3 : i * 3 + draw(st.integers(1, 3))]
        request = BatchRequest(draw(identifiers), ids, **draw(options))
        if draw(st.booleans()):
            results.append(BatchResult(request, request.identifier, "created", batch_id=i + 1))
        else:
            message = draw(st.text(xml_char, max_size=30))
            results.append(
                BatchResult(request, request.identifier, "failed", error=BatchError(message))
            )
    return results


@given(batch_results())
def test_written_batches_read_back_the_same(results):
    """Random batches → writer → reader give the same batches and options, in the right file."""
    with tempfile.TemporaryDirectory() as folder:
        success, fail = Path(folder, "ok.xml"), Path(folder, "failed.xml")
        with XmlResultWriter(success_file=success, fail_file=fail) as writer:
            for result in results:
                writer.write(result)
        for path, status in ((success, "created"), (fail, "failed")):
            expected = [
                (r.request.identifier, r.request.gl_rec_ids, r.request.batch_options())
                for r in results
                if r.status == status
            ]
            got = [
                (b.identifier, b.gl_rec_ids, b.batch_options(), b.errors)
                for b in XmlBatchReader(path)
            ]
            assert got == [(*values, ()) for values in expected]
