"""XmlBatchReader: whole-file checks, per-batch problems, encodings, streaming."""

from __future__ import annotations

import io

import pytest

from cw_glbatch import BatchRequest, InputError, XmlBatchReader
from tests.helpers import SEED_IDS


def read(data: bytes) -> list[BatchRequest]:
    return list(XmlBatchReader(io.BytesIO(data)))


def refusal(source) -> InputError:
    with pytest.raises(InputError) as info:
        list(XmlBatchReader(source))
    return info.value


def one_batch(inner: str) -> BatchRequest:
    (batch,) = read(f"<Batches><Batch>{inner}</Batch></Batches>".encode())
    return batch


# -- the seed's sample ------------------------------------------------------------------------


def test_seed_sample_verbatim_is_refused_at_its_broken_line(samples):
    """The seed's sample (last line <Batches> for </Batches>) is refused, pointing at line 16."""
    error = refusal(samples / "seed_verbatim.xml")
    assert str(error).startswith(f"{samples / 'seed_verbatim.xml'}:16:1: ")
    assert "write </Batches>" in str(error)
    assert (error.line, error.column) == (16, 1)


def test_seed_sample_corrected_gives_one_batch():
    """The corrected seed sample is one batch, identifier 221106, its eight ids in order."""
    (batch,) = XmlBatchReader("tests/samples/seed_corrected.xml")
    assert batch == BatchRequest("221106", SEED_IDS, line=3)


def test_path_reader_can_be_iterated_twice(samples):
    """A reader given a path reads the file again on each iteration."""
    reader = XmlBatchReader(samples / "seed_corrected.xml")
    assert list(reader) == list(reader)


# -- whole-file refusals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "position", "words"),
    [
        # Where expat has read the declaration up to: after "[", or its end.
        ("xxe.xml", (2, 19), "DOCTYPE"),
        ("billion_laughs.xml", (2, 16), "DOCTYPE"),
        ("external_dtd.xml", (2, 62), "DOCTYPE"),
        ("wrong_root.xml", (2, 1), "root element is <Invoices>"),
        ("empty.xml", (1, 1), "no XML element"),
        ("junk.bin", (1, 1), "not well-formed"),
        ("truncated.xml", (15, 3), "ends before <Batch> (opened at line 3) is closed"),
    ],
)
def test_bad_files_are_refused_with_position(samples, sample, position, words):
    """A file that is unsafe, not XML or not this format raises InputError naming where."""
    error = refusal(samples / sample)
    assert (error.line, error.column) == position
    assert words in error.reason
    assert str(error).startswith(f"{samples / sample}:{position[0]}:{position[1]}: ")
    assert "Nothing was sent" in str(error)


def test_truncated_file_reports_the_end_of_the_file(samples):
    """A truncated file is refused at the position where it ends."""
    error = refusal(samples / "truncated.xml")
    assert (error.line, error.column) == (15, 3)


def test_entity_is_never_expanded(samples):
    """An external entity's target is never read into any batch."""
    error = refusal(samples / "xxe.xml")
    assert "root:" not in str(error)


def test_undefined_entity_is_refused():
    """An entity reference with no declaration is refused, with the allowed ones named."""
    error = refusal(io.BytesIO(b"<Batches>\n<Batch>&nope;</Batch></Batches>"))
    assert (error.line, "undefined entity" in error.reason) == (2, True)


def test_refusal_comes_before_any_batch():
    """A broken end refuses the file even when good batches come first."""
    good = b"<Batch><glRecIds><glRecId>1</glRecId></glRecIds></Batch>" * 1000
    reader = XmlBatchReader(io.BytesIO(b"<Batches>" + good + b"<Batch>"))
    with pytest.raises(InputError):
        iter(reader)


def test_mismatched_tag_names_the_open_element():
    """A wrong closing tag names the element it should have closed and where it opened."""
    error = refusal(io.BytesIO(b"<Batches>\n  <Batch>\n  </Batches>"))
    assert error.reason.startswith("this closing tag does not match <Batch> opened at line 2")
    assert (error.line, error.column) == (3, 5)


def test_content_after_the_document_is_refused():
    """Anything after the closing </Batches> is refused."""
    error = refusal(io.BytesIO(b"<Batches/>\n<Batches/>"))
    assert "more after </Batches>" in error.reason


def test_non_batch_element_in_root_is_refused():
    """Only <Batch> may appear directly in <Batches>: a typo there must not drop a batch."""
    error = refusal(io.BytesIO(b"<Batches>\n<batch><glRecIds/></batch></Batches>"))
    assert "<batch> cannot be inside <Batches>" in error.reason
    assert error.line == 2


def test_text_in_root_is_refused():
    """Text directly in <Batches> is refused."""
    assert "unexpected text 'oops'" in refusal(io.BytesIO(b"<Batches>oops</Batches>")).reason


def test_missing_file_is_an_input_error(tmp_path):
    """A path that does not exist gives InputError naming it."""
    error = refusal(tmp_path / "nope.xml")
    assert str(error).startswith(str(tmp_path / "nope.xml"))
    assert "cannot open" in str(error)


def test_text_stream_is_a_type_error():
    """A text-mode file object is a usage error that says to open in binary mode."""
    with pytest.raises(TypeError, match="binary mode"):
        list(XmlBatchReader(io.StringIO("<Batches/>")))  # type: ignore[arg-type]


def test_oversized_value_is_refused_quickly():
    """A 10 MB identifier refuses the file rather than being kept or cut."""
    data = b"<Batches><Batch><batchIdentifier>" + b"x" * 10_000_000 + b"</batchIdentifier>"
    error = refusal(io.BytesIO(data + b"</Batch></Batches>"))
    assert "longer than 4096 characters" in error.reason


def test_deep_nesting_is_refused():
    """Nesting far beyond the format's four levels is refused."""
    data = b"<Batches><Batch>" + b"<x>" * 100_000 + b"</x>" * 100_000 + b"</Batch></Batches>"
    assert "nested more than" in refusal(io.BytesIO(data)).reason


# -- per-batch problems -----------------------------------------------------------------------


@pytest.fixture
def problems(samples):
    return {b.identifier: b for b in XmlBatchReader(samples / "per_batch_problems.xml")}


def test_good_batch_beside_bad_ones_has_no_errors(problems):
    """Per-batch problems do not affect other batches."""
    assert problems["ok"] == BatchRequest("ok", (1, 2), line=4)


def test_values_that_are_not_ids_are_errors_kept_verbatim(problems):
    """Non-integers, signs, zero, 32-bit overflow, decimals, empty: each an error, kept."""
    batch = problems["bad-values"]
    assert batch.gl_rec_ids == (10,)
    assert batch.invalid_gl_rec_ids == ("abc", "-5", "0", "2147483648", "1.5", "")
    assert len(batch.errors) == 6
    assert batch.errors[0] == (
        "line 13: glRecId 'abc' is not a GL entry id (a whole number from 1 to 2147483647)"
    )


def test_batch_without_glrecids_is_an_error(problems):
    """A <Batch> with no <glRecIds> gets an error at its own line."""
    assert problems["no-ids"].errors == ("line 22: this <Batch> has no <glRecIds> or <glEntryIds>",)


def test_batch_with_empty_glrecids_is_an_error(problems):
    """An empty <glRecIds> is an error."""
    assert problems["empty-ids"].errors == ("line 26: this <Batch> has an empty <glRecIds>",)


def test_id_repeated_in_batch_is_an_error(problems):
    """An id twice in one batch is an error naming it; the ids stay as written."""
    batch = problems["repeat"]
    assert batch.errors == ("line 33: glRecId 20 is repeated in this batch",)
    assert batch.gl_rec_ids == (20, 21, 20)


def test_id_in_earlier_batch_is_an_error(problems):
    """An id already in an earlier batch of the file fails the later batch."""
    assert problems["earlier"].errors == (
        "line 38: glRecId 2 is already in an earlier batch of this file",
    )


def test_identifier_over_50_characters_is_an_error(problems):
    """An identifier longer than ConnectWise's 50 characters is an error, kept whole."""
    batch = next(b for b in problems.values() if b.identifier and len(b.identifier) == 51)
    assert batch.errors == (
        "line 42: batchIdentifier is 51 characters long; ConnectWise allows at most 50",
    )


def test_unknown_elements_are_errors_kept_as_xml(problems):
    """Unknown elements fail the batch and are kept re-serialized for the fail file."""
    batch = problems["unknown"]
    assert batch.gl_rec_ids == (50,)
    assert batch.unknown_xml == ("<glRecID>51</glRecID>", '<memo kind="x">hello &amp; bye</memo>')
    assert [e.split(":")[0] for e in batch.errors] == ["line 48", "line 49"]


def test_repeated_batch_identifier_element_is_an_error():
    """Two <batchIdentifier> in one batch is an error."""
    batch = one_batch(
        "<batchIdentifier>a</batchIdentifier><batchIdentifier>b</batchIdentifier>"
        "<glRecIds><glRecId>1</glRecId></glRecIds>"
    )
    assert "a second <batchIdentifier>" in batch.errors[0]


def test_element_inside_a_value_is_an_error():
    """Markup inside a <glRecId> is an error, not silently flattened."""
    batch = one_batch("<glRecIds><glRecId>1<b/>2</glRecId></glRecIds>")
    assert "unexpected element <b> inside <glRecId>" in batch.errors[0]


def test_stray_text_in_batch_is_an_error_kept():
    """Text between a batch's elements is an error, kept for the fail file."""
    batch = one_batch("<glRecIds><glRecId>1</glRecId>2</glRecIds>")
    assert batch.errors == ("line 1: unexpected text '2' in <glRecIds>",)
    assert batch.unknown_xml == ("2",)


# -- values, whitespace, encodings ------------------------------------------------------------


def test_whitespace_around_values_is_ignored():
    """Leading and trailing whitespace around ids and identifiers is ignored."""
    batch = one_batch(
        "<batchIdentifier>\n  A 1 \t</batchIdentifier><glRecIds><glRecId> 7\n</glRecId></glRecIds>"
    )
    assert (batch.identifier, batch.gl_rec_ids, batch.errors) == ("A 1", (7,), ())


def test_missing_or_empty_identifier_is_none():
    """No <batchIdentifier>, or an empty one, means none was given."""
    assert one_batch("<glRecIds><glRecId>1</glRecId></glRecIds>").identifier is None
    assert (
        one_batch(
            "<batchIdentifier> </batchIdentifier><glRecIds><glRecId>1</glRecId></glRecIds>"
        ).identifier
        is None
    )


def test_largest_32_bit_id_is_accepted():
    """2147483647, ConnectWise's largest id, is valid."""
    assert one_batch("<glRecIds><glRecId>2147483647</glRecId></glRecIds>").gl_rec_ids == (
        2147483647,
    )


def test_non_ascii_digits_are_not_ids():
    """Digits from other scripts, which int() would accept, are not ids."""
    batch = one_batch("<glRecIds><glRecId>\u0663</glRecId></glRecIds>")
    assert batch.invalid_gl_rec_ids == ("\u0663",)


def test_comments_and_written_elements_are_ignored():
    """Comments, <batchId> and <error> (what the writer adds) do not matter on input."""
    batch = one_batch(
        "<!-- c --><batchIdentifier>x<!-- c --></batchIdentifier><batchId>9</batchId>"
        "<glRecIds><!-- c --><glRecId>1</glRecId></glRecIds>"
        "<error><status>400</status><message>m</message></error>"
    )
    assert batch == BatchRequest("x", (1,), line=1)


ENCODED = (
    "<Batches><Batch><batchIdentifier>é€</batchIdentifier>"
    "<glRecIds><glRecId>1</glRecId></glRecIds></Batch></Batches>"
)


@pytest.mark.parametrize(
    "data",
    [
        "\ufeff<?xml version='1.0' encoding='utf-8'?>".encode() + ENCODED.encode(),
        ("<?xml version='1.0' encoding='utf-16'?>" + ENCODED).encode("utf-16"),
        ("<?xml version='1.0' encoding='windows-1252'?>" + ENCODED).encode("cp1252"),
    ],
    ids=["utf-8 BOM", "utf-16", "windows-1252"],
)
def test_bom_and_declared_encodings_are_honoured(data):
    """A UTF-8 BOM and the encoding named in the XML declaration are honoured."""
    (batch,) = read(data)
    assert batch.identifier == "é€"


def test_lines_are_counted_in_the_file():
    """BatchRequest.line is the line of its <Batch> start tag."""
    data = (
        b"<Batches>\n\n<Batch><glRecIds><glRecId>1</glRecId></glRecIds></Batch>\n<Batch>\n"
        b"<glRecIds><glRecId>2</glRecId></glRecIds></Batch></Batches>"
    )
    assert [b.line for b in read(data)] == [3, 4]


def test_many_batches_stream_in_order():
    """Thousands of batches come back in file order with their ids."""
    body = "".join(
        f"<Batch><batchIdentifier>b{i}</batchIdentifier><glRecIds><glRecId>{i + 1}</glRecId>"
        "</glRecIds></Batch>"
        for i in range(20_000)
    )
    batches = read(f"<Batches>{body}</Batches>".encode())
    assert [b.gl_rec_ids[0] for b in batches] == list(range(1, 20_001))
    assert not any(b.errors for b in batches)


@pytest.mark.parametrize("encoding", ["tf-8", "shift_jis", "utf-32", "rot13", "idna", "cp037"])
def test_unreadable_declared_encoding_is_an_input_error(encoding):
    """An encoding expat cannot read (unknown, multi-byte, not text) is refused on line 1."""
    data = f'<?xml version="1.0" encoding="{encoding}"?><Batches/>'.encode()
    error = refusal(io.BytesIO(data))
    assert error.line == 1
    assert "Save the file as UTF-8" in error.reason
