"""The simulated books: unposted records, the GL entries they carry, and their GL export. No I/O.

ConnectWise keeps two kinds of id apart, and so does the simulator:

- an **unposted record** (an invoice, an expense, a procurement line) has the id the
  ``/unposted…`` lists show and the export's ``includedInvoiceIds``/``includedExpenseIds`` take;
- a **GL entry** is one line of a record in the general ledger. Its id is what a batch's
  ``processedRecordIds`` take. A ``GLExport`` shows them as an invoice transaction's
  comma-separated ``glEntryIds`` plus the ids of its ``detail`` lines (revenue and tax lines), an
  expense's ``id``, and a purchase transaction's ``purchaseDetail`` ids.

A procurement line's record id is its GL entry id (one public integration posts
``/unpostedprocurement`` ids as GL entry ids); invoices and expenses get record ids of their own.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable
from typing import Any, Literal

import attrs

__all__ = ["KINDS", "EntryRole", "Ledger", "Record"]

KINDS = ("invoice", "expense", "procurement")
EntryRole = Literal["header", "detail", "tax"]
_FIRST_RECORD_ID = 1001
_CURRENCY = {"id": 1, "currencyCode": "USD", "name": "US Dollars"}
_COMPANY = {"id": 250, "identifier": "Contoso", "name": "Contoso Ltd"}


@attrs.frozen
class Record:
    """An unposted transaction and its GL entries.

    Attributes:
        kind: ``invoice``, ``expense`` or ``procurement``.
        id: Its record id (what the ``/unposted…`` lists show).
        entries: Its GL entries: ``(id, role, amount)``; an invoice's ``header`` entries are its
            ``glEntryIds``, its ``detail`` and ``tax`` entries its detail lines.
        date: Its document date, ``YYYY-MM-DD``.
        location_id: The location (``locationId``) it belongs to.
    """

    kind: str
    id: int
    entries: tuple[tuple[int, EntryRole, float], ...]
    date: str
    location_id: int = 1

    @property
    def number(self) -> str:
        """Its document number, e.g. ``INV-1001``."""
        return f"{self.kind[:3].upper()}-{self.id}"

    def unposted_json(self, open_total: float) -> dict[str, Any]:
        """Its row in ``/unposted{invoices,expenses,procurement}``."""
        common: dict[str, Any] = {
            "id": self.id,
            "locationId": self.location_id,
            "currency": _CURRENCY,
            "total": open_total,
            "_info": {"lastUpdated": self.date + "T00:00:00Z"},
        }
        if self.kind == "invoice":
            return {
                **common,
                "company": _COMPANY,
                "invoiceNumber": self.number,
                "invoiceDate": self.date,
                "invoiceType": "Standard",
                "hasTime": True,
                "hasExpenses": False,
                "hasProducts": False,
                "subTotal": open_total,
            }
        if self.kind == "expense":
            return {
                **common,
                "company": _COMPANY,
                "dateExpense": self.date,
                "classification": "Reimbursable",
                "expenseDetailId": self.id,
                "chargeDescription": "Travel",
            }
        return {
            **common,
            "description": "Hardware",
            "vendor": {"id": 310, "identifier": "Fabrikam", "name": "Fabrikam Inc"},
            "unpostedProductId": self.product_id,
            "procurementType": "Purchase",
            "purchaseDate": self.date,
        }

    @property
    def product_id(self) -> str:
        """A procurement line's ``unpostedProductId`` (what ``includedProductIds`` take)."""
        return f"P{self.id}"

    def transaction(self, entry_ids: Collection[int]) -> tuple[str, dict[str, Any]]:
        """Its ``GLExport`` list and item, holding only the GL entries in ``entry_ids``."""
        mine = [e for e in self.entries if e[0] in entry_ids]
        total = round(sum(amount for _, _, amount in mine), 2)
        if self.kind == "invoice":
            header = ",".join(str(i) for i, role, _ in mine if role == "header")
            details = [self._line(i, role, amount) for i, role, amount in mine if role != "header"]
            return "transactions", {
                "id": self.id,
                "documentNumber": self.number,
                "documentType": "Invoice",
                "documentDate": self.date,
                "glEntryIds": header,
                "total": total,
                "company": _COMPANY,
                "accountNumber": "1200",
                "currency": _CURRENCY,
                "detail": details,
                "taxLevels": [{"taxLevel": 1, "taxAmount": self._tax(mine), "taxCodeXref": "ST"}],
            }
        if self.kind == "expense":
            entry_id = mine[0][0]
            return "expenses", {
                "id": entry_id,
                "documentType": "Expense",
                "memo": self.number,
                "documentDate": self.date,
                "accountNumber": "6100",
                "total": total,
                "member": {"id": 7, "identifier": "jdoe", "name": "Jane Doe"},
                "currency": _CURRENCY,
            }
        return "purchaseTransactions", {
            "id": self.number,
            "documentNumber": self.number,
            "documentDate": self.date,
            "purchaseDate": self.date,
            "total": total,
            "currency": _CURRENCY,
            "purchaseDetail": [
                {
                    "id": i,
                    "documentDate": self.date,
                    "accountNumber": "1400",
                    "total": amount,
                    "lineNumber": n,
                }
                for n, (i, _, amount) in enumerate(mine, 1)
            ],
        }

    def _line(self, entry_id: int, role: EntryRole, amount: float) -> dict[str, Any]:
        if role == "tax":
            return {
                "id": entry_id,
                "documentDate": self.date,
                "documentType": "Invoice",
                "glTypeId": "ST",
                "accountNumber": "2200",
                "description": "Sales tax",
                "total": amount,
                "taxNote": "State tax",
            }
        return {
            "id": entry_id,
            "documentDate": self.date,
            "documentType": "Invoice",
            "glTypeId": "R",
            "accountNumber": "4000",
            "description": "Services",
            "quantity": 1.0,
            "total": amount,
        }

    @staticmethod
    def _tax(entries: Iterable[tuple[int, EntryRole, float]]) -> float:
        return round(sum(amount for _, role, amount in entries if role == "tax"), 2)


class Ledger:
    """Every record and GL entry the simulator holds. The caller holds the lock."""

    def __init__(self) -> None:
        self.records: dict[int, Record] = {}
        self.record_of: dict[int, Record] = {}  # GL entry id -> its record
        self._next_record = _FIRST_RECORD_ID

    def kind_of(self, entry_id: int) -> str:
        """The kind of the record GL entry ``entry_id`` belongs to."""
        return self.record_of[entry_id].kind

    def add(
        self,
        kind: str,
        entries: Iterable[tuple[int, EntryRole, float]],
        *,
        date: str,
        location_id: int = 1,
        reserved: Collection[int] = (),
    ) -> Record:
        """Add one record with these GL entries; ids already used are refused.

        A new record's id avoids ``reserved``: GL entry ids the caller is about to add.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        entries = tuple(entries)
        for entry_id, _, _ in entries:
            if entry_id in self.record_of:
                raise ValueError(f"GL entry {entry_id} exists already")
            if entry_id in self.records:  # the two kinds of id never meet
                raise ValueError(
                    f"{entry_id} is the id of an unposted record, not free for a GL entry"
                )
        if kind == "procurement":
            if len(entries) != 1:
                raise ValueError("a procurement line has exactly one GL entry")
            record_id = entries[0][0]
        else:
            record_id = self._record_id(entries, reserved)
        record = Record(kind, record_id, entries, date, location_id)
        self.records[record_id] = record
        for entry_id, _, _ in entries:
            self.record_of[entry_id] = record
        return record

    def _record_id(
        self, entries: Collection[tuple[int, EntryRole, float]], reserved: Collection[int]
    ) -> int:
        taken = {e[0] for e in entries}
        while (
            self._next_record in self.record_of
            or self._next_record in taken
            or self._next_record in reserved
        ):
            self._next_record += 1
        record_id = self._next_record
        self._next_record += 1
        return record_id

    def batch_entry(self, entry_id: int) -> dict[str, Any]:
        """GL entry ``entry_id`` as a batch's ``BatchEntry`` (its ``id`` is the GL entry id)."""
        record = self.record_of[entry_id]
        amount = next(a for i, _, a in record.entries if i == entry_id)
        entry: dict[str, Any] = {
            "id": entry_id,
            "accountType": {"invoice": "AR", "expense": "EE", "procurement": "IA"}[record.kind],
            "name": record.number,
            "accountNumber": "1200",
            "debit": amount,
            "credit": 0.0,
            "cost": 0.0,
        }
        if record.kind == "invoice":
            entry["invoice"] = {"id": record.id, "identifier": record.number}
        elif record.kind == "expense":
            entry["expense"] = {"id": record.id, "amount": amount}
        else:
            entry["purchaseOrder"] = {"id": record.id, "name": record.number}
        return entry

    def populate(self, count: int, rng: random.Random, start: int, dates: list[str]) -> list[int]:
        """Add records holding ``count`` new GL entries from ``start`` on; return the entry ids."""
        first = max([start - 1, *self.record_of, *self.records]) + 1
        ids = list(range(first, first + count))
        position = 0
        while position < len(ids):
            kind = rng.choice(KINDS)
            size = {"invoice": rng.randint(3, 6), "expense": 1, "procurement": 1}[kind]
            chunk = ids[position : position + size]
            position += len(chunk)
            roles: list[EntryRole] = ["detail"]
            if kind == "invoice":
                roles = _invoice_roles(len(chunk), rng)
            amounts = [round(rng.uniform(5, 900), 2) for _ in chunk]
            self.add(
                kind,
                zip(chunk, roles, amounts, strict=True),
                date=rng.choice(dates),
                location_id=rng.choice((1, 1, 2)),
            )
        return ids

    def export(self, entry_ids: Collection[int]) -> dict[str, Any]:
        """A ``GLExport`` of these GL entries, grouped by record, records in id order."""
        lists: dict[str, list[dict[str, Any]]] = {
            "transactions": [],
            "expenses": [],
            "purchaseTransactions": [],
        }
        records = sorted({self.record_of[e].id: self.record_of[e] for e in entry_ids}.items())
        for _, record in records:
            name, item = record.transaction(entry_ids)
            lists[name].append(item)
        return {
            **lists,
            "expenseBills": [],
            "adjustmentTransactions": [],
            "inventoryTransfers": [],
            "customers": [],
            "vendors": [],
        }

    def open_records(self, kind: str, unposted: Collection[int]) -> list[tuple[Record, float]]:
        """Records of ``kind`` with GL entries in ``unposted``, and the total of those."""
        found = []
        for record_id in sorted(self.records):
            record = self.records[record_id]
            if record.kind != kind:
                continue
            amounts = [amount for i, _, amount in record.entries if i in unposted]
            if amounts:
                found.append((record, round(sum(amounts), 2)))
        return found


def _invoice_roles(size: int, rng: random.Random) -> list[EntryRole]:
    """An invoice's entries: one or two in ``glEntryIds``, one tax line, the rest detail."""
    if size == 1:
        return ["header"]
    headers = 1 if size < 4 else rng.randint(1, 2)
    roles: list[EntryRole] = ["header"] * headers
    return roles + ["detail"] * (size - headers - 1) + ["tax"]
