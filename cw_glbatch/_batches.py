"""create_batches and process_file: the whole task, exactly once per batch.

What each batch needs is decided by `_plan.plan` and carried out by `_run.Run`; this module
wires a run to its journal, the earlier files and the writer.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ._exceptions import ConfigurationError, ConnectWiseMismatchError
from ._finish import finished_report, not_written, put_in_place
from ._identifiers import BATCH_ID_VARIABLE
from ._journal import Journal, file_digest, ids_digest, same_connectwise
from ._models import STATUSES, BatchRequest, BatchResult, Progress, RunReport
from ._plan import Known
from ._preflight import check_concurrency, check_paths, journal_path, remove_stale_temporaries
from ._protocols import BatchClient
from ._reader import XmlBatchReader
from ._recorded import FirstRecord, RecordedBatches, read_recorded
from ._run import Run, release_input
from ._stops import STOPPED_BY_CALLER, StopKind, stop_kind, stop_reason
from ._writer import XmlResultWriter

__all__ = [
    "BATCH_ID_VARIABLE",
    "DEFAULT_CONCURRENCY",
    "STOPPED_BY_CALLER",
    "StopKind",
    "create_batches",
    "process_file",
    "stop_kind",
    "stop_reason",
]

DEFAULT_CONCURRENCY = 4


def create_batches(
    client: BatchClient,
    batches: Iterable[BatchRequest],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    dry_run: bool = False,
    variables: Mapping[str, Any] | None = None,
    on_result: Callable[[BatchResult], object] | None = None,
    progress: Callable[[Progress], object] | None = None,
    keep_results: bool = True,
    journal: str | os.PathLike[str] | Journal | None = None,
    stop: threading.Event | None = None,
) -> RunReport:
    """Create a GL batch in ConnectWise for each request, each exactly once.

    Args:
        client: The ConnectWise client to send with (shared by the worker threads): a
            `ConnectWiseClient`, or anything with the members `BatchClient` names.
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
        journal: A file to record the run in as it goes (each batch durable before its POST
            leaves; one fsync per group of batches sent together). If it exists, the
            run resumes the one it records: batches created then are reported created without
            being sent, definite answers stand, and batches sent without a recorded answer are
            looked up first. Delete it once the results are stored and ``unsettled`` is 0
            (`process_file` does). Ignored in a dry run. A `Journal` given open stays open (and
            locked) after the run; one given as a path is opened and closed here.
        stop: Set it (from any thread) to end the run early: no batch is sent after that, the
            requests already on the wire are waited for and journaled, and results not yet
            given to ``on_result`` are not given. The report's ``stopped`` says so; with a
            journal, the same call again finishes the run, each batch created once.

    Returns:
        The `RunReport`. Authentication refused (401/403) or ConnectWise unreachable does not
        raise: sending stops, the batches not sent are failed with the reason, and the report's
        ``stopped`` says it. A batch the journal records as sent is never reported not sent: it
        fails ``OutcomeUnknown`` and counts in ``unsettled`` until a later run settles it.

    Raises:
        ConfigurationError: ``concurrency`` is not a whole number of at least 1; nothing was sent.
        InputError: The input file is not usable; raised before any request is sent.
        JournalError: The journal belongs to another input, is damaged or in use.
        ConnectWiseMismatchError: The journal records a run against another ConnectWise.
    """
    check_concurrency(concurrency)
    if dry_run or journal is None:
        run_journal = None
    elif isinstance(journal, Journal):
        run_journal = journal
    else:
        run_journal = Journal(journal, connectwise=_connectwise(client))
    try:
        return _execute(
            client,
            batches,
            concurrency=concurrency,
            dry_run=dry_run,
            variables=variables,
            on_result=on_result,
            progress=progress,
            keep_results=keep_results,
            journal=run_journal,
            earlier={},
            caller_stop=stop,
        )
    finally:
        if run_journal is not None and run_journal is not journal:
            run_journal.close()  # opened here; a caller's journal stays open (and locked)


def _execute(
    client: BatchClient,
    batches: Iterable[BatchRequest],
    *,
    journal: Journal | None,
    earlier: Mapping[bytes, Known],
    **options: Any,
) -> RunReport:
    started = time.monotonic()
    sent_before = client.requests_sent
    run = Run(client, journal=journal, earlier=earlier, **options)
    run.execute(batches)
    if journal is not None:
        journal.sync()  # (whoever opened it closes it)
    return RunReport(
        tuple(run.results or ()),
        {status: run.counts[status] for status in STATUSES},
        time.monotonic() - started,
        client.requests_sent - sent_before,
        run.stop_reason,
        run.dry_run,
        stop_error=run.stop_error,
        unsettled=run.unsettled,
    )


def _connectwise(client: BatchClient) -> tuple[str, str]:
    """The ConnectWise a client talks to, as journals and result files record it."""
    return client.origin, client.company_id


def process_file(
    client: BatchClient,
    input_file: str | os.PathLike[str],
    success_file: str | os.PathLike[str],
    fail_file: str | os.PathLike[str],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    dry_run: bool = False,
    variables: Mapping[str, Any] | None = None,
    on_result: Callable[[BatchResult], object] | None = None,
    progress: Callable[[Progress], object] | None = None,
    keep_results: bool = False,
    stop: threading.Event | None = None,
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
    batch id, and not sent again (a batch recorded without its id is looked up). Running the
    same command twice therefore changes nothing. Both files record the ConnectWise site and
    company; a success file of another ConnectWise is refused. Batches the input marks
    ``OutcomeUnknown`` (a fail file fed back) are looked up before anything is sent.

    While some batch is unsettled (``report.unsettled``), the journal is kept, and running the
    same call again settles it.

    Before anything is sent or any file is created, the paths and options are checked: the
    success file, the fail file and the journal must be different files, neither output the
    input (the fail file may be: retrying a fail file in place), each absent or a regular file
    in a folder that can be written. Temporary files left beside the outputs by a killed run
    are removed. The journal is locked for the whole run, so a second run on the same files
    stops at once.

    Args:
        client: The ConnectWise client (or any `BatchClient`).
        input_file: The XML file of batches.
        success_file: Where the created batches are written.
        fail_file: Where the batches not created are written (valid input for a retry).
        concurrency: How many batches are sent at the same time.
        dry_run: Check everything, send nothing but the first read; write no files.
        variables: Workflow variables (see `create_batches`).
        on_result: Called with each `BatchResult`, in input order, after it was written.
        progress: Called with a `Progress` after each batch (see `create_batches`).
        keep_results: Keep every result in the report too (they are in the files).
        stop: Set it to end the run early (see `create_batches`): then neither file is
            written, the journal stays, and the same call again finishes the run.

    Raises:
        ConfigurationError: A path or an option cannot be used; nothing was sent.
        InputError: The input file is not usable; nothing was sent.
        JournalError: The journal is in use by another run, damaged, or records an unfinished
            run of another input; nothing was sent.
        ConnectWiseMismatchError: The journal or the success file records another ConnectWise.
        ResultsNotWrittenError: Batches were sent but the result files could not be written;
            the journal stays, and the same call finishes the job.
    """
    check_concurrency(concurrency)  # (before the journal is created)
    check_paths(input_file, success_file, fail_file)
    options: dict[str, Any] = {
        "concurrency": concurrency,
        "variables": variables,
        "progress": progress,
        "keep_results": keep_results,
        "caller_stop": stop,
    }
    batches: Iterator[BatchRequest] = iter(XmlBatchReader(input_file))
    try:
        return _process_read(
            client,
            batches,
            input_file,
            success_file,
            fail_file,
            dry_run=dry_run,
            on_result=on_result,
            options=options,
        )
    finally:
        release_input(batches)  # (a run that read it to the end has let it go already)


def _process_read(
    client: BatchClient,
    batches: Iterator[BatchRequest],
    input_file: str | os.PathLike[str],
    success_file: str | os.PathLike[str],
    fail_file: str | os.PathLike[str],
    *,
    dry_run: bool,
    on_result: Callable[[BatchResult], object] | None,
    options: dict[str, Any],
) -> RunReport:
    """`process_file` once its input is read and checked (the caller lets go of it)."""
    connectwise = _connectwise(client)
    if dry_run:  # no journal, no files; batches an earlier file records count as created
        earlier = _earlier_outcomes(input_file, success_file, connectwise)
        return _execute(
            client, batches, journal=None, earlier=earlier, dry_run=True, on_result=on_result,
            **options,
        )  # fmt: skip
    journal = Journal(
        journal_path(success_file), source=file_digest(input_file), connectwise=connectwise
    )
    try:
        finished = finished_report(journal, success_file, fail_file)
        if finished is not None:
            journal.remove()
            return finished
        remove_stale_temporaries(success_file, fail_file)
        earlier = _earlier_outcomes(input_file, success_file, connectwise)
        with XmlResultWriter(
            success_file=success_file, fail_file=fail_file, connectwise=connectwise
        ) as writer:
            report = _execute(
                client,
                batches,
                journal=journal,
                earlier=earlier,
                on_result=_then(writer.write, on_result),
                dry_run=False,
                **options,
            )
            if report.stopped == STOPPED_BY_CALLER:
                writer.abort()  # the old files stay; the journal lets the same call finish
            else:
                put_in_place(writer, journal, report)
    except BaseException as err:
        if journal.sent_any:  # something may have been sent: keep the record of it
            with contextlib.suppress(OSError):  # (the disk may be full: what is in it holds)
                journal.close()
            if isinstance(err, OSError):
                raise not_written(err, journal.path) from err
        else:
            journal.remove()  # nothing was sent: leave nothing behind
        raise
    if report.unsettled or report.stopped == STOPPED_BY_CALLER:
        journal.close()  # kept: running the same call again settles or finishes the run
    else:
        journal.remove()  # the files are in place: nothing left to resume
    return report


def _then(
    first: Callable[[BatchResult], object], then: Callable[[BatchResult], object] | None
) -> Callable[[BatchResult], object]:
    """``first``, then ``then`` (if any), with each result."""
    if then is None:
        return first

    def both(result: BatchResult) -> None:
        first(result)
        then(result)

    return both


def _earlier_outcomes(
    input_file: str | os.PathLike[str],
    success_file: str | os.PathLike[str],
    connectwise: tuple[str, str],
) -> Mapping[bytes, Known]:
    """What the input (a fail file's ``OutcomeUnknown`` marks) and the success file record.

    Raises:
        ConnectWiseMismatchError: The success file was written against another ConnectWise.
        ConfigurationError: The success file records batches this input does not hold:
            replacing it would lose the record of them.
    """
    outcomes: list[RecordedBatches] = []
    marks = read_recorded(input_file, "fail")
    if marks is not None and (
        marks.connectwise is None or same_connectwise(marks.connectwise, connectwise)
    ):
        outcomes.append(marks.batches)
    created = read_recorded(success_file, "success")
    if created is None:
        return FirstRecord(*outcomes)
    if created.connectwise and not same_connectwise(created.connectwise, connectwise):
        site, company = created.connectwise
        raise ConnectWiseMismatchError(
            f"{os.fspath(success_file)} records batches created in ConnectWise {site} (company "
            f"{company}), not {connectwise[0]} (company {connectwise[1]}). Give another "
            "--success file (and --fail file) for this ConnectWise, or run against the one "
            "it names; nothing was sent."
        )
    _refuse_foreign_records(input_file, success_file, created.batches)
    return FirstRecord(created.batches, *outcomes)  # the success file's record wins


def _refuse_foreign_records(
    input_file: str | os.PathLike[str],
    success_file: str | os.PathLike[str],
    recorded: RecordedBatches,
) -> None:
    """Refuse a success file recording batches that are not in the input.

    The run replaces the success file with the batches of its input (those it carries over
    included), so any other batch recorded there would be recorded nowhere afterwards: the
    classic slip is retrying a fail file into the first run's success file.
    """
    if not recorded:
        return
    foreign = recorded.count_missing(
        ids_digest(request.gl_rec_ids) for request in XmlBatchReader(input_file)
    )
    if not foreign:
        return
    raise ConfigurationError(
        f"{os.fspath(success_file)} records {foreign} created batch(es) that are not in "
        f"{os.fspath(input_file)}; writing this run's results there would lose the record of "
        "them. Give another --success file (e.g. created-2.xml); nothing was sent."
    )
