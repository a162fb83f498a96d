"""The simulated API itself: what each endpoint does to the state and answers. No I/O.

Where ConnectWise's behaviour is not documented, the simulator follows its conventions and the
choices are listed in ``docs/testing.md``.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import urlencode

import attrs

from ._conditions import AllOf, Compare, ConditionError, Member, Node, matches, parse_conditions

__all__ = [
    "IN_PROCESS_ORIGIN",
    "KINDS",
    "ConditionError",
    "Dropped",
    "Response",
    "SimBatch",
    "SimRequest",
    "State",
    "error_body",
    "page_of",
    "shape",
]

IN_PROCESS_ORIGIN = "https://connectwise.invalid"

KINDS = ("invoice", "expense", "procurement")
_FLAG_OF_KIND = {
    "invoice": "exportInvoicesFlag",
    "expense": "exportExpensesFlag",
    "procurement": "exportProductsFlag",
}
_BODY_FIELDS = {
    "batchIdentifier": str,
    "processedRecordIds": list,
    "exportInvoicesFlag": bool,
    "exportExpensesFlag": bool,
    "exportProductsFlag": bool,
    "summarizeExpenses": bool,
    "glInterfaceIdentifier": str,
}
_MAX_PAGE_SIZE = 1000
_MAX_ID = 2**31 - 1


@attrs.frozen
class SimRequest:
    """A request as the simulator sees it, whichever way it came in."""

    method: str
    path: str
    query: Mapping[str, str] = attrs.field(factory=dict)
    headers: Mapping[str, str] = attrs.field(factory=dict)  # names in lower case
    body: bytes = b""
    origin: str = IN_PROCESS_ORIGIN


@attrs.frozen
class Dropped:
    """No answer: the connection was reset (``"reset"``) or the answer lost (``"lost"``)."""

    kind: Literal["reset", "lost"]


@attrs.frozen
class Response:
    """An answer of the simulated API, and how it is delivered.

    ``chunk`` > 0 sends the body that many bytes at a time, ``delay`` seconds apart (a trickle);
    ``truncated`` stops the answer half way through its body (through its head when it has no
    body) and closes the connection.
    """

    status: int
    body: Any = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    raw: bytes | None = None  # a body that is not JSON (a proxy's HTML page)
    chunk: int = 0
    delay: float = 0.0
    truncated: bool = False

    def content(self) -> bytes:
        """The body's bytes: ``raw``, else ``body`` as JSON, else nothing."""
        if self.raw is not None:
            return self.raw
        return b"" if self.body is None else json.dumps(self.body).encode()


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


def error_body(code: str, message: str, errors: Sequence[Mapping[str, str]] = ()) -> dict[str, Any]:
    """ConnectWise's error body."""
    body: dict[str, Any] = {"code": code, "message": message}
    if errors:
        body["errors"] = list(errors)
    return body


def _invalid(field: str, message: str) -> Response:
    return Response(
        400,
        error_body(
            "InvalidObject",
            "accountingBatch object is invalid",
            [
                {
                    "code": "InvalidField",
                    "message": message,
                    "resource": "accountingBatch",
                    "field": field,
                }
            ],
        ),
    )


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class State:
    """Unposted GL entries and batches. The caller holds the lock around every call."""

    def __init__(self, first_batch_id: int) -> None:
        self.kinds: dict[int, str] = {}  # every GL entry: id -> kind
        self.batch_of: dict[int, int] = {}  # posted entries: id -> batch id
        self.batches: dict[int, SimBatch] = {}
        self.ids: list[int] = []  # batch ids, ascending
        self.by_identifier: dict[str, list[int]] = {}
        self.next_id = first_batch_id

    # -- batches ---------------------------------------------------------------------------

    def create(self, body: object) -> Response:
        """``POST /finance/accounting/batches``."""
        if not isinstance(body, dict):
            return Response(
                400, error_body("InvalidObject", "the request body must be a JSON object")
            )
        for field, value in body.items():
            kind = _BODY_FIELDS.get(field)
            if kind is None:
                return _invalid(field, f"{field} is not a field of CreateAccountingBatchRequest")
            if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                return _invalid(field, f"{field} must be a {kind.__name__}")
        identifier = body.get("batchIdentifier")
        if not identifier or not identifier.strip():
            return _invalid("batchIdentifier", "batchIdentifier is required")
        if len(identifier) > 50:
            return _invalid(
                "batchIdentifier", "batchIdentifier cannot be longer than 50 characters"
            )
        ids = body.get("processedRecordIds")
        if not ids:
            return _invalid("processedRecordIds", "processedRecordIds is required")
        if not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 < i <= _MAX_ID for i in ids
        ):
            return _invalid("processedRecordIds", "processedRecordIds must hold record ids")
        flags = {flag: body.get(flag, False) for flag in _FLAG_OF_KIND.values()}
        if not any(flags.values()):
            return _invalid(
                "exportInvoicesFlag", "Batch must export Invoices, Expenses or Products"
            )
        problem = self._check_entries(ids, flags)
        if problem:
            return problem
        batch = SimBatch(
            self.next_id,
            identifier,
            tuple(ids),
            export_invoices=flags["exportInvoicesFlag"],
            export_expenses=flags["exportExpensesFlag"],
            export_products=flags["exportProductsFlag"],
            date_entered=_now(),
        )
        self.next_id += 1
        self.batches[batch.id] = batch
        self.ids.append(batch.id)
        self.by_identifier.setdefault(identifier, []).append(batch.id)
        for entry in ids:
            self.batch_of[entry] = batch.id
        return Response(200, self._export(batch))

    def _check_entries(self, ids: list[int], flags: Mapping[str, bool]) -> Response | None:
        if len(set(ids)) != len(ids):
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            return _invalid("processedRecordIds", f"records repeated: {repeated}")
        unknown = [i for i in ids if i not in self.kinds]
        if unknown:
            return _invalid("processedRecordIds", f"GL entries not found: {unknown}")
        batched = [i for i in ids if i in self.batch_of]
        if batched:
            return _invalid("processedRecordIds", f"GL entries already in a batch: {batched}")
        excluded = [i for i in ids if not flags[_FLAG_OF_KIND[self.kinds[i]]]]
        if excluded:
            return _invalid("processedRecordIds", f"GL entries of a type not exported: {excluded}")
        return None

    def _export(self, batch: SimBatch) -> dict[str, Any]:
        """A ``GLExport``-shaped answer for a new batch."""
        lists: dict[str, list[dict[str, Any]]] = {
            "invoice": [],
            "expense": [],
            "procurement": [],
        }
        for entry in batch.gl_entry_ids:
            kind = self.kinds[entry]
            lists[kind].append(
                {
                    "glEntryIds": str(entry),
                    "documentNumber": f"{kind[:3].upper()}-{entry}",
                    "documentType": kind.capitalize(),
                    "documentDate": batch.date_entered,
                    "detail": [],
                }
            )
        return {
            "transactions": lists["invoice"],
            "expenses": lists["expense"],
            "expenseBills": [],
            "purchaseTransactions": lists["procurement"],
            "adjustmentTransactions": [],
            "inventoryTransfers": [],
            "customers": [],
            "vendors": [],
            "exportSettings": {"batchIdentifier": batch.batch_identifier},
        }

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

    def select(self, conditions: str | None) -> list[dict[str, Any]]:
        """The batches matching ``conditions`` as ``AccountingBatch`` records, in id order.

        Raises `ConditionError` if the conditions are not valid.
        """
        if not conditions:
            return [self.batches[i].to_json() for i in self.ids]
        node = parse_conditions(conditions)
        candidates = self._candidates(node)
        ids = self.ids if candidates is None else sorted(set(candidates) & self.batches.keys())
        records = (self.batches[i].to_json() for i in ids)
        return [record for record in records if matches(node, record)]

    def _candidates(self, node: Node) -> Iterable[int] | None:
        """Batch ids that can match ``node`` (from the indexes), or None to scan them all."""
        if isinstance(node, Member) and not node.negate and node.field == "batchIdentifier":
            return [i for value in node.values for i in self.by_identifier.get(value, ())]
        if isinstance(node, Compare) and node.operator == "=" and node.field == "batchIdentifier":
            return list(self.by_identifier.get(node.value, ()))
        if isinstance(node, Compare) and node.field == "id" and isinstance(node.value, int):
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


def page_of(items: Sequence[Any], query: Mapping[str, str], origin: str, path: str) -> Response:
    """One page of ``items`` as ConnectWise answers lists: ``page``/``pageSize`` and a Link."""
    try:
        number = int(query.get("page", "1"))
        size = int(query.get("pageSize", "25"))
    except ValueError:
        return Response(400, error_body("InvalidObject", "page and pageSize must be numbers"))
    if number < 1 or not 1 <= size <= _MAX_PAGE_SIZE:
        return Response(
            400,
            error_body("InvalidObject", f"page must be 1 or more, pageSize 1 to {_MAX_PAGE_SIZE}"),
        )
    start = (number - 1) * size
    chunk = items[start : start + size]
    links = [f'<{_page_url(origin, path, query, 1)}>; rel="first"']
    if start + size < len(items):
        links.append(f'<{_page_url(origin, path, query, number + 1)}>; rel="next"')
        last = max(1, -(-len(items) // size))
        links.append(f'<{_page_url(origin, path, query, last)}>; rel="last"')
    return Response(200, list(chunk), {"Link": ", ".join(links)})


def _page_url(origin: str, path: str, query: Mapping[str, str], number: int) -> str:
    return f"{origin}{path}?{urlencode({**query, 'page': str(number)})}"


def shape(
    records: list[dict[str, Any]], query: Mapping[str, str]
) -> list[dict[str, Any]] | Response:
    """Apply ``orderBy`` and ``fields`` to list records."""
    order = query.get("orderBy", "").strip()
    if order:
        match = re.fullmatch(r"(\w+)(?:\s+(asc|desc))?", order, re.IGNORECASE)
        if not match:
            return Response(400, error_body("InvalidObject", f"orderBy {order!r} is not valid"))
        field, direction = match.group(1), (match.group(2) or "asc").lower()
        records = sorted(
            records,
            key=lambda r: (r.get(field) is None, r.get(field)),
            reverse=direction == "desc",
        )
    fields = [f.strip() for f in query.get("fields", "").split(",") if f.strip()]
    if fields:
        records = [{f: r[f] for f in fields if f in r} for r in records]
    return records
