"""A watch over the calls a training loop makes into its environments in this process.

A2C steps its envs in the process that trains (acrl.engines.sync), so an env hung in
``step()`` or ``reset()`` would hang the run, and a stop signal would wait for the call to
return. A daemon thread watches the collector's call counter (acrl.learner.rollout.EnvCalls)
and abandons a call that lasts

- longer than ``ACRL_ENV_TIMEOUT`` seconds (default 120): the run ends with an EnvError
  naming the env and the call (exit 1 in the CLI, the last checkpoint kept);
- more than STOP_GRACE_SECONDS after a stop signal (acrl.engines.signals.ask_stop): the run
  stops at its last whole update and saves, as after any stop.

A stop signal to the CLI (whose handlers note it: acrl.cli.stop) reaches the watch even while
the main thread is stuck in C code and Python's handlers cannot run: the watch reads the
signal numbers that Python's C-level handler writes (``signal.set_wakeup_fd``, when no one
else uses it). Abandoning raises CallAbandoned (EnvHung for a time-out) inside the call, in
the thread that made it: through SIGURG (its default is to be ignored, so a handler for it
changes nothing for anyone else) where that thread is the main one, which also ends a
blocking system call (a sleep, a read from a socket or a pipe); elsewhere as an asynchronous
exception, which ends Python code only. A call still running STOP_GRACE_SECONDS later
cannot be interrupted (C code, mostly, or an env that catches the exception): the watch
says so once, raises again every STOP_GRACE_SECONDS, and the run waits for the call to
return (a slow physics step or asset load does, and the run then stops and saves as asked);
a second Ctrl-C meanwhile ends the process at once with one line, saving nothing more, as a
second Ctrl-C does anywhere in a run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import sys
import threading
import time
from types import FrameType, TracebackType
from typing import Any, Protocol

from acrl.engines.signals import (
    STOP_GRACE_SECONDS,
    STOP_SIGNALS,
    seconds_from_env,
    stop_asked,
    stops_handled,
)
from acrl.errors import EnvError

ENV_TIMEOUT_SECONDS = 120.0  # default of ACRL_ENV_TIMEOUT
POLL_SECONDS = 0.1
WATCH_SIGNAL = getattr(signal, "SIGURG", None)


class CallAbandoned(BaseException):
    """Raised inside an env call that the watch gave up on after a stop signal; a
    BaseException, so that an ``except Exception`` in the env (or the collector's naming of
    env errors) lets it pass."""


class EnvHung(CallAbandoned):
    """Raised inside an env call that has lasted longer than ACRL_ENV_TIMEOUT."""


class Calls(Protocol):
    """The collector's count of env calls: ``entered`` before each, ``left`` set to it after."""

    entered: int
    left: int
    what: str


class EnvWatch:
    """``with EnvWatch(calls, env_name):`` watches ``calls`` from a daemon thread meanwhile.
    What comes out of a call given up on says why: EnvHung (``hung_error()`` is the error to
    raise) or CallAbandoned (a stop signal: stop as after any update)."""

    def __init__(self, calls: Calls, env_name: str) -> None:
        self.calls, self.env_name = calls, env_name
        self.timeout = seconds_from_env("ACRL_ENV_TIMEOUT", ENV_TIMEOUT_SECONDS)
        self._abandoning = -1  # the number of the call being given up on, while it runs
        self._abandoned_at = 0.0
        self._raise: type[CallAbandoned] = CallAbandoned  # what to raise in it
        self._news = ""  # what to say as it is raised
        self._stops: list[int] = []  # the stop signals the wakeup pipe brought, in order
        self._signalled: int | None = None  # WATCH_SIGNAL, once our handler of it is installed
        self._previous: Any = None
        self._pipe: SignalPipe | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._target = threading.get_ident()

    def hung_error(self) -> EnvError:
        return EnvError(
            f"{self.env_name} has not returned from {self.calls.what} in {self.timeout:g} s "
            "(ACRL_ENV_TIMEOUT): the environment hangs; the run stops"
        )

    def __enter__(self) -> EnvWatch:
        self._target = threading.get_ident()
        if threading.current_thread() is threading.main_thread():
            if WATCH_SIGNAL is not None and signal.getsignal(WATCH_SIGNAL) in (
                signal.SIG_DFL,
                signal.SIG_IGN,
            ):  # no handler of anyone else's
                self._previous = signal.signal(WATCH_SIGNAL, self._interrupt)
                self._signalled = WATCH_SIGNAL
            self._pipe = SignalPipe.install()
        self._thread = threading.Thread(target=self._watch, name="acrl-env-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        if self._pipe is not None:
            self._pipe.wake()
        if self._thread is not None:
            try:
                self._thread.join()
            except CallAbandoned:  # an asynchronous one, for a call that had just returned
                self._thread.join()
            if self._signalled is None:
                _clear_async_exc(self._target)  # one still on its way
        if self._pipe is not None:
            self._pipe.uninstall()
            self._pipe = None
        if self._signalled is not None:
            signal.signal(self._signalled, self._previous)
            self._signalled = None

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        calls = self.calls
        if calls.entered == self._abandoning and calls.left != calls.entered:
            if self._news:
                self._say(self._news)
            raise self._raise  # still inside the call given up on

    def _wait(self) -> bool:
        """Wait a poll's time (less if a signal comes); whether to go on watching."""
        if self._pipe is None:
            return not self._done.wait(POLL_SECONDS)
        signals = self._pipe.read(POLL_SECONDS)
        if stops_handled():  # the CLI's handlers note them too, once they can run
            self._stops += [s for s in signals if s in STOP_SIGNALS]
        return not self._done.is_set()

    def _watch(self) -> None:
        seen, since, stop_since = -1, 0.0, 0.0
        said_stuck = False
        while self._wait():
            calls, now = self.calls, time.monotonic()
            entered = calls.entered
            if stop_since == 0.0 and (self._stops or stop_asked()):
                stop_since = now
            if self._abandoning != -1 and (calls.left == entered or entered != self._abandoning):
                self._abandoning = -1  # the call given up on has returned: nothing to raise
                if self._signalled is None:
                    _clear_async_exc(self._target)
            if calls.left == entered or entered != seen:  # not in a call, or a new one
                seen, since, said_stuck = entered, now, False
                continue
            lasted = now - since
            if self._abandoning == entered:  # given up on, and still running
                if now - self._abandoned_at < STOP_GRACE_SECONDS:
                    continue  # the exception may be on its way
                if signal.SIGINT in self._stops[1:]:  # a second Ctrl-C: end now
                    self._end_process(calls.what, lasted)
                if not said_stuck:
                    said_stuck, self._news = True, ""  # said here, not again as it returns
                    self._say(self._stuck(calls.what, lasted, bool(stop_since)))
                # again: an env may have caught the exception and gone on waiting
                self._abandon(entered, CallAbandoned if stop_since else self._raise, "")
            elif lasted >= self.timeout:
                self._abandon(entered, EnvHung, "")
            elif stop_since and now - max(stop_since, since) >= STOP_GRACE_SECONDS:
                self._abandon(
                    entered,
                    CallAbandoned,
                    f"{self.env_name} has not returned from {calls.what} "
                    f"{now - stop_since:.1f} s after the stop signal: the call is abandoned "
                    "and the run stops at its last whole update",
                )

    def _stuck(self, what: str, lasted: float, stopping: bool) -> str:
        """What to say of a call that no exception reaches."""
        line = (
            f"{self.env_name} has been in {what} for {lasted:.1f} s and does not come out "
            "when interrupted (C code, a blocking call no signal reaches, or an env that "
            "catches the exception): "
        )
        line += "the run stops when it returns" if stopping else "the run waits for it"
        if stops_handled():
            line += "; a second Ctrl-C ends the process now, saving nothing more"
        return line

    def _abandon(self, call: int, raise_: type[CallAbandoned], news: str) -> None:
        """Raise ``raise_`` inside call number ``call`` in the thread that made it."""
        self._raise, self._news = raise_, news
        self._abandoning, self._abandoned_at = call, time.monotonic()
        if self._signalled is not None:  # our handler is installed: it ends a system call too
            signal.pthread_kill(self._target, self._signalled)  # it says the news, if it can run
            return
        if news:
            self._say(news)
        set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
        set_async_exc(ctypes.c_ulong(self._target), ctypes.py_object(raise_))
        if self.calls.left == self.calls.entered or self.calls.entered != call:
            _clear_async_exc(self._target)  # the call returned meanwhile: not for the loop

    def _end_process(self, what: str, lasted: float) -> None:
        """After a second Ctrl-C, with the env stuck where no exception reaches: end now."""
        self._say(
            f"interrupted twice: {self.env_name} has been in {what} for {lasted:.1f} s and "
            "cannot be interrupted; the process ends without saving (the last checkpoint "
            "stays)"
        )
        os._exit(128 + signal.SIGINT)

    @staticmethod
    def _say(line: str) -> None:
        print(f"acrl: {line}", file=sys.stderr, flush=True)


def _clear_async_exc(thread_id: int) -> None:
    """Drop an asynchronous exception not yet raised in thread ``thread_id``."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)


class SignalPipe:
    """The numbers of the signals that come to this process, as Python's C-level handler
    writes them to its wakeup fd (``signal.set_wakeup_fd``): they arrive even while the main
    thread is in C code and no Python handler can run. Installed from the main thread."""

    def __init__(self, read: int, write: int) -> None:
        self._read, self._write = read, write

    @classmethod
    def install(cls) -> SignalPipe | None:
        """The pipe, set as the wakeup fd; None where another one is set (an event loop's)."""
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        try:
            previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        except ValueError:  # not the main thread, or no wakeup fd here
            previous = None
        if previous != -1:
            if previous is not None:
                signal.set_wakeup_fd(previous)
            os.close(read)
            os.close(write)
            return None
        return cls(read, write)

    def read(self, timeout: float) -> bytes:
        """The signal numbers come within ``timeout`` seconds (a 0 from ``wake``)."""
        ready, _, _ = select.select([self._read], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self._read, 512)
        except BlockingIOError:
            return b""

    def wake(self) -> None:
        """End a ``read`` under way."""
        with contextlib.suppress(BlockingIOError):  # full: a read returns at once anyway
            os.write(self._write, b"\0")

    def uninstall(self) -> None:
        signal.set_wakeup_fd(-1)
        os.close(self._read)
        os.close(self._write)
