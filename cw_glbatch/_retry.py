"""When to try a request again, how long to wait, and a shared ceiling on request rate."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

__all__ = [
    "DEFAULT_MAX_RETRY_WAIT",
    "RequestPacer",
    "backoff_seconds",
    "is_retryable_status",
]

DEFAULT_MAX_RETRY_WAIT = 60.0  # longest wait honoured from Retry-After
_INITIAL_BACKOFF = 0.5
_MAX_BACKOFF = 8.0


def is_retryable_status(method: str, status: int) -> bool:
    """Whether a response with ``status`` may be answered by sending the request again.

    GET and DELETE are safe to repeat: 408, 429 and 5xx are retried. A POST is retried only
    when ConnectWise certainly did not process it: 429 (throttled) and 503 (unavailable).
    """
    if method == "POST":
        return status in (429, 503)
    return status in (408, 429) or status >= 500


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

    def wait(self) -> None:
        """Block until this caller's slot comes."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            self._sleep(slot - now)
