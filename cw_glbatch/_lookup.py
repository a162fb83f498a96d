"""Which batch in ConnectWise is a request's: found by identifier, proven by its GL entries.

A run reads the highest batch id once at the start (the baseline). Every batch created during
the run has a greater id, which lets the run learn the ids of the batches it created by listing
``id > floor`` (a page holds 1,000; the run asks every 500 created batches, the floor rising
as it goes), and find a batch whose
POST got no answer among those created since the run began.

Identifiers are labels, not keys: another run may use the same one. A batch found by a lookup
belongs to a request only when it holds every GL entry of the request (``GET
/batches/{id}/entries``, whose ``id``s are taken to be GL entry ids: an assumption, see
docs/reliability.md). The one exception: a batch the run knows it created (ConnectWise answered
2xx) and that is the only one of its name since the floor is taken without that check.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable

from ._exceptions import ApiError
from ._models import BatchRequest, BatchResult
from ._protocols import BatchClient

__all__ = ["BatchFinder"]

_LOOKUP_ATTEMPTS = 3  # times the ids of created batches are looked up before giving up

logger = logging.getLogger("cw_glbatch")


class BatchFinder:
    """Finds the batches of a run's requests in ConnectWise.

    Attributes:
        baseline: The highest batch id before the run (or the run it resumes) began.
        floor: Batches up to this id have been looked through for the run's batches.
    """

    def __init__(self, client: BatchClient) -> None:
        self.client = client
        self.baseline = 0
        self.floor = 0

    def with_proven_id(self, candidates: list[int], held: BatchResult) -> BatchResult:
        """``held`` with its batch id, when one of the candidates is provably its batch."""
        request = held.request
        if held.status == "created" and len(set(candidates)) == 1:
            return BatchResult(request, held.identifier, "created", candidates[0])
        if candidates:  # several batches of that name, or an unknown outcome: check entries
            try:
                batch_id = self.holding(request, sorted(set(candidates)))
            except ApiError as err:
                logger.warning("could not check the entries of batch %r: %s", held.identifier, err)
                batch_id = None
            if batch_id is not None:
                return BatchResult(request, held.identifier, "created", batch_id)
        return held

    def created_since_floor(self, identifiers: set[str]) -> dict[str, list[int]]:
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
        return seen

    def holding(self, request: BatchRequest, batch_ids: Iterable[int]) -> int | None:
        """The one of ``batch_ids`` that holds every GL entry of ``request``, if any."""
        wanted = set(request.gl_rec_ids)
        for batch_id in batch_ids:
            if wanted <= set(self.client.batch_entry_ids(batch_id)):
                return batch_id
        return None

    def find_own(self, request: BatchRequest, identifier: str, min_id: int | None) -> int | None:
        """The id of the batch named ``identifier`` that holds the request's entries, if any."""
        found = self.client.find_batches([identifier], min_id=min_id)
        return self.holding(
            request, sorted(b.id for b in found if b.batch_identifier == identifier)
        )
