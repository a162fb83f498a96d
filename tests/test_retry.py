"""The one decision on every answer: return, raise, retry after a wait, or outcome unknown."""

from __future__ import annotations

import itertools

import pytest

from cw_glbatch._retry import (
    NOT_DELIVERED_STATUSES,
    Decision,
    Failure,
    Verdict,
    decide,
    is_final_answer,
)

RETURN, RAISE, RETRY, UNKNOWN = (
    Verdict.RETURN,
    Verdict.RAISE,
    Verdict.RETRY,
    Verdict.OUTCOME_UNKNOWN,
)
METHODS = ("GET", "POST", "DELETE")
STATUSES = (
    200, 201, 204, 299, 301, 400, 401, 403, 404, 408, 409, 418, 429,
    500, 502, 503, 504, 520, 521, 522, 523, 524, 525, 526, 599,
)  # fmt: skip
NO_ANSWER = (Failure.NOT_CONNECTED, Failure.AFTER_SENDING, Failure.PERMANENT)

# (method, status or failure) -> verdict on a first attempt with retries left. Every method
# and every status or failure above has its row; `test_table_covers_every_combination` checks.
TABLE: dict[tuple[str, int | Failure], Verdict] = {}
for _method in METHODS:
    for _status in (200, 201, 204, 299):
        TABLE[_method, _status] = RETURN  # any 2xx, whatever the body
    for _status in (301, 400, 401, 403, 404, 409, 418):
        TABLE[_method, _status] = RAISE  # the server's answer
    TABLE[_method, Failure.NOT_CONNECTED] = RETRY  # never left this machine
    TABLE[_method, Failure.PERMANENT] = RAISE  # untrusted certificate, bad URL
for _method in ("GET", "DELETE"):  # safe to repeat
    for _status in (408, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 525, 526, 599):
        TABLE[_method, _status] = RETRY
    TABLE[_method, Failure.AFTER_SENDING] = RETRY
# A POST: only these prove that ConnectWise did not process it...
for _status in (429, 503, 521, 522, 523, 525, 526):
    TABLE["POST", _status] = RETRY
# ...while these may come after it committed the batch.
for _status in (408, 500, 502, 504, 520, 524, 599):
    TABLE["POST", _status] = UNKNOWN
TABLE["POST", Failure.AFTER_SENDING] = UNKNOWN


def test_table_covers_every_combination():
    """The table has one row for every method with every status and every failure."""
    assert set(TABLE) == set(itertools.product(METHODS, (*STATUSES, *NO_ANSWER)))


@pytest.mark.parametrize(("method", "answer"), sorted(TABLE, key=str))
def test_first_attempt_follows_the_table(method, answer):
    """Each method and status (or failure) gets the table's verdict on its first attempt."""
    decision = _decide(method, answer, attempt=0)
    assert decision.verdict is TABLE[method, answer]
    assert (decision.wait > 0) is (decision.verdict is RETRY)


@pytest.mark.parametrize(("method", "answer"), sorted(TABLE, key=str))
def test_retries_used_up_raise_instead(method, answer):
    """When no retry is left, what would be retried is raised; every other verdict stands."""
    expected = RAISE if TABLE[method, answer] is RETRY else TABLE[method, answer]
    if (method, answer) == ("DELETE", 404):
        expected = RETURN  # a retried DELETE that finds nothing: the first one worked
    assert _decide(method, answer, attempt=4).verdict is expected


def test_not_delivered_statuses_are_the_documented_ones():
    """The statuses that prove a POST was not processed are 429, 503 and Cloudflare's 52x."""
    assert sorted(NOT_DELIVERED_STATUSES) == [429, 503, 521, 522, 523, 525, 526]


def test_retry_after_sets_the_wait_and_is_capped():
    """Retry-After is honoured as the wait, up to 60 s."""
    assert decide("POST", 429, max_retries=1, retry_after=7) == Decision(RETRY, 7.0)
    assert decide("GET", 503, max_retries=1, retry_after=900) == Decision(RETRY, 60.0)


def test_backoff_doubles_and_jitter_shortens_it():
    """Without Retry-After the wait doubles per attempt; jitter takes up to a quarter off."""
    waits = [decide("GET", 500, attempt=n, max_retries=9).wait for n in range(5)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert decide("GET", 500, max_retries=1, jitter=0.5).wait == 0.4375


def _decide(method: str, answer: int | Failure, *, attempt: int) -> Decision:
    if isinstance(answer, Failure):
        return decide(method, None, failure=answer, attempt=attempt, max_retries=4)
    return decide(method, answer, attempt=attempt, max_retries=4)


@pytest.mark.parametrize(
    ("method", "attempt", "verdict"),
    [("POST", 0, RETURN), ("POST", 4, RETURN), ("GET", 0, RETRY), ("GET", 4, RAISE)],
)
def test_a_2xx_whose_body_was_cut_short(method, attempt, verdict):
    """A 2xx whose body stopped half way: a create is created; a read is read again."""
    decision = decide(method, 201, failure=Failure.AFTER_SENDING, attempt=attempt, max_retries=4)
    assert decision.verdict is verdict


@pytest.mark.parametrize(("method", "verdict"), [("POST", RETURN), ("GET", RAISE)])
def test_a_2xx_whose_body_cannot_be_used(method, verdict):
    """A 2xx too large or undecodable: a create is created; a read is not asked again."""
    decision = decide(method, 200, failure=Failure.PERMANENT, attempt=0, max_retries=4)
    assert decision.verdict is verdict


@pytest.mark.parametrize(
    ("status", "final"),
    [(400, True), (404, True), (409, True), (422, True), (None, False), (401, False),
     (403, False), (408, False), (429, False), (302, False), (500, False), (503, False),
     (521, False)],
)  # fmt: skip
def test_final_answers_are_connectwise_answers_about_the_batch(status, final):
    """Only a 4xx about the batch itself is final; refusals and non-delivery are not."""
    assert is_final_answer(status) is final


@pytest.mark.parametrize("answer", [*STATUSES, *NO_ANSWER], ids=str)
def test_read_only_post_is_decided_as_a_get(answer):
    """A POST that changes nothing (an export) gets a GET's verdict for every answer."""
    failure = answer if isinstance(answer, Failure) else None
    status = None if failure else answer
    read_only = decide("POST", status, failure=failure, max_retries=4, read_only=True)
    assert read_only == decide("GET", status, failure=failure, max_retries=4)
    assert read_only.verdict is TABLE["GET", answer]
