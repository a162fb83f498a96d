"""IdBitmap: the set of ids seen, added a batch at a time."""

from __future__ import annotations

from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

from cw_glbatch._spool import MAX_GL_REC_ID, IdBitmap

# Ids near each other (so batches overlap) and at the ends of the range, in byte-edge positions.
BASE = st.sampled_from([1, 7, 8, 9, 1000, MAX_GL_REC_ID - 40])
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
