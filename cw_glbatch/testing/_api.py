"""The simulated API itself: what each endpoint does to the state and answers. No I/O.

Where ConnectWise's behaviour is not documented, the simulator follows its conventions and the
choices are listed in ``docs/testing.md``.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime, timezone
from typing import Any

import attrs

from ._bodies import CREATE_BATCH, EXPORT, invalid, read_body
from ._conditions import (
    AllOf,
    Compare,
    ConditionError,
    Member,
    Node,
    check_fields,
    field_paths,
    matches,
    parse_conditions,
)
from ._ledger import Ledger, Record
from ._wire import Response, error_body

__all__ = ["ConditionError", "SimBatch", "State"]

_FLAG_OF_KIND = {
    "invoice": "exportInvoicesFlag",
    "expense": "exportExpensesFlag",
    "procurement": "exportProductsFlag",
}
_MUST_EXPORT = "Batch must export Invoices, Expenses or Products"


@attrs.frozen
class SimBatch:
    """A batch held by the simulator.

    Attributes:
        id: Its ConnectWise id.
        batch_identifier: Its label.
        gl_entry_ids: The GL entries it holds, as sent.
        closed: ``closedFlag``.
        export_invoices: ``exportInvoicesFlag``.
        export_expenses: ``exportExpensesFlag``.
        export_products: ``exportProductsFlag``.
        date_entered: When it was created (ISO 8601, UTC).
    """

    id: int
    batch_identifier: str
    gl_entry_ids: tuple[int, ...]
    closed: bool = False
    export_invoices: bool = True
    export_expenses: bool = True
    export_products: bool = True
    date_entered: str = ""

    def to_json(self) -> dict[str, Any]:
        """ConnectWise's ``AccountingBatch`` shape."""
        return {
            "id": self.id,
            "batchIdentifier": self.batch_identifier,
            "closedFlag": self.closed,
            "exportInvoicesFlag": self.export_invoices,
            "exportExpensesFlag": self.export_expenses,
            "exportProductsFlag": self.export_products,
            "_info": {"dateEntered": self.date_entered, "enteredBy": "simulator"},
        }


_BATCH_FIELDS = field_paths(
    {**SimBatch(0, "", ()).to_json(), "_info": {"dateEntered": "", "enteredBy": ""}}
)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class State:
    """Unposted records, their GL entries, and batches. The caller holds the lock."""

    def __init__(self, first_batch_id: int) -> None:
        self.ledger = Ledger()
        self.batch_of: dict[int, int] = {}  # batched GL entries: id -> batch id
        self.batches: dict[int, SimBatch] = {}
        self.ids: list[int] = []  # batch ids, ascending
        self.by_identifier: dict[str, list[int]] = {}
        self.next_id = first_batch_id

    @property
    def unposted(self) -> set[int]:
        """The GL entries in no batch."""
        return self.ledger.record_of.keys() - self.batch_of.keys()

    # -- batches ---------------------------------------------------------------------------

    def create(self, raw: bytes) -> Response:
        """``POST /finance/accounting/batches``: 201 with the ``GLExport`` of its entries."""
        body = read_body(raw, CREATE_BATCH)
        if isinstance(body, Response):
            return body
        identifier: str | None = body.get("batchIdentifier")
        if identifier is not None and not identifier.strip():
            return invalid(CREATE_BATCH, "batchIdentifier", "batchIdentifier cannot be blank")
        if identifier is not None and len(identifier) > 50:
            return invalid(
                CREATE_BATCH,
                "batchIdentifier",
                "batchIdentifier cannot be longer than 50 characters",
            )
        ids: list[int] = body["processedRecordIds"]
        if not ids:
            return invalid(CREATE_BATCH, "processedRecordIds", "processedRecordIds is required")
        if not all(i > 0 for i in ids):
            return invalid(
                CREATE_BATCH, "processedRecordIds", "processedRecordIds must hold record ids"
            )
        flags = {flag: body.get(flag, False) for flag in _FLAG_OF_KIND.values()}
        if not any(flags.values()):
            return invalid(CREATE_BATCH, "exportInvoicesFlag", _MUST_EXPORT)
        problem = self._check_entries(ids, flags)
        if problem:
            return problem
        batch = SimBatch(
            self.next_id,
            str(self.next_id) if identifier is None else identifier,
            tuple(ids),
            export_invoices=flags["exportInvoicesFlag"],
            export_expenses=flags["exportExpensesFlag"],
            export_products=flags["exportProductsFlag"],
            date_entered=_now(),
        )
        self.next_id += 1
        self.batches[batch.id] = batch
        self.ids.append(batch.id)
        self.by_identifier.setdefault(batch.batch_identifier, []).append(batch.id)
        for entry in ids:
            self.batch_of[entry] = batch.id
        return Response(201, self._gl_export(ids, batch.batch_identifier))

    def _check_entries(self, ids: list[int], flags: Mapping[str, bool]) -> Response | None:
        if len(set(ids)) != len(ids):
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            return invalid(CREATE_BATCH, "processedRecordIds", f"records repeated: {repeated}")
        unknown = [i for i in ids if i not in self.ledger.record_of]
        if unknown:
            return invalid(CREATE_BATCH, "processedRecordIds", f"GL entries not found: {unknown}")
        batched = [i for i in ids if i in self.batch_of]
        if batched:
            return invalid(
                CREATE_BATCH, "processedRecordIds", f"GL entries already in a batch: {batched}"
            )
        excluded = [i for i in ids if not flags[_FLAG_OF_KIND[self.ledger.kind_of(i)]]]
        if excluded:
            return invalid(
                CREATE_BATCH, "processedRecordIds", f"GL entries of a type not exported: {excluded}"
            )
        return None

    def _gl_export(self, entry_ids: Collection[int], identifier: str | None) -> dict[str, Any]:
        settings = {} if identifier is None else {"batchIdentifier": identifier}
        return {**self.ledger.export(entry_ids), "exportSettings": settings}

    def delete(self, batch_id: int) -> Response:
        """``DELETE /finance/accounting/batches/{id}``: the entries become unposted again."""
        batch = self.batches.pop(batch_id, None)
        if batch is None:
            return _not_found(batch_id)
        self.ids.remove(batch_id)
        self.by_identifier[batch.batch_identifier].remove(batch_id)
        for entry in batch.gl_entry_ids:
            del self.batch_of[entry]
        return Response(204)

    def get(self, batch_id: int) -> Response:
        """``GET /finance/accounting/batches/{id}``."""
        batch = self.batches.get(batch_id)
        return Response(200, batch.to_json()) if batch else _not_found(batch_id)

    def entries(self, batch_id: int) -> list[dict[str, Any]] | Response:
        """``GET /finance/accounting/batches/{id}/entries``: one ``BatchEntry`` per GL entry."""
        batch = self.batches.get(batch_id)
        if batch is None:
            return _not_found(batch_id)
        return [self.ledger.batch_entry(entry) for entry in batch.gl_entry_ids]

    # -- exports ---------------------------------------------------------------------------

    def export(self, raw: bytes, batch_id: int | None = None) -> Response:
        """``POST /finance/accounting/export`` (unposted entries) or ``/batches/{id}/export``."""
        body = read_body(raw, EXPORT)
        if isinstance(body, Response):
            return body
        identifier = body.get("batchIdentifier")
        if batch_id is not None:
            batch = self.batches.get(batch_id)
            if batch is None:
                return _not_found(batch_id)
            return Response(200, self._gl_export(batch.gl_entry_ids, batch.batch_identifier))
        kinds = {k for k, flag in _FLAG_OF_KIND.items() if body.get(flag)}
        if not kinds and not body.get("exportPaymentsFlag"):
            return invalid(EXPORT, "exportInvoicesFlag", _MUST_EXPORT)
        unposted = self.unposted
        chosen = [
            entry
            for record in self.ledger.records.values()
            if record.kind in kinds and _wanted(record, body)
            for entry, _, _ in record.entries
            if entry in unposted
        ]
        return Response(200, self._gl_export(chosen, identifier))

    def open_records(self, kind: str) -> list[dict[str, Any]]:
        """The ``/unposted…`` rows of ``kind``: records with GL entries in no batch."""
        return [
            r.unposted_json(total) for r, total in self.ledger.open_records(kind, self.unposted)
        ]

    # -- lists -----------------------------------------------------------------------------

    def select(self, conditions: str | None) -> list[dict[str, Any]]:
        """The batches matching ``conditions`` as ``AccountingBatch`` records, in id order.

        Raises `ConditionError` if the conditions are not valid.
        """
        if not conditions:
            return [self.batches[i].to_json() for i in self.ids]
        node = parse_conditions(conditions)
        check_fields(node, _BATCH_FIELDS)
        candidates = self._candidates(node)
        ids = self.ids if candidates is None else sorted(set(candidates) & self.batches.keys())
        records = (self.batches[i].to_json() for i in ids)
        return [record for record in records if matches(node, record)]

    def _candidates(self, node: Node) -> Iterable[int] | None:
        """Batch ids that can match ``node`` (from the indexes), or None to scan them all."""
        if isinstance(node, Member) and not node.negate and node.field == "batchidentifier":
            return [i for value in node.values for i in self.by_identifier.get(value, ())]
        if isinstance(node, Compare) and node.operator == "=" and node.field == "batchidentifier":
            return list(self.by_identifier.get(node.value, ()))
        if (
            isinstance(node, Compare)
            and node.field == "id"
            and not node.negate
            and isinstance(node.value, int)
        ):
            if node.operator in (">", ">="):
                start = (bisect.bisect_right if node.operator == ">" else bisect.bisect_left)(
                    self.ids, node.value
                )
                return self.ids[start:]
            if node.operator == "=":
                return [node.value]
        if isinstance(node, AllOf):
            hinted = [c for c in map(self._candidates, node.terms) if c is not None]
            if hinted:
                return min((list(c) for c in hinted), key=len)
        return None


def _not_found(batch_id: int) -> Response:
    return Response(404, error_body("NotFound", f"AccountingBatch recId '{batch_id}' not found"))


def _wanted(record: Record, body: Mapping[str, Any]) -> bool:
    """Whether an export asked for with ``body`` takes ``record`` (kinds aside)."""
    if "locationId" in body and record.location_id != body["locationId"]:
        return False
    if "thruDate" in body and date.fromisoformat(record.date) > _day_of(body["thruDate"]):
        return False
    key: Any = record.id
    included, excluded = {
        "invoice": ("includedInvoiceIds", "excludedInvoiceIds"),
        "expense": ("includedExpenseIds", "excludedExpenseIds"),
        "procurement": ("includedProductIds", "excludedProductIds"),
    }[record.kind]
    if record.kind == "procurement":
        key = record.product_id
    if body.get(included) and key not in body[included]:
        return False
    return key not in body.get(excluded, ())


def _day_of(moment: str) -> date:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).date()
