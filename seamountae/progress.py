"""Progress bars and log messages: both on stderr, so stdout stays for results.

Every module logs to the "seamountae" logger; the command line attaches `StderrHandler` to it
(`log_to_stderr`). Progress bars (tqdm) show only when stderr is a terminal.

Layer 1, foundations: imports layer 1 only.
"""

from __future__ import annotations

import logging
import sys

LOGGER = "seamountae"


def progress_bar(iterable, enabled: bool, **kw):
    """`iterable` with a tqdm progress bar on stderr when `enabled` and stderr is a terminal."""
    if enabled and sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(iterable, file=sys.stderr, **kw)
    return iterable


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of each message, not the one of the first call.

    A handler bound to the stream of the first invocation would write later messages (a second
    command in the same process: a notebook, a test runner) to a stale or closed stream.
    """

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def log_to_stderr(level: int | None = None) -> logging.Logger:
    """The project's logger, writing "seamountae: message" lines to stderr (once, however often called)."""
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(h, StderrHandler) for h in logger.handlers):
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter("seamountae: %(message)s"))
        logger.addHandler(handler)
    if level is not None:
        logger.setLevel(level)
    return logger
