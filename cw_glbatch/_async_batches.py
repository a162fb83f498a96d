"""acreate_batches and aprocess_file: the synchronous run, driven from asyncio.

A run's decisions (what to send, look up, resume, report) live in one place, the run that
`create_batches` carries out. The async pair does not repeat them: it runs that very run in a
worker thread, and gives it the async client through `_LoopClient`, which hands every call to
the caller's event loop and waits for it. So the requests are the async client's, made on the
caller's loop; the rules, the journal and the files are the sync run's, unchanged.

Cancelling the task sets the run's ``stop``: nothing more is sent, the requests on the wire are
awaited (for at most ``cancel_grace`` seconds) and journaled, nothing half-done is written, and
`asyncio.CancelledError` is raised again. The same call later resumes from the journal.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import threading
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
)
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ._batches import DEFAULT_CONCURRENCY, create_batches, process_file
from ._journal import Journal
from ._models import AccountingBatch, BatchRequest, BatchResult, Progress, RunReport
from ._preflight import check_concurrency
from ._protocols import AsyncBatchClient

__all__ = ["DEFAULT_CANCEL_GRACE", "acreate_batches", "aprocess_file"]

DEFAULT_CANCEL_GRACE = 60.0  # seconds a cancelled run waits for the requests on the wire

T = TypeVar("T")
A = TypeVar("A")

logger = logging.getLogger("cw_glbatch")


class _LoopClient:
    """A `BatchClient` for the run's threads: each call runs on the event loop, awaited there."""

    def __init__(self, client: AsyncBatchClient, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._loop = loop

    def _wait(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    @property
    def company_id(self) -> str:
        return self._client.company_id

    @property
    def origin(self) -> str:
        return self._client.origin

    @property
    def requests_sent(self) -> int:
        return self._client.requests_sent

    def batch_entry_ids(self, batch_id: int) -> Iterable[int]:
        return self._wait(self._client.batch_entry_ids(batch_id))

    def highest_batch_id(self) -> int:
        return self._wait(self._client.highest_batch_id())

    def create_batch(self, identifier: str, gl_rec_ids: Iterable[int], **options: Any) -> object:
        # options: a batch's own export flags and fields (BatchRequest.batch_options()).
        call = self._client.create_batch(identifier, tuple(gl_rec_ids), **options)
        return self._wait(call)

    def list_batches(
        self, conditions: str | None = None, *, order_by: str | None = None
    ) -> Iterator[AccountingBatch]:
        batches = self._client.list_batches(conditions, order_by=order_by)
        try:
            while True:
                try:
                    yield self._wait(_next(batches))
                except StopAsyncIteration:
                    return
        finally:
            aclose = getattr(batches, "aclose", None)
            if aclose is not None:
                self._wait(aclose())

    def find_batches(
        self, identifiers: Iterable[str], *, min_id: int | None = None
    ) -> Iterable[AccountingBatch]:
        return self._wait(self._client.find_batches(tuple(identifiers), min_id=min_id))

    def on_loop(self, callback: Callable[[A], object] | None) -> Callable[[A], None] | None:
        """``callback``, called on the event loop (and awaited when it returns an awaitable)."""
        if callback is None:
            return None

        def call(value: A) -> None:
            self._wait(_call(callback, value))

        return call


async def _next(batches: AsyncIterator[AccountingBatch]) -> AccountingBatch:
    return await batches.__anext__()


async def _call(callback: Callable[[A], object], value: A) -> None:
    returned = callback(value)
    if inspect.isawaitable(returned):
        await returned


async def _run_in_thread(
    run: Callable[[threading.Event], RunReport], cancel_grace: float
) -> RunReport:
    """``run(stop)`` in a worker thread; on cancellation, stop it and wait up to the grace."""
    stop = threading.Event()
    loop = asyncio.get_running_loop()
    worker = ThreadPoolExecutor(1, thread_name_prefix="cw-glbatch-run")
    finished: Awaitable[RunReport] = loop.run_in_executor(worker, run, stop)
    try:
        return await asyncio.shield(finished)
    except asyncio.CancelledError:
        stop.set()  # nothing more is sent; the run waits for what is on the wire
        try:
            await asyncio.wait_for(asyncio.shield(finished), cancel_grace)
        except asyncio.TimeoutError:
            logger.warning(
                "cancelled run still waiting for answers after %g s; the journal will tell "
                "the next run what to look up",
                cancel_grace,
            )
        except Exception as err:  # (the cancellation is what the caller sees; say why too)
            logger.warning("the cancelled run ended with an error: %s", err)
        raise
    finally:
        worker.shutdown(wait=False)


async def acreate_batches(
    client: AsyncBatchClient,
    batches: Iterable[BatchRequest],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    dry_run: bool = False,
    variables: Mapping[str, Any] | None = None,
    on_result: Callable[[BatchResult], object] | None = None,
    progress: Callable[[Progress], object] | None = None,
    keep_results: bool = True,
    journal: str | os.PathLike[str] | Journal | None = None,
    cancel_grace: float = DEFAULT_CANCEL_GRACE,
) -> RunReport:
    """`create_batches` for asyncio: the same options, results and guarantees.

    Requests go through ``client`` (an `AsyncConnectWiseClient`, or any `AsyncBatchClient`) on
    the running event loop, at most ``concurrency`` at a time; ``on_result`` and ``progress``
    are called on the loop, in input order, and awaited when they return an awaitable.
    ``batches`` is read in a worker thread (an `XmlBatchReader` does file I/O).

    Cancelling the task stops sending at once, waits up to ``cancel_grace`` seconds for the
    requests on the wire, records them in ``journal``, calls ``on_result`` no more, and raises
    `asyncio.CancelledError`. With a journal, the same call again finishes the run, each batch
    created once.

    Raises:
        InputError: The input file is not usable; raised before any request is sent.
        JournalError: The journal belongs to another input or is damaged.
    """
    bridge = _LoopClient(client, asyncio.get_running_loop())

    def run(stop: threading.Event) -> RunReport:
        return create_batches(
            bridge,
            batches,
            concurrency=concurrency,
            dry_run=dry_run,
            variables=variables,
            on_result=bridge.on_loop(on_result),
            progress=bridge.on_loop(progress),
            keep_results=keep_results,
            journal=journal,
            stop=stop,
        )

    return await _run_in_thread(run, cancel_grace)


async def aprocess_file(
    client: AsyncBatchClient,
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
    cancel_grace: float = DEFAULT_CANCEL_GRACE,
) -> RunReport:
    """`process_file` for asyncio: the same options, files, journal and guarantees.

    The files are read and written in a worker thread, the requests made on the running loop
    (see `acreate_batches`). Cancelling the task stops sending, waits up to ``cancel_grace``
    seconds for the requests on the wire, journals them, writes neither file, and raises
    `asyncio.CancelledError`; the same call again finishes the run, each batch created once.

    Raises:
        As `process_file`: ConfigurationError, InputError, JournalError,
        ConnectWiseMismatchError, ResultsNotWrittenError.
    """
    check_concurrency(concurrency)  # (before the worker thread, as the sync twin)
    bridge = _LoopClient(client, asyncio.get_running_loop())

    def run(stop: threading.Event) -> RunReport:
        return process_file(
            bridge,
            input_file,
            success_file,
            fail_file,
            concurrency=concurrency,
            dry_run=dry_run,
            variables=variables,
            on_result=bridge.on_loop(on_result),
            progress=bridge.on_loop(progress),
            keep_results=keep_results,
            stop=stop,
        )

    return await _run_in_thread(run, cancel_grace)
