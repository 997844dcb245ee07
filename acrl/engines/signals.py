"""The main thread's stop-signal handlers, kept or ignored while worker processes start, and
a watch that ends a process whose parent is gone."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_handlers_restored(ignore: bool = False) -> Iterator[None]:
    """The main thread's SIGINT and SIGTERM handlers as they are, put back on exit; with
    ``ignore``, both are ignored meanwhile (processes started then inherit that). Elsewhere
    than the main thread, which cannot set handlers, nothing happens."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    if ignore:
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(signum, handler)


PR_SET_PDEATHSIG = 1  # linux/prctl.h
STOP_GRACE_SECONDS = 0.5  # after a stop is asked (a signal): for the update under way


def die_with_parent(signum: int) -> None:
    """On Linux, ask the kernel to send ``signum`` to this process when its parent ends, even
    while this process is stopped or stuck in C code (elsewhere: nothing, watch_parent
    alone)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)


def watch_parent(
    parent_pid: int, on_orphaned: Callable[[], None], poll: float = 0.2
) -> Callable[[], None]:
    """Call ``on_orphaned`` (from a daemon thread) once the process ``parent_pid`` is no
    longer this one's parent, however it ended (SIGKILL included); the function returned
    stops the watch."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(poll):
            if os.getppid() != parent_pid:
                on_orphaned()
                return

    threading.Thread(target=watch, name="acrl-parent-watch", daemon=True).start()
    return done.set
