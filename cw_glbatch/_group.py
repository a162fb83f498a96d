"""Group commit: the "sending" records of batches dispatched together made durable by one fsync.

The journal's rule is that a batch's POST leaves only once its "sending" record is durable. The
run decides batches ahead of its worker threads, so instead of one fsync per batch it holds the
batches it has decided in a `Group` until `dispatch_now` says to hand them over: then one
`Journal.sync` makes every record they need durable, and only then are they given to the
workers. A group is handed over when it holds a job for every worker (at least
`GROUP_AT_LEAST`), when it grows long, when the workers would otherwise sit idle, and before the
run waits for anything (a result, the end of the input, a stop). Groups form only from an input
at hand (one that knows its length: a list, an `XmlBatchReader`): reading the next batch of any
other (a generator fed by a queue, a cursor) may wait for as long as its producer likes, so each
batch read from it is handed over before the next is read (one fsync each, as without groups).

A "sending" record made durable for a batch that is then not sent (the run was interrupted
before handing its group over) is safe: a resumed run looks such a batch up before sending it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ._models import BatchRequest, BatchResult

__all__ = ["GROUP_AT_LEAST", "WINDOW_PER_WORKER", "Decided", "Group", "Job", "dispatch_now"]

WINDOW_PER_WORKER = 4  # batches handed over, in flight or not yet collected, per worker thread
# Jobs a group waits for even with fewer workers: the workers still have the window's queue
# to work through meanwhile, so at concurrency 1 four POSTs share an fsync, not one.
GROUP_AT_LEAST = 4


@attrs.frozen
class Job:
    """Work for a worker thread: ``call(*args)`` is the batch's result.

    Attributes:
        sends: It sends a POST under a "sending" record of this run: that record must be
            durable before the job starts.
    """

    call: Callable[..., BatchResult]
    args: tuple[Any, ...]
    sends: bool


@attrs.frozen
class Decided:
    """A batch of the run, decided, with its result or the job that will give it."""

    index: int
    request: BatchRequest
    identifier: str | None
    fingerprint: str
    outcome: BatchResult | Job


@attrs.define
class Group:
    """Batches decided and not yet handed over, in input order."""

    members: list[Decided] = attrs.field(factory=list)
    jobs: int = 0  # members that need a worker
    sends: bool = False  # whether any member's record must be made durable first

    def add(self, decided: Decided) -> None:
        """Hold one more decided batch."""
        self.members.append(decided)
        if isinstance(decided.outcome, Job):
            self.jobs += 1
            self.sends = self.sends or decided.outcome.sends

    def take(self) -> list[Decided]:
        """Empty the group; return what it held."""
        members, self.members, self.jobs, self.sends = self.members, [], 0, False
        return members


def dispatch_now(
    *, held: int, jobs: int, concurrency: int, workers_idle: bool, input_at_hand: bool
) -> bool:
    """Whether the batches held are handed over now, or wait for more to share their fsync.

    Args:
        held: Batches decided and held.
        jobs: How many of them need a worker.
        concurrency: How many workers there are.
        workers_idle: No worker has anything to do.
        input_at_hand: Reading the next batch does not wait (the input knows its length).

    Returns:
        True to make their records durable and hand them over now.
    """
    if jobs and not input_at_hand:
        return True  # the next batch may be long in coming: send this one meanwhile
    if jobs >= max(concurrency, GROUP_AT_LEAST):
        return True  # a job for each worker: as many POSTs as can leave at once, one fsync
    if held >= concurrency * WINDOW_PER_WORKER:
        return True  # many results that need no worker: report them
    return jobs > 0 and workers_idle  # waiting for more would only leave the workers idle
