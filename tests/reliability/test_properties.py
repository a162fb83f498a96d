"""Property tests: over random inputs and fault schedules, a run loses and doubles nothing.

CI runs the fixed "ci" profile (derandomized); HYPOTHESIS_PROFILE=thorough explores further.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cw_glbatch import BatchRequest
from cw_glbatch.testing import FakeConnectWise, Fault
from tests._pairs import process
from tests.helpers import check_invariants, write_input

POST_FAULTS = st.sampled_from(
    [None, None, Fault.lost(), Fault.reset(), Fault.status(500), Fault.status(502),
     Fault.status(503), Fault.status(504), Fault.too_many_requests(0), Fault.committed(520),
     Fault.committed(524), Fault.status(521), Fault.status(526), Fault.truncated()]
)  # fmt: skip
GET_FAULTS = st.sampled_from(
    [None, Fault.reset(), Fault.status(500), Fault.status(503), Fault.committed(520),
     Fault.truncated()]
)  # fmt: skip
identifiers = st.none() | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,11}", fullmatch=True).map(
    str.strip
)


@st.composite
def runs(draw):
    """Batches (some invalid, some naming GL entries ConnectWise lacks) and fault schedules."""
    batches, next_id = [], 700_000
    for _ in range(draw(st.integers(0, 20))):
        size = draw(st.integers(0, 4))
        invalid = draw(st.sampled_from([(), (), (), ("x",), ("0",)]))
        batches.append(
            BatchRequest(draw(identifiers) or None, range(next_id, next_id + size), 0, (), invalid)
        )
        next_id += size
    every_id = [i for b in batches for i in b.gl_rec_ids]
    missing = draw(st.sets(st.sampled_from(every_id), max_size=3)) if every_id else set()
    return (
        batches,
        missing,
        draw(st.lists(POST_FAULTS, max_size=25)),
        # Up to 8 failed GETs in a row: the id lookups retry more than that, so they get through.
        draw(st.lists(GET_FAULTS, max_size=8)),
        draw(st.sampled_from([1, 2, 4])),
    )


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(runs())
def test_every_batch_in_one_file_and_created_at_most_once(run):
    """Whatever the input and the faults: the files partition the input, nothing is doubled."""
    check_run("sync", run)


# The async pair runs the same run (with its requests on an event loop): fewer examples do.
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None, max_examples=30)
@given(runs())
def test_every_batch_in_one_file_and_created_at_most_once_async(run):
    """The same through aprocess_file and AsyncConnectWiseClient."""
    check_run("async", run)


def check_run(flavour, run):
    """Run the drawn input and faults through ``flavour``'s pair; check the invariants."""
    batches, missing, post_faults, get_faults, concurrency = run
    fake = FakeConnectWise()
    fake.add_unposted(i for b in batches for i in b.gl_rec_ids if i not in missing)
    fake.fail_next(*post_faults, method="POST")
    fake.fail_next(None, *get_faults, method="GET")  # the first GET is the credentials check
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        write_input(folder / "in.xml", batches)
        report = process(
            flavour, fake, folder / "in.xml", folder / "ok.xml", folder / "failed.xml",
            concurrency=concurrency,
        )  # fmt: skip
        check_invariants(batches, folder / "ok.xml", folder / "failed.xml", fake)
    assert report.total == len(batches)
