"""Stopping a training run at a safe point when SIGINT or SIGTERM arrives."""

from __future__ import annotations

import signal
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """A callback that asks training to stop after the current update once SIGINT or SIGTERM
    has arrived, so that the model saved next is the result of whole updates. A second SIGINT
    raises KeyboardInterrupt at once: nothing more is saved and the last checkpoint stays."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum

    def __call__(self, model: Any) -> bool:
        return self.received is None

    @property
    def name(self) -> str:
        return "" if self.received is None else signal.Signals(self.received).name

    @property
    def exit_status(self) -> int:
        """128 + the signal's number, as a shell reports a process that a signal ended."""
        return 0 if self.received is None else 128 + self.received
