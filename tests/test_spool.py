"""The reader's storage: IdBitmap, the ids seen a batch at a time; BatchSpool, the batches read."""

from __future__ import annotations

from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cw_glbatch import BatchRequest
from cw_glbatch._limits import MAX_GL_REC_ID
from cw_glbatch._spool import BatchSpool, IdBitmap

# Ids near each other (so batches overlap) and at the ends of the range, in byte-edge positions.
BASE = st.sampled_from([1, 7, 8, 9, 1000, MAX_GL_REC_ID - 43])  # (+ 20 + 24 - 1: the top id)
RANGE = st.builds(
    lambda base, start, length, order: order(list(range(base + start, base + start + length))),
    BASE,
    st.integers(0, 20),
    st.integers(1, 24),
    st.sampled_from([list, lambda ids: ids[::-1]]),
)
# As long as a range and spanning one, but with a repeat where an id is missing.
RANGE_WITH_A_GAP = RANGE.filter(lambda ids: len(ids) >= 3).map(
    lambda ids: [ids[0], *ids[:1], *ids[2:]]
)
SCATTERED = st.builds(
    lambda base, offsets: [base + offset for offset in offsets],
    BASE,
    st.lists(st.integers(0, 40), min_size=1, max_size=12),
)


@settings(deadline=None)
@given(batches=st.lists(RANGE | RANGE_WITH_A_GAP | SCATTERED, max_size=6))
def test_add_all_returns_exactly_the_ids_already_in(batches):
    """add_all gives each id already added (earlier, or before it in the batch), in order."""
    bitmap, model = IdBitmap(), set()
    try:
        for batch in batches:
            expected = []
            for value in batch:
                if value in model:
                    expected.append(value)
                model.add(value)
            assert bitmap.add_all(array("i", batch)) == expected
    finally:
        bitmap.close()


@pytest.mark.parametrize(
    "texts",
    [((), (), ()), (("line 3: x",), ("",), ()), ((), ("",), ()), ((), (), ("<a/>", ""))],
    ids=["none", "error and empty value", "an empty value alone", "unknown"],
)
def test_spool_gives_back_each_part_of_a_request(texts):
    """A request spooled by its parts comes back whole: strings, empty ones included."""
    spool = BatchSpool()
    spool.add(7, "B\u00e9", array("i", [5, 3]), texts, options={"export_invoices": False}, lists=())
    spool.add(9, None, array("i"), texts, options={}, lists=("1, 2",))
    first, second = list(spool.replay())
    assert first == BatchRequest("B\u00e9", (5, 3), 7, *texts, export_invoices=False)
    assert second == BatchRequest(None, (), 9, *texts, gl_entry_id_lists=("1, 2",))
