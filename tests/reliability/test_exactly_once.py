"""Exactly once against ConnectWise as it really fails: each hole of issue 12, in process and
over loopback HTTP."""

from __future__ import annotations

import json

import httpx
import pytest

from cw_glbatch import (
    BatchRequest,
    ConnectWiseClient,
    ConnectWiseMismatchError,
    XmlBatchReader,
    create_batches,
    process_file,
)
from cw_glbatch._journal import Journal, file_digest, fingerprint
from cw_glbatch.testing import FakeConnectWise, Fault, SimulatorServer
from tests.helpers import POST, posts, requests_for, simulator_for, write_input

GET = {"method": "GET"}


class Connect:
    """Clients for a simulator, in process or over loopback HTTP (one server per simulator)."""

    def __init__(self, way: str) -> None:
        self.way = way
        self._servers: dict[int, SimulatorServer] = {}
        self._down: set[int] = set()

    def __call__(self, fake: FakeConnectWise, **options: object) -> ConnectWiseClient:
        if self.way == "in-process":
            if id(fake) in self._down:  # the same site, every connection refused
                options = {"transport": _unreachable(), **options}
            return fake.client(**options)
        server = self._servers.get(id(fake))
        if server is None:
            server = self._servers[id(fake)] = fake.serve()
        return server.client(sleep=lambda seconds: None, **options)

    def down(self, fake: FakeConnectWise) -> None:
        """ConnectWise goes away: nothing answers at its address."""
        self._down.add(id(fake))
        if self.way == "loopback":
            self._servers[id(fake)].close()

    def up(self, fake: FakeConnectWise) -> None:
        """ConnectWise is back, at the same address."""
        if id(fake) not in self._down:
            return
        self._down.discard(id(fake))
        if self.way == "loopback":
            port = int(self._servers[id(fake)].url.rsplit(":", 1)[1])
            self._servers[id(fake)] = fake.serve(port=port)

    def close(self) -> None:
        for key, server in self._servers.items():
            if key not in self._down:
                server.close()


@pytest.fixture(params=["in-process", "loopback"])
def connect(request):
    """Makes clients for a simulator, in process or over loopback HTTP."""
    connect = Connect(request.param)
    yield connect
    connect.close()


def files(folder) -> tuple:
    return folder / "in.xml", folder / "ok.xml", folder / "failed.xml"


def run_file(connect, fake, folder, **options):
    with connect(fake, **options.pop("client", {})) as client:
        return process_file(client, *files(folder), **options)


def faulty_run(connect, folder, count: int, *post_faults: Fault):
    """Run ``count`` batches B0... through process_file, the first creates meeting faults."""
    batches = requests_for(count)
    write_input(folder / "in.xml", batches)
    fake = simulator_for(batches)
    fake.fail_next(*post_faults, **POST)
    report = run_file(connect, fake, folder)
    settled(report, fake)
    return fake


def settled(report, fake) -> None:
    """Every batch created once, with the simulator's id, and nothing left unsettled."""
    assert (report.counts["failed"], report.unsettled, report.ok) == (0, 0, True)
    names = [b.batch_identifier for b in fake.batches]
    assert len(names) == len(set(names))


# -- 1. proxies' and ConnectWise's ambiguous answers -------------------------------------------


@pytest.mark.parametrize("status", [520, 524, 500, 502, 504, 408])
def test_answer_after_commit_is_looked_up_not_resent(connect, tmp_path, status):
    """A create answered 520/524/500/502/504/408 after ConnectWise committed it is created."""
    fake = faulty_run(connect, tmp_path, 3, Fault.committed(status))
    assert posts(fake) == 3
    assert sorted(b.batch_identifier for b in fake.batches) == ["B0", "B1", "B2"]


@pytest.mark.parametrize("status", [520, 524, 500])
def test_ambiguous_answer_without_commit_is_sent_again(connect, tmp_path, status):
    """The same statuses before anything was committed: looked up, not found, sent again."""
    fake = faulty_run(connect, tmp_path, 2, Fault.status(status))
    assert posts(fake) == 3


@pytest.mark.parametrize("status", [521, 522, 523, 525, 526, 503, 429])
def test_answer_proving_non_delivery_is_sent_again(connect, tmp_path, status):
    """521/522/523/525/526, 503 and 429 mean ConnectWise never saw it: sent again, no lookup."""
    fake = faulty_run(connect, tmp_path, 2, Fault.status(status))
    assert posts(fake) == 3
    assert fake.count_requests("GET", "/finance/accounting/batches") == 2  # baseline, ids


# -- 6. a 2xx answer that is not JSON ----------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault.committed(201, body=b"<html><title>Just a moment...</title></html>"),
        Fault.committed(200, body=b""),
        Fault.truncated(),
    ],
    ids=["html", "empty", "cut-short"],
)
def test_any_2xx_to_a_create_is_created(connect, tmp_path, fault):
    """A 2xx whose body is HTML, empty or cut short: created, with its id, sent once."""
    fake = faulty_run(connect, tmp_path, 2, fault)
    assert posts(fake) == 2


# -- 2. a resume while ConnectWise is unreachable ----------------------------------------------


def journal_with_one_in_flight(fake, folder, connect) -> None:
    """A journal whose run sent batch 0 (which ConnectWise committed) and then died."""
    first = next(iter(XmlBatchReader(folder / "in.xml")))
    with connect(fake) as client:
        site = (client.origin, client.company_id)
        journal = Journal(
            folder / "ok.xml.journal", source=file_digest(folder / "in.xml"), connectwise=site
        )
        journal.begin(client.highest_batch_id(), "20260101T000000Z-ABCDEF")
        journal.sending(0, fingerprint(first), "B0")
        journal.close()
        client.create_batch("B0", first.gl_rec_ids)


@pytest.mark.parametrize("down", ["refused", "unreachable"])
def test_resume_while_down_never_says_not_sent(connect, tmp_path, down):
    """A batch sent before stays unsettled while ConnectWise is down; the next run settles it."""
    batches = requests_for(4)
    write_input(tmp_path / "in.xml", batches)
    fake = simulator_for(batches)
    journal_with_one_in_flight(fake, tmp_path, connect)
    if down == "unreachable":
        connect.down(fake)
    options = {"private_key": "wrong"} if down == "refused" else {}
    report = run_file(connect, fake, tmp_path, client={**options, "max_retries": 0})
    first = next(iter(XmlBatchReader(tmp_path / "failed.xml")))
    assert report.stopped is not None
    assert (report.unsettled, report.counts["failed"]) == (1, 4)
    assert first.identifier == "B0"
    failed = (tmp_path / "failed.xml").read_text()
    assert failed.count("<code>OutcomeUnknown</code>") == 1
    assert failed.count("<code>NotSent</code>") == 3
    assert "Run the same command again to settle it" in failed
    assert (tmp_path / "ok.xml.journal").exists()
    connect.up(fake)
    again = run_file(connect, fake, tmp_path)  # ConnectWise is back
    settled(again, fake)
    assert posts(fake) == 4  # B0's one POST before the crash, and three more
    assert not (tmp_path / "ok.xml.journal").exists()


def _unreachable() -> httpx.MockTransport:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused (test)", request=request)

    return httpx.MockTransport(refuse)


# -- 3. retrying an OutcomeUnknown batch from the fail file -------------------------------------


def test_outcome_unknown_in_the_fail_file_is_looked_up_before_sending(connect, tmp_path):
    """A batch the fail file marks OutcomeUnknown, created after all, is found, not re-sent."""
    batches = requests_for(2)
    write_input(tmp_path / "in.xml", batches)
    fake = simulator_for(batches)
    fake.fail_next(Fault.lost(), **POST)
    fake.fail_next(None, *[Fault.status(500)] * 40, **GET)  # every lookup of the first run fails
    # One at a time, so the lost answer is B0's (two sent together reach it in any order).
    first = run_file(connect, fake, tmp_path, client={"max_retries": 0}, concurrency=1)
    assert (first.unsettled, first.ok) == (2, False)  # B0 unknown, B1 created without an id
    fake.clear_faults()
    with connect(fake) as client:
        retry = process_file(
            client, tmp_path / "failed.xml", tmp_path / "ok2.xml", tmp_path / "failed2.xml"
        )
    assert (retry.counts["created"], retry.unsettled) == (1, 0)
    assert posts(fake) == 2  # nothing sent again
    (found,) = XmlBatchReader(tmp_path / "ok2.xml")
    assert found.identifier == "B0"
    assert f"<batchId>{fake.batches[0].id}</batchId>" in (tmp_path / "ok2.xml").read_text()


def test_unknown_retried_twice_is_still_looked_up_in_all_batches(connect, tmp_path):
    """A fail file's OutcomeUnknown batch whose retry could not look it up either: the same
    retry command again searches all batches (it predates that run), and finds it."""
    batches = requests_for(1)
    write_input(tmp_path / "in.xml", batches)
    fake = simulator_for(batches)
    fake.fail_next(Fault.lost(), **POST)
    fake.fail_next(None, *[Fault.status(500)] * 40, **GET)
    run_file(connect, fake, tmp_path, client={"max_retries": 0})  # B0 OutcomeUnknown
    retry = (tmp_path / "failed.xml", tmp_path / "ok2.xml", tmp_path / "failed2.xml")
    fake.clear_faults()
    fake.fail_next(None, *[Fault.status(500)] * 40, **GET)  # its lookups fail again
    with connect(fake, max_retries=0) as client:
        assert process_file(client, *retry).unsettled == 1
    fake.clear_faults()
    with connect(fake) as client:
        again = process_file(client, *retry)  # resumes the retry's journal
    assert (again.counts["created"], again.unsettled) == (1, 0)
    assert posts(fake) == 1
    assert f"<batchId>{fake.batches[0].id}</batchId>" in (tmp_path / "ok2.xml").read_text()


# -- 4. a lookup that claims another run's batch ------------------------------------------------


class Interloper(httpx.BaseTransport):
    """Another run creates a batch of the same name; then our first create gets no answer."""

    def __init__(self, fake: FakeConnectWise, inner: httpx.BaseTransport, ids: list[int]) -> None:
        self.fake, self.inner, self.ids, self.done = fake, inner, ids, False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and not self.done:
            self.done = True
            with self.fake.client() as other:
                other.create_batch("SAME", self.ids)
            raise httpx.ReadError("connection reset (test)", request=request)  # never arrived
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_lookup_never_claims_another_runs_batch(connect, tmp_path):
    """Another run's batch of the same identifier is not taken for ours: ours is sent again."""
    ours = [BatchRequest("SAME", [320100, 320101])]
    fake = simulator_for(ours)
    fake.add_unposted([320200, 320201])
    inner = fake.transport() if connect.way == "in-process" else httpx.HTTPTransport()
    options = {"transport": Interloper(fake, inner, [320200, 320201])}
    with connect(fake, **options) as client:
        report = create_batches(client, ours)
    (result,) = report.results
    mine, theirs = fake.batch_of(320100), fake.batch_of(320200)
    assert mine is not None
    assert theirs is not None
    assert (result.status, result.batch_id) == ("created", mine.id)
    assert theirs.id != mine.id
    assert posts(fake) == 2  # theirs, and our second send (the first never arrived)


def test_two_runs_never_generate_the_same_identifier(connect):
    """Two runs started in the same second name their unnamed batches differently."""
    fake = FakeConnectWise()
    fake.add_unposted(range(1, 5))
    with connect(fake) as client:
        one = create_batches(client, [BatchRequest(None, [1]), BatchRequest(None, [2])])
        two = create_batches(client, [BatchRequest(None, [3]), BatchRequest(None, [4])])
    names = [r.identifier for r in (*one.results, *two.results)]
    assert len(set(names)) == 4
    assert all(len(name) <= 50 for name in names)


# -- 5. a created batch whose id was never learned ----------------------------------------------


@pytest.mark.parametrize("journal", ["kept", "deleted"])
def test_ids_not_learned_are_settled_by_the_next_run(connect, tmp_path, journal):
    """Created but every id lookup failed: not ok, and the same command learns the ids."""
    batches = requests_for(3)
    write_input(tmp_path / "in.xml", batches)
    fake = simulator_for(batches)
    fake.fail_next(None, *[Fault.status(503)] * 40, **GET)  # all but the baseline read
    first = run_file(connect, fake, tmp_path, client={"max_retries": 0})
    assert (first.counts["created"], first.unsettled, first.ok) == (3, 3, False)
    assert "<batchId>" not in (tmp_path / "ok.xml").read_text()
    assert (tmp_path / "ok.xml.journal").exists()
    if journal == "deleted":  # then the success file alone carries them over
        (tmp_path / "ok.xml.journal").unlink()
    fake.clear_faults()
    again = run_file(connect, fake, tmp_path)
    settled(again, fake)
    assert posts(fake) == 3
    written = (tmp_path / "ok.xml").read_text()
    assert all(f"<batchId>{b.id}</batchId>" in written for b in fake.batches)


# -- 7. carry-over and the journal belong to one ConnectWise ------------------------------------


def test_success_file_of_another_connectwise_is_refused(connect, tmp_path):
    """The same command against production after a sandbox run: refused, nothing sent."""
    batches = requests_for(2)
    write_input(tmp_path / "in.xml", batches)
    sandbox = simulator_for(batches, company_id="sandbox")
    production = simulator_for(batches, company_id="production")
    settled(run_file(connect, sandbox, tmp_path), sandbox)
    with pytest.raises(ConnectWiseMismatchError, match=r"sandbox.*Give another --success"):
        run_file(connect, production, tmp_path)
    assert production.requests == []


def test_journal_of_another_connectwise_is_refused(connect, tmp_path):
    """A journal of a run against the sandbox does not resume against production."""
    batches = requests_for(2)
    write_input(tmp_path / "in.xml", batches)
    sandbox = simulator_for(batches, company_id="sandbox")
    production = simulator_for(batches, company_id="production")
    journal_with_one_in_flight(sandbox, tmp_path, connect)
    with pytest.raises(ConnectWiseMismatchError, match="unfinished run against ConnectWise"):
        run_file(connect, production, tmp_path)
    assert posts(production) == 0


# -- 8. definite answers are final; resuming costs what is left ---------------------------------


def interrupted(connect, fake, folder, after: int) -> None:
    def explode(progress):
        if progress.done == after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_file(connect, fake, folder, concurrency=1, progress=explode)


def last_states(journal) -> dict[int, str]:
    """The last state the journal records for each batch."""
    states = {}
    for line in journal.read_text().splitlines():
        record = json.loads(line)
        if "i" in record:
            states[record["i"]] = record["s"]
    return states


def test_resume_does_not_resend_definite_answers(connect, tmp_path):
    """Five batches refused with 400 before a crash are not sent again on resume."""
    refused = [BatchRequest(f"X{n}", [900_000 + n]) for n in range(5)]
    batches = refused + requests_for(10, start=320_100)
    write_input(tmp_path / "in.xml", batches)
    fake = simulator_for(batches[5:])  # the first five hold ids ConnectWise does not have
    interrupted(connect, fake, tmp_path, after=8)
    assert list(last_states(tmp_path / "ok.xml.journal").values())[:5] == ["failed"] * 5
    report = run_file(connect, fake, tmp_path)
    assert (report.counts["created"], report.counts["failed"]) == (10, 5)
    assert posts(fake) == 15  # each batch sent once in all
    failed = (tmp_path / "failed.xml").read_text()
    assert failed.count("GL entries not found") == 5
    assert failed.count("<code>InvalidObject</code>") == 5


def test_resume_costs_what_is_left(connect, tmp_path):
    """Killed at 80 % of 200 batches, the resume sends what is left, with two reads more."""
    batches = requests_for(200, size=1, start=320_000)
    write_input(tmp_path / "in.xml", batches)
    fake = simulator_for(batches)
    interrupted(connect, fake, tmp_path, after=160)
    sent = posts(fake)
    states = last_states(tmp_path / "ok.xml.journal")
    in_flight = sum(state == "sending" for state in states.values())  # looked up by name
    created = sum(state == "created" for state in states.values())
    assert created >= 160
    before = len(fake.requests)
    report = run_file(connect, fake, tmp_path, concurrency=4)
    settled(report, fake)
    assert posts(fake) == 200
    found = sent - created  # in flight, and created by ConnectWise: their entries are checked
    expected = (200 - sent) + 2 + in_flight + found  # creates; baseline read; one id listing
    assert len(fake.requests) - before == expected


# -- identifiers with quotes and backslashes ----------------------------------------------------


def test_identifiers_with_quotes_are_found_without_escapes(connect, tmp_path):
    """Lost answers for identifiers with " ' and \\ are found by an id listing; no escape sent."""
    names = ['Q"1', "Q'2", "Q\\3", 'both"\\']
    batches = [BatchRequest(n, [320100 + i]) for i, n in enumerate(names)]
    write_input(tmp_path / "in.xml", batches)
    fake = simulator_for(batches)
    fake.fail_next(*[Fault.lost()] * 4, **POST)
    report = run_file(connect, fake, tmp_path)
    settled(report, fake)
    assert posts(fake) == 4
    asked = [r.query.get("conditions", "") for r in fake.requests]
    assert all('"' not in c and "'" not in c and "\\" not in c for c in asked)
    assert {b.batch_identifier for b in fake.batches} == set(names)


def test_resume_sends_again_what_was_never_delivered(connect, tmp_path):
    """A batch failed before a crash because ConnectWise was unreachable (521 after every retry)
    is not a final answer: the resume sends it, and it is created."""
    batches = requests_for(4)
    write_input(tmp_path / "in.xml", batches)
    fake = simulator_for(batches)
    fake.fail_next(*[Fault.status(521)] * 5, **POST)  # the first batch: every attempt
    interrupted(connect, fake, tmp_path, after=2)
    assert last_states(tmp_path / "ok.xml.journal")[0] == "unsent"
    report = run_file(connect, fake, tmp_path)
    settled(report, fake)
    assert {b.batch_identifier for b in fake.batches} == {"B0", "B1", "B2", "B3"}


def test_fail_file_marks_survive_a_batch_with_invalid_ids(tmp_path):
    """A fail file holding an invalid batch besides an OutcomeUnknown one keeps its mark."""
    from cw_glbatch._recorded import read_recorded

    (tmp_path / "failed.xml").write_text(
        "<Batches><Batch><batchIdentifier>X</batchIdentifier><glRecIds><glRecId>x</glRecId>"
        "</glRecIds><error><code>InvalidInput</code><message>m</message></error></Batch>"
        "<Batch><batchIdentifier>B0</batchIdentifier><glRecIds><glRecId>7</glRecId></glRecIds>"
        "<error><code>OutcomeUnknown</code><message>m</message></error></Batch></Batches>"
    )
    recorded = read_recorded(tmp_path / "failed.xml", "fail")
    assert recorded is not None
    assert [k.identifier for k in recorded.batches.values()] == ["B0"]
