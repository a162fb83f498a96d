"""The cw-glbatch command: create, validate, demo, simulator.

Exit codes: 0 every batch created (or, for validate, no problem found); 1 some batches failed;
2 bad input or usage; 3 ConnectWise could not be reached or refused the credentials.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ._batches import BATCH_ID_VARIABLE, DEFAULT_CONCURRENCY, process_file
from ._client import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, ConnectWiseClient
from ._demo import run_demo, run_simulator
from ._exceptions import ApiError, CwGlBatchError
from ._models import RunReport
from ._reader import XmlBatchReader
from ._version import __version__

__all__ = ["main", "read_env_file"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


class _Usage(Exception):  # noqa: N818 - an exit path, not an error of the library
    """A problem with how the command was called or configured: exit 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cw-glbatch",
        description="Create GL batches in ConnectWise PSA from an XML file of GL entry ids.",
        epilog="Credentials come from CW_SITE (or CW_BASE_URL), CW_COMPANY_ID, CW_PUBLIC_KEY, "
        "CW_PRIVATE_KEY, CW_CLIENT_ID and optional CW_CODEBASE, or from --env-file.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log retries and lookups")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    create = commands.add_parser("create", help="create the batches of an input file")
    create.add_argument("--input", required=True, type=Path, help="the XML file of batches")
    create.add_argument("--success", required=True, type=Path, help="where created batches go")
    create.add_argument("--fail", required=True, type=Path, help="where failed batches go")
    create.add_argument("--concurrency", type=_positive, default=DEFAULT_CONCURRENCY)
    create.add_argument("--dry-run", action="store_true", help="check everything, create nothing")
    create.add_argument("--batch-id", help=f"the {BATCH_ID_VARIABLE} value for unnamed batches")
    create.add_argument("--env-file", type=Path, help="read CW_* settings from this file")
    create.add_argument(
        "--max-requests-per-minute", type=_positive, help="a ceiling on the request rate"
    )
    create.add_argument(
        "--max-retries", type=_not_negative, default=DEFAULT_MAX_RETRIES, help="per request"
    )
    create.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds allowed per request"
    )
    create.add_argument("--json", action="store_true", help="print a JSON summary on stdout")

    validate = commands.add_parser("validate", help="check an input file; send nothing")
    validate.add_argument("--input", required=True, type=Path)
    validate.add_argument("--json", action="store_true", help="print the problems as JSON")

    demo = commands.add_parser("demo", help="run the whole task against the built-in simulator")
    demo.add_argument("--dir", type=Path, help="where to write the files (default: a new folder)")

    simulator = commands.add_parser("simulator", help="serve the ConnectWise simulator over HTTP")
    simulator.add_argument("--host", default="127.0.0.1")
    simulator.add_argument("--port", type=int, default=0, help="default: any free port")
    simulator.add_argument("--populate", type=int, default=100, help="unposted GL entries to add")
    return parser


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be {least} or more, not {value}")
    return value


def _positive(text: str) -> int:
    return _whole(text, 1)


def _not_negative(text: str) -> int:
    return _whole(text, 0)


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of a dotenv-style file (comments, ``export``, quotes allowed)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise _Usage(f"cannot read {path}: {err.strerror or err}") from None
    values = {}
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, equals, value = text.removeprefix("export ").partition("=")
        if not equals or not name.strip():
            raise _Usage(f"{path}:{number}: expected NAME=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name.strip()] = value
    return values


class _Progress:
    """A progress line on stderr, redrawn at most ten times a second."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._last = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self._last < 0.1 and done != total:
            return
        self._last = now
        of = f"/{total}" if total is not None else ""
        self._stream.write(f"\r{done}{of} batches")
        self._stream.flush()

    def end(self) -> None:
        if self._last:
            self._stream.write("\n")


def _summary(report: RunReport, success: Path, fail: Path) -> dict[str, Any]:
    return {
        "created": report.counts["created"],
        "failed": report.counts["failed"],
        "planned": report.counts["planned"],
        "dry_run": report.dry_run,
        "elapsed_seconds": round(report.elapsed, 3),
        "requests": report.requests,
        "stopped": report.stopped,
        "success_file": None if report.dry_run else str(success),
        "fail_file": None if report.dry_run else str(fail),
    }


def _exit_code(report: RunReport) -> int:
    if report.stopped is not None:
        return EXIT_UNREACHABLE
    return EXIT_OK if report.ok else EXIT_FAILED


def _create(args: argparse.Namespace) -> int:
    environ = dict(os.environ)
    if args.env_file is not None:
        environ.update(read_env_file(args.env_file))
    options: dict[str, Any] = {"max_retries": args.max_retries, "timeout": args.timeout}
    if args.max_requests_per_minute:
        options["max_requests_per_minute"] = args.max_requests_per_minute
    client = ConnectWiseClient.from_env(environ, **options)
    progress = _Progress(sys.stderr) if sys.stderr.isatty() else None
    with client:
        report = process_file(
            client,
            args.input,
            args.success,
            args.fail,
            concurrency=args.concurrency,
            dry_run=args.dry_run,
            variables={BATCH_ID_VARIABLE: args.batch_id} if args.batch_id else None,
            progress=progress,
        )
    if progress is not None:
        progress.end()
    _report(report, args.success, args.fail, as_json=args.json)
    return _exit_code(report)


def _report(report: RunReport, success: Path, fail: Path, *, as_json: bool) -> None:
    summary = _summary(report, success, fail)
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    if report.dry_run:
        print(f"dry run: {summary['planned']} batches would be created, {summary['failed']} failed")
    else:
        print(f"created {summary['created']}, failed {summary['failed']} in {report.elapsed:.2f} s")
        print(f"success file: {success}")
        print(f"fail file:    {fail}")
    if report.stopped:
        print(f"stopped: {report.stopped}", file=sys.stderr)


def _validate(args: argparse.Namespace) -> int:
    problems = []
    count = 0
    for batch in XmlBatchReader(args.input):
        count += 1
        for error in batch.errors:
            problems.append(
                {"batch_line": batch.line, "identifier": batch.identifier, "problem": error}
            )
    if args.json:
        print(json.dumps({"batches": count, "problems": problems}, indent=2))
    else:
        for problem in problems:
            print(f"{args.input}: batch at line {problem['batch_line']}: {problem['problem']}")
        print(f"{count} batches, {len(problems)} problems")
    return EXIT_FAILED if problems else EXIT_OK


def _run(args: argparse.Namespace) -> int:
    if args.command == "create":
        return _create(args)
    if args.command == "validate":
        return _validate(args)
    if args.command == "demo":
        return run_demo(args.dir)
    return run_simulator(args.host, args.port, args.populate)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="cw-glbatch: %(message)s",
        stream=sys.stderr,
    )
    try:
        return _run(args)
    except ApiError as err:
        print(f"cw-glbatch: error: ConnectWise: {err}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except (CwGlBatchError, _Usage, OSError) as err:  # bad input, settings, journal, files
        print(f"cw-glbatch: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            "cw-glbatch: interrupted; the output files were left as they were. Run the same "
            "command again to finish: nothing created will be sent twice.",
            file=sys.stderr,
        )
        return 130
