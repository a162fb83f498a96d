"""<glEntryIds> lists and per-batch options: reader, request body, both output files."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import textwrap

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cw_glbatch import (
    BatchError,
    BatchRequest,
    BatchResult,
    InputError,
    XmlBatchReader,
    XmlResultWriter,
    create_batches,
    process_file,
)
from cw_glbatch._cli import main
from cw_glbatch._id_list import IdListSplitter
from cw_glbatch._journal import fingerprint
from cw_glbatch.testing import FakeConnectWise

NOT_AN_ID = "is not a GL entry id (a whole number from 1 to 2147483647)"


@pytest.fixture
def batches(samples):
    return {b.identifier: b for b in XmlBatchReader(samples / "gl_entry_ids.xml")}


def one_batch(inner: str) -> BatchRequest:
    (batch,) = XmlBatchReader(io.BytesIO(f"<Batches><Batch>{inner}</Batch></Batches>".encode()))
    return batch


def posted(fake: FakeConnectWise, bodies: list):
    """A client of ``fake`` that records the JSON body of every POST it sends."""
    inner = fake.transport()

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            bodies.append(json.loads(request.content))
        return inner.handle_request(request)

    return fake.client(transport=httpx.MockTransport(handle))


def write(tmp_path, *results) -> tuple[str, str]:
    success, fail = tmp_path / "ok.xml", tmp_path / "failed.xml"
    with XmlResultWriter(success_file=success, fail_file=fail) as writer:
        for result in results:
            writer.write(result)
    return success.read_text("utf-8"), fail.read_text("utf-8")


# -- reading ----------------------------------------------------------------------------------


def test_lists_give_their_ids_in_order(batches):
    """Comma-separated lists, spaces allowed, give every id in file order."""
    batch = batches["lists"]
    assert (batch.gl_rec_ids, batch.errors) == ((1010, 1011, 1012, 1020, 1021), ())
    assert batch.gl_entry_id_lists == ("1010,1011,1012", " 1020 , 1021 ")


def test_options_are_read(batches):
    """The five per-batch options are read: true/false (spaces around) and the text one."""
    batch = batches["lists"]
    assert batch.batch_options() == {
        "export_invoices": True,
        "export_expenses": False,
        "export_products": False,
        "summarize_expenses": True,
        "gl_interface_identifier": "QB-1",
    }


def test_absent_options_are_none(batches):
    """A batch without options has none: today's request is sent."""
    batch = batches["mixed"]
    assert (batch.export_invoices, batch.summarize_expenses, batch.gl_interface_identifier) == (
        None,
        None,
        None,
    )
    assert batch.batch_options() == {}


def test_lists_mix_with_glrecids(batches):
    """<glRecIds> and <glEntryIds> in one batch give all their ids, a list across lines too."""
    assert batches["mixed"].gl_rec_ids == (2001, 2002, 2003)
    assert batches["mixed"].errors == ()


def test_bad_items_are_errors_at_their_columns(batches):
    """Each bad item is an error at its own line and column; the good ones are kept."""
    batch = batches["bad-items"]
    assert batch.gl_rec_ids == (3001, 3002)
    assert batch.errors == (
        f"line 24, column 22: glEntryIds item 'abc' {NOT_AN_ID}",
        "line 24, column 26: an empty item in <glEntryIds> (two commas, or one at an end)",
        f"line 24, column 27: glEntryIds item '-5' {NOT_AN_ID}",
        f"line 24, column 30: glEntryIds item '0' {NOT_AN_ID}",
        f"line 24, column 32: glEntryIds item '2147483648' {NOT_AN_ID}",
        f"line 24, column 43: glEntryIds item '1.5' {NOT_AN_ID}",
        "line 24, column 52: an empty item in <glEntryIds> (two commas, or one at an end)",
    )


def test_repeats_point_at_the_list_item(batches):
    """An id repeated in the batch, or already in an earlier batch, is reported at its item."""
    assert batches["repeats"].errors == (
        "line 30, column 22: glEntryIds item 4001 is repeated in this batch",
        "line 30, column 27: glEntryIds item 1011 is already in an earlier batch of this file",
    )


def test_bad_options_are_errors_kept_for_the_fail_file(batches):
    """A flag that is not true/false, and a repeated option, fail the batch and are kept."""
    batch = batches["bad-options"]
    assert batch.errors == (
        "line 35: <exportInvoicesFlag> is 'yes'; write true or false",
        "line 37: a second <exportExpensesFlag> in this <Batch>",
    )
    assert batch.unknown_xml == (
        "<exportInvoicesFlag>yes</exportInvoicesFlag>",
        "<exportExpensesFlag>false</exportExpensesFlag>",
    )
    assert (batch.export_invoices, batch.export_expenses) == (None, True)


def test_empty_list_is_an_error(batches):
    """A batch whose only list is blank has no ids: an error at the batch."""
    assert batches["empty-list"].errors == ("line 41: this <Batch> has an empty <glEntryIds>",)


def test_item_columns_count_characters_and_references():
    """Columns count characters after a character reference and a non-ASCII character."""
    batch = one_batch("<glEntryIds>1&#44;x,\u00e9,2</glEntryIds>")
    assert batch.errors == (
        f"line 1, column 35: glEntryIds item 'x' {NOT_AN_ID}",
        f"line 1, column 37: glEntryIds item '\u00e9' {NOT_AN_ID}",
    )


def test_long_list_split_by_the_parser_keeps_its_ids():
    """A list longer than expat's buffer, so delivered in pieces, gives every id."""
    ids = list(range(1_000_000, 1_020_000))
    batch = one_batch(f"<glEntryIds>{','.join(map(str, ids))}</glEntryIds>")
    assert (batch.gl_rec_ids, batch.errors) == (tuple(ids), ())


def test_list_over_the_limit_refuses_the_file():
    """A list over 256 KiB refuses the file rather than being kept."""
    with pytest.raises(InputError, match="longer than 262144 characters; split the batch"):
        one_batch("<glEntryIds>" + "1," * 140_000 + "</glEntryIds>")


# -- the request ------------------------------------------------------------------------------


def test_options_reach_the_request_body_unchanged(batches):
    """A batch's options are sent as ConnectWise's fields, with its ids."""
    fake = FakeConnectWise()
    fake.add_unposted([1010, 1011, 1012, 1020, 1021], kind="invoice")
    bodies: list = []
    with posted(fake, bodies) as client:
        report = create_batches(client, [batches["lists"]])
    assert report.ok
    assert bodies == [
        {
            "batchIdentifier": "lists",
            "processedRecordIds": [1010, 1011, 1012, 1020, 1021],
            "exportInvoicesFlag": True,
            "exportExpensesFlag": False,
            "exportProductsFlag": False,
            "summarizeExpenses": True,
            "glInterfaceIdentifier": "QB-1",
        }
    ]


def test_absent_options_send_todays_body(batches):
    """Without options, all three flags are true and the optional fields are not sent."""
    fake = FakeConnectWise()
    fake.add_unposted([2001, 2002, 2003])
    bodies: list = []
    with posted(fake, bodies) as client:
        create_batches(client, [batches["mixed"]])
    assert bodies == [
        {
            "batchIdentifier": "mixed",
            "processedRecordIds": [2001, 2002, 2003],
            "exportInvoicesFlag": True,
            "exportExpensesFlag": True,
            "exportProductsFlag": True,
        }
    ]


def test_all_flags_false_fails_without_a_request():
    """A batch that exports no kind fails locally, saying why."""
    fake = FakeConnectWise()
    fake.add_unposted([1])
    request = BatchRequest(
        "x", [1], export_invoices=False, export_expenses=False, export_products=False
    )
    with fake.client() as client:
        (result,) = create_batches(client, [request]).results
    assert result.status == "failed"
    assert "all false" in result.error.message
    assert fake.count_requests("POST") == 0


def test_batch_request_keeps_its_positional_signature():
    """BatchRequest built as before still works; the new fields default to nothing given."""
    request = BatchRequest("a", [1, 2], 3, ("e",), ("x",), ("<u/>",))
    assert (request.line, request.errors, request.unknown_xml) == (3, ("e",), ("<u/>",))
    assert (request.gl_entry_id_lists, request.batch_options()) == ((), {})


def test_flag_that_is_not_a_bool_fails_without_a_request():
    """A caller's flag must be True, False or None: anything else fails the batch locally."""
    fake = FakeConnectWise()
    fake.add_unposted([1])
    request = BatchRequest("a", [1], export_invoices="yes")  # type: ignore[arg-type]
    with fake.client() as client:
        (result,) = create_batches(client, [request]).results
    assert result.error.message == "export_invoices must be bool or None, not 'yes'"
    assert fake.count_requests("POST") == 0


# -- the output files -------------------------------------------------------------------------


def test_success_file_echoes_options_and_lists_every_id(tmp_path, batches):
    """A created batch's file entry has its options and every id as a <glRecId>."""
    result = BatchResult(batches["lists"], "lists", "created", batch_id=7)
    success, _ = write(tmp_path, result)
    assert success.split("\n", 2)[2] == textwrap.dedent("""\
          <Batch>
            <batchIdentifier>lists</batchIdentifier>
            <batchId>7</batchId>
            <exportInvoicesFlag>true</exportInvoicesFlag>
            <exportExpensesFlag>false</exportExpensesFlag>
            <exportProductsFlag>false</exportProductsFlag>
            <summarizeExpenses>true</summarizeExpenses>
            <glInterfaceIdentifier>QB-1</glInterfaceIdentifier>
            <glRecIds>
              <glRecId>1010</glRecId>
              <glRecId>1011</glRecId>
              <glRecId>1012</glRecId>
              <glRecId>1020</glRecId>
              <glRecId>1021</glRecId>
            </glRecIds>
          </Batch>
        </Batches>
        """)


def test_fail_file_gives_back_exactly_what_was_read(tmp_path, batches):
    """A failed batch's lists come back as written, its options echoed, its glRecIds apart."""
    error = BatchError("refused", 400, "InvalidObject")
    results = [
        BatchResult(batches[name], name, "failed", error=error)
        for name in ("lists", "mixed", "bad-items", "bad-options")
    ]
    _, fail = write(tmp_path, *results)
    assert "<glEntryIds>1010,1011,1012</glEntryIds>" in fail
    assert "<glEntryIds> 1020 , 1021 </glEntryIds>" in fail
    assert "<glEntryIds>2002,\n                2003</glEntryIds>" in fail
    assert "<glEntryIds>3001,abc,,-5,0,2147483648,1.5,3002,</glEntryIds>" in fail
    assert "<glRecIds>\n      <glRecId>2001</glRecId>\n    </glRecIds>" in fail
    again = {b.identifier: b for b in XmlBatchReader(tmp_path / "failed.xml")}
    for name in ("lists", "mixed", "bad-items", "bad-options"):
        original = batches[name]
        assert again[name].gl_entry_id_lists == original.gl_entry_id_lists
        assert again[name].gl_rec_ids == original.gl_rec_ids
        assert again[name].batch_options() == original.batch_options()
        assert again[name].unknown_xml == original.unknown_xml
        assert [e.split(": ", 1)[1] for e in again[name].errors] == [
            e.split(": ", 1)[1] for e in original.errors
        ]


def test_fail_file_keeps_an_id_given_in_both_forms_twice(tmp_path):
    """An id both in <glRecIds> and in a list is written back once in each."""
    request = one_batch("<glRecIds><glRecId>9</glRecId></glRecIds><glEntryIds>9,8</glEntryIds>")
    assert request.gl_rec_ids == (9, 9, 8)
    write(tmp_path, BatchResult(request, "x", "failed", error=BatchError("e")))
    (again,) = XmlBatchReader(tmp_path / "failed.xml")
    assert again.gl_rec_ids == (9, 9, 8)
    assert again.gl_entry_id_lists == ("9,8",)


ids = st.integers(1, 2**31 - 1)
items = st.one_of(
    ids.map(str),
    st.sampled_from(["", " ", "x", "0", "-1", "1.5", "2147483648", "\u0663"]),
)


@given(
    st.lists(st.tuples(items, st.sampled_from(["", " ", "\n  "])), min_size=1, max_size=8),
    st.lists(ids, max_size=3, unique=True),
)
def test_any_list_round_trips_through_the_fail_file(tmp_path_factory, listed, elements):
    """Whatever a list holds, the fail file gives it back as read, with the same ids."""
    text = ",".join(space + item for item, space in listed)
    xml_ids = "".join(f"<glRecId>{i}</glRecId>" for i in elements)
    request = one_batch(f"<glRecIds>{xml_ids}</glRecIds><glEntryIds>{text}</glEntryIds>")
    folder = tmp_path_factory.mktemp("round")
    write(folder, BatchResult(request, "x", "failed", error=BatchError("e")))
    (again,) = XmlBatchReader(folder / "failed.xml")
    assert again.gl_entry_id_lists == (text.replace("\r", "\n"),)
    assert sorted(again.gl_rec_ids) == sorted(request.gl_rec_ids)
    assert len(again.errors) == len(request.errors)


@given(
    st.text(st.sampled_from("12, \n x"), max_size=40),
    st.lists(st.integers(0, 40), max_size=6),
)
def test_a_list_splits_the_same_however_it_is_delivered(text, cuts):
    """Items and their positions do not depend on where the parser cut the text."""
    whole = IdListSplitter()
    expected = whole.feed(text, (3, 5)) + whole.end((9, 9))
    pieces = IdListSplitter()
    got = []
    bounds = [0, *sorted(c for c in cuts if c < len(text)), len(text)]
    for start, stop in itertools.pairwise(bounds):
        line = 3 + text.count("\n", 0, start)
        column = 5 + start if line == 3 else start - text.rfind("\n", 0, start)
        got += pieces.feed(text[start:stop], (line, column))
    got += pieces.end((9, 9))
    assert got == expected
    assert pieces.text == text


def test_items_after_a_line_break_in_one_piece_are_placed_on_their_line():
    """Within one piece of text, an item after a line break gets that line and its column."""
    items = IdListSplitter().feed("1,\n  x,\n,", (4, 10))
    assert [(item.text, item.at) for item in items] == [("1", (4, 10)), ("x", (5, 3)), ("", (6, 1))]


def test_error_on_a_later_line_of_a_list_points_there():
    """A bad item on the second line of a list is reported on that line, at its column."""
    batch = one_batch("<glEntryIds>1,\n   x</glEntryIds>")
    assert batch.errors == (f"line 2, column 4: glEntryIds item 'x' {NOT_AN_ID}",)


def test_journal_fingerprint_is_unchanged_without_options_and_sees_them_when_given():
    """A journal written before options existed still matches; options change the fingerprint."""
    plain = BatchRequest("a", [1, 2])
    assert fingerprint(plain) == hashlib.sha256(b"a\x001,2").hexdigest()[:16]
    invoices = BatchRequest("a", [1, 2], export_invoices=True)
    expenses = BatchRequest("a", [1, 2], export_invoices=False)
    assert len({fingerprint(plain), fingerprint(invoices), fingerprint(expenses)}) == 3


def test_validate_points_at_the_item_as_file_line_column(samples, capsys):
    """cw-glbatch validate writes a list item's problem as file:line:column, as editors read."""
    path = samples / "gl_entry_ids.xml"
    assert main(["validate", "--input", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"{path}:24:22: glEntryIds item 'abc' {NOT_AN_ID} (batch at line 22)")
    assert (
        f"{path}:35: <exportInvoicesFlag> is 'yes'; write true or false (batch at line 33)" in out
    )
    assert main(["validate", "--input", str(path), "--json"]) == 1
    first = json.loads(capsys.readouterr().out)["problems"][0]
    assert (first["line"], first["column"], first["batch_line"]) == (24, 22, 22)
    assert first["message"] == f"glEntryIds item 'abc' {NOT_AN_ID}"


def test_same_list_input_twice_creates_nothing_the_second_time(tmp_path):
    """A run of a <glEntryIds> input, repeated, carries its batches over and sends nothing."""
    fake = FakeConnectWise()
    fake.add_unposted([1010, 1011, 1012, 1013])
    source = tmp_path / "in.xml"
    source.write_text(
        "<Batches><Batch><exportInvoicesFlag>true</exportInvoicesFlag>"
        "<glEntryIds>1010, 1011</glEntryIds><glRecIds><glRecId>1012</glRecId></glRecIds>"
        "</Batch></Batches>"
    )
    paths = (tmp_path / "ok.xml", tmp_path / "failed.xml")
    with fake.client() as client:
        first = process_file(client, source, *paths)
        posts = fake.count_requests("POST")
        second = process_file(client, source, *paths)
    assert (first.counts["created"], second.counts["created"]) == (1, 1)
    assert (posts, fake.count_requests("POST")) == (1, 1)
    (again,) = XmlBatchReader(paths[0])
    assert (again.gl_rec_ids, again.export_invoices) == ((1010, 1011, 1012), True)
