"""Reading a GLExport in tests as real integrations read it."""

from __future__ import annotations

from typing import Any


def gl_entry_ids_of(glexport: dict[str, Any]) -> set[int]:
    """Every GL entry id a GLExport holds: invoices' comma-separated glEntryIds and detail
    lines, expenses' ids, purchase transactions' detail lines."""
    found: set[int] = set()
    for transaction in glexport["transactions"]:
        found.update(int(i) for i in transaction["glEntryIds"].split(",") if i)
        found.update(line["id"] for line in transaction["detail"])
    found.update(expense["id"] for expense in glexport["expenses"])
    for purchase in glexport["purchaseTransactions"]:
        found.update(line["id"] for line in purchase["purchaseDetail"])
    return found
