"""How ``acrl tune`` runs its trials and stops: in this process, or with ``jobs`` > 1 in that
many worker processes sharing the study's storage.

A first Ctrl-C lets the running trials finish and stops. A second Ctrl-C, or SIGTERM, stops
at once: the interrupted trials are marked so and run again, with the same settings, when the
study resumes.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

from acrl.algorithms.run_modules import import_run_modules
from acrl.engines.signals import end_with_parent, stop_signals_held, stop_signals_ignored
from acrl.errors import WorkerError
from acrl.tune.space import SpaceShape
from acrl.tune.study import Budget, optimize
from acrl.tune.trial import StudyPlan, run_config

STOP_GRACE_SECONDS = 5.0  # for the workers to mark their trials, after a stop-now


class StopRequests:
    """Signal handlers of a tune's process. ``stop()`` is True once a stop was asked (here,
    or by the parent through ``shared``, an Event); a second SIGINT, or SIGTERM, raises
    KeyboardInterrupt. ``last`` is the last signal received."""

    def __init__(self, announce: bool, shared: Any = None) -> None:
        self.announce, self.shared = announce, shared
        self.last: int | None = None

    def __enter__(self) -> StopRequests:
        self._previous = {
            s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)
        }
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.last is None
        self.last = signum
        if signum == signal.SIGTERM or not first:
            raise KeyboardInterrupt
        if self.announce:
            print(
                "SIGINT: stopping after the running trials (Ctrl-C again stops now; the "
                "interrupted trials run again on resume)",
                file=sys.stderr,
                flush=True,
            )

    def __call__(self) -> bool:
        return self.last is not None or (self.shared is not None and self.shared.is_set())

    @property
    def exit_status(self) -> int:
        """128 + the signal's number, as a shell reports a process a signal ended; 0."""
        return 0 if self.last is None else 128 + self.last


def _worker(
    plan: dict[str, Any],
    shape: dict[str, Any],
    study_dir: str,
    budget: dict[str, Any],
    worker: int,
    parent: int,
    stop_event: Any,
) -> None:
    """A worker process (spawned with SIGINT and SIGTERM blocked): trials until the budget or
    a stop. Ctrl-C is the parent's to handle (it sets ``stop_event``); SIGTERM, from the parent,
    stops at once. A killed tune kills it: its trials stay running in the storage and run
    again."""
    stop_signals_ignored((signal.SIGINT,))
    end_with_parent(parent, signal.SIGKILL)
    study_plan = StudyPlan(**plan)
    import_run_modules(run_config(study_plan, {}, 0))  # a fresh process: the user's modules
    with StopRequests(announce=False, shared=stop_event) as stop:
        try:
            optimize(
                study_plan, SpaceShape(**shape), Path(study_dir), Budget(**budget), stop, worker
            )
        except KeyboardInterrupt:
            sys.exit(130)


def run_workers(
    plan: StudyPlan,
    shape: SpaceShape,
    study_dir: Path,
    budget: Budget,
    stop: StopRequests,
    remaining: int,
) -> None:
    """``budget.jobs`` worker processes (no more than ``remaining`` trials); a stop asked here
    reaches them through an Event, a stop-now as SIGTERM."""
    context = multiprocessing.get_context("spawn")
    event = context.Event()
    processes = [
        context.Process(
            target=_worker,
            args=(
                plan.to_dict(),
                asdict(shape),
                str(study_dir),
                asdict(budget),
                i,
                os.getpid(),
                event,
            ),
        )
        for i in range(min(budget.jobs, remaining))
    ]
    with stop_signals_held():  # a Ctrl-C meanwhile is this process's, handled after
        for process in processes:
            process.start()
    try:
        while any(p.is_alive() for p in processes):
            for p in processes:
                p.join(0.2)
            if stop():
                event.set()
    except KeyboardInterrupt:
        event.set()
        _stop_now(processes)
        raise
    ended = {0, 130, -signal.SIGTERM}
    failed = [p.exitcode for p in processes if p.exitcode not in ended]
    if failed:
        raise WorkerError(f"a tune worker process ended with status {failed[0]}")


def _stop_now(processes: list[Any]) -> None:
    """SIGTERM to every worker (each marks its trial interrupted), SIGKILL after a grace."""
    for p in processes:
        if p.is_alive() and p.pid is not None:
            os.kill(p.pid, signal.SIGTERM)
    for p in processes:
        p.join(STOP_GRACE_SECONDS / max(1, len(processes)))
    for p in processes:
        if p.is_alive():
            p.kill()
            p.join()
