"""Signals and time limits of the engines: the main thread's stop-signal handlers, kept or
ignored while worker processes start; ending a process whose parent is gone; the grace a stop
gives; time limits read from the environment."""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

from acrl.errors import UserError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _StopAsked:
    """Whether a stop signal has come to this run (set by the CLI's handler): what runs long
    between two updates (an evaluation, a video of a whole game) checks it and gives up, so
    that the stop is honoured at once."""

    asked = False
    handled = False  # the CLI's handlers are installed: a stop signal stops at a safe point


def ask_stop(asked: bool = True) -> None:
    """Note (or, with False, forget) that a stop signal has come."""
    _StopAsked.asked = asked


def stop_asked() -> bool:
    return _StopAsked.asked


def handle_stops(handled: bool) -> None:
    """Note whether stop signals are handled by a stop at a safe point (the CLI's handlers)."""
    _StopAsked.handled = handled


def stops_handled() -> bool:
    return _StopAsked.handled


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


@contextlib.contextmanager
def stop_signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM blocked in this thread meanwhile, then let through: one that arrives
    meanwhile waits and is handled on exit, never lost, and processes started meanwhile
    begin with both blocked (they ignore them, then unblock: stop_signals_ignored), so a
    signal sent to the whole process group while they import reaches only this process.
    Where signal masks do not exist, nothing happens."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def stop_signals_ignored(ignored: tuple[int, ...] = STOP_SIGNALS) -> None:
    """For a process started under stop_signals_held: the ``ignored`` signals (SIGINT and
    SIGTERM by default) ignored from now on (one waiting is dropped), then both unblocked."""
    for signum in ignored:
        signal.signal(signum, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


PR_SET_PDEATHSIG = 1  # linux/prctl.h
STOP_GRACE_SECONDS = 0.5  # after a stop is asked (a signal): for the update under way


def die_with_parent(signum: int) -> bool:
    """On Linux, ask the kernel to send ``signum`` to this process when its parent ends, even
    while this process is stopped or stuck in C code; whether it could."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def end_with_parent(parent_pid: int, signum: int) -> Callable[[], None]:
    """Have ``signum`` sent to this process, once, when ``parent_pid`` is no longer its
    parent: by the kernel where it can (die_with_parent; at once if the parent is gone
    already), else by a watch thread; the function returned stops the watch."""
    if die_with_parent(signum):
        if os.getppid() != parent_pid:  # it ended before the kernel was asked
            os.kill(os.getpid(), signum)
        return lambda: None
    return watch_parent(parent_pid, lambda: os.kill(os.getpid(), signum))


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


TIME_LIMITS = (  # the environment variables that set the engines' time limits, in seconds
    "ACRL_ENV_TIMEOUT",
    "ACRL_WORKER_TIMEOUT",
    "ACRL_WORKER_START_TIMEOUT",
    "ACRL_RAY_TIMEOUT",
    "ACRL_DIST_TIMEOUT",
)


def check_time_limits() -> None:
    """A UserError for a time limit set to something other than seconds > 0: before a run
    writes anything, not when its engine starts."""
    for name in TIME_LIMITS:
        seconds_from_env(name, 1.0)


def seconds_from_env(name: str, default: float) -> float:
    """A number of seconds > 0 from environment variable ``name`` (``default`` if unset)."""
    text = os.environ.get(name, "")
    try:
        value = float(text) if text else default
    except ValueError:
        value = math.nan
    if not value > 0 or not math.isfinite(value):
        raise UserError(f"{name} must be a number of seconds > 0, got {text!r}")
    return value
