"""One batch on the wire (worker threads): sent once, and never sent again blindly.

A POST whose outcome is unknown is followed by a lookup (`_lookup.BatchFinder`) before anything
is sent again; a batch created without its id learned is found, never sent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ._exceptions import (
    ApiError,
    AuthenticationError,
    OutcomeUnknownError,
    PermissionDeniedError,
    ValidationError,
)
from ._http import BATCHES_PATH
from ._lookup import BatchFinder
from ._models import NOT_SENT, OUTCOME_UNKNOWN, BatchError, BatchRequest, BatchResult
from ._protocols import BatchClient

__all__ = ["Sender", "failed", "needs_lookup", "not_sent", "unknown"]

_MAX_RESENDS = 2  # times a POST with an unknown outcome is sent again (after a lookup)

logger = logging.getLogger("cw_glbatch")


class Sender:
    """Sends batches of one run, from its worker threads.

    Args:
        client: What sends.
        finder: What looks batches up (its baseline is the run's).
        stop: Set by the run when it stops sending (then ids are not looked up either).
        caller_stop: Set by the caller to end the run early.
        halt: Called with an error that stops the run (credentials or permission refused).
        why_stopped: Why the run stopped sending, for a batch it did not send.
    """

    def __init__(
        self,
        client: BatchClient,
        finder: BatchFinder,
        *,
        stop: threading.Event,
        caller_stop: threading.Event,
        halt: Callable[[ApiError], object],
        why_stopped: Callable[[], str | None],
    ) -> None:
        self.client = client
        self.finder = finder
        self.stop = stop
        self.caller_stop = caller_stop
        self.halt = halt
        self.why_stopped = why_stopped

    def learn_id(self, request: BatchRequest, identifier: str) -> BatchResult:
        """A batch an earlier run created without learning its id: find it, never send it."""
        if self.stop.is_set():
            return BatchResult(request, identifier, "created")
        try:
            batch_id = self.finder.find_own(request, identifier, None)
        except ApiError as err:
            logger.warning("could not look up created batch %r: %s", identifier, err)
            batch_id = None
        return BatchResult(request, identifier, "created", batch_id)

    def create(self, request: BatchRequest, identifier: str) -> BatchResult:
        """Send one batch (its "sending" record is durable already)."""
        if self.stop.is_set() or self.caller_stop.is_set():
            return not_sent(request, identifier, self.why_stopped())
        try:
            self.client.create_batch(identifier, request.gl_rec_ids, **request.batch_options())
        except OutcomeUnknownError as err:
            return self.recover_unknown_outcome(request, identifier, self.finder.baseline, err)
        except (AuthenticationError, PermissionDeniedError) as err:
            self.halt(err)
            return failed(request, identifier, err)
        except ApiError as err:
            return failed(request, identifier, err)
        return BatchResult(request, identifier, "created")

    def recover_unknown_outcome(
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
                return unknown(
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
                return failed(request, identifier, err)
            return BatchResult(request, identifier, "created")
        if isinstance(error, ValidationError):
            return failed(request, identifier, error)
        return unknown(
            request,
            identifier,
            error.message,
            f"no batch {identifier!r} holding its GL entries was found afterwards, and it was "
            f"sent {_MAX_RESENDS + 1} times without an answer. Run the same command again to "
            "settle it",
            error.status,
        )


def not_sent(request: BatchRequest, identifier: str | None, why: str | None) -> BatchResult:
    """Failed because the run stopped before sending it."""
    error = BatchError(f"not sent: {why}", code=NOT_SENT)
    return BatchResult(request, identifier, "failed", error=error)


def failed(request: BatchRequest, identifier: str, error: ApiError) -> BatchResult:
    """Failed with ConnectWise's answer (or the error that kept it from answering)."""
    return BatchResult(request, identifier, "failed", error=BatchError.from_api_error(error))


def unknown(
    request: BatchRequest, identifier: str | None, what: str, why: str, status: int | None
) -> BatchResult:
    """Failed because nobody can tell whether it was created."""
    error = BatchError(f"{what}; {why}", status, OUTCOME_UNKNOWN)
    return BatchResult(request, identifier, "failed", error=error)


def needs_lookup(result: BatchResult) -> bool:
    """Created with its id unknown, or failed because nobody could tell whether it was created."""
    if result.status == "created":
        return result.batch_id is None
    return result.error is not None and result.error.code == OUTCOME_UNKNOWN
