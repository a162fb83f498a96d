"""Faults the simulator can inject: scripted, random with a seed, latency and a rate limit.

The kinds model what goes wrong between a client and ConnectWise cloud, which sits behind
Cloudflare: errors before ConnectWise acts (429, 503, Cloudflare's 521/522/523/525/526: the
request never reached it), errors after it acted (Cloudflare's 520/524: the origin may have
committed the batch before the proxy gave up), reset connections, lost answers, and answers that
trickle in or stop half way.

The randomness here is seeded on purpose, so fault schedules repeat; none of it is for security
(hence the ``nosec B311`` marks).
"""

from __future__ import annotations

import collections
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Literal

import attrs

__all__ = ["Fault", "FaultPlan"]

FaultKind = Literal["status", "committed", "reset", "lost", "trickle", "truncated"]

# Cloudflare's statuses that come after the origin may have acted on the request.
COMMITTED_STATUSES = frozenset({520, 524})
# Statuses a proxy answers with its own HTML page (Cloudflare's 52x, a gateway's 502/503/504).
PROXY_STATUSES = frozenset({502, 503, 504, 520, 521, 522, 523, 524, 525, 526})


@attrs.frozen
class Fault:
    """Something that goes wrong with one request.

    Build one with the class methods:

    - ``Fault.status(503)``: answer with an error status; the server does not act.
      502/503/504 and 520 to 526 come with a proxy's HTML page, others with ConnectWise's JSON.
    - ``Fault.too_many_requests(retry_after=2)``: 429 with ``Retry-After``.
    - ``Fault.committed(524)``: the server acts (a POST creates its batch), then the client gets
      this status instead of the answer, as from Cloudflare's 520 and 524.
    - ``Fault.reset()``: the connection is reset before the server acts; no answer.
    - ``Fault.lost()``: the server acts (a POST creates its batch), then the answer is lost:
      the client sees a read timeout (in-process) or a reset connection (over HTTP).
    - ``Fault.trickle(chunk=1, delay=0.5)``: the server acts, then sends its answer ``chunk``
      bytes at a time, ``delay`` seconds apart.
    - ``Fault.truncated()``: the server acts, then the answer stops half way through its body
      and the connection closes.
    - ``Fault.named("524")``: the fault a name stands for, as ``cw-glbatch simulator --fault``
      takes them.
    """

    kind: FaultKind
    status_code: int = 0
    retry_after: float | None = None
    body: bytes | None = None
    chunk: int = 1
    delay: float = 0.0

    @classmethod
    def status(cls, status_code: int, *, retry_after: float | None = None) -> Fault:
        """An error answer (429, 500, 502, 503, 504, ...) before the server acts."""
        return cls("status", status_code, retry_after)

    @classmethod
    def too_many_requests(cls, retry_after: float | None = 1.0) -> Fault:
        """429 Too Many Requests, with ``Retry-After`` in seconds unless ``None``."""
        return cls("status", 429, retry_after)

    @classmethod
    def committed(cls, status_code: int, *, body: bytes | None = None) -> Fault:
        """The server acts, then answers ``status_code`` with ``body`` instead of its answer.

        Args:
            status_code: The status the client gets (520 and 524 in the wild; any will do).
            body: The bytes of the answer; None: a proxy's HTML page for that status.
        """
        return cls("committed", status_code, body=body)

    @classmethod
    def trickle(cls, *, chunk: int = 1, delay: float = 0.5) -> Fault:
        """The server acts, then sends its answer ``chunk`` bytes every ``delay`` seconds."""
        if chunk < 1 or delay < 0:
            raise ValueError("a trickle needs chunk >= 1 and delay >= 0")
        return cls("trickle", chunk=chunk, delay=delay)

    @classmethod
    def truncated(cls) -> Fault:
        """The server acts, then its answer stops half way and the connection closes."""
        return cls("truncated")

    @classmethod
    def named(cls, name: str) -> Fault:
        """The fault ``name`` stands for: a status code, ``reset``, ``lost``, ``trickle``, ...

        A status code gives ``status`` (the server does not act), except 520 and 524, which give
        ``committed`` as Cloudflare does, and 429, which carries ``Retry-After: 1``.

        Raises:
            ValueError: ``name`` names no fault.
        """
        name = name.strip().lower()
        plain = {"reset": cls.reset, "lost": cls.lost, "trickle": cls.trickle}
        plain["truncated"] = cls.truncated
        if name in plain:
            return plain[name]()
        if name.isdigit() and 400 <= int(name) <= 599:
            status_code = int(name)
            if status_code in COMMITTED_STATUSES:
                return cls.committed(status_code)
            return cls.too_many_requests() if status_code == 429 else cls.status(status_code)
        raise ValueError(
            f"unknown fault {name!r}: give a status from 400 to 599, or one of "
            "reset, lost, trickle, truncated"
        )

    @classmethod
    def reset(cls) -> Fault:
        """The connection is reset before the server acts."""
        return cls("reset")

    @classmethod
    def lost(cls) -> Fault:
        """The server acts, then the answer is lost."""
        return cls("lost")


def _applies(method: str | None, path: str | None, request_method: str, request_path: str) -> bool:
    return (method is None or method == request_method) and (path is None or path == request_path)


@attrs.define
class _Script:
    faults: collections.deque[Fault | None]
    method: str | None
    path: str | None


@attrs.define
class _Random:
    rates: tuple[tuple[Fault, float], ...]
    rng: random.Random
    method: str | None
    path: str | None


class FaultPlan:
    """Decides, request by request, which fault (if any) applies. Thread safe."""

    def __init__(
        self,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._sleep = sleep
        self._clock = clock
        self._scripts: list[_Script] = []
        self._random: list[_Random] = []
        self._latency = 0.0
        self._jitter = 0.0
        self._latency_rng = random.Random(0)  # nosec B311
        self._limit: tuple[int, float] | None = None
        self._recent: collections.deque[float] = collections.deque()

    def clear(self) -> None:
        """Remove every fault, latency and rate limit."""
        with self._lock:
            self._scripts.clear()
            self._random.clear()
            self._latency = self._jitter = 0.0
            self._limit = None
            self._recent.clear()

    def script(
        self, faults: tuple[Fault | None, ...], method: str | None, path: str | None
    ) -> None:
        with self._lock:
            self._scripts.append(_Script(collections.deque(faults), method, path))

    def randomly(
        self, rates: Mapping[Fault, float], seed: int, method: str | None, path: str | None
    ) -> None:
        total = sum(rates.values())
        if any(rate < 0 for rate in rates.values()) or total > 1:
            raise ValueError(
                f"fault rates must be non-negative and add up to at most 1, not {total}"
            )
        with self._lock:
            rng = random.Random(seed)  # nosec B311
            self._random.append(_Random(tuple(rates.items()), rng, method, path))

    def set_latency(self, seconds: float, jitter: float, seed: int) -> None:
        with self._lock:
            self._latency, self._jitter = seconds, jitter
            self._latency_rng = random.Random(seed)  # nosec B311

    def set_rate_limit(self, requests: int, per: float) -> None:
        with self._lock:
            self._limit = (requests, per) if requests else None
            self._recent.clear()

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` with the injected sleep (between the pieces of a trickle)."""
        if seconds > 0:
            self._sleep(seconds)

    def draw(self, method: str, path: str) -> Fault | None:
        """The fault for this request (after waiting out any latency)."""
        with self._lock:
            delay = self._latency
            if self._jitter:
                delay += self._latency_rng.uniform(-self._jitter, self._jitter)
            fault = self._throttle() or self._scripted(method, path) or self._drawn(method, path)
        if delay > 0:
            self._sleep(delay)
        return fault

    def _throttle(self) -> Fault | None:
        if self._limit is None:
            return None
        requests, per = self._limit
        now = self._clock()
        while self._recent and self._recent[0] <= now - per:
            self._recent.popleft()
        if len(self._recent) >= requests:
            return Fault.too_many_requests(max(1, math.ceil(self._recent[0] + per - now)))
        self._recent.append(now)
        return None

    def _scripted(self, method: str, path: str) -> Fault | None:
        for script in self._scripts:
            if script.faults and _applies(script.method, script.path, method, path):
                return script.faults.popleft()
        return None

    def _drawn(self, method: str, path: str) -> Fault | None:
        for plan in self._random:
            if not _applies(plan.method, plan.path, method, path):
                continue
            roll = plan.rng.random()
            for fault, rate in plan.rates:
                if roll < rate:
                    return fault
                roll -= rate
        return None
