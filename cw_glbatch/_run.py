"""One run of create_batches: each batch's decision (`_plan.plan`) carried out, exactly once.

The calling thread reads the input, decides each batch, and hands the batches that need a
request to a pool of worker threads (`_sending.Sender`) in groups whose journal records one
fsync makes durable first (`_group`); it collects the results in input order. The run reads the
highest batch id once at the start; `_lookup.BatchFinder` uses it to learn the ids of created
batches and to decide, when a POST's outcome is unknown, whether it created its batch before
anything is sent again.
"""

from __future__ import annotations

import collections
import logging
import operator
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import attrs

from ._exceptions import ApiError, JournalError
from ._group import WINDOW_PER_WORKER, Decided, Group, Job, dispatch_now
from ._identifiers import Identifiers, SeenIds, request_problems
from ._journal import Journal, fingerprint, ids_digest
from ._learning import IdLearner
from ._lookup import BatchFinder
from ._models import INVALID_INPUT, BatchError, BatchRequest, BatchResult, Progress
from ._plan import Action, Decision, Known, plan
from ._protocols import BatchClient
from ._sending import Sender, needs_lookup, not_sent, unknown
from ._stops import STOPPED_BY_CALLER, stop_reason

__all__ = ["Run", "release_input"]

logger = logging.getLogger("cw_glbatch")


@attrs.frozen
class _InFlight:
    """A batch of the run, handed over, until its result is collected."""

    index: int
    request: BatchRequest
    fingerprint: str
    outcome: Future[BatchResult] | BatchResult


class Run:
    """One call of create_batches: its settings and what it has learned so far."""

    def __init__(
        self,
        client: BatchClient,
        *,
        concurrency: int,
        dry_run: bool,
        variables: Mapping[str, Any] | None,
        on_result: Callable[[BatchResult], object] | None,
        progress: Callable[[Progress], object] | None,
        keep_results: bool,
        journal: Journal | None,
        earlier: Mapping[bytes, Known],
        caller_stop: threading.Event | None = None,
    ) -> None:
        self.client = client
        self.concurrency = concurrency
        self.dry_run = dry_run
        self.journal = journal
        self.earlier = earlier  # what earlier success or fail files record, by ids_digest
        self.identifiers = Identifiers(
            variables,
            journal.stamp if journal else None,
            (entry.known.identifier for entry in journal.entries.values()) if journal else (),
        )
        self.on_result = on_result
        self.progress = progress
        self.results: list[BatchResult] | None = [] if keep_results else None
        self.counts: collections.Counter[str] = collections.Counter()
        self.collected: collections.Counter[str] = collections.Counter()  # for progress
        self.unsettled = 0
        self.stop_reason: str | None = None
        self.stop_error: ApiError | None = None
        self.stop = threading.Event()  # no more batches are sent (set by the run)
        self.caller_stop = caller_stop or threading.Event()  # the caller's: end the run early
        self.stopped_flights: list[_InFlight] = []  # collected after the caller's stop
        self.seen = SeenIds()
        self.finder = BatchFinder(client)
        self.sender = Sender(
            client,
            self.finder,
            stop=self.stop,
            caller_stop=self.caller_stop,
            halt=self._halt,
            why_stopped=lambda: self.stop_reason,
        )
        # Gives the results out in input order, once the ids of created batches are known.
        self.learner = IdLearner(self.finder, journal, self._emit, lambda: self.stop_reason is None)
        self.done = 0
        self.total: int | None = None

    # -- the main loop (calling thread) ----------------------------------------------------

    def execute(self, batches: Iterable[BatchRequest]) -> None:
        """Decide, carry out and report every batch, in input order."""
        iterator = iter(batches)  # a reader checks its whole file here
        hint = operator.length_hint(iterator, -1)
        self.total = hint if hint >= 0 else None  # (and an input that knows it is at hand)
        self._start()
        group = Group()
        window: collections.deque[_InFlight] = collections.deque()
        limit = self.concurrency * WINDOW_PER_WORKER  # handed over but not yet collected
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="cw-glbatch")
        try:
            unread = False  # the caller's stop came before the end of the input
            for index, request in enumerate(iterator):
                if self.caller_stop.is_set():
                    unread = True
                    break
                group.add(self._decide(index, request))
                if not dispatch_now(
                    held=len(group.members),
                    jobs=group.jobs,
                    concurrency=self.concurrency,
                    workers_idle=_idle(window),
                    input_at_hand=self.total is not None,
                ):
                    continue
                self._dispatch(pool, group, window)
                while len(window) > limit or (window and _ready(window[0])):
                    self._collect(window.popleft())
            stopped = unread or self.caller_stop.is_set()
            if stopped:
                self._drop(group, STOPPED_BY_CALLER)
            else:
                self._dispatch(pool, group, window)
            while window and not self.caller_stop.is_set():
                self._collect(window.popleft())
            if stopped or window or self.stopped_flights:  # the caller stopped it before the end
                self._wind_down(pool, [*self.stopped_flights, *window])
                return
        except BaseException:
            # Interrupted (Ctrl-C, or on_result failed): send nothing more, wait for what is
            # on the wire. The group not handed over is not sent.
            self._drop(group, "the run was interrupted")
            self.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            self.learner.close()
            raise
        finally:
            self.seen.close()
            if self.journal is not None:
                self.journal.sync()
            release_input(iterator)  # (a reader's spool) even when stopped early
        pool.shutdown(wait=True)
        self.learner.finish()

    def _dispatch(
        self, pool: ThreadPoolExecutor, group: Group, window: collections.deque[_InFlight]
    ) -> None:
        """Make the group's records durable (one fsync), then hand its jobs to the workers."""
        if group.sends and self.journal is not None:
            self.journal.sync()  # durable before any of their POSTs leaves
        for member in group.take():
            job = member.outcome
            outcome = pool.submit(job.call, *job.args) if isinstance(job, Job) else job
            window.append(_InFlight(member.index, member.request, member.fingerprint, outcome))

    def _drop(self, group: Group, why: str) -> None:
        """The run ends holding a group: journal its batches to send as certainly not sent.

        (Their "sending" records may be durable already; the later record wins, so a resumed
        run sends them without looking them up first.)
        """
        for member in group.take():
            job = member.outcome
            if self.journal is not None and isinstance(job, Job) and job.sends:
                unsent = not_sent(member.request, member.identifier, why)
                self.journal.result(member.index, member.fingerprint, unsent)

    def _wind_down(self, pool: ThreadPoolExecutor, flights: list[_InFlight]) -> None:
        """The caller stopped the run: send nothing more, and journal what was on the wire.

        Results not yet given to ``on_result`` are not given: the run ends without writing
        anything half-done, and the journal lets the same call finish it.
        """
        self.stop.set()
        self.stop_reason = STOPPED_BY_CALLER
        logger.info("not sending any more batches: %s", STOPPED_BY_CALLER)
        pool.shutdown(wait=True, cancel_futures=True)
        self.learner.close()  # (what it learned is learned again next time)
        for flight in flights:
            outcome = flight.outcome
            if (
                self.journal is not None
                and isinstance(outcome, Future)
                and not outcome.cancelled()
                and outcome.exception() is None  # (one that raised stays "sending": looked up)
            ):
                self.journal.result(flight.index, flight.fingerprint, outcome.result())

    def _start(self) -> None:
        try:
            highest = self.client.highest_batch_id()  # also checks the credentials
        except ApiError as err:
            self._halt(err)
            return
        floor = None
        if self.journal is not None:  # (there is none in a dry run)
            highest = self.journal.begin(highest, self.identifiers.stamp)
            floor = self.journal.floor
        self.finder.baseline = highest
        self.finder.floor = highest if floor is None else floor

    def _halt(self, error: ApiError) -> None:
        if self.stop_reason is None:
            self.stop_reason, self.stop_error = stop_reason(error), error
            # INFO: the report carries the reason; a caller (the CLI) says it once, at the end.
            logger.info("not sending any more batches: %s", self.stop_reason)
        self.stop.set()

    def _decide(self, index: int, request: BatchRequest) -> Decided:
        """Decide what to do with one batch; journal a send (made durable by `_dispatch`)."""
        journal = self.journal
        digest = fingerprint(request) if journal is not None else ""
        entry = journal.entries.get(index) if journal is not None else None
        if journal is not None and entry is not None and entry.fingerprint != digest:
            raise JournalError(
                f"{journal.path}: batch {index + 1} of this input differs from the one the "
                "unfinished run recorded. Run the same input again to finish that run, or "
                "delete the journal if you are sure."
            )
        in_journal = entry.known if entry is not None else None
        earlier = None
        if self.earlier and not request.errors:
            earlier = self.earlier.get(ids_digest(request.gl_rec_ids))
        known = in_journal or earlier
        identifier, problem = self.identifiers.assign(request, known.identifier if known else None)
        repeated = self.seen.problem(request)  # (marks its ids seen, whatever becomes of it)
        problems = [*request.errors, *request_problems(request)]
        problems += [p for p in (repeated, problem) if p]
        decision = plan(
            in_journal,
            earlier,
            invalid=bool(problems) or identifier is None,
            stopped=self.stop.is_set(),
            dry_run=self.dry_run,
        )
        if decision.action is Action.SEND and journal is not None and identifier is not None:
            journal.sending(index, digest, identifier)
        outcome = self._carry_out(
            decision, request=request, identifier=identifier, known=known, problems=problems
        )
        return Decided(index, request, identifier, digest, outcome)

    def _carry_out(
        self,
        decision: Decision,
        *,
        request: BatchRequest,
        identifier: str | None,
        known: Known | None,
        problems: list[str],
    ) -> BatchResult | Job:
        """The result a decision gives at once, or the job for a worker that will give it."""
        action = decision.action
        if action is Action.INVALID or identifier is None:
            error = BatchError("; ".join(problems), code=INVALID_INPUT)
            return BatchResult(request, identifier, "failed", error=error)
        if action is Action.CARRIED_OVER:
            return BatchResult(request, identifier, "created", known.batch_id if known else None)
        if action is Action.ANSWERED:
            answer = known.error if known is not None else None
            if answer is None:
                answer = BatchError("refused in the run that was resumed")
            return BatchResult(request, identifier, "failed", error=answer)
        if action is Action.NOT_SENT:
            return not_sent(request, identifier, self.stop_reason)
        if action is Action.UNSETTLED:
            why = (
                f"it was sent before, and ConnectWise cannot be asked now ({self.stop_reason}). "
                "Run the same command again to settle it; do not send it any other way"
            )
            return unknown(request, identifier, "whether it was created is not known", why, None)
        if action is Action.PLANNED:
            return BatchResult(request, identifier, "planned")
        if action is Action.LEARN_ID and not decision.whole_history:
            return BatchResult(request, identifier, "created")  # its id is learned in bulk
        sender = self.sender
        if action is Action.LEARN_ID:
            return Job(sender.learn_id, (request, identifier), sends=False)
        min_id = None if decision.whole_history else self.finder.baseline
        if action is Action.LOOK_UP_FIRST:  # (its "sending" record is the resumed run's)
            args = (request, identifier, min_id, None)
            return Job(sender.recover_unknown_outcome, args, sends=False)
        return Job(sender.create, (request, identifier), sends=True)

    def _collect(self, flight: _InFlight) -> None:
        outcome = flight.outcome
        result = outcome.result() if isinstance(outcome, Future) else outcome
        if self.caller_stop.is_set():  # given to nobody; `_wind_down` journals it
            self.stopped_flights.append(flight)
            return
        if self.journal is not None and isinstance(outcome, Future):
            self.journal.result(flight.index, flight.fingerprint, result)
        self.done += 1
        if self.progress is not None:
            if result.status != "failed" or not needs_lookup(result):  # (not being looked up)
                self.collected[result.status] += 1
            self.progress(
                Progress(
                    self.done,
                    self.total,
                    self.collected["created"],
                    self.collected["failed"],
                    self.collected["planned"],
                )
            )
        self.learner.add(flight.index, flight.fingerprint, result)

    def _emit(self, result: BatchResult) -> None:
        self.counts[result.status] += 1
        if needs_lookup(result):
            self.unsettled += 1
        if self.results is not None:
            self.results.append(result)
        if self.on_result is not None:
            self.on_result(result)


def release_input(batches: Iterator[BatchRequest]) -> None:
    """Let go of what the input holds (a reader's spool) when the run will not read on."""
    close = getattr(batches, "close", None)
    if close is not None:
        close()


def _ready(flight: _InFlight) -> bool:
    return not isinstance(flight.outcome, Future) or flight.outcome.done()


def _idle(window: collections.deque[_InFlight]) -> bool:
    """Whether every batch handed over is finished (the newest are the likeliest not to be)."""
    return all(_ready(flight) for flight in reversed(window))
