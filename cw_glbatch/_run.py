"""One run of create_batches: each batch's decision (`_plan.plan`) carried out, exactly once.

The run reads the highest batch id once at the start; `_lookup.BatchFinder` uses it to learn
the ids of created batches and to decide, when a POST's outcome is unknown, whether it created its
batch before anything is sent again.
"""

from __future__ import annotations

import collections
import logging
import operator
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

import attrs

from ._calls import BATCHES_PATH
from ._exceptions import (
    ApiConnectionError,
    ApiError,
    AuthenticationError,
    JournalError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    ValidationError,
)
from ._http import COMPANY_INFO_PATH
from ._identifiers import Identifiers, SeenIds, request_problems
from ._journal import Journal, fingerprint, ids_digest
from ._lookup import BatchFinder
from ._models import (
    INVALID_INPUT,
    NOT_SENT,
    OUTCOME_UNKNOWN,
    BatchError,
    BatchRequest,
    BatchResult,
    Progress,
)
from ._plan import Action, Decision, Known, plan
from ._protocols import BatchClient

__all__ = ["STOPPED_BY_CALLER", "Run", "StopKind", "stop_kind", "stop_reason"]

_LEARN_IDS_EVERY = 500  # created batches whose ids are looked up together
_MAX_RESENDS = 2  # times a POST with an unknown outcome is sent again (after a lookup)

STOPPED_BY_CALLER = (
    "stopped by the caller before the end; the journal records what was sent. "
    "Run the same call again to finish"
)

logger = logging.getLogger("cw_glbatch")

StopKind = Literal["credentials", "permission", "company", "unreachable", "error"]
_STOP_WORDS: dict[StopKind, str] = {
    "credentials": "authentication failed",
    "permission": "permission denied",
    "company": "unknown company id",
    "unreachable": "could not reach ConnectWise",
    "error": "ConnectWise failed",
}


def stop_kind(error: ApiError) -> StopKind:
    """What an error that stops a run says about the settings: which ones to check."""
    if isinstance(error, AuthenticationError):
        return "credentials"
    if isinstance(error, PermissionDeniedError):
        return "permission"
    if isinstance(error, NotFoundError) and error.path.startswith(COMPANY_INFO_PATH):
        return "company"  # the codebase lookup: ConnectWise does not know the company id
    if isinstance(error, ApiConnectionError):
        return "unreachable"
    return "error"


def stop_reason(error: ApiError) -> str:
    """Why a run stopped, in words: ``authentication failed: GET ...: 401 ...``."""
    return f"{_STOP_WORDS[stop_kind(error)]}: {error}"


@attrs.frozen
class _InFlight:
    """A batch of the run, from its decision until its result is collected."""

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
        # Results held back, in input order, until the ids of created batches are known.
        self.held: list[tuple[_InFlight, BatchResult]] = []
        self.done = 0
        self.total: int | None = None

    # -- the main loop (calling thread) ----------------------------------------------------

    def execute(self, batches: Iterable[BatchRequest]) -> None:
        """Decide, carry out and report every batch, in input order."""
        iterator = iter(batches)  # a reader checks its whole file here
        hint = operator.length_hint(iterator, -1)
        self.total = hint if hint >= 0 else None
        self._start()
        window: collections.deque[_InFlight] = collections.deque()
        limit = self.concurrency * 4  # batches in flight or finished but not yet collected
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="cw-glbatch")
        try:
            unread = False  # the caller's stop came before the end of the input
            for index, request in enumerate(iterator):
                if self.caller_stop.is_set():
                    unread = True
                    break
                window.append(self._begin(pool, index, request))
                while len(window) > limit or (window and _ready(window[0])):
                    self._collect(window.popleft())
            while window and not self.caller_stop.is_set():
                self._collect(window.popleft())
            if unread or window or self.stopped_flights:  # the caller stopped it before the end
                self._wind_down(pool, [*self.stopped_flights, *window])
                return
        except BaseException:
            # Interrupted (Ctrl-C, or on_result failed): send nothing more, wait for what is
            # on the wire.
            self.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            self.seen.close()
            if self.journal is not None:
                self.journal.sync()
            close = getattr(iterator, "close", None)
            if close is not None:  # release the input (a reader's spool) even when stopped early
                close()
        pool.shutdown(wait=True)
        self._learn_held_ids()

    def _wind_down(self, pool: ThreadPoolExecutor, flights: list[_InFlight]) -> None:
        """The caller stopped the run: send nothing more, and journal what was on the wire.

        Results not yet given to ``on_result`` are not given: the run ends without writing
        anything half-done, and the journal lets the same call finish it.
        """
        self.stop.set()
        self.stop_reason = STOPPED_BY_CALLER
        logger.info("not sending any more batches: %s", STOPPED_BY_CALLER)
        pool.shutdown(wait=True, cancel_futures=True)
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

    def _begin(self, pool: ThreadPoolExecutor, index: int, request: BatchRequest) -> _InFlight:
        """Decide what to do with one batch, and start doing it."""
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
            journal.sync()  # durable before the POST leaves
        outcome = self._carry_out(
            pool, decision, request=request, identifier=identifier, known=known, problems=problems
        )
        return _InFlight(index, request, digest, outcome)

    def _carry_out(
        self,
        pool: ThreadPoolExecutor,
        decision: Decision,
        *,
        request: BatchRequest,
        identifier: str | None,
        known: Known | None,
        problems: list[str],
    ) -> Future[BatchResult] | BatchResult:
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
            return self._not_sent(request, identifier)
        if action is Action.UNSETTLED:
            why = (
                f"it was sent before, and ConnectWise cannot be asked now ({self.stop_reason}). "
                "Run the same command again to settle it; do not send it any other way"
            )
            return _unknown(request, identifier, "whether it was created is not known", why, None)
        if action is Action.PLANNED:
            return BatchResult(request, identifier, "planned")
        if action is Action.LEARN_ID and not decision.whole_history:
            return BatchResult(request, identifier, "created")  # its id is learned in bulk
        if action is Action.LEARN_ID:
            return pool.submit(self._learn_id, request, identifier)
        min_id = None if decision.whole_history else self.finder.baseline
        if action is Action.LOOK_UP_FIRST:
            return pool.submit(self._recover_unknown_outcome, request, identifier, min_id, None)
        return pool.submit(self._create, request, identifier)

    def _not_sent(self, request: BatchRequest, identifier: str | None) -> BatchResult:
        error = BatchError(f"not sent: {self.stop_reason}", code=NOT_SENT)
        return BatchResult(request, identifier, "failed", error=error)

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
            if result.status != "failed" or not _needs_lookup(result):  # (not being looked up)
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
        if self.held or _needs_lookup(result):  # keep input order behind a result to look up
            self.held.append((flight, result))
            if len(self.held) >= _LEARN_IDS_EVERY:
                self._learn_held_ids()
        else:
            self._emit(result)

    def _emit(self, result: BatchResult) -> None:
        self.counts[result.status] += 1
        if _needs_lookup(result):
            self.unsettled += 1
        if self.results is not None:
            self.results.append(result)
        if self.on_result is not None:
            self.on_result(result)

    # -- learning the ids of created batches (calling thread) ------------------------------

    def _learn_held_ids(self) -> None:
        """Look up the batches held back, then emit everything held, in order."""
        waiting = {r.identifier or "" for _, r in self.held if _needs_lookup(r)}
        if self.stop_reason is not None:  # ConnectWise cannot be asked: settle them next time
            waiting = set()
        candidates = self.finder.created_since_floor(waiting) if waiting else {}
        for flight, held in self.held:
            result = held
            if _needs_lookup(held):
                result = self.finder.with_proven_id(candidates.get(held.identifier or "", []), held)
                if result != held and self.journal is not None:
                    self.journal.result(flight.index, flight.fingerprint, result)
            self._emit(result)
        self.held = []
        if self.journal is not None and waiting:
            self.journal.looked_through(self.finder.floor)
            self.journal.sync()

    # -- one batch (worker threads) --------------------------------------------------------

    def _learn_id(self, request: BatchRequest, identifier: str) -> BatchResult:
        """A batch an earlier run created without learning its id: find it, never send it."""
        if self.stop.is_set():
            return BatchResult(request, identifier, "created")
        try:
            batch_id = self.finder.find_own(request, identifier, None)
        except ApiError as err:
            logger.warning("could not look up created batch %r: %s", identifier, err)
            batch_id = None
        return BatchResult(request, identifier, "created", batch_id)

    def _create(self, request: BatchRequest, identifier: str) -> BatchResult:
        if self.stop.is_set() or self.caller_stop.is_set():
            return self._not_sent(request, identifier)
        try:
            self.client.create_batch(identifier, request.gl_rec_ids, **request.batch_options())
        except OutcomeUnknownError as err:
            return self._recover_unknown_outcome(request, identifier, self.finder.baseline, err)
        except (AuthenticationError, PermissionDeniedError) as err:
            self._halt(err)
            return _failed(request, identifier, err)
        except ApiError as err:
            return _failed(request, identifier, err)
        return BatchResult(request, identifier, "created")

    def _recover_unknown_outcome(
        self, request: BatchRequest, identifier: str, min_id: int | None, first: ApiError | None
    ) -> BatchResult:
        """A POST's outcome is unknown: find out whether it created the batch before resending.

        ``first`` is None for a batch whose POST an earlier run sent without recording its
        answer; ``min_id`` is None when the batch may be older than the run being resumed.
        """
        error: ApiError = first or OutcomeUnknownError(
            "the run that sent it stopped before its answer was recorded",
            method="POST",
            path=BATCHES_PATH,
        )
        for attempt in range(_MAX_RESENDS + 1):
            try:
                batch_id = self.finder.find_own(request, identifier, min_id)
            except ApiError as err:
                return _unknown(
                    request,
                    identifier,
                    error.message,
                    f"looking it up failed too ({err.message}). Run the same command again to "
                    "settle it: it is looked up before anything is sent",
                    error.status,
                )
            if batch_id is not None:
                logger.info(
                    "batch %r was created despite the lost answer (id %d)", identifier, batch_id
                )
                return BatchResult(request, identifier, "created", batch_id)
            if attempt == _MAX_RESENDS:
                break
            logger.info("batch %r was not created; sending it again", identifier)
            try:
                self.client.create_batch(identifier, request.gl_rec_ids, **request.batch_options())
            except (OutcomeUnknownError, ValidationError) as err:
                # A refusal may mean the first POST was still being processed when we looked.
                error = err
                continue
            except ApiError as err:
                return _failed(request, identifier, err)
            return BatchResult(request, identifier, "created")
        if isinstance(error, ValidationError):
            return _failed(request, identifier, error)
        return _unknown(
            request,
            identifier,
            error.message,
            f"no batch {identifier!r} holding its GL entries was found afterwards, and it was "
            f"sent {_MAX_RESENDS + 1} times without an answer. Run the same command again to "
            "settle it",
            error.status,
        )


def _failed(request: BatchRequest, identifier: str, error: ApiError) -> BatchResult:
    return BatchResult(request, identifier, "failed", error=BatchError.from_api_error(error))


def _unknown(
    request: BatchRequest, identifier: str | None, what: str, why: str, status: int | None
) -> BatchResult:
    """Failed because nobody can tell whether it was created."""
    error = BatchError(f"{what}; {why}", status, OUTCOME_UNKNOWN)
    return BatchResult(request, identifier, "failed", error=error)


def _needs_lookup(result: BatchResult) -> bool:
    """Created with its id unknown, or failed because nobody could tell whether it was created."""
    if result.status == "created":
        return result.batch_id is None
    return result.error is not None and result.error.code == OUTCOME_UNKNOWN


def _ready(flight: _InFlight) -> bool:
    return not isinstance(flight.outcome, Future) or flight.outcome.done()
