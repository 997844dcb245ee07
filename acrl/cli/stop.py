"""Stopping a training run at a safe point when SIGINT or SIGTERM arrives."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import Any

from acrl.engines.signals import ask_stop, end_with_parent, handle_stops

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PARENT_ENV = "ACRL_PARENT_PID"  # set by `acrl train --seeds` for each seed's process


class StopSignals:
    """A callback that asks training to stop after the current update once SIGINT or SIGTERM
    has arrived, so that the model saved next is the result of whole updates. A second SIGINT
    raises KeyboardInterrupt at once: nothing more is saved and the last checkpoint stays."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        ask_stop(False)
        self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        handle_stops(True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        handle_stops(False)
        ask_stop(False)
        if self.received == signal.SIGTERM:
            # the run is stopping and saves what it has: a repeated SIGTERM (a parent's death
            # can signal once per thread it had) must not cut the last writes short
            signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum
        ask_stop()  # an evaluation, a video or an env call under way gives up

    def __call__(self, model: Any) -> bool:
        return self.received is None

    @property
    def stop_requested(self) -> bool:
        """A stop asked between updates: engines that wait on workers check it as they wait."""
        return self.received is not None

    @property
    def name(self) -> str:
        return "" if self.received is None else signal.Signals(self.received).name

    @property
    def exit_status(self) -> int:
        """128 + the signal's number, as a shell reports a process that a signal ended."""
        return 0 if self.received is None else 128 + self.received


@contextlib.contextmanager
def stop_with_parent() -> Iterator[None]:
    """In a seed's process of ``acrl train --seeds``: a SIGTERM to this process (a stop at a
    safe point, with the model saved) as soon as that parent is gone, however it ended."""
    parent = os.environ.pop(PARENT_ENV, "")  # not for what this process starts
    if not parent.isdigit():
        yield
        return
    stop_watch = end_with_parent(int(parent), signal.SIGTERM)
    try:
        yield
    finally:
        stop_watch()


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """A Ctrl-C held back until the block is over, then raised there as KeyboardInterrupt; a
    second one meanwhile ends the process at once (one line, 130). Off the main thread, or
    where SIGINT is not Python's default handler (ignored, or a caller's own), nothing
    changes."""
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    received: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        if received:
            os.write(2, b"acrl: interrupted\n")
            os._exit(128 + signum)
        received.append(signum)

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if received:
            raise KeyboardInterrupt


def import_torch() -> None:
    """Import torch with a Ctrl-C held back until it is done. torch's import runs Python from
    C++ that cannot unwind an exception: a KeyboardInterrupt raised in there ends the process
    with SIGABRT ("terminate called after throwing an instance of 'python_error'"), rarely
    (1 of 120 Ctrl-Cs in acrl's first seconds here); held back, it is one line and exit 130."""
    if "torch" not in sys.modules:
        with interrupts_held():
            importlib.import_module("torch")
