"""The reader's fast path: it reads the standard layout, and gives the same as the full reader."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cw_glbatch import BatchRequest, InputError, XmlBatchReader, _reader_fast
from cw_glbatch._reader import read_fully
from cw_glbatch._reader_fast import read_fast

Outcome = tuple[str, object]


def full_outcome(data: bytes) -> Outcome:
    """What the full reader alone makes of ``data``: its batches, or its refusal in full."""
    try:
        spool = read_fully(io.BytesIO(data), "in.xml")
    except InputError as err:
        return "refused", (str(err), err.source, err.line, err.column)
    return "read", list(spool.replay())


def fast_batches(data: bytes, chunk_size: int) -> list[BatchRequest] | None:
    spool = read_fast(io.BytesIO(data), chunk_size=chunk_size)
    return None if spool is None else list(spool.replay())


def reader_outcome(data: bytes) -> Outcome:
    """What `XmlBatchReader` makes of ``data``, given as a stream named like the full reader's."""
    stream = io.BytesIO(data)
    stream.name = "in.xml"  # type: ignore[misc]
    try:
        return "read", list(XmlBatchReader(stream))
    except InputError as err:
        return "refused", (str(err), err.source, err.line, err.column)


# -- generated files --------------------------------------------------------------------------

SPACE = st.text(alphabet=" \t\n", max_size=3) | st.sampled_from(["\r\n", "\r\n  ", "\r", ""])
# Mostly ids that repeat (within and across batches); some at and past the ends of the range.
ID = st.integers(1, 30) | st.sampled_from([2147483647, 999999999, 1000000000, 123456789])
STANDARD_ID = st.builds(lambda s1, n, s2: f"{s1}<glRecId>{n}</glRecId>{s2}", SPACE, ID, SPACE)
ODD_IDS = [
    "<glRecId>0</glRecId>",
    "<glRecId>007</glRecId>",
    "<glRecId>2147483648</glRecId>",
    "<glRecId>99999999999</glRecId>",
    "<glRecId> 5 </glRecId>",
    "<glRecId>\n6</glRecId>",
    "<glRecId>1 2</glRecId>",
    "<glRecId>1,2</glRecId>",
    "<glRecId></glRecId>",
    "<glRecId/>",
    "<glRecId>x</glRecId>",
    "<glRecId>&#49;</glRecId>",
    "<glRecId>\u0663</glRecId>",
    '<glRecId kind="a">1</glRecId>',
    "<glRecId >3</glRecId >",
    "<!-- c --><glRecId>4</glRecId>",
    "<?pi x?>",
    "<glRecId><![CDATA[5]]></glRecId>",
    "stray",
    "<glEntryId>5</glEntryId>",
    "<glRecId>1</glRecId",
    f"<glRecId>{' ' * 4100}5</glRecId>",  # a value over 4096 characters refuses the file
    f"<glRecId>5{' ' * 4100}</glRecId>",
]
IDENTIFIER_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8
) | st.sampled_from(["B1", "x" * 51, " padded ", "two\nlines", "a&amp;b", "\u00e9t\u00e9"])
STANDARD_IDENTIFIER = st.builds(
    lambda text, s: f"<batchIdentifier>{text}</batchIdentifier>{s}",
    st.sampled_from(["", "B1", "x" * 51, " padded ", "two\nlines", "\u00e9t\u00e9", "9"]),
    SPACE,
)
ODD_PART = st.sampled_from(
    [
        "<exportInvoicesFlag>false</exportInvoicesFlag>",
        "<exportInvoicesFlag> true </exportInvoicesFlag>",
        "<glEntryIds>1, 2,3</glEntryIds>",
        "<unknown>u</unknown>",
        "<batchIdentifier>second</batchIdentifier>",
        "<glRecIds><glRecId>8</glRecId></glRecIds>",
        "<!-- note -->",
        "<batchId>5</batchId>",
        "<batchIdentifier/>",
        "<glRecIds/>",
    ]
)


FLAGS = ["exportInvoicesFlag", "exportExpensesFlag", "exportProductsFlag", "summarizeExpenses"]
STANDARD_FLAGS = st.lists(
    st.builds(
        lambda name, value, s: f"<{name}>{value}</{name}>{s}",
        st.sampled_from(FLAGS),
        st.sampled_from(["true", "false"]),
        SPACE,
    ),
    max_size=3,
    unique_by=lambda flag: flag.split(">")[0],
).map("".join)


@st.composite
def standard_batch(draw: st.DrawFn, odd_item: str | None = None, odd_flag: str = "") -> str:
    """A <Batch> of the layout the fast path reads; ``odd_item`` goes among its ids."""
    identifier = draw(st.none() | STANDARD_IDENTIFIER)
    flags = draw(STANDARD_FLAGS) + odd_flag
    items = draw(st.lists(STANDARD_ID, max_size=6))
    if odd_item is not None:
        items.insert(draw(st.integers(0, len(items))), odd_item)
    ids = "".join(items)
    s = draw(st.lists(SPACE, min_size=3, max_size=3))
    return f"{s[0]}<Batch>{s[1]}{identifier or ''}{flags}<glRecIds>{ids}</glRecIds>{s[2]}</Batch>"


ODD_IDENTIFIERS = ["a&amp;b", "&#65;", "x\r\ny", "<!-- c -->", "<![CDATA[c]]>", "]]>"]
ODD_IDENTIFIERS += ["x" * 5000, "\u00e9" * 3000]  # over 4096 bytes; the first over 4096 characters
ODD_FLAGS = [
    "<exportInvoicesFlag>true</exportInvoicesFlag><exportInvoicesFlag>false</exportInvoicesFlag>",
    "<exportExpensesFlag>True</exportExpensesFlag>",
    "<exportProductsFlag> false</exportProductsFlag>",
    "<summarizeExpenses>yes</summarizeExpenses>",
    "<summarizeExpenses/>",
    "<glInterfaceIdentifier>QB</glInterfaceIdentifier>",
    "<exportInvoicesFlag>true</exportInvoicesFlag><batchIdentifier>late</batchIdentifier>",
]


def nearly_standard_batch(odd: str) -> st.SearchStrategy[str]:
    """A standard <Batch> but for ``odd``: an id, an option, or its identifier's text."""
    if odd in ODD_IDS:
        return standard_batch(odd)
    if odd in ODD_FLAGS:
        return standard_batch(odd_flag=odd)
    return st.builds(
        lambda ids: (
            f"<Batch><batchIdentifier>{odd}</batchIdentifier><glRecIds>{ids}</glRecIds></Batch>"
        ),
        st.lists(STANDARD_ID, max_size=2).map("".join),
    )


@st.composite
def any_batch(draw: st.DrawFn) -> str:
    """A <Batch> of any layout: standard parts and others, in any order."""
    parts = draw(
        st.lists(
            st.sampled_from(["identifier", "ids", "odd"]) | st.just("ids"), min_size=0, max_size=4
        )
    )
    written = []
    for part in parts:
        if part == "identifier":
            text = draw(IDENTIFIER_TEXT).replace("&", "&amp;").replace("<", "&lt;")
            written.append(f"<batchIdentifier>{text}</batchIdentifier>")
        elif part == "ids":
            items = draw(st.lists(STANDARD_ID | st.sampled_from(ODD_IDS), max_size=5))
            written.append(f"<glRecIds>{''.join(items)}</glRecIds>")
        else:
            written.append(draw(ODD_PART))
        written.append(draw(SPACE))
    return f"{draw(SPACE)}<Batch>{draw(SPACE)}{''.join(written)}</Batch>"


PROLOG = st.sampled_from(
    [
        "",
        '<?xml version="1.0" encoding="utf-8"?>\n',
        "<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\r\n",
        '\ufeff<?xml version="1.0"?>',
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n',
        '<?xml version="1.0" encoding="nonsense"?>\n',
        "<!DOCTYPE Batches>\n",
        "<!-- made by hand -->\n",
        "  \n",
    ]
)
END = st.sampled_from(["</Batches>", "</Batches>\n", "</Batches>\r\n  ", "</Batches><!-- x -->"])


def document(
    batches: st.SearchStrategy[str], prolog: st.SearchStrategy[str], end: st.SearchStrategy[str]
) -> st.SearchStrategy[bytes]:
    return st.builds(
        lambda p, s, b, e: f"{p}{s}<Batches>{''.join(b)}{s}{e}".encode(),
        prolog,
        SPACE,
        st.lists(batches, max_size=5),
        end,
    )


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` cut short, or with a byte changed or added, somewhere."""
    at = draw(st.integers(0, len(data)))
    how = draw(st.sampled_from(["cut", "change", "add"]))
    byte = draw(st.sampled_from([b"<", b"&", b">", b"\xff", b"\x00", b"7", b" ", b"\r", b"/"]))
    if how == "cut":
        return data[:at]
    return data[:at] + byte + data[at + (how == "change") :]


STANDARD_PROLOG = st.sampled_from(["", '<?xml version="1.0"?>\n'])
STANDARD_FILE = document(standard_batch(), STANDARD_PROLOG, st.just("</Batches>\n"))


def nearly_standard_file(odd: str) -> st.SearchStrategy[bytes]:
    """A standard file but for ``odd`` in one of its batches."""
    return st.builds(
        lambda prolog, batches, batch, at: (
            f"{prolog}<Batches>{''.join(batches[:at])}{batch}{''.join(batches[at:])}</Batches>"
        ).encode(),
        STANDARD_PROLOG,
        st.lists(standard_batch(), max_size=3),
        nearly_standard_batch(odd),
        st.integers(0, 3),
    )


ANY_FILE = st.one_of(
    STANDARD_FILE,
    st.sampled_from(ODD_IDS + ODD_IDENTIFIERS + ODD_FLAGS).flatmap(nearly_standard_file),
    document(any_batch() | standard_batch(), PROLOG, END),
).flatmap(lambda data: st.just(data) | damaged(data))


# -- the properties -------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=ANY_FILE, chunk_size=st.integers(1, 40))
def test_fast_path_gives_what_the_full_reader_gives_or_steps_aside(data, chunk_size):
    """For any file, the fast path returns the full reader's batches exactly, or gives up."""
    batches = fast_batches(data, chunk_size)
    if batches is not None:
        assert full_outcome(data) == ("read", batches)


@pytest.mark.parametrize("odd", ODD_IDS + ODD_IDENTIFIERS + ODD_FLAGS)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), chunk_size=st.integers(1, 40))
def test_one_odd_thing_is_never_read_differently(odd, data, chunk_size):
    """A standard file but for one odd id or identifier: the fast path gives up or agrees."""
    written = data.draw(nearly_standard_file(odd))
    batches = fast_batches(written, chunk_size)
    if batches is not None:
        assert full_outcome(written) == ("read", batches)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=ANY_FILE)
def test_reader_gives_what_the_full_reader_gives(data):
    """XmlBatchReader gives the full reader's batches, or its InputError, every field alike."""
    assert reader_outcome(data) == full_outcome(data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=STANDARD_FILE, chunk_size=st.integers(1, 40))
def test_standard_layout_is_read_by_the_fast_path(data, chunk_size):
    """A well-formed file of the standard layout is read by the fast path, in any chunks."""
    batches = fast_batches(data, chunk_size)
    assert batches is not None
    assert full_outcome(data) == ("read", batches)


# -- what makes the fast path step aside ------------------------------------------------------

STANDARD = (
    "<Batch><batchIdentifier>B1</batchIdentifier><glRecIds><glRecId>7</glRecId></glRecIds></Batch>"
)


def batches_file(body: str, *, prolog: str = '<?xml version="1.0"?>\n', end: str = "") -> bytes:
    return f"{prolog}<Batches>\n{STANDARD}\n{body}\n</Batches>\n{end}".encode()


@pytest.mark.parametrize(
    "data",
    [
        batches_file('<Batch><glRecIds><glRecId kind="a">1</glRecId></glRecIds></Batch>'),
        batches_file("<Batch><!-- c --><glRecIds><glRecId>1</glRecId></glRecIds></Batch>"),
        batches_file("<Batch><glRecIds><?pi x?><glRecId>1</glRecId></glRecIds></Batch>"),
        batches_file("<Batch><glRecIds><glRecId><![CDATA[1]]></glRecId></glRecIds></Batch>"),
        batches_file("<Batch><batchIdentifier>a&amp;b</batchIdentifier></Batch>"),
        batches_file("<Batch><glRecIds><glRecId>&#49;</glRecId></glRecIds></Batch>"),
        batches_file("<Batch><glRecIds><glRecId> 1 2 </glRecId></glRecIds></Batch>"),
        batches_file("<Batch><glRecIds><glRecId>007</glRecId></glRecIds></Batch>"),
        batches_file("<Batch><glRecIds><glRecId>0</glRecId></glRecIds></Batch>"),
        batches_file("<Batch><glRecIds><glRecId>2147483648</glRecId></glRecIds></Batch>"),
        batches_file("<Batch><glEntryIds>1,2</glEntryIds></Batch>"),
        batches_file("<Batch><exportInvoicesFlag>false</exportInvoicesFlag></Batch>"),
        batches_file(
            "<Batch><glInterfaceIdentifier>QB</glInterfaceIdentifier>"
            "<glRecIds><glRecId>1</glRecId></glRecIds></Batch>"
        ),
        batches_file(
            "<Batch><exportInvoicesFlag>true</exportInvoicesFlag><exportInvoicesFlag>false"
            "</exportInvoicesFlag><glRecIds><glRecId>1</glRecId></glRecIds></Batch>"
        ),
        batches_file("<Batch><glRecIds><glRecId>1</glRecId></glRecIds><note/></Batch>"),
        batches_file("<Batch><glRecIds/></Batch>"),
        batches_file("<Batch><glRecIds></glRecIds><batchIdentifier>x</batchIdentifier></Batch>"),
        batches_file("<Batch><batchIdentifier>x\r\ny</batchIdentifier></Batch>"),
        batches_file("", prolog='<?xml version="1.0" encoding="ISO-8859-1"?>\n'),
        batches_file("", prolog="<!DOCTYPE Batches>\n"),
        batches_file("", prolog="<!-- before -->\n"),
        batches_file("", end="<!-- after -->\n"),
        batches_file("<Batch>", end=""),  # not well formed: the full reader says why
        batches_file("<Batch><glRecIds><glRecId>1</glRecId></glRecIds></Batch>")[:-30],
        b"<Batches/>",
        "\ufeff<?xml version='1.0' encoding='utf-16'?><Batches></Batches>".encode("utf-16"),
    ],
    ids=lambda data: data.decode("utf-8", "replace")[-70:],
)
def test_anything_but_the_standard_layout_is_left_to_the_full_reader(data):
    """The fast path gives up on each of these; the reader then gives the full reader's answer."""
    assert read_fast(io.BytesIO(data)) is None
    assert reader_outcome(data) == full_outcome(data)


def test_a_batch_larger_than_the_fast_path_holds_is_left_to_the_full_reader(monkeypatch):
    """A <Batch> past MAX_PENDING bytes makes the fast path give up rather than hold it all."""
    data = batches_file(STANDARD.replace("7", "8"))
    assert fast_batches(data, 16) is not None
    monkeypatch.setattr(_reader_fast, "MAX_PENDING", 64)
    assert fast_batches(data, 16) is None
    assert reader_outcome(data) == full_outcome(data)


def test_a_stream_that_cannot_seek_is_read_fully():
    """A stream that cannot go back is read by the full reader alone, with the same result."""

    class OneWay(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            return self._data.readinto(buffer)

    data = batches_file("<Batch><glRecIds><glRecId>9</glRecId></glRecIds></Batch>")
    assert list(XmlBatchReader(OneWay(data))) == full_outcome(data)[1]


def test_the_fast_path_reads_a_stream_from_where_it_stands():
    """A stream positioned past a header is read from there, and gone back to there on fallback."""
    data = batches_file("<Batch><!-- c --><glRecIds><glRecId>9</glRecId></glRecIds></Batch>")
    stream = io.BytesIO(b"HEADER" + data)
    stream.seek(6)
    assert list(XmlBatchReader(stream)) == full_outcome(data)[1]


def test_a_text_stream_is_still_a_type_error():
    """A stream opened in text mode is refused as before, though the fast path reads first."""
    with pytest.raises(TypeError, match="binary mode"):
        list(XmlBatchReader(io.StringIO(batches_file("").decode())))
