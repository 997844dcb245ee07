"""The main thread's stop-signal handlers, kept or ignored while worker processes start."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

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
