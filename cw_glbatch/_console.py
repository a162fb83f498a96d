"""What the command shows while it runs: the ``cw_glbatch`` log and the progress of a run.

The log goes to stderr with ISO 8601 timestamps and levels, from the ``cw_glbatch`` logger only;
httpx's own line per request joins at ``-vv``. Progress is one line redrawn in place on a
terminal, and a log line every few seconds elsewhere (cron, CI, a container), with the same
figures: done/total, created, failed, rate and time left.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import time
from collections.abc import Callable, Iterator
from typing import TextIO

from ._models import Progress

__all__ = [
    "DEFAULT_LOG_EVERY",
    "DEFAULT_REDRAW_EVERY",
    "ProgressDisplay",
    "log_levels",
    "logging_to",
    "progress_text",
]

DEFAULT_LOG_EVERY = 5.0  # seconds between progress log lines when stderr is not a terminal
DEFAULT_REDRAW_EVERY = 0.1  # seconds between redraws of the progress line on a terminal
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_PROGRESS_LOGGER = "cw_glbatch.progress"
_CLEAR_TO_END = "\x1b[K"


def log_levels(verbosity: int) -> dict[str, int]:
    """The level of each logger the command sets, for ``-v`` count minus ``-q`` count."""
    if verbosity < 0:
        return {"cw_glbatch": logging.ERROR}
    if verbosity == 0:
        return {"cw_glbatch": logging.WARNING, _PROGRESS_LOGGER: logging.INFO}
    if verbosity == 1:
        return {"cw_glbatch": logging.INFO}
    return {"cw_glbatch": logging.DEBUG, "httpx": logging.INFO}


class _IsoFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        when = datetime.datetime.fromtimestamp(record.created).astimezone()
        return when.isoformat(timespec="milliseconds")


@contextlib.contextmanager
def logging_to(stream: TextIO, verbosity: int) -> Iterator[None]:
    """Send the loggers of `log_levels` to ``stream`` while inside; restore them after."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_IsoFormatter(LOG_FORMAT))
    saved = []
    for name, level in log_levels(verbosity).items():
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.setLevel(level)
        if "." not in name:  # a top logger: its children reach the handler through it
            logger.addHandler(handler)
            logger.propagate = False  # the command owns stderr: no second copy via the root
    try:
        yield
    finally:
        for logger, level, propagate in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


def _command_handlers() -> list[logging.Handler]:
    """The handlers `logging_to` installed, on the loggers it sets up."""
    return [h for name in ("cw_glbatch", "httpx") for h in logging.getLogger(name).handlers]


def progress_text(progress: Progress, elapsed: float) -> str:
    """``120/400 batches (30%), 118 created, 2 failed, 40.0/s, about 7 s left``."""
    done, total = progress.done, progress.total
    parts = [f"{done}/{total} batches ({100 * done // total}%)" if total else f"{done} batches"]
    if progress.planned:
        parts.append(f"{progress.planned} planned")
    if progress.created or not progress.planned:
        parts.append(f"{progress.created} created")
    parts.append(f"{progress.failed} failed")
    if progress.unsettled:
        parts.append(f"{progress.unsettled} being looked up")
    rate = done / elapsed if elapsed > 0 else 0.0
    if rate:
        parts.append(f"{rate:.1f}/s")
        if total and done < total:
            parts.append(f"about {_duration((total - done) / rate)} left")
    return ", ".join(parts)


def _duration(seconds: float) -> str:
    whole = max(1, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


class ProgressDisplay:
    """A `create_batches` ``progress`` callback that shows `progress_text`.

    Args:
        stream: Where a terminal's line is drawn.
        terminal: Redraw one line in place on ``stream``; otherwise log a line at INFO on
            ``cw_glbatch.progress`` (timestamped by `logging_to`).
        clock: Seconds, monotonic (tests pass a fake).
        every: Seconds between lines; by default `DEFAULT_REDRAW_EVERY` on a terminal and
            `DEFAULT_LOG_EVERY` elsewhere. The last figures are always shown.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        terminal: bool,
        clock: Callable[[], float] = time.monotonic,
        every: float | None = None,
    ) -> None:
        self._stream = stream
        self._terminal = terminal
        self._clock = clock
        self._every = every if every is not None else (
            DEFAULT_REDRAW_EVERY if terminal else DEFAULT_LOG_EVERY
        )  # fmt: skip
        self._start = self._last = clock()
        self._pending: Progress | None = None  # figures not shown yet
        self._drawn = False
        # On a terminal, a log line must not start in the middle of the progress line.
        self._handlers = _command_handlers() if terminal else []
        for handler in self._handlers:
            handler.addFilter(self._clear_line)

    def __call__(self, progress: Progress) -> None:
        """Show ``progress`` if a line is due, or if it is the last batch."""
        now = self._clock()
        last = progress.total is not None and progress.done >= progress.total
        self._pending = progress
        if last or now - self._last >= self._every:
            self._show(now)

    def close(self) -> None:
        """Show the figures not shown yet, and end a terminal's line."""
        if self._pending is not None:
            self._show(self._clock())
        if self._terminal and self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False
        for handler in self._handlers:
            handler.removeFilter(self._clear_line)

    def _clear_line(self, record: logging.LogRecord) -> bool:
        """A handler filter: wipe the progress line before a record is written (redrawn later)."""
        if self._drawn:
            self._stream.write(f"\r{_CLEAR_TO_END}")
            self._drawn = False
        return True

    def _show(self, now: float) -> None:
        progress, self._pending = self._pending, None
        if progress is None:
            return
        self._last = now
        text = progress_text(progress, now - self._start)
        if self._terminal:
            self._stream.write(f"\r{text}{_CLEAR_TO_END}")
            self._stream.flush()
            self._drawn = True
        else:
            logging.getLogger(_PROGRESS_LOGGER).info("%s", text)
