"""Standard output whose reader has gone, as in ``acrl presets | head -3``.

A closed pipe on stdout is the reader's choice, not a failure of acrl's: the command stops
quietly with the status a shell gives a process SIGPIPE stopped (141), as ``git log | head``
does. A broken pipe anywhere else (a worker's, an env's) stays an error.
"""

from __future__ import annotations

import os
import select
import sys

EXIT_PIPE = 128 + 13  # 128 + SIGPIPE, what a shell reports for `yes | head`


def stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose read end is closed (a write would fail with EPIPE)."""
    if not hasattr(select, "poll"):
        return False
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no real file behind stdout
        return False


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that the flush at exit has nowhere to fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
