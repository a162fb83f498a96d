"""The journal's file: opened without following links, a regular file, locked for the run."""

from __future__ import annotations

import os
import stat

from ._exceptions import JournalError

if os.name == "posix":
    import fcntl

__all__ = ["open_locked", "read_all"]

_OPEN_FLAGS = os.O_RDWR | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_ATTEMPTS = 100  # a journal removed while we wait for its lock is opened afresh, this often


def open_locked(path: str) -> tuple[int, bool]:
    """Open (or create, 0600) ``path`` without following a link, and lock it for this run.

    Returns the descriptor and whether the file was created. Raises `JournalError` for a link,
    a file that is not a regular one, or a journal another process holds.
    """
    for _ in range(_ATTEMPTS):
        created = True
        try:
            # O_NONBLOCK: opening a FIFO placed here must not hang; regular files ignore it.
            fd = os.open(path, _OPEN_FLAGS | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            created = False
            try:
                fd = os.open(path, _OPEN_FLAGS | getattr(os, "O_NONBLOCK", 0))
            except FileNotFoundError:
                if os.path.islink(path):  # a dangling link (a system without O_NOFOLLOW)
                    raise _link_refused(path) from None
                continue  # removed in between by the run that held it: create it
            except OSError as err:
                if os.path.islink(path):
                    raise _link_refused(path) from None
                raise JournalError(f"cannot open the journal {path}: {err.strerror}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise JournalError(
                    f"{path} is not a regular file; the journal must be one. "
                    "Remove it, or choose another --success file."
                )
            _lock(fd, path)
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            return fd, created
        os.close(fd)
        if os.path.islink(path):  # opened through a link (a system without O_NOFOLLOW)
            raise _link_refused(path)
        # else the run that held it removed it as we waited: start again
    raise JournalError(
        f"the journal {path} kept being replaced while this run opened it; make sure no other "
        "program writes there, then run the same command again."
    )


def _link_refused(path: str) -> JournalError:
    return JournalError(
        f"{path} is a symbolic link; a journal is never written through one. "
        "Remove the link, or choose another --success file."
    )


def _lock(fd: int, path: str) -> None:
    if os.name != "posix":  # pragma: no cover - no advisory locks elsewhere
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise JournalError(
            f"another cw-glbatch run is using {path} and the files it belongs to; nothing was "
            "sent. Wait for it to finish (or stop it), then run again."
        ) from None


def read_all(fd: int) -> bytes:
    """Everything in the file open at ``fd``, read from its start."""
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)
