"""The ``acrl`` program: ``main()``, then an exit that skips the interpreter's teardown.

When ``main()`` returns, every file acrl writes is closed (fsynced where it matters), and
what must happen at exit is in atexit handlers (multiprocessing's children, Ray's shutdown,
logging), which run. What is left is the interpreter's teardown, in which torch's alone takes
0.3 to 0.7 s on 2 busy cores: skipped, so that a run stopped by a signal is gone within a
second and every command ends sooner. A thread of someone else's still running (not a
daemon) gets the usual exit, which waits for it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn

from acrl.cli import main


def run() -> NoReturn:
    """``acrl``'s entry point (``python -m acrl`` too)."""
    quick_exit(main())


def quick_exit(status: int) -> NoReturn:
    """Flush, run the atexit handlers, and end with ``status``; the usual exit while a
    thread that is not a daemon runs."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(t.is_alive() and not t.daemon for t in others):
        sys.exit(status)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader gone, a stream closed
            stream.flush()
    atexit._run_exitfuncs()
    os._exit(status)
