"""The main thread's stop-signal handlers, kept or ignored while worker processes start, and
a watch that ends a process whose parent is gone."""

from __future__ import annotations

import contextlib
import os
import signal
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
