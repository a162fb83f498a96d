"""create_batches and process_file: the whole task, exactly once per batch.

A run reads the highest batch id once at the start. Every batch created during the run has a
greater id, which lets the run (1) learn the ids of the batches it created with one request per
1,000 batches, and (2) decide, when a POST's outcome is unknown, whether it created its batch,
before anything is sent again.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import operator
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

import attrs

from ._client import ConnectWiseClient
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
from ._finish import finished_report, not_written, put_in_place
from ._http import COMPANY_INFO_PATH
from ._identifiers import BATCH_ID_VARIABLE, Identifiers, request_problems
from ._journal import Journal, file_digest, fingerprint, ids_digest, previous_successes
from ._models import BatchError, BatchRequest, BatchResult, Progress, RunReport
from ._preflight import check_concurrency, check_paths, journal_path, remove_stale_temporaries
from ._reader import XmlBatchReader
from ._writer import XmlResultWriter

__all__ = [
    "BATCH_ID_VARIABLE",
    "DEFAULT_CONCURRENCY",
    "StopKind",
    "create_batches",
    "process_file",
    "stop_kind",
    "stop_reason",
]

DEFAULT_CONCURRENCY = 4
_RESOLVE_EVERY = 500  # created batches whose ids are looked up together
_MAX_RESENDS = 2  # times a POST with an unknown outcome is sent again (after a lookup)
_LOOKUP_ATTEMPTS = 3  # times the ids of created batches are looked up before giving up

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
class _Slot:
    """A batch of the run, from dispatch until its result is collected."""

    index: int
    request: BatchRequest
    identifier: str | None
    print_: str
    outcome: Future[BatchResult] | BatchResult


class _Run:
    """One call of create_batches: its settings and what it has learned so far."""

    def __init__(
        self,
        client: ConnectWiseClient,
        *,
        concurrency: int,
        dry_run: bool,
        variables: Mapping[str, Any] | None,
        on_result: Callable[[BatchResult], object] | None,
        progress: Callable[[Progress], object] | None,
        keep_results: bool,
        journal: Journal | None,
    ) -> None:
        self.client = client
        self.concurrency = concurrency
        self.dry_run = dry_run
        self.journal = journal
        self.identifiers = Identifiers(
            variables,
            journal.stamp if journal else None,
            (entry.identifier for entry in journal.entries.values()) if journal else (),
        )
        self.on_result = on_result
        self.progress = progress
        self.results: list[BatchResult] | None = [] if keep_results else None
        self.counts: collections.Counter[str] = collections.Counter()
        self.collected: collections.Counter[str] = collections.Counter()  # for progress
        self.stop_reason: str | None = None
        self.stop_error: ApiError | None = None
        self.stop = threading.Event()
        self.baseline = 0  # the highest batch id before the run
        self.floor = 0  # ids above this have not been looked up yet
        self.held: list[BatchResult] = []  # results held back until created ids are known
        self.done = 0
        self.total: int | None = None
        # Batches an earlier, finished run created, by `ids_digest` (from its success file).
        self.carried = journal.carried if journal else {}

    def report(self, batches: Iterable[BatchRequest]) -> RunReport:
        """Run over ``batches`` and say what became of them."""
        started = time.monotonic()
        sent_before = self.client.requests_sent
        self.execute(batches)
        return RunReport(
            tuple(self.results or ()),
            {status: self.counts[status] for status in ("created", "failed", "planned")},
            time.monotonic() - started,
            self.client.requests_sent - sent_before,
            self.stop_reason,
            self.dry_run,
            self.stop_error,
        )

    # -- the main loop (calling thread) ----------------------------------------------------

    def execute(self, batches: Iterable[BatchRequest]) -> None:
        iterator = iter(batches)  # a reader checks its whole file here
        hint = operator.length_hint(iterator, -1)
        self.total = hint if hint >= 0 else None
        self._start()
        window: collections.deque[_Slot] = collections.deque()
        limit = self.concurrency * 4  # batches in flight or finished but not yet collected
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="cw-glbatch")
        try:
            for index, request in enumerate(iterator):
                window.append(self._dispatch(pool, index, request))
                while len(window) > limit or (window and _ready(window[0])):
                    self._collect(window.popleft())
            while window:
                self._collect(window.popleft())
        except BaseException:
            # Interrupted (Ctrl-C, or on_result failed): send nothing more, wait for what is
            # on the wire.
            self.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            if self.journal is not None:
                self.journal.sync()
            close = getattr(iterator, "close", None)
            if close is not None:  # release the input (a reader's spool) even when stopped early
                close()
        pool.shutdown(wait=True)
        self._resolve()

    def _start(self) -> None:
        try:
            highest = self.client.highest_batch_id()  # also checks the credentials
        except ApiError as err:
            self._halt(err)
            return
        if self.journal is not None:  # (there is none in a dry run)
            highest = self.journal.begin(highest, self.identifiers.stamp)
        self.baseline = self.floor = highest

    def _halt(self, error: ApiError) -> None:
        if self.stop_reason is None:
            self.stop_reason, self.stop_error = stop_reason(error), error
            # INFO: the report carries the reason; a caller (the CLI) says it once, at the end.
            logger.info("not sending any more batches: %s", self.stop_reason)
        self.stop.set()

    def _dispatch(self, pool: ThreadPoolExecutor, index: int, request: BatchRequest) -> _Slot:
        journal = self.journal
        entry = carried = None
        print_ = ""
        if journal is not None:
            print_ = fingerprint(request)
            entry = journal.entries.get(index)
            if entry is not None and entry.fingerprint != print_:
                raise JournalError(
                    f"{journal.path}: batch {index + 1} of this input differs from the one the "
                    "unfinished run recorded. Run the same input again to finish that run, or "
                    "delete the journal if you are sure."
                )
        if entry is None and self.carried and not request.errors:
            carried = self.carried.get(ids_digest(request.gl_rec_ids))
        known = entry.identifier if entry else carried[0] if carried else None
        identifier, problem = self.identifiers.assign(request, known)

        def slot(outcome: Future[BatchResult] | BatchResult) -> _Slot:
            return _Slot(index, request, identifier, print_, outcome)

        if entry is not None and entry.status == "created":  # by the run this one resumes
            return slot(BatchResult(request, identifier, "created", entry.batch_id))
        if carried is not None:  # created by an earlier, finished run
            return slot(BatchResult(request, identifier, "created", carried[1]))
        problems = [*request.errors, *request_problems(request)] + ([problem] if problem else [])
        if problems or identifier is None:
            error = BatchError("; ".join(problems), code="InvalidInput")
            return slot(BatchResult(request, identifier, "failed", error=error))
        if self.stop.is_set():
            return slot(self._not_sent(request, identifier))
        if self.dry_run:
            return slot(BatchResult(request, identifier, "planned"))
        if entry is not None:  # sent before without a known creation: look it up first
            return slot(pool.submit(self._settle, request, identifier, None))
        if self.journal is not None:
            self.journal.sending(index, print_, identifier)
            self.journal.sync()  # durable before the POST leaves
        return slot(pool.submit(self._send, request, identifier))

    def _not_sent(self, request: BatchRequest, identifier: str | None) -> BatchResult:
        error = BatchError(f"not sent: {self.stop_reason}", code="NotSent")
        return BatchResult(request, identifier, "failed", error=error)

    def _collect(self, slot: _Slot) -> None:
        outcome = slot.outcome
        result = outcome.result() if isinstance(outcome, Future) else outcome
        if self.journal is not None and isinstance(outcome, Future):
            self.journal.result(slot.index, slot.print_, result)
        self.done += 1
        if self.progress is not None:
            if result.status != "failed" or not _unsettled(result):  # not still being looked up
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
        if self.held or _unsettled(result):  # keep input order behind a result still unsettled
            self.held.append(result)
            if len(self.held) >= _RESOLVE_EVERY:
                self._resolve()
        else:
            self._emit(result)

    def _emit(self, result: BatchResult) -> None:
        self.counts[result.status] += 1
        if self.results is not None:
            self.results.append(result)
        if self.on_result is not None:
            self.on_result(result)

    # -- learning the ids of created batches -----------------------------------------------

    def _resolve(self) -> None:
        """Look up the ids of the created batches waiting, then emit everything waiting."""
        waiting = {r.identifier or "" for r in self.held if _unsettled(r)}
        ids = self._lookup(waiting) if waiting else {}
        for held in self.held:
            result = held
            batch_id = ids.get(held.identifier or "") if _unsettled(held) else None
            if batch_id is not None:  # created, maybe despite an answer nobody saw
                result = BatchResult(held.request, held.identifier, "created", batch_id)
            elif held.status == "created" and held.batch_id is None:
                logger.warning("created batch %r; could not learn its id", held.identifier)
            self._emit(result)
        self.held = []

    def _lookup(self, identifiers: set[str]) -> dict[str, int]:
        """Ids of the batches created in this run with these identifiers."""
        seen: dict[str, list[int]] = collections.defaultdict(list)
        for attempt in range(1, _LOOKUP_ATTEMPTS + 1):
            try:
                top = self.floor
                for batch in self.client.list_batches(f"id > {self.floor}", order_by="id asc"):
                    top = max(top, batch.id)
                    if batch.batch_identifier in identifiers:
                        seen[batch.batch_identifier].append(batch.id)
                self.floor = top
                missing = identifiers - seen.keys()
                if missing:  # made visible out of id order: ask for them by name
                    for batch in self.client.find_batches(missing, min_id=self.baseline):
                        if batch.batch_identifier in missing:
                            seen[batch.batch_identifier].append(batch.id)
                break
            except ApiError as err:  # each request was already retried; try the whole again
                logger.warning(
                    "looking up the ids of created batches failed (attempt %d of %d): %s",
                    attempt,
                    _LOOKUP_ATTEMPTS,
                    err,
                )
        found = {}
        for identifier, ids in seen.items():
            if len(set(ids)) == 1:
                found[identifier] = ids[0]
            else:
                logger.warning("several batches are named %r: %s", identifier, sorted(set(ids)))
        return found

    # -- one batch (worker threads) --------------------------------------------------------

    def _send(self, request: BatchRequest, identifier: str) -> BatchResult:
        if self.stop.is_set():
            return self._not_sent(request, identifier)
        try:
            self.client.create_batch(identifier, request.gl_rec_ids)
        except OutcomeUnknownError as err:
            return self._settle(request, identifier, err)
        except (AuthenticationError, PermissionDeniedError) as err:
            self._halt(err)
            return _failed(request, identifier, err)
        except ApiError as err:
            return _failed(request, identifier, err)
        return BatchResult(request, identifier, "created")

    def _settle(
        self, request: BatchRequest, identifier: str, first: ApiError | None
    ) -> BatchResult:
        """A POST's outcome is unknown: find out whether it created the batch before resending.

        ``first`` is None for a batch that the run being resumed sent without recording its
        answer.
        """
        error: ApiError = first or OutcomeUnknownError(
            "the run that sent it stopped before its answer was recorded",
            method="POST",
            path="/finance/accounting/batches",
        )
        for attempt in range(_MAX_RESENDS + 1):
            try:
                found = self.client.find_batches([identifier], min_id=self.baseline)
            except ApiError as err:
                return _unknown(
                    request,
                    identifier,
                    error,
                    f"looking it up failed too ({err.message}). The batch may exist: look for "
                    f"batch {identifier!r} in ConnectWise before sending it again",
                )
            mine = sorted(b.id for b in found if b.batch_identifier == identifier)
            if mine:
                logger.info(
                    "batch %r was created despite the lost answer (id %d)", identifier, mine[0]
                )
                return BatchResult(request, identifier, "created", mine[0])
            if attempt == _MAX_RESENDS:
                break
            logger.info("batch %r was not created; sending it again", identifier)
            try:
                self.client.create_batch(identifier, request.gl_rec_ids)
            except OutcomeUnknownError as err:
                error = err
                continue
            except ValidationError as err:
                # Perhaps the first POST was still being processed when we looked.
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
            error,
            f"no batch {identifier!r} was found afterwards, and it was sent "
            f"{_MAX_RESENDS + 1} times without an answer",
        )


def _failed(request: BatchRequest, identifier: str, error: ApiError) -> BatchResult:
    return BatchResult(request, identifier, "failed", error=BatchError.from_api_error(error))


def _unknown(request: BatchRequest, identifier: str, error: ApiError, why: str) -> BatchResult:
    """Failed because nobody can tell whether it was created."""
    message = f"{error.message}; {why}"
    return BatchResult(
        request, identifier, "failed", error=BatchError(message, error.status, "OutcomeUnknown")
    )


def _unsettled(result: BatchResult) -> bool:
    """Created with its id unknown, or failed because nobody could tell whether it was created."""
    if result.status == "created":
        return result.batch_id is None
    return result.error is not None and result.error.code == "OutcomeUnknown"


def _ready(slot: _Slot) -> bool:
    return not isinstance(slot.outcome, Future) or slot.outcome.done()


def create_batches(
    client: ConnectWiseClient,
    batches: Iterable[BatchRequest],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    dry_run: bool = False,
    variables: Mapping[str, Any] | None = None,
    on_result: Callable[[BatchResult], object] | None = None,
    progress: Callable[[Progress], object] | None = None,
    keep_results: bool = True,
    journal: str | os.PathLike[str] | Journal | None = None,
) -> RunReport:
    """Create a GL batch in ConnectWise for each request, each exactly once.

    Args:
        client: The ConnectWise client to send with (shared by the worker threads).
        batches: The requests: an `XmlBatchReader` (which checks its whole file first) or any
            iterable of `BatchRequest`. It is read as the run goes, not all at once.
        concurrency: How many batches are sent at the same time.
        dry_run: Check everything and report each valid batch as ``"planned"``; nothing is
            created (the only request is a read of the highest batch id, which checks the
            credentials).
        variables: Workflow variables; ``variables["CONNECTWISE.BATCHID"]`` names the batches
            that have no ``batchIdentifier`` of their own.
        on_result: Called with each `BatchResult`, once per batch, in input order, from the
            calling thread (so `XmlResultWriter.write` needs no lock).
        progress: Called with a `Progress` (done, total, created, failed, planned) after each
            batch; ``total`` is ``None`` when the input's length is not known.
        keep_results: Keep every result in the report. Pass False for very large inputs that
            ``on_result`` already records, to keep memory flat.
        journal: A file to record the run in as it goes (fsynced per batch). If it exists, the
            run resumes the one it records: batches created then are reported created without
            being sent, and batches sent without a recorded answer are looked up first. Delete
            it once the results are stored (`process_file` does). Ignored in a dry run.

    Returns:
        The `RunReport`. Authentication refused (401/403) or ConnectWise unreachable does not
        raise: sending stops, the batches not sent are failed with the reason, and the report's
        ``stopped`` says it.

    Raises:
        InputError: The input file is not usable; raised before any request is sent.
        JournalError: The journal belongs to another input or is damaged.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be 1 or more, not {concurrency}")
    if dry_run or journal is None:
        run_journal = None
    else:
        run_journal = journal if isinstance(journal, Journal) else Journal(journal)
    run = _Run(
        client,
        concurrency=concurrency,
        dry_run=dry_run,
        variables=variables,
        on_result=on_result,
        progress=progress,
        keep_results=keep_results,
        journal=run_journal,
    )
    try:
        return run.report(batches)
    finally:
        if run_journal is not None and run_journal is not journal:
            run_journal.close()  # opened here; a caller's journal stays open (and locked)


def process_file(
    client: ConnectWiseClient,
    input_file: str | os.PathLike[str],
    success_file: str | os.PathLike[str],
    fail_file: str | os.PathLike[str],
    **options: Any,
) -> RunReport:
    """The whole task: read ``input_file``, create its batches, write the two result files.

    The input is checked whole first: an `InputError` is raised before any request and leaves
    existing success and fail files untouched. Then every batch ends in exactly one of the two
    files, which are replaced atomically at the end. A dry run writes no files.

    The run is journaled in ``{success_file}.journal`` as it goes. If the process is killed,
    running the same call again resumes it: nothing created is sent again, what was in flight is
    looked up, and the rest is sent. A clean finish removes the journal.

    Batches that the existing ``success_file`` already records (same GL entry ids) were created
    by an earlier run: they are carried over into the new success file, with their identifier and
    batch id, and not sent again. Running the same command twice therefore changes nothing.

    Args:
        client: The ConnectWise client.
        input_file: The XML file of batches.
        success_file: Where the created batches are written.
        fail_file: Where the batches not created are written (valid input for a retry).
        **options: Passed to `create_batches` (``concurrency``, ``dry_run``, ``variables``,
            ``progress``, ``keep_results``, default False here).

    Before anything is sent or any file is created, the paths and options are checked: the
    success file, the fail file and the journal must be different files, neither output the
    input (the fail file may be: retrying a fail file in place), each absent or a regular file
    in a folder that can be written. Temporary files left beside the outputs by a killed run
    are removed. The journal is locked for the whole run, so a second run on the same files
    stops at once.

    Raises:
        ConfigurationError: A path or an option cannot be used; nothing was sent.
        InputError: The input file is not usable; nothing was sent.
        JournalError: The journal is in use by another run, damaged, or records an unfinished
            run of another input; nothing was sent.
        ResultsNotWrittenError: Batches were sent but the result files could not be written;
            the journal stays, and the same call finishes the job.
    """
    check_concurrency(options.get("concurrency", DEFAULT_CONCURRENCY))
    check_paths(input_file, success_file, fail_file)
    options.setdefault("keep_results", False)
    batches: Iterator[BatchRequest] = iter(XmlBatchReader(input_file))
    if options.get("dry_run"):  # no journal, no files; batches carried over count as created
        return _dry_run(client, batches, previous_successes(success_file), options)
    try:
        journal = Journal(journal_path(success_file), source=file_digest(input_file))
    except BaseException:
        _release(batches)
        raise
    try:
        finished = finished_report(journal, success_file, fail_file)
        if finished is not None:
            _release(batches)
            journal.remove()
            return finished
        remove_stale_temporaries(success_file, fail_file)
        journal.carried = previous_successes(success_file)
        report = _run_to_files(
            client, batches, journal=journal, files=(success_file, fail_file), options=options
        )
    except BaseException as err:
        _release(batches)
        if journal.sent_any:  # something may have been sent: keep the record of it
            with contextlib.suppress(OSError):  # (the disk may be full: what is in it holds)
                journal.close()
            if isinstance(err, OSError):
                raise not_written(err, journal.path) from err
        else:
            journal.remove()  # nothing was sent: leave nothing behind
        raise
    journal.remove()  # the files are in place: nothing left to resume
    return report


def _run_to_files(
    client: ConnectWiseClient,
    batches: Iterator[BatchRequest],
    *,
    journal: Journal,
    files: tuple[str | os.PathLike[str], str | os.PathLike[str]],
    options: dict[str, Any],
) -> RunReport:
    """Run, write both files, and record that they are written before putting them in place."""
    success_file, fail_file = files
    with XmlResultWriter(success_file=success_file, fail_file=fail_file) as writer:
        report = create_batches(client, batches, on_result=writer.write, journal=journal, **options)
        put_in_place(writer, journal, report)
    return report


def _release(batches: Iterator[BatchRequest]) -> None:
    """Let go of what the reader holds (its spool) when the run will not read on."""
    close = getattr(batches, "close", None)
    if close is not None:
        close()


def _dry_run(
    client: ConnectWiseClient,
    batches: Iterator[BatchRequest],
    carried: dict[bytes, tuple[str, int]],
    options: dict[str, Any],
) -> RunReport:
    settings: dict[str, Any] = {
        "concurrency": DEFAULT_CONCURRENCY,
        "variables": None,
        "on_result": None,
        "progress": None,
        **options,
        "dry_run": True,
    }
    run = _Run(client, journal=None, **settings)
    run.carried = carried
    return run.report(batches)
