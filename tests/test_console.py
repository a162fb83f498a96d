"""What the command shows while it runs: log levels and format, progress lines and figures."""

from __future__ import annotations

import io
import logging
import re

import pytest

from cw_glbatch import Progress
from cw_glbatch._console import ProgressDisplay, log_levels, logging_to, progress_text

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("progress", "elapsed", "text"),
    [
        (
            Progress(120, 400, created=118, failed=2),
            3.0,
            "120/400 batches (30%), 118 created, 2 failed, 40.0/s, about 7 s left",
        ),
        (Progress(5, None, created=5), 2.0, "5 batches, 5 created, 0 failed, 2.5/s"),
        (
            Progress(4, 4, planned=3, failed=1),
            1.0,
            "4/4 batches (100%), 3 planned, 1 failed, 4.0/s",
        ),
        (
            Progress(10, 7210, created=9),
            10.0,
            "10/7210 batches (0%), 9 created, 0 failed, 1 being looked up, 1.0/s, "
            "about 2 h 00 min left",
        ),
        (
            Progress(100, 1000, created=100),
            40.0,
            "100/1000 batches (10%), 100 created, 0 failed, 2.5/s, about 6 min 00 s left",
        ),
        (Progress(0, 3), 0.0, "0/3 batches (0%), 0 created, 0 failed"),
    ],
)
def test_progress_text_figures(progress, elapsed, text):
    """The line holds done/total, created, failed, rate and the time left."""
    assert progress_text(progress, elapsed) == text


def test_log_lines_come_every_few_seconds_and_at_the_end():
    """Off a terminal: a timestamped log line once per interval, and the last figures."""
    clock, stream = Clock(), io.StringIO()
    with logging_to(stream, 0):
        display = ProgressDisplay(io.StringIO(), terminal=False, clock=clock, every=5.0)
        for done in range(1, 11):
            clock.now += 1.0
            display(Progress(done, 10, created=done))
        display.close()
    lines = stream.getvalue().splitlines()
    assert [line.split(": ", 1)[1].split(",")[0] for line in lines] == [
        "5/10 batches (50%)",
        "10/10 batches (100%)",
    ]
    assert all(re.match(rf"^{ISO} INFO cw_glbatch.progress: ", line) for line in lines)


def test_close_shows_figures_not_shown_yet():
    """A run of unknown length still ends with its last figures."""
    clock, stream = Clock(), io.StringIO()
    with logging_to(stream, 0):
        display = ProgressDisplay(io.StringIO(), terminal=False, clock=clock, every=5.0)
        display(Progress(1, None, created=1))
        display(Progress(2, None, created=2))
        display.close()
    assert stream.getvalue().count("batches") == 1
    assert "2 batches, 2 created" in stream.getvalue()


def test_terminal_line_is_redrawn_in_place_then_ended():
    """On a terminal: one line redrawn with a carriage return, ended by one newline."""
    clock, stream = Clock(), io.StringIO()
    display = ProgressDisplay(stream, terminal=True, clock=clock)
    for done in (1, 2, 3):
        clock.now += 1.0
        display(Progress(done, 3, created=done))
    display.close()
    out = stream.getvalue()
    assert out.count("\r") == 3
    assert out.endswith("3/3 batches (100%), 3 created, 0 failed, 1.0/s\x1b[K\n")
    assert out.count("\n") == 1


def test_terminal_redraws_at_most_ten_times_a_second():
    """Calls closer together than the redraw interval draw nothing."""
    clock, stream = Clock(), io.StringIO()
    display = ProgressDisplay(stream, terminal=True, clock=clock)
    for done in range(1, 50):
        clock.now += 0.01
        display(Progress(done, 100))
    assert stream.getvalue().count("\r") == 4  # at 0.1, 0.2, 0.3 and 0.4 s


@pytest.mark.parametrize(
    ("verbosity", "cw", "httpx"),
    [(-1, "ERROR", None), (0, "WARNING", None), (1, "INFO", None), (2, "DEBUG", "INFO")],
)
def test_log_levels_per_verbosity(verbosity, cw, httpx):
    """-q shows errors only; -v the library's INFO; httpx's per-request lines only at -vv."""
    levels = {k: logging.getLevelName(v) for k, v in log_levels(verbosity).items()}
    assert levels["cw_glbatch"] == cw
    assert levels.get("httpx") == httpx


def test_logging_to_touches_only_its_loggers_and_restores_them():
    """Only cw_glbatch (and httpx at -vv) get the handler; the root is untouched; all restored."""
    root_handlers = list(logging.getLogger().handlers)
    stream = io.StringIO()
    with logging_to(stream, 2):
        logging.getLogger("cw_glbatch").debug("mine")
        logging.getLogger("httpx").info("request")
        logging.getLogger("other").warning("not mine")
    logging.getLogger("cw_glbatch").warning("after")
    lines = stream.getvalue().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "DEBUG cw_glbatch: mine",
        "INFO httpx: request",
    ]
    assert re.match(rf"^{ISO} ", lines[0])
    assert logging.getLogger().handlers == root_handlers
    assert logging.getLogger("cw_glbatch").handlers == []
    assert logging.getLogger("cw_glbatch").propagate is True


def test_a_log_line_on_a_terminal_starts_on_a_clean_line():
    """A log record wipes the drawn progress line first; the next figures are drawn anew."""
    clock, stream = Clock(), io.StringIO()
    with logging_to(stream, 0):
        display = ProgressDisplay(stream, terminal=True, clock=clock)
        clock.now += 1.0
        display(Progress(1, 3, created=1))
        logging.getLogger("cw_glbatch").warning("careful")
        clock.now += 1.0
        display(Progress(2, 3, created=2))
        display.close()
        assert [h.filters for h in logging.getLogger("cw_glbatch").handlers] == [[]]
        logging.getLogger("cw_glbatch").warning("after")
    out = stream.getvalue()
    drawn, _, rest = out.partition("\r\x1b[K")
    assert drawn == "\r1/3 batches (33%), 1 created, 0 failed, 1.0/s, about 2 s left\x1b[K"
    assert re.match(rf"^{ISO} WARNING cw_glbatch: careful\n\r2/3 batches", rest)
    assert re.match(rf"^{ISO} WARNING cw_glbatch: after$", out.splitlines()[-1])
