"""How `process_file` ends: its result files recorded, then put in place, and what a rerun sees.

Before the result files are renamed into place, the journal records their SHA-256 digests and
the run's counts. A run killed after the renames but before removing its journal is then
recognised by the same call (its files match the digests): it reports and sends nothing. This
also covers a retry in place, whose input (the old fail file) the renames replaced.
"""

from __future__ import annotations

import os

from ._exceptions import JournalError, ResultsNotWrittenError
from ._journal import Journal, file_digest
from ._models import RunReport
from ._writer import XmlResultWriter

__all__ = ["finished_report", "not_written", "put_in_place"]


def put_in_place(writer: XmlResultWriter, journal: Journal, report: RunReport) -> None:
    """Complete ``writer``'s files, record them in ``journal`` (fsynced), then rename them."""
    success_digest, fail_digest = writer._finish()
    try:
        journal.finish(
            {
                "success": success_digest,
                "fail": fail_digest,
                "created": report.counts["created"],
                "failed": report.counts["failed"],
                "stopped": report.stopped,
                "unsettled": report.unsettled,
            }
        )
    except BaseException:
        writer._discard()  # not recorded, so never put in place: the journal resumes instead
        raise
    writer._put_in_place()


def finished_report(
    journal: Journal, success_file: str | os.PathLike[str], fail_file: str | os.PathLike[str]
) -> RunReport | None:
    """The report of a run killed after putting its files in place, if this call repeats it.

    The call repeats it when its input is the one the journal records, or the fail file that
    run wrote (a retry in place). A call with another input finds the journal obsolete.

    A run that left batches unsettled is not over: the same input resumes it (the journal
    settles them). Another input, or a retry in place (whose input that run rewrote, so it
    cannot be resumed batch by batch), is refused: starting afresh would overwrite the success
    file that records batches created without a known id.
    """
    done = journal.finished
    if done is None:
        return None
    in_place = (file_digest(success_file), file_digest(fail_file)) == (
        done.get("success"),
        done.get("fail"),
    )
    if not in_place:
        if journal.source_differs:
            raise JournalError(
                f"{journal.path} records a finished run whose result files have changed since. "
                "Delete the journal if its batches are accounted for."
            )
        return None  # killed before its files were both in place: resume it
    unsettled = bool(done.get("unsettled"))
    if journal.source_differs:
        if unsettled:
            raise _unsettled_elsewhere(journal, done, success_file, fail_file)
        if journal.source != done.get("fail"):
            journal.forget()  # its run is complete, in its files; another job: start afresh
            return None
    elif unsettled:
        return None  # the same input again: resume it, and settle what is unsettled
    counts = {name: _count(done.get(name)) for name in ("created", "failed")}
    stopped = done.get("stopped")
    return RunReport(
        (), {**counts, "planned": 0}, 0.0, 0, stopped if isinstance(stopped, str) else None
    )


def _unsettled_elsewhere(
    journal: Journal,
    done: dict[str, object],
    success_file: str | os.PathLike[str],
    fail_file: str | os.PathLike[str],
) -> JournalError:
    success, fail = os.fspath(success_file), os.fspath(fail_file)
    if journal.source == done.get("fail"):  # a retry in place: its input is the fail file
        return JournalError(
            f"{journal.path} records a retry in place that left batches unsettled; its input "
            f"was rewritten, so it cannot be resumed, and nothing was sent. {fail} marks the "
            "batches whose outcome is unknown: retry it with another --success file (they are "
            f"looked up before anything is sent); {success} keeps the batches created without "
            "a known id."
        )
    return JournalError(
        f"{journal.path} records a run of a different input file that left batches unsettled. "
        "Run that input again to settle them (nothing was sent), or delete the journal if you "
        "are sure its batches are accounted for."
    )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def not_written(err: OSError, journal: str) -> ResultsNotWrittenError:
    """The error for result files that could not be written after batches were sent."""
    return ResultsNotWrittenError(
        f"batches were sent, but the result files could not be written ({err}). The journal "
        f"{journal} keeps what was created: fix the cause (disk space, permissions), then run "
        "the same command again to finish; nothing will be sent twice.",
        journal=journal,
    )
