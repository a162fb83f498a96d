"""What an answer (or no answer) to a request means, how long to wait, and a rate ceiling.

`decide` is the one place that says, for every method, status and transport failure, whether the
client returns the response, raises, sends again after a wait, or reports that a POST's outcome
is unknown. It takes plain values only, so any runner (threads or asyncio) can use it as it is.

The rule for a POST (ConnectWise has no idempotency keys, and Cloudflare fronts its cloud):

- any 2xx: created, whatever the body;
- 429, 503, 521, 522, 523, 525, 526 prove the request was not processed: send again, with backoff;
- 408 and every other 5xx (500 ``ConnectWiseApi``, 502, 504, 520, 524, ...) may come after
  ConnectWise committed the batch: the outcome is unknown, and the caller looks the batch up;
- any other status is ConnectWise's answer.
"""

from __future__ import annotations

import enum
import random
import threading
import time
from collections.abc import Callable

import attrs

__all__ = [
    "DEFAULT_MAX_RETRY_WAIT",
    "NOT_DELIVERED_STATUSES",
    "Decision",
    "Failure",
    "RequestPacer",
    "Verdict",
    "backoff_seconds",
    "decide",
    "is_final_answer",
]

DEFAULT_MAX_RETRY_WAIT = 60.0  # longest wait honoured from Retry-After
_INITIAL_BACKOFF = 0.5
_MAX_BACKOFF = 8.0

# Answers to a POST that prove ConnectWise did not process it: throttled, unavailable, and
# Cloudflare's "origin down / unreachable / TLS failed" codes.
NOT_DELIVERED_STATUSES = frozenset({429, 503, 521, 522, 523, 525, 526})


class Failure(enum.Enum):
    """Why a request got no answer, as far as the decision needs to know."""

    NOT_CONNECTED = "not connected"  # the request never left: connect failed, pool timeout
    AFTER_SENDING = "after sending"  # it may have arrived: read/write timeout, reset, cut answer
    PERMANENT = "permanent"  # trying again cannot help: untrusted certificate, bad URL, an
    # answer too large or that cannot be decoded


class Verdict(enum.Enum):
    """What the client does with an answer."""

    RETURN = "return"  # hand the response to the caller
    RAISE = "raise"  # raise the error the answer means
    RETRY = "retry"  # send the request again after `Decision.wait` seconds
    OUTCOME_UNKNOWN = "outcome unknown"  # a POST may or may not have been processed


@attrs.frozen
class Decision:
    """The verdict on one attempt, and the seconds to wait first when it is `Verdict.RETRY`."""

    verdict: Verdict
    wait: float = 0.0


def decide(
    method: str,
    status: int | None,
    *,
    failure: Failure | None = None,
    attempt: int = 0,
    max_retries: int = 0,
    retry_after: float | None = None,
    jitter: float = 0.0,
    read_only: bool = False,
) -> Decision:
    """What to do with the answer to attempt number ``attempt`` (0 for the first) of a request.

    Args:
        method: The HTTP method.
        status: The status answered, ``None`` when no answer came (then ``failure`` says why).
        failure: Why no answer came, or, with a ``status``, what cut the answer's body short.
        attempt: How many times the request was sent again already.
        max_retries: How many times it may be sent again in all.
        retry_after: The server's ``Retry-After``, in seconds, if it sent one.
        jitter: A number in ``[0, 1)`` that spreads backoff waits (random in real use).
        read_only: The request changes nothing (a POST that only reads, such as an export):
            it is decided as a GET is.

    Returns:
        The `Decision`.
    """
    if read_only:
        method = "GET"
    if status is None:
        if failure is Failure.PERMANENT:
            return Decision(Verdict.RAISE)
        if method == "POST" and failure is not Failure.NOT_CONNECTED:
            return Decision(Verdict.OUTCOME_UNKNOWN)
        return _again(attempt, max_retries, None, jitter)
    if 200 <= status < 300:
        if failure is None or method == "POST":  # any 2xx to a create means created
            return Decision(Verdict.RETURN)
        if failure is Failure.PERMANENT:  # a read's answer too large or undecodable: the same
            return Decision(Verdict.RAISE)
        return _again(attempt, max_retries, None, jitter)  # a read cut short: read it again
    if method == "POST":
        if status in NOT_DELIVERED_STATUSES:
            return _again(attempt, max_retries, retry_after, jitter)
        if status == 408 or status >= 500:
            return Decision(Verdict.OUTCOME_UNKNOWN)
        return Decision(Verdict.RAISE)
    if method == "DELETE" and status == 404 and attempt:
        return Decision(Verdict.RETURN)  # a retried DELETE that finds nothing: the first worked
    if status in (408, 429) or status >= 500:
        return _again(attempt, max_retries, retry_after, jitter)
    return Decision(Verdict.RAISE)


def is_final_answer(status: int | None) -> bool:
    """Whether a failed create's status is ConnectWise's answer about the batch itself.

    400, 404, 409, 422...: sending the same batch again gets the same answer, so a resumed run
    keeps it. Not final: no status (never delivered), 401/403 (the caller was refused, not the
    batch), 408 and 429, redirects, and 5xx (after the retries that were safe).
    """
    return status is not None and 400 <= status < 500 and status not in (401, 403, 408, 429)


def _again(attempt: int, max_retries: int, retry_after: float | None, jitter: float) -> Decision:
    if attempt >= max_retries:
        return Decision(Verdict.RAISE)
    return Decision(Verdict.RETRY, backoff_seconds(attempt, retry_after, rng=lambda: jitter))


def backoff_seconds(
    attempt: int,
    retry_after: float | None,
    *,
    max_wait: float = DEFAULT_MAX_RETRY_WAIT,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry).

    ``Retry-After`` wins when the server sent it (capped at ``max_wait``); otherwise capped
    exponential backoff, 0.5 s doubling up to 8 s, less up to a quarter at random so that
    concurrent callers do not retry in step.
    """
    if retry_after is not None:
        return min(retry_after, max_wait)
    delay = min(_INITIAL_BACKOFF * 2.0**attempt, _MAX_BACKOFF)
    return delay * (1 - 0.25 * rng())


class RequestPacer:
    """Spaces request starts at least ``60 / per_minute`` seconds apart, across threads.

    Each caller reserves the next free slot under a lock and sleeps outside it, so the ceiling
    holds for any number of threads sharing one client and the order is first come, first
    served.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError(f"max_requests_per_minute must be positive, not {per_minute}")
        self._interval = 60.0 / per_minute
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = 0.0

    def reserve(self) -> float:
        """Take the next free slot; the seconds until it comes (0 when it is now)."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self._interval
        return slot - now

    def wait(self) -> None:
        """Block until this caller's slot comes."""
        delay = self.reserve()
        if delay > 0:
            self._sleep(delay)
