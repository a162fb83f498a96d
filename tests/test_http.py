"""The pure request and response functions behind the client."""

from __future__ import annotations

import pytest

from cw_glbatch import OutcomeUnknownError, RateLimitError, ServerError, ValidationError
from cw_glbatch._conditions import condition_string, identifier_conditions, is_condition_safe
from cw_glbatch._failures import error_for_response, retry_after_seconds
from cw_glbatch._paging import next_link
from cw_glbatch._retry import backoff_seconds


@pytest.mark.parametrize("value", ['a"b', "a'b", "back\\", '\\"'])
def test_condition_string_refuses_quotes_and_backslashes(value):
    """No escape is relied on: a value holding a quote or a backslash is refused."""
    assert not is_condition_safe(value)
    with pytest.raises(ValueError, match="look it up another way"):
        condition_string(value)


def test_condition_string_quotes_plain_values():
    """A plain value is written in double quotes, as it is."""
    assert condition_string("2026-11-24 R1") == '"2026-11-24 R1"'


def test_identifier_conditions_deduplicate():
    """An identifier asked twice is sent once."""
    assert identifier_conditions(["a", "a", "b"]) == ['batchIdentifier in ("a","b")']


def test_identifier_conditions_respect_the_length_budget():
    """Each condition stays within the budget, and together they cover every identifier."""
    conditions = identifier_conditions([f"id-{i}" for i in range(300)], max_length=300)
    assert len(conditions) > 1
    from urllib.parse import quote

    assert all(len(quote(c, safe="")) <= 300 for c in conditions)
    assert sum(c.count('"id-') for c in conditions) == 300


@pytest.mark.parametrize(
    ("header", "url"),
    [
        (None, None),
        ('<https://h/x?page=2>; rel="next"', "https://h/x?page=2"),
        (
            '<https://h/x?page=1>; rel="first", <https://h/x?page=3>; rel="next"',
            "https://h/x?page=3",
        ),
        ("<https://h/x?page=3>; rel=next", "https://h/x?page=3"),
        ('<https://h/x?page=1>; rel="prev"', None),
    ],
)
def test_next_link(header, url):
    """rel="next" is found among the Link header's entries."""
    assert next_link(header) == url


def test_retry_after_forms():
    """Retry-After parses as seconds or as an HTTP date; junk is ignored."""
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("-5") == 0.0


def test_backoff_grows_and_is_capped():
    """Backoff doubles from 0.5 s up to 8 s, with at most a quarter taken off."""
    assert [backoff_seconds(n, None, rng=lambda: 0.0) for n in range(6)] == [0.5, 1, 2, 4, 8, 8]
    assert backoff_seconds(0, None, rng=lambda: 1.0) == 0.375


def test_post_500_is_outcome_unknown_with_connectwise_message():
    """An unknown outcome keeps ConnectWise's message but says the outcome is unknown."""
    error = error_for_response(
        "POST",
        "/p",
        500,
        {"content-type": "application/json"},
        b'{"code":"ConnectWiseApi","message":"Database timeout"}',
        outcome_unknown=True,
    )
    assert isinstance(error, OutcomeUnknownError)
    assert error.message.startswith("Database timeout")


def test_get_500_is_server_error():
    """A GET answered 500 is a ServerError."""
    assert type(error_for_response("GET", "/p", 500, {}, b"")) is ServerError


def test_rate_limit_error_carries_retry_after():
    """A 429 says how long ConnectWise asked to wait."""
    error = error_for_response("GET", "/p", 429, {"retry-after": "3"}, b"")
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 3.0


def test_non_json_body_is_quoted_short():
    """A long plain-text body is cut to a readable length."""
    error = error_for_response("POST", "/p", 400, {"content-type": "text/plain"}, b"x" * 5000)
    assert isinstance(error, ValidationError)
    assert len(error.message) == 200


def test_malformed_json_body_is_still_readable():
    """A body that looks like JSON but is not becomes the message text."""
    error = error_for_response("GET", "/p", 400, {"content-type": "application/json"}, b"{oops")
    assert error.message == "{oops"
    assert error.message == "{oops"


def test_transport_failure_survives_an_error_chained_to_itself():
    """An error whose __context__ chain loops back (as respx can make) is classified, not looped."""
    import httpx

    from cw_glbatch._failures import transport_failure
    from cw_glbatch._retry import Failure

    err = httpx.ReadError("reset")
    other = RuntimeError("re-raised")
    err.__context__, other.__context__ = other, err
    assert transport_failure(err) is Failure.AFTER_SENDING
