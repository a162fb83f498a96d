"""An answer as the calls see it: plain values that read as httpx would read them."""

from __future__ import annotations

import httpx
from hypothesis import given
from hypothesis import strategies as st

from cw_glbatch._answers import Answer

CONTENT_TYPES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "application/json",
            "text/html; charset=iso-8859-1",
            "text/plain; charset=UTF-16",
            'text/plain; charset="cp1252"',
            "text/plain; charset=no-such-codec",
            "text/plain; charset=base64",
            "text/plain; charset=idna",
            "text/plain; charset=",
        ]
    ),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
)


@given(content=st.binary(max_size=60), content_type=CONTENT_TYPES)
def test_text_is_what_httpx_reads(content, content_type):
    """Answer.text is httpx's Response.text wherever httpx can decode the body, and never raises."""
    headers = {"content-type": content_type} if content_type is not None else {}
    text = Answer(200, httpx.Headers(headers), content).text
    try:
        expected = httpx.Response(200, headers=headers, content=content).text
    except (UnicodeError, LookupError, AssertionError, TypeError):
        assert isinstance(text, str)  # httpx cannot decode it; the answer still reads
    else:
        assert text == expected
