"""GLExport: ConnectWise's GL export, as an export or a batch creation answers it.

ConnectWise answers ``POST /finance/accounting/export`` (what is waiting to be posted) and
``POST /finance/accounting/batches`` (what a new batch holds) with the same ``GLExport`` body.
This module decodes it: the records an accounting integration posts to its ledger, typed where
users need them and kept whole as JSON, and the GL entry ids they hold, which are what a batch
must carry (``processedRecordIds``).

Where the GL entry ids are (two tables, `LINE_LISTS` and `ENTRY_RECORDS`, say where):

- a record's ``glEntryIds``, a comma-separated string (``"1010,1011,1012"``, on invoices);
- each of its lines (``detail``, ``purchaseDetail``, ...): the line's own ``glEntryIds`` if it
  has one, else its ``id``;
- the ``id`` of a record that is a single GL entry itself (an expense).

An ``id`` that is ``null`` or ``0`` is no id (ConnectWise's way of saying none), and is skipped.

The record ``id`` of an invoice or a purchase is not a GL entry id (it is what the
``/unposted...`` lists show and ``includedInvoiceIds`` take), so it is not collected.

Descriptive fields of an unexpected type decode as ``None``; ids that cannot be read refuse the
whole answer (`ValueError`), because an id skipped would be exported, and posted, again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, get_args

import attrs

from ._limits import MAX_GL_REC_ID, is_gl_rec_id
from ._models import BatchRequest

__all__ = [
    "ENTRY_RECORDS",
    "KINDS",
    "LINE_LISTS",
    "SECTIONS",
    "GLExport",
    "GLExportRecord",
    "Kind",
    "gl_id",
    "gl_ids_in",
]

Kind = Literal["invoices", "expenses", "products"]
KINDS: tuple[Kind, ...] = get_args(Kind)

# The lists of a GLExport body, each with the kind of batch its GL entries belong in.
SECTIONS: Mapping[str, Kind] = {
    "transactions": "invoices",
    "expenses": "expenses",
    "expenseBills": "expenses",
    "purchaseTransactions": "products",
    "adjustmentTransactions": "products",
    "inventoryTransfers": "products",
}
# The lists of lines inside a record; each line is a GL entry of its own.
LINE_LISTS = ("detail", "purchaseDetail", "purchaseDetailTax", "adjustmentDetail")
# The lists whose records are one GL entry each: the record's id is the GL entry id.
ENTRY_RECORDS = frozenset({"expenses"})


def gl_id(text: str) -> int | None:
    """``text`` as a GL entry id (ASCII digits, 1 to 2147483647), or None if it is not one."""
    if len(text) <= 10 and text.isdigit() and text.isascii():
        value = int(text)
        if 0 < value <= MAX_GL_REC_ID:
            return value
    return None


def gl_ids_in(text: str) -> list[int]:
    """The GL entry ids in a comma-separated list such as ``"1010, 1011"``; other items skipped."""
    values = (gl_id(item.strip()) for item in text.split(","))
    return [value for value in values if value is not None]


def _ids_of_string(text: object, where: str) -> Iterator[int]:
    if text is None:
        return
    if not isinstance(text, str):
        raise ValueError(f"{where}.glEntryIds is {type(text).__name__}, expected a string")
    if not text.strip():
        return
    for item in text.split(","):
        value = gl_id(item.strip())
        if value is None:
            raise ValueError(f"{where}.glEntryIds holds {item.strip()!r}, not a GL entry id")
        yield value


def _ids_of_line(line: object, where: str) -> Iterator[int]:
    if not isinstance(line, Mapping):
        raise ValueError(f"{where} is {type(line).__name__}, expected an object")
    if line.get("glEntryIds") is not None:
        yield from _ids_of_string(line["glEntryIds"], where)
        return
    values = line.get("id")
    for value in values if isinstance(values, list) else [values]:
        if value is None or (type(value) is int and value == 0):
            continue  # no id: ConnectWise writes 0 for "none" (a summary line, say)
        if not is_gl_rec_id(value):
            raise ValueError(f"{where}.id is {value!r}, not a GL entry id")
        yield value


def _record_ids(section: str, data: Mapping[str, Any], where: str) -> tuple[int, ...]:
    ids = list(_ids_of_string(data.get("glEntryIds"), where))
    if section in ENTRY_RECORDS and data.get("glEntryIds") is None:
        ids.extend(_ids_of_line(data, where))
    for name in LINE_LISTS:
        for number, line in enumerate(_list(data, name, where)):
            ids.extend(_ids_of_line(line, f"{where}.{name}[{number}]"))
    return tuple(dict.fromkeys(ids))


def _list(data: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{where}.{key} is {type(value).__name__}, expected a list")
    return value


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _number(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _record_id(data: Mapping[str, Any]) -> int | str | None:
    value = data.get("id")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    return value


@attrs.frozen
class GLExportRecord:
    """One exported record: an invoice, an expense, an expense bill, a purchase, ...

    Attributes:
        kind: The kind of batch its GL entries belong in: ``"invoices"``, ``"expenses"`` or
            ``"products"``.
        section: The list of the ``GLExport`` it came from (``"transactions"``,
            ``"expenseBills"``, ``"purchaseTransactions"``, ...).
        id: ConnectWise's ``id`` of the record, as sent (a number or a string).
        document_number: ``documentNumber`` (the invoice number, ...).
        document_type: ``documentType``.
        document_date: ``documentDate``, as ConnectWise writes it.
        account_number: ``accountNumber``.
        total: ``total``.
        gl_entry_ids: The GL entry ids of the record and its lines, each once, in order.
        data: The record as ConnectWise sent it, every field included.
    """

    kind: Kind
    section: str
    id: int | str | None
    document_number: str | None
    document_type: str | None
    document_date: str | None
    account_number: str | None
    total: float | None
    gl_entry_ids: tuple[int, ...]
    data: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)

    @classmethod
    def from_json(cls, section: str, data: object, where: str | None = None) -> GLExportRecord:
        """Decode one record of the list ``section``; `ValueError` if its ids cannot be read."""
        where = where or section
        if not isinstance(data, Mapping):
            raise ValueError(f"{where} is {type(data).__name__}, expected an object")
        return cls(
            kind=SECTIONS[section],
            section=section,
            id=_record_id(data),
            document_number=_text(data, "documentNumber"),
            document_type=_text(data, "documentType"),
            document_date=_text(data, "documentDate"),
            account_number=_text(data, "accountNumber"),
            total=_number(data, "total"),
            gl_entry_ids=_record_ids(section, data, where),
            data=data,
        )


def _tuple_of_records(values: Iterable[GLExportRecord]) -> tuple[GLExportRecord, ...]:
    return tuple(values)


@attrs.frozen
class GLExport:
    """A GL export: what ``POST /finance/accounting/export`` and creating a batch answer.

    An export lists the transactions waiting to be posted; a batch creation lists the ones the
    new batch holds. Either way, `gl_entry_ids` are the ids a batch carries to mark them posted.
    A creation's answer does not hold the new batch's id; look the identifier up for that
    (`ConnectWiseClient.find_batches`).

    Attributes:
        records: Every record, list by list in ConnectWise's order (``transactions``,
            ``expenses``, ``expenseBills``, ``purchaseTransactions``,
            ``adjustmentTransactions``, ``inventoryTransfers``).
        batch_identifier: For a creation's answer, the identifier the batch was created with;
            otherwise ``exportSettings.batchIdentifier`` when ConnectWise sends one.
        data: The ``GLExport`` body as ConnectWise sent it, fields this library does not know
            included (``customers``, ``vendors``, ``exportSettings``, ...).
    """

    records: tuple[GLExportRecord, ...] = attrs.field(converter=_tuple_of_records)
    batch_identifier: str | None = None
    data: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)

    @classmethod
    def from_json(cls, data: object, *, batch_identifier: str | None = None) -> GLExport:
        """Decode a ``GLExport`` body; `ValueError` if it is not one or its ids cannot be read."""
        if not isinstance(data, Mapping):
            raise ValueError(f"expected an object, got {type(data).__name__}")
        records = [
            GLExportRecord.from_json(section, item, f"{section}[{number}]")
            for section in SECTIONS
            for number, item in enumerate(_list(data, section, "the export"))
        ]
        if batch_identifier is None:
            settings = data.get("exportSettings")
            if isinstance(settings, Mapping):
                batch_identifier = _text(settings, "batchIdentifier")
        return cls(records, batch_identifier, data)

    @property
    def gl_entry_ids(self) -> tuple[int, ...]:
        """Every GL entry id the export holds, each once, in order: what batches must carry."""
        return _unique(record.gl_entry_ids for record in self.records)

    def gl_entry_ids_of(self, kind: Kind) -> tuple[int, ...]:
        """The GL entry ids of one kind (``"invoices"``, ``"expenses"``, ``"products"``)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        return _unique(record.gl_entry_ids for record in self.records if record.kind == kind)

    def of_kind(self, kind: Kind) -> tuple[GLExportRecord, ...]:
        """The records of one kind."""
        return tuple(record for record in self.records if record.kind == kind)

    def batch_requests(self, kinds: Sequence[Kind] = KINDS) -> list[BatchRequest]:
        """The batches that mark this export posted: one per kind that has GL entries.

        Each holds its kind's `gl_entry_ids_of` with that kind's export flag alone true, as
        ConnectWise advises; none has an identifier (`create_batches` gives them one).
        """
        batches = []
        for kind in KINDS:
            ids = self.gl_entry_ids_of(kind) if kind in kinds else ()
            if ids:
                batches.append(
                    BatchRequest(
                        None,
                        ids,
                        export_invoices=kind == "invoices",
                        export_expenses=kind == "expenses",
                        export_products=kind == "products",
                    )
                )
        return batches

    @property
    def transactions(self) -> tuple[GLExportRecord, ...]:
        """The invoice transactions (the ``transactions`` list)."""
        return tuple(record for record in self.records if record.section == "transactions")


def _unique(groups: Iterable[tuple[int, ...]]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(value for group in groups for value in group))
