"""What is checked before anything is sent or any file is created, and a run's tidying.

`ConnectWiseClient` checks its options here, and `process_file` its options and paths.

Every problem found here raises `ConfigurationError` with one line saying what is wrong and
what to do. Nothing has been sent and no file has been created or changed when it does.
"""

from __future__ import annotations

import math
import os
import re
import stat

from ._exceptions import ConfigurationError

__all__ = [
    "check_client_options",
    "check_concurrency",
    "check_export_paths",
    "check_paths",
    "journal_path",
    "remove_stale_temporaries",
]

_JOURNAL_SUFFIX = ".journal"


def journal_path(success_file: str | os.PathLike[str]) -> str:
    """Where `process_file` journals a run: beside the success file."""
    return os.fspath(success_file) + _JOURNAL_SUFFIX


def check_concurrency(concurrency: object) -> None:
    """Refuse a concurrency that is not a whole number of at least 1."""
    _check_whole("concurrency", concurrency, 1)


def _check_whole(name: str, value: object, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigurationError(f"{name} must be a whole number, {least} or more, not {value!r}")


def _check_positive(name: str, value: object, unit: str = "") -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigurationError(f"{name} must be a {unit}number above 0, not {value!r}")


def check_client_options(
    *,
    timeout: object,
    max_retries: object,
    max_requests_per_minute: object,
    max_answer_bytes: object,
    client_id: str,
) -> None:
    """Refuse client options out of range, and a clientId that cannot be sent as a header."""
    _check_positive("timeout", timeout, "finite ")
    _check_whole("max_retries", max_retries, 0)
    _check_whole("max_answer_bytes", max_answer_bytes, 1)
    if max_requests_per_minute is not None:
        _check_positive("max_requests_per_minute", max_requests_per_minute, "finite ")
    if not (client_id.isascii() and client_id.isprintable()):
        raise ConfigurationError(
            "client_id holds a character that cannot be sent in an HTTP header (only "
            "printable ASCII can); check the clientId (CW_CLIENT_ID) you were given."
        )


def check_paths(
    input_file: str | os.PathLike[str],
    success_file: str | os.PathLike[str],
    fail_file: str | os.PathLike[str],
) -> None:
    """Refuse output paths that collide, or that cannot be written as plain files.

    The success file, the fail file and the journal must be three different files, and the
    success file and the journal must not be the input. The fail file may be the input: the
    documented in-place retry (the input is read whole before anything is written). Each output
    must be absent or a regular file, in an existing directory this process can write to, and
    the journal must not be a symbolic link.
    """
    journal = journal_path(success_file)
    real = {
        name: _real(path)
        for name, path in (
            ("input", input_file),
            ("success", success_file),
            ("fail", fail_file),
            ("journal", journal),
        )
    }
    for first, second, fix in (
        ("success", "fail", "give two different paths"),
        ("success", "input", "the input would be overwritten; choose another success file"),
        ("fail", "journal", "choose another fail file"),
        ("input", "journal", "choose another success file"),
    ):
        if real[first] == real[second]:
            raise ConfigurationError(
                f"the {_name(first)} and the {_name(second)} are the same file "
                f"({real[first]}): {fix}."
            )
    for name, path in (("success", success_file), ("fail", fail_file)):
        _check_output(os.fspath(path), _name(name))
    _check_journal(journal)


def check_export_paths(
    batches_file: str | os.PathLike[str], export_file: str | os.PathLike[str] | None
) -> None:
    """Refuse ``cw-glbatch export`` outputs that collide or cannot be written as plain files.

    The batches file and the export file must be two files, each absent or a regular file in
    an existing directory this process can write to (checked before the export is asked for).
    """
    outputs = [("batches file", os.fspath(batches_file))]
    if export_file is not None:
        outputs.append(("export file", os.fspath(export_file)))
        first, second = (_real(path) for _, path in outputs)
        if first == second:
            raise ConfigurationError(
                f"the batches file and the export file are the same file ({first}): give two "
                "different paths."
            )
    for name, path in outputs:
        _check_output(path, name)


def _real(path: str | os.PathLike[str]) -> str:
    """The path as the filesystem resolves it, for telling whether two paths are one file."""
    return os.path.normcase(os.path.realpath(path))


def _name(role: str) -> str:
    return "input file" if role == "input" else f"{role} file" if role != "journal" else "journal"


def _check_output(path: str, name: str) -> None:
    try:
        mode = os.stat(path).st_mode  # what a link points to counts
    except FileNotFoundError:
        mode = None
    except OSError as err:
        raise ConfigurationError(f"the {name} {path} cannot be checked: {err.strerror}.") from None
    if mode is not None and not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise ConfigurationError(
            f"the {name} {path} is {kind}: give the path of a file to create or replace."
        )
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ConfigurationError(
            f"the folder of the {name} does not exist ({directory}): create it, or give "
            "another path."
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"cannot write the {name} into {directory} (no write permission, or a read-only "
            "filesystem): give a folder you can write to."
        )


def _check_journal(path: str) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode) or not stat.S_ISREG(mode):
        kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
        raise ConfigurationError(
            f"the journal {path} is {kind}; a journal is only ever a plain file. Remove it, "
            "or choose another success file."
        )


def _temporary_pattern(path: str) -> re.Pattern[str]:
    """Names `XmlResultWriter` gives its temporaries for ``path`` (tempfile.mkstemp's)."""
    name = re.escape(os.path.basename(path))
    return re.compile(rf"\.{name}\.[a-z0-9_]{{8}}\.tmp")


def remove_stale_temporaries(*paths: str | os.PathLike[str]) -> list[str]:
    """Delete the temporary files an earlier, killed run left beside these output paths.

    Call it only while holding the run's lock (the journal), so no live run owns them. Returns
    the paths removed.
    """
    removed = []
    for path in (os.path.abspath(os.fspath(given)) for given in paths):
        directory = os.path.dirname(path)
        pattern = _temporary_pattern(path)
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if not pattern.fullmatch(name):
                continue
            stale = os.path.join(directory, name)
            try:
                if stat.S_ISREG(os.lstat(stale).st_mode):
                    os.unlink(stale)
                    removed.append(stale)
            except OSError:
                continue  # gone already, or not ours to remove: leave it
    return removed
