"""Learning the ids of the batches a run created: in bulk, in a thread of its own, in order.

A created batch's answer does not carry its id; the run learns the ids of its batches together,
every `LEARN_IDS_EVERY` results, with one listing of the batches created since the last time
(`_lookup.BatchFinder.created_since_floor`). Results are given out in input order, so the results
behind one that waits for its id are held too. The lookup runs in a thread of its own while the
run goes on sending; the run's own thread journals what it learned and gives the results out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import attrs

from ._journal import Journal
from ._lookup import BatchFinder
from ._models import BatchResult
from ._sending import needs_lookup

__all__ = ["LEARN_IDS_EVERY", "IdLearner"]

logger = logging.getLogger("cw_glbatch")

LEARN_IDS_EVERY = 500  # created batches whose ids are looked up together


@attrs.frozen
class _Held:
    """A result held back, with what the journal knows its batch by."""

    index: int
    fingerprint: str
    result: BatchResult


@attrs.frozen
class _Learned:
    """What one lookup learned: each held result, as it was and as it is now."""

    results: list[tuple[_Held, BatchResult]]
    floor: int
    looked: bool  # whether ConnectWise was asked


class IdLearner:
    """Holds results until the ids they wait for are learned, then gives them out in order.

    Args:
        finder: What looks the batches up.
        journal: Where what is learned is recorded (None: nowhere).
        emit: Gives one result out (from the run's thread, in input order).
        can_ask: Whether ConnectWise can be asked now (False once the run stopped on an error).
    """

    def __init__(
        self,
        finder: BatchFinder,
        journal: Journal | None,
        emit: Callable[[BatchResult], object],
        can_ask: Callable[[], bool],
    ) -> None:
        self.finder = finder
        self.journal = journal
        self.emit = emit
        self.can_ask = can_ask
        self.held: list[_Held] = []
        self.learning: Future[_Learned] | None = None
        self._thread: ThreadPoolExecutor | None = None

    def add(self, index: int, fingerprint: str, result: BatchResult) -> None:
        """Give ``result`` out now, or hold it behind those waiting for their ids."""
        self._take_learned(wait=False)
        if not self.held and self.learning is None and not needs_lookup(result):
            self.emit(result)
            return
        self.held.append(_Held(index, fingerprint, result))
        if self.learning is None and len(self.held) >= LEARN_IDS_EVERY:
            held, self.held = self.held, []
            if self._thread is None:
                self._thread = ThreadPoolExecutor(1, thread_name_prefix="cw-glbatch-ids")
            self.learning = self._thread.submit(self._look_up, held)

    def finish(self) -> None:
        """The run is over: learn what is still held (here and now), give everything out."""
        self._take_learned(wait=True)
        held, self.held = self.held, []
        if held:
            self._record(self._look_up(held))
        self.close()

    def close(self) -> None:
        """Wait for a lookup under way; give out nothing more (the run was stopped)."""
        if self._thread is not None:
            self._thread.shutdown(wait=True)

    def _take_learned(self, *, wait: bool) -> None:
        learning = self.learning
        if learning is not None and (wait or learning.done()):
            self.learning = None
            self._record(learning.result())

    def _look_up(self, held: list[_Held]) -> _Learned:
        """Look the held batches up (in the lookup thread, or the run's at the end)."""
        waiting = {h.result.identifier or "" for h in held if needs_lookup(h.result)}
        if not self.can_ask():  # settle them next time
            waiting = set()
        candidates = self.finder.created_since_floor(waiting) if waiting else {}
        results = []
        unlearned: list[str] = []
        for item in held:
            result = item.result
            if needs_lookup(result):
                found = candidates.get(result.identifier or "", [])
                result = self.finder.with_proven_id(found, result)
                if result.status == "created" and result.batch_id is None:
                    unlearned.append(result.identifier or "")
            results.append((item, result))
        if unlearned and waiting:  # one line for the lot: a failing lookup fails them all
            logger.warning(
                "created %d batches whose ids could not be learned (%s); they count as "
                "unsettled until a later run learns them",
                len(unlearned),
                _some(unlearned),
            )
        return _Learned(results, self.finder.floor, bool(waiting))

    def _record(self, learned: _Learned) -> None:
        """Journal what was learned, then give the results out (the run's thread)."""
        journal = self.journal
        for item, result in learned.results:
            if result is not item.result and journal is not None:  # (learned its id)
                journal.result(item.index, item.fingerprint, result)
            self.emit(result)
        if journal is not None and learned.looked:
            journal.looked_through(learned.floor)
            journal.sync()


def _some(identifiers: list[str], shown: int = 3) -> str:
    """The first few identifiers, quoted: ``'A', 'B', 'C' and 5 more``."""
    text = ", ".join(repr(i) for i in identifiers[:shown])
    more = len(identifiers) - shown
    return f"{text} and {more} more" if more > 0 else text
