"""The cw-glbatch command: create, export, validate, demo, simulator.

Exit codes: 0 every batch created with its id (or, for validate, no problem found); 1 some
batches failed, or are not settled yet; 2 bad input or usage, nothing sent (a journal or success
file of another input or ConnectWise included); 3 ConnectWise could not be reached or refused the
credentials; 4 batches were created but the result files could not be written (run the same
command again to finish).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._batches import BATCH_ID_VARIABLE, DEFAULT_CONCURRENCY, process_file, stop_kind
from ._cli_export import add_export_command, run_export
from ._client import ConnectWiseClient
from ._connection import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from ._console import ProgressDisplay, logging_to
from ._demo import fault_option, run_demo, run_simulator
from ._exceptions import ApiError, ConfigurationError, CwGlBatchError, ResultsNotWrittenError
from ._identifiers import identifier_problem
from ._models import BatchResult, RunReport
from ._preflight import journal_path
from ._reader import XmlBatchReader, where_in_file
from ._settings import Settings
from ._version import __version__

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_WRITTEN = 0, 1, 2, 3, 4


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
    _add_verbosity(parser, "")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    create = commands.add_parser("create", help="create the batches of an input file")
    create.add_argument("--input", required=True, type=Path, help="the XML file of batches")
    create.add_argument("--success", required=True, type=Path, help="where created batches go")
    create.add_argument("--fail", required=True, type=Path, help="where failed batches go")
    create.add_argument("--concurrency", type=_positive, default=DEFAULT_CONCURRENCY)
    create.add_argument("--dry-run", action="store_true", help="check everything, create nothing")
    create.add_argument("--batch-id", help=f"the {BATCH_ID_VARIABLE} value for unnamed batches")
    _add_connection_options(create)
    create.add_argument("--json", action="store_true", help="print a JSON summary on stdout")

    _add_connection_options(add_export_command(commands))

    validate = commands.add_parser("validate", help="check an input file; send nothing")
    validate.add_argument("--input", required=True, type=Path)
    validate.add_argument("--json", action="store_true", help="print the problems as JSON")

    demo = commands.add_parser("demo", help="run the whole task against the built-in simulator")
    demo.add_argument("--dir", type=Path, help="where to write the files (default: a new folder)")

    simulator = commands.add_parser("simulator", help="serve the ConnectWise simulator over HTTP")
    simulator.add_argument("--host", default="127.0.0.1")
    simulator.add_argument("--port", type=_port, default=0, help="default: any free port")
    simulator.add_argument(
        "--populate", type=_not_negative, default=100, help="unposted GL entries to add"
    )
    simulator.add_argument("--latency", type=float, default=0.0, help="seconds added to answers")
    simulator.add_argument("--jitter", type=float, default=0.0, help="± seconds on the latency")
    simulator.add_argument(
        "--fault",
        dest="faults",
        action="append",
        default=[],
        type=fault_option,
        metavar="KIND:RATE",
        help="a fault and its chance per request, repeatable: a status (503; 520 and 524 come "
        "after the batch was created), reset, lost, trickle or truncated; e.g. 524:0.05",
    )
    simulator.add_argument("--seed", type=int, default=0, help="seed of data, latency and faults")
    simulator.add_argument("--cert", type=Path, help="PEM certificate: serve HTTPS (with --key)")
    simulator.add_argument("--key", type=Path, help="PEM private key of --cert")
    for command in commands.choices.values():
        _add_verbosity(command, "command_")
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, prefix: str) -> None:
    """-v and -q, counted separately before and after the command, then added up."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        dest=f"{prefix}verbose",
        help="log retries and lookups (-vv: also each HTTP request)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="count",
        default=0,
        dest=f"{prefix}quiet",
        help="show only errors: no progress, no summary",
    )


def _verbosity(args: argparse.Namespace) -> int:
    return int(args.verbose + args.command_verbose - args.quiet - args.command_quiet)


def _add_connection_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--env-file", type=Path, help="read CW_* settings from this file")
    command.add_argument(
        "--max-requests-per-minute", type=_positive, help="a ceiling on the request rate"
    )
    command.add_argument(
        "--max-retries", type=_not_negative, default=DEFAULT_MAX_RETRIES, help="per request"
    )
    command.add_argument(
        "--timeout", type=_seconds, default=DEFAULT_TIMEOUT, help="seconds allowed per request"
    )


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be {least} or more, not {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text!r}")
    return value


def _positive(text: str) -> int:
    return _whole(text, 1)


def _not_negative(text: str) -> int:
    return _whole(text, 0)


def _port(text: str) -> int:
    port = _whole(text, 0)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535 (0: any free port), not {port}")
    return port


def _summary(
    report: RunReport, success: Path, fail: Path, would_fail: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "created": report.counts["created"],
        "failed": report.counts["failed"],
        "planned": report.counts["planned"],
        "dry_run": report.dry_run,
        "elapsed_seconds": round(report.elapsed, 3),
        "requests": report.requests,
        "stopped": report.stopped,
        "unsettled": report.unsettled,
        "success_file": None if report.dry_run else str(success),
        "fail_file": None if report.dry_run else str(fail),
        "would_fail": would_fail if report.dry_run else None,
    }


def _exit_code(report: RunReport) -> int:
    if report.stopped is not None:
        return EXIT_UNREACHABLE
    return EXIT_OK if report.ok else EXIT_FAILED


def _create(args: argparse.Namespace) -> int:
    problem = None if args.batch_id is None else identifier_problem(args.batch_id, "--batch-id")
    if problem:
        raise ConfigurationError(
            f"{problem}: give the identifier for batches that have none, or leave --batch-id "
            "out to have one made; nothing was sent."
        )
    settings = Settings.load(args.env_file)
    client = _client(settings, args)
    progress = _progress_display(args)
    would_fail = _WouldFail()
    with client:
        try:
            report = process_file(
                client,
                args.input,
                args.success,
                args.fail,
                concurrency=args.concurrency,
                dry_run=args.dry_run,
                variables=None if args.batch_id is None else {BATCH_ID_VARIABLE: args.batch_id},
                progress=progress,
                on_result=would_fail if args.dry_run else None,
            )
        finally:
            if progress is not None:
                progress.close()
    _report(report, args, would_fail.batches)
    _report_stop(report, settings)
    _report_unsettled(report, args.success)
    return _exit_code(report)


def _client(settings: Settings, args: argparse.Namespace) -> ConnectWiseClient:
    """The client the settings describe; a missing setting names where it was looked for."""
    options: dict[str, Any] = {"max_retries": args.max_retries, "timeout": args.timeout}
    if args.max_requests_per_minute:
        options["max_requests_per_minute"] = args.max_requests_per_minute
    try:
        return ConnectWiseClient.from_env(settings.environ, **options)
    except ConfigurationError as err:
        raise ConfigurationError(f"{err} {settings.missing_hint()}") from None


def _progress_display(args: argparse.Namespace) -> ProgressDisplay | None:
    """A line redrawn on a terminal, log lines elsewhere; none with -q."""
    if _verbosity(args) < 0:
        return None
    return ProgressDisplay(sys.stderr, terminal=sys.stderr.isatty())


class _WouldFail:
    """The batches a dry run would fail, and why (those not sent because it stopped excepted)."""

    def __init__(self) -> None:
        self.batches: list[dict[str, Any]] = []

    def __call__(self, result: BatchResult) -> None:
        if result.error is not None and result.error.code != "NotSent":
            self.batches.append(
                {
                    "batch_line": result.request.line,
                    "identifier": result.identifier,
                    "reason": result.error.message,
                }
            )


def _report(report: RunReport, args: argparse.Namespace, would_fail: list[dict[str, Any]]) -> None:
    summary = _summary(report, args.success, args.fail, would_fail)
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    if _verbosity(args) < 0:
        return
    if report.dry_run:
        for batch in would_fail:
            line, reason = batch["batch_line"], batch["reason"]
            print(f"{args.input}: batch at line {line} would fail: {reason}")
        planned, failed, created = summary["planned"], summary["failed"], summary["created"]
        carried = f", {created} already created (in the success file)" if created else ""
        print(f"dry run: {planned} batches would be created, {failed} would fail{carried}")
    else:
        print(f"created {summary['created']}, failed {summary['failed']} in {report.elapsed:.2f} s")
        print(f"success file: {args.success}")
        print(f"fail file:    {args.fail}")


def _report_stop(report: RunReport, settings: Settings) -> None:
    """Why the run stopped, once, and which settings to check."""
    if report.stopped is None:
        return
    print(f"cw-glbatch: stopped: {report.stopped}", file=sys.stderr)
    hint = settings.check_hint(stop_kind(report.stop_error)) if report.stop_error else None
    if hint:
        print(f"cw-glbatch: {hint}", file=sys.stderr)


def _report_unsettled(report: RunReport, success: Path) -> None:
    """What to do about batches the run could not settle, once, whatever the verbosity."""
    if report.unsettled:
        print(
            f"cw-glbatch: {report.unsettled} batches are not settled yet: created without a "
            "known batch id, or sent without a known outcome (OutcomeUnknown). The journal "
            f"{journal_path(success)} is kept: run the same command again to settle them; do not "
            "send them any other way.",
            file=sys.stderr,
        )


def _validate(args: argparse.Namespace) -> int:
    problems = []
    count = 0
    for batch in XmlBatchReader(args.input):
        count += 1
        for error in batch.errors:
            line, column, message = where_in_file(error)
            problems.append(
                {
                    "batch_line": batch.line,
                    "identifier": batch.identifier,
                    "problem": error,
                    "line": line,
                    "column": column,
                    "message": message,
                }
            )
    if args.json:
        print(json.dumps({"batches": count, "problems": problems}, indent=2))
    else:
        for problem in problems:  # file:line:column: as editors and compilers write it
            where = ":".join(str(p) for p in (problem["line"], problem["column"]) if p)
            owner = f"batch at line {problem['batch_line']}"
            print(f"{args.input}:{where}: {problem['message']} ({owner})")
        print(f"{count} batches, {len(problems)} problems")
    return EXIT_FAILED if problems else EXIT_OK


def _run(args: argparse.Namespace) -> int:
    if args.command == "create":
        return _create(args)
    if args.command == "export":
        client = _client(Settings.load(args.env_file), args)
        return run_export(args, client, quiet=_verbosity(args) < 0)
    if args.command == "validate":
        return _validate(args)
    if args.command == "demo":
        return run_demo(args.dir)
    return run_simulator(
        args.host,
        args.port,
        args.populate,
        latency=args.latency,
        jitter=args.jitter,
        faults=args.faults,
        seed=args.seed,
        cert=args.cert,
        key=args.key,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    with logging_to(sys.stderr, _verbosity(args)):
        return _run_reporting_errors(args, sys.argv[1:] if argv is None else argv)


def _run_reporting_errors(args: argparse.Namespace, argv: Sequence[str]) -> int:
    try:
        return _run(args)
    except ResultsNotWrittenError as err:
        again = shlex.join(["cw-glbatch", *argv])
        print(f"cw-glbatch: error: {err}\nTo finish: {again}", file=sys.stderr)
        return EXIT_NOT_WRITTEN
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
