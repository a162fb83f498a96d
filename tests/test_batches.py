"""create_batches and process_file, end to end against the simulator."""

from __future__ import annotations

import re
import threading

import httpx
import pytest
from defusedxml.ElementTree import fromstring

from cw_glbatch import (
    ApiConnectionError,
    ApiTimeoutError,
    AuthenticationError,
    BatchRequest,
    ConfigurationError,
    ConnectWiseClient,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
    XmlBatchReader,
    XmlResultWriter,
    create_batches,
)
from cw_glbatch._batches import stop_kind
from cw_glbatch.testing import FakeConnectWise, Fault
from tests.helpers import POST, SEED_IDS, input_xml, requests_for

from ._pairs import PAIRS


@pytest.fixture(params=sorted(PAIRS))
def pair(request):
    """Run each test with the sync pair and with the async pair."""
    return PAIRS[request.param]


@pytest.fixture
def fake() -> FakeConnectWise:
    fake = FakeConnectWise()
    fake.add_unposted(range(320000, 320400))
    return fake


def assert_exactly_once(fake: FakeConnectWise, report) -> None:
    """Each created result is one simulator batch with that id, and no identifier twice."""
    identifiers = [b.batch_identifier for b in fake.batches]
    assert len(identifiers) == len(set(identifiers))
    assert {(r.identifier, r.batch_id) for r in report.created} == {
        (b.batch_identifier, b.id) for b in fake.batches
    }


def test_seed_sample_end_to_end(pair, fake, samples, tmp_path):
    """The seed's (corrected) sample becomes one batch, written to the success file with its id."""
    with pair.client(fake) as client:
        report = pair.process_file(
            client, samples / "seed_corrected.xml", tmp_path / "ok.xml", tmp_path / "failed.xml"
        )
    assert report.counts == {"created": 1, "failed": 0, "planned": 0}
    assert [b.gl_entry_ids for b in fake.batches] == [SEED_IDS]
    assert list(XmlBatchReader(tmp_path / "ok.xml")) == [BatchRequest("221106", SEED_IDS, line=3)]
    assert "<batchId>1</batchId>" in (tmp_path / "ok.xml").read_text()
    assert re.search(r"<Batches [^>]*/>\n$", (tmp_path / "failed.xml").read_text())


def test_mixed_outcomes_partition_and_the_fail_file_retries_exactly_those(pair, fake, tmp_path):
    """Every batch lands in one file; feeding the fail file back retries exactly the failures."""
    batches = [
        *requests_for(3),
        BatchRequest("missing-entry", [320200, 999999]),
        BatchRequest("bad-id", [0]),
        BatchRequest("B0", [320300]),  # repeats an identifier
    ]
    ok, failed = tmp_path / "ok.xml", tmp_path / "failed.xml"
    with pair.client(fake) as client, XmlResultWriter(success_file=ok, fail_file=failed) as writer:
        report = pair.create_batches(client, batches, on_result=writer.write)
    assert report.counts["created"] == 3
    assert [b.identifier for b in XmlBatchReader(ok)] == ["B0", "B1", "B2"]
    retry = list(XmlBatchReader(failed))
    assert [b.identifier for b in retry] == ["missing-entry", "bad-id", "B0"]
    fake.add_unposted([999999])  # someone fixes the missing entry in ConnectWise
    with pair.client(fake) as client:
        again = pair.create_batches(client, retry[:1])
    assert again.counts["created"] == 1
    assert sorted(b.batch_identifier for b in fake.batches) == ["B0", "B1", "B2", "missing-entry"]


def test_results_come_in_input_order_on_the_calling_thread(pair, fake):
    """on_result sees every batch once, in input order, on the calling thread."""
    seen = []
    caller = threading.current_thread()

    def on_result(result):
        assert threading.current_thread() is caller
        seen.append(result.identifier)

    fake.set_latency(0.002, jitter=0.002, seed=3)
    with pair.client(fake) as client:
        report = pair.create_batches(client, requests_for(40), concurrency=8, on_result=on_result)
    assert seen == [f"B{n}" for n in range(40)] == [r.identifier for r in report.results]
    assert_exactly_once(fake, report)


def test_created_ids_are_looked_up_in_few_requests(pair, fake):
    """Happy path: one POST per batch, plus a handful of lookups for the whole run."""
    with pair.client(fake) as client:
        report = pair.create_batches(client, requests_for(100))
    assert report.requests == fake.count_requests() <= 105
    assert fake.count_requests(**POST) == 100
    assert all(r.batch_id is not None for r in report.results)
    assert_exactly_once(fake, report)


class Gate(httpx.BaseTransport):
    """Holds each create until ``parties`` creates are in flight at once."""

    def __init__(self, inner: httpx.BaseTransport, parties: int) -> None:
        self.inner = inner
        self.barrier = threading.Barrier(parties, timeout=10)
        self.passed = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.barrier.wait()  # BrokenBarrierError unless the others arrive too
            self.passed += 1
        return self.inner.handle_request(request)


def test_requests_actually_overlap(fake):
    """With concurrency 4, four creates are in flight at once (a barrier of four lets them by)."""
    gate = Gate(fake.transport(), 4)
    with fake.client(transport=gate) as client:
        report = create_batches(client, requests_for(8), concurrency=4)
    assert (report.counts["created"], gate.passed) == (8, 8)


def test_progress_counts_up_to_the_known_total(pair, fake, samples):
    """progress gets a Progress per batch: done up to the total known from the reader."""
    calls = []
    with pair.client(fake) as client:
        pair.create_batches(
            client,
            XmlBatchReader(samples / "per_batch_problems.xml"),
            progress=calls.append,
        )
    assert [(p.done, p.total) for p in calls] == [(n, 8) for n in range(1, 9)]


def test_progress_figures_match_the_report(pair, fake):
    """Progress counts created and failed as they happen; the last one matches the report."""
    requests = [
        BatchRequest("A", (320001,)),
        BatchRequest("B", (999,)),
        BatchRequest("C", (320002,)),
    ]
    calls = []
    with pair.client(fake) as client:
        report = pair.create_batches(client, requests, progress=calls.append, concurrency=1)
    assert [(p.created, p.failed, p.planned, p.unsettled) for p in calls] == [
        (1, 0, 0, 0),
        (1, 1, 0, 0),
        (2, 1, 0, 0),
    ]
    assert (calls[-1].created, calls[-1].failed) == (
        report.counts["created"],
        report.counts["failed"],
    )


# -- identifiers ------------------------------------------------------------------------------


def test_missing_identifiers_get_unique_timestamps(pair, fake):
    """Batches without an identifier get a UTC timestamp and a run-unique part, then -2, -3."""
    with pair.client(fake) as client:
        report = pair.create_batches(client, [BatchRequest(None, [320100 + n]) for n in range(3)])
    first, second, third = (r.identifier for r in report.results)
    assert re.fullmatch(r"\d{8}T\d{6}Z-[2-9A-HJ-NP-Z]{6}", first)
    assert (second, third) == (f"{first}-2", f"{first}-3")
    assert [r.request.identifier for r in report.results] == [None, None, None]


def test_variable_names_unnamed_batches(pair, fake):
    """CONNECTWISE.BATCHID names the batches with no identifier; its own ones are kept."""
    batches = [
        BatchRequest(None, [320100]),
        BatchRequest("own", [320101]),
        BatchRequest(None, [320102]),
    ]
    with pair.client(fake) as client:
        report = pair.create_batches(client, batches, variables={"CONNECTWISE.BATCHID": "221106"})
    assert [r.identifier for r in report.results] == ["221106", "own", "221106-2"]


def test_variable_suffix_stays_within_50_characters(pair, fake):
    """A long variable value is shortened to fit its suffix in 50 characters."""
    value = "x" * 50
    with pair.client(fake) as client:
        report = pair.create_batches(
            client,
            [BatchRequest(None, [320100 + n]) for n in range(11)],
            variables={"CONNECTWISE.BATCHID": value},
        )
    identifiers = [r.identifier for r in report.results]
    assert identifiers[0] == value
    assert identifiers[1] == "x" * 48 + "-2"
    assert identifiers[10] == "x" * 47 + "-11"
    assert all(len(i) <= 50 for i in identifiers)
    assert len(set(identifiers)) == 11


def test_variable_too_long_fails_those_batches(pair, fake):
    """A CONNECTWISE.BATCHID over 50 characters fails the batches that need it."""
    with pair.client(fake) as client:
        report = pair.create_batches(
            client, [BatchRequest(None, [320100])], variables={"CONNECTWISE.BATCHID": "y" * 51}
        )
    (result,) = report.results
    assert result.status == "failed"
    assert "CONNECTWISE.BATCHID is longer than 50" in result.error.message
    assert fake.count_requests(**POST) == 0


def test_repeated_identifier_fails_the_later_batch(pair, fake):
    """A batch repeating an earlier batch's identifier fails with the reason, unsent."""
    with pair.client(fake) as client:
        report = pair.create_batches(
            client, [BatchRequest("A", [320100]), BatchRequest("A", [320101])]
        )
    assert [r.status for r in report.results] == ["created", "failed"]
    assert "already used by an earlier batch" in report.results[1].error.message
    assert fake.count_requests(**POST) == 1


def test_batches_with_reader_errors_are_not_sent(pair, fake, samples):
    """A batch with reading errors fails with them and costs no request."""
    fake.add_unposted([1, 2])  # the sample's one good batch
    with pair.client(fake) as client:
        report = pair.create_batches(client, XmlBatchReader(samples / "per_batch_problems.xml"))
    assert report.counts == {"created": 1, "failed": 7, "planned": 0}
    assert fake.count_requests(**POST) == 1
    failed = {r.identifier: r.error for r in report.failed}
    assert failed["empty-ids"].code == "InvalidInput"
    assert "line 26: this <Batch> has an empty <glRecIds>" in failed["empty-ids"].message


def test_caller_built_requests_are_checked(pair, fake):
    """Requests built by a caller get the same checks before anything is sent."""
    batches = [
        BatchRequest("neg", [-1]),
        BatchRequest("dup", [320100, 320100]),
        BatchRequest("none", []),
    ]
    with pair.client(fake) as client:
        report = pair.create_batches(client, batches)
    assert report.counts["failed"] == 3
    assert fake.count_requests(**POST) == 0


# -- dry run ----------------------------------------------------------------------------------


def test_dry_run_sends_no_write_request(pair, fake):
    """A dry run reports what would be created and sends no POST."""
    with pair.client(fake) as client:
        report = pair.create_batches(
            client, [*requests_for(3), BatchRequest("bad", [0])], dry_run=True
        )
    assert report.counts == {"created": 0, "failed": 1, "planned": 3}
    assert report.dry_run
    assert {r.method for r in fake.requests} == {"GET"}
    assert fake.batches == []


def test_dry_run_writes_no_files(pair, fake, samples, tmp_path):
    """process_file in a dry run leaves the output paths alone."""
    with pair.client(fake) as client:
        pair.process_file(
            client, samples / "seed_corrected.xml", tmp_path / "a", tmp_path / "b", dry_run=True
        )
    assert list(tmp_path.iterdir()) == []


# -- authentication ---------------------------------------------------------------------------


def test_refused_credentials_send_nothing(pair, fake):
    """Wrong credentials: nothing is sent, every batch fails 'not sent', the report says why."""
    with pair.client(fake, private_key="wrong") as client:
        report = pair.create_batches(client, requests_for(5))
    assert report.stopped.startswith("authentication failed")
    assert report.counts["failed"] == 5
    assert all(r.error.code == "NotSent" for r in report.results)
    assert all(
        r.error.message.startswith("not sent: authentication failed") for r in report.results
    )
    assert fake.count_requests(**POST) == 0


def test_401_mid_run_stops_sending(pair, fake):
    """A 401 in the middle stops the run; the batches not yet sent fail 'not sent'."""
    fake.fail_next(None, None, Fault.status(401), **POST)
    with pair.client(fake) as client:
        report = pair.create_batches(client, requests_for(10), concurrency=1)
    assert [r.status for r in report.results] == ["created"] * 2 + ["failed"] * 8
    assert report.results[2].error.status == 401
    assert all(r.error.code == "NotSent" for r in report.results[3:])
    assert report.stopped is not None
    assert fake.count_requests(**POST) == 3


def test_unreachable_connectwise_fails_everything_unsent(pair):
    """If ConnectWise cannot be reached at all, nothing is sent and the report says so."""
    fake = FakeConnectWise()
    fake.fail_randomly({Fault.reset(): 1.0}, seed=0)
    with pair.client(fake, max_retries=1) as client:
        report = pair.create_batches(client, requests_for(2))
    assert report.stopped.startswith("could not reach ConnectWise")
    assert report.counts["failed"] == 2


def test_unknown_company_id_stops_the_run_saying_so():
    """A company id ConnectWise does not know stops the run with that reason, not 'unreachable'."""
    fake = FakeConnectWise()
    with fake.serve() as server:
        environ = {**server.environ, "CW_COMPANY_ID": "nope"}
        with ConnectWiseClient.from_env(environ) as client:
            report = create_batches(client, requests_for(2))
    assert report.stopped.startswith("unknown company id: ")
    assert "does not know the company id 'nope'" in report.stopped
    assert isinstance(report.stop_error, NotFoundError)
    assert [r.error.code for r in report.results] == ["NotSent", "NotSent"]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (AuthenticationError("x", status=401), "credentials"),
        (PermissionDeniedError("x", status=403), "permission"),
        (NotFoundError("x", method="GET", path="/login/companyinfo/acme", status=404), "company"),
        (NotFoundError("x", method="GET", path="/finance/accounting/batches", status=404), "error"),
        (ApiConnectionError("x"), "unreachable"),
        (ApiTimeoutError("x"), "unreachable"),
        (ServerError("x", status=500), "error"),
    ],
)
def test_stop_kind_says_which_settings_to_check(error, kind):
    """Each error that stops a run maps to what to check."""
    assert stop_kind(error) == kind


# -- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault.too_many_requests(1),
        Fault.status(500),
        Fault.status(502),
        Fault.status(503),
        Fault.status(504),
        Fault.reset(),
        Fault.lost(),
    ],
    ids=["429", "500", "502", "503", "504", "reset", "lost"],
)
def test_each_fault_still_creates_each_batch_once(pair, fake, fault):
    """Whatever goes wrong with a POST, each batch is created exactly once and reported so."""
    fake.fail_next(None, fault, fault, **POST)
    with pair.client(fake) as client:
        report = pair.create_batches(client, requests_for(6), concurrency=2)
    assert report.counts["created"] == 6
    assert_exactly_once(fake, report)


def test_lost_answer_is_found_by_lookup_not_resent(pair, fake):
    """A batch whose answer was lost is found by looking it up; it is not sent again."""
    fake.fail_next(Fault.lost(), **POST)
    with pair.client(fake) as client:
        report = pair.create_batches(client, requests_for(1))
    assert fake.count_requests(**POST) == 1
    assert report.results[0].batch_id == fake.batches[0].id


def test_reset_is_looked_up_then_resent(pair, fake):
    """A batch whose connection reset before the server acted is looked up, then sent again."""
    fake.fail_next(Fault.reset(), **POST)
    with pair.client(fake) as client:
        report = pair.create_batches(client, requests_for(1))
    assert fake.count_requests(**POST) == 2
    assert report.counts["created"] == 1


def test_lookup_failure_leaves_an_honest_unknown(pair, fake):
    """If every lookup after a lost answer fails too, the batch fails OutcomeUnknown, unsent."""
    fake.fail_next(Fault.lost(), **POST)
    with pair.client(fake, max_retries=0) as client:
        fake.fail_next(None, *[Fault.status(500)] * 20, method="GET")  # all but the first GET
        report = pair.create_batches(client, requests_for(1))
    (result,) = report.results
    assert (result.status, result.error.code) == ("failed", "OutcomeUnknown")
    assert "looking it up failed too" in result.error.message
    assert "Run the same command again to settle it" in result.error.message
    assert fake.count_requests(**POST) == 1


def test_final_lookup_settles_an_unknown_outcome(pair, fake):
    """A lost answer whose lookup failed is settled by the run's final lookup: created, with id."""
    fake.fail_next(Fault.lost(), **POST)
    with pair.client(fake, max_retries=0) as client:
        fake.fail_next(None, Fault.status(500), method="GET")  # the first lookup fails
        report = pair.create_batches(client, requests_for(1))
    (result,) = report.results
    assert (result.status, result.batch_id) == ("created", fake.batches[0].id)
    assert fake.count_requests(**POST) == 1


def test_resends_are_bounded(pair, fake):
    """A batch that never gets an answer is sent at most three times, then fails."""
    fake.fail_next(*[Fault.reset()] * 10, **POST)
    with pair.client(fake) as client:
        report = pair.create_batches(client, requests_for(1))
    assert fake.count_requests(**POST) == 3
    assert report.results[0].error.code == "OutcomeUnknown"
    assert fake.batches == []


# -- files ------------------------------------------------------------------------------------


def test_input_error_sends_nothing_and_keeps_old_files(pair, fake, samples, tmp_path):
    """A broken input raises InputError before any request; the old output files stay."""
    ok, failed = tmp_path / "ok.xml", tmp_path / "failed.xml"
    ok.write_text("old success")
    failed.write_text("old fail")
    with pair.client(fake) as client, pytest.raises(InputError, match=":16:1:"):
        pair.process_file(client, samples / "seed_verbatim.xml", ok, failed)
    assert fake.requests == []
    assert (ok.read_text(), failed.read_text()) == ("old success", "old fail")


def test_fail_file_can_be_retried_in_place(pair, fake, tmp_path):
    """The fail file can be the input and the fail file of its own retry."""
    source, ok, failed = tmp_path / "in.xml", tmp_path / "ok.xml", tmp_path / "failed.xml"
    source.write_text(
        "<Batches><Batch><batchIdentifier>A</batchIdentifier><glRecIds><glRecId>320100</glRecId>"
        "</glRecIds></Batch><Batch><batchIdentifier>B</batchIdentifier><glRecIds>"
        "<glRecId>999999</glRecId></glRecIds></Batch></Batches>"
    )
    with pair.client(fake) as client:
        pair.process_file(client, source, ok, failed)
        fake.add_unposted([999999])
        report = pair.process_file(client, failed, tmp_path / "ok2.xml", failed)
    assert report.counts["created"] == 1
    assert re.search(r"<Batches [^>]*/>\n$", failed.read_text())
    assert [b.identifier for b in XmlBatchReader(tmp_path / "ok2.xml")] == ["B"]


def test_faults_over_loopback_http_still_create_each_batch_once(pair, tmp_path):
    """Over real HTTP, with every fault kind on POSTs, each batch is created exactly once."""
    fake = FakeConnectWise()
    fake.add_unposted(range(320100, 320200))
    faults = [Fault.lost(), Fault.reset(), Fault.status(503), Fault.status(502)]
    fake.fail_next(*faults, Fault.too_many_requests(0), **POST)
    source = tmp_path / "in.xml"
    source.write_text(input_xml(requests_for(12)))
    with fake.serve() as server, pair.server_client(server, fake) as client:
        report = pair.process_file(
            client, source, tmp_path / "ok.xml", tmp_path / "failed.xml", concurrency=4
        )
    assert report.counts["created"] == 12
    assert sorted(b.batch_identifier for b in fake.batches) == sorted(f"B{n}" for n in range(12))
    written = fromstring((tmp_path / "ok.xml").read_bytes())
    assert {(b.findtext("batchIdentifier"), int(b.findtext("batchId"))) for b in written} == {
        (b.batch_identifier, b.id) for b in fake.batches
    }


def test_first_post_completing_late_is_still_reported_created(fake):
    """Lost answer, lookup finds nothing, then the first POST completes: the resend's 400
    leads to another lookup, which finds the batch; it is created once and reported created."""
    fake.fail_next(Fault.reset(), **POST)  # the first POST seems to vanish...
    with fake.client() as client:
        lookups = []
        find = client.find_batches

        def late_find(identifiers, *, min_id=None):
            lookups.append(list(identifiers))
            found = find(identifiers, min_id=min_id)
            if len(lookups) == 1:  # ...but completes on the server right after the first lookup
                with fake.client() as other:
                    other.create_batch("B0", range(320100, 320103))
            return found

        client.find_batches = late_find  # type: ignore[method-assign]
        report = create_batches(client, requests_for(1))
    (result,) = report.results
    assert (result.status, result.batch_id) == ("created", fake.batches[0].id)
    assert len(fake.batches) == 1
    assert len(lookups) == 2


@pytest.mark.parametrize("call", ["create_batches", "process_file"])
def test_concurrency_below_one_is_refused_before_any_request(pair, fake, tmp_path, call):
    """concurrency=0 is a ConfigurationError, from either entry point, before anything is sent."""
    source = tmp_path / "in.xml"
    source.write_text(input_xml(requests_for(1)))
    outputs = (tmp_path / "ok.xml", tmp_path / "bad.xml")
    with pair.client(fake) as client:
        run = {
            "create_batches": lambda: pair.create_batches(client, requests_for(1), concurrency=0),
            "process_file": lambda: pair.process_file(client, source, *outputs, concurrency=0),
        }[call]
        with pytest.raises(ConfigurationError, match="concurrency must be a whole number"):
            run()
    assert fake.requests == []
