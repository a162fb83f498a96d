"""``cw-glbatch export``: export the unposted GL transactions, write the batches that post them.

The batches file holds one batch per kind (invoices, expenses, products) with that kind's GL
entry ids and export flags, ready for ``cw-glbatch create``; ``--export`` also writes the export
itself (ConnectWise's JSON) for the step that posts it to the ledger. Both are written
atomically, the export first, so a batches file never exists without the export it came from.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ._client import ConnectWiseClient
from ._export import KINDS, Kind
from ._http import thru_date_text
from ._preflight import check_export_paths
from ._writer import batches_document, replace_atomically

__all__ = ["add_export_command", "run_export"]


def _kinds(text: str) -> tuple[Kind, ...]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in KINDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(KINDS)}, not {text!r}"
        )
    return tuple(kind for kind in KINDS if kind in names)


def _thru_date(text: str) -> str:
    try:
        thru_date_text(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _location(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a location id is a whole number from 1, not {text!r}")
    return int(text)


def add_export_command(commands: Any) -> argparse.ArgumentParser:
    """Add ``export`` to the subcommands; the caller adds the connection options."""
    export = commands.add_parser(
        "export",
        help="export the unposted GL transactions; write the batches that mark them posted",
    )
    export.add_argument(
        "--batches", required=True, type=Path, help="where to write the batches for `create`"
    )
    export.add_argument(
        "--export", type=Path, help="where to write the export itself (JSON), for your ledger"
    )
    export.add_argument(
        "--thru-date", type=_thru_date, help="only transactions up to this date (YYYY-MM-DD)"
    )
    export.add_argument("--location", type=_location, help="only this ConnectWise location id")
    export.add_argument(
        "--kinds",
        type=_kinds,
        default=KINDS,
        help=f"comma-separated, from {','.join(KINDS)} (default: all three)",
    )
    export.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    return export  # type: ignore[no-any-return]


def run_export(args: argparse.Namespace, client: ConnectWiseClient, *, quiet: bool = False) -> int:
    """Export, write the files, say what was written (not when ``quiet``); exit 0.

    Raises:
        ConfigurationError: The output paths cannot be used (checked before any request).
    """
    check_export_paths(args.batches, args.export)
    with client:
        export = client.export_gl(
            thru_date=args.thru_date,
            location_id=args.location,
            export_invoices="invoices" in args.kinds,
            export_expenses="expenses" in args.kinds,
            export_products="products" in args.kinds,
        )
    batches = export.batch_requests(args.kinds)
    if args.export is not None:
        replace_atomically(args.export, json.dumps(export.data, indent=2, ensure_ascii=False))
    replace_atomically(args.batches, batches_document(batches))
    counts = {kind: len(export.gl_entry_ids_of(kind)) for kind in args.kinds}
    if args.json:
        summary = {
            "gl_entry_ids": sum(counts.values()),
            "by_kind": counts,
            "batches": len(batches),
            "batches_file": str(args.batches),
            "export_file": None if args.export is None else str(args.export),
        }
        print(json.dumps(summary, indent=2))
        return 0
    if quiet:
        return 0
    scope = ", ".join(args.kinds) + (f", thru {args.thru_date}" if args.thru_date else "")
    if not batches:
        print(f"nothing to export: no unposted GL entries ({scope}).")
        print(f"batches file: {args.batches} (empty)")
    else:
        detail = ", ".join(f"{kind} {count}" for kind, count in counts.items())
        print(f"exported {sum(counts.values())} GL entries ({detail}).")
        print(f"batches file: {args.batches} ({len(batches)} batches; next: cw-glbatch create)")
    if args.export is not None:
        print(f"export file:  {args.export}")
    return 0
