"""A3C's process runtime: Hogwild worker processes around a model in shared memory.

The model's parameters and its optimizer's state move to shared memory; each worker
(acrl.engines.hogwild_worker) collects rollouts and steps the shared optimizer itself. This
process does not train: it turns the workers' reports into the run's bookkeeping, and a
failing worker stops the whole run.

Liveness: each worker stamps a shared clock after every update. One that has not stamped it
for ``ACRL_WORKER_TIMEOUT`` seconds (an env hung in ``step()``, a process stopped with
SIGSTOP) is declared hung and the run ends with a line naming it. A stop asked between
updates (a signal) is honoured within a second whatever the workers do; the shutdown asks the
workers to stop, then kills those that have not, each step bounded in time.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_lib
import threading
import time
from typing import Any

import numpy as np
import torch
import torch.multiprocessing as mp

from acrl.engines.hogwild_memory import share_model_and_optimizer
from acrl.engines.hogwild_worker import Shared, run_worker
from acrl.engines.signals import (
    STOP_GRACE_SECONDS,
    seconds_from_env,
    stop_handlers_restored,
    stop_signals_held,
)
from acrl.errors import UserError, WorkerError
from acrl.learner.optim import VectorOptimizer
from acrl.learner.reports import Bookkeeping, UpdateReport, UpdateStats
from acrl.learner.worker import WorkerSpec
from acrl.model.policy import ActorCritic

SHUTDOWN_SECONDS = 2.0  # for workers to stop by themselves at the end, before a kill
JOIN_SECONDS = 2.0  # for a killed worker to be reaped
LIVENESS_SECONDS = 120.0  # default of ACRL_WORKER_TIMEOUT
STARTUP_SECONDS = 120.0  # default of ACRL_WORKER_START_TIMEOUT: a start and a first update
REIMPORTED_MAIN = 3  # a worker's exit status: importing the main script made another A3C
UNGUARDED_SCRIPT = (
    "A3C's workers are spawned processes, which import the script that started training, and "
    "this script trains again when imported: put its training under "
    '`if __name__ == "__main__":`'
)


def refuse_in_a_starting_worker() -> None:
    """End this process quietly, with REIMPORTED_MAIN, if it is a worker still importing the
    main script (spawn runs it as ``__mp_main__``; code not under ``if __name__ ==
    "__main__":`` runs again there): the main process turns that status into one line.
    Without this the worker would build the model, then fail on multiprocessing's own
    check, and the run would end with "exited with code 1" and a traceback."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SystemExit(REIMPORTED_MAIN)


class HogwildEngine:
    """Runs ``n_workers`` worker processes over ``policy`` and ``optimizer`` until the budget
    of their WorkerSpec is spent, a worker fails, or the bookkeeping asks to stop."""

    def __init__(
        self,
        policy: ActorCritic,
        params: torch.Tensor,
        optimizer: VectorOptimizer,
        n_workers: int,
        lock_updates: bool,
    ) -> None:
        self.policy, self.params, self.optimizer = policy, params, optimizer
        self.n_workers, self.lock_updates = n_workers, lock_updates
        self.workers: list[Any] = []
        self.liveness = seconds_from_env("ACRL_WORKER_TIMEOUT", LIVENESS_SECONDS)
        self.startup = seconds_from_env("ACRL_WORKER_START_TIMEOUT", STARTUP_SECONDS)
        self._stop_asked = False  # a signal: the shutdown waits for no worker

    def run(self, spec: WorkerSpec, bookkeeping: Bookkeeping) -> np.ndarray:
        """Train; the advantages of every worker's last rollout."""
        ctx = mp.get_context("spawn")
        shared = Shared(
            policy=self.policy,
            params=self.params,
            optimizer_state=share_model_and_optimizer(self.policy, self.optimizer),
            timesteps=ctx.Value("q", spec.start_timesteps, lock=False),
            counter_lock=ctx.Lock(),
            stop=ctx.Event(),
            lock=ctx.Lock(),
            queue=ctx.Queue(),
            lock_updates=self.lock_updates,
            beats=ctx.Array("d", self.n_workers, lock=False),  # 0.0: not started yet
            updates=ctx.Array("q", self.n_workers, lock=False),
        )
        self.workers = [
            ctx.Process(
                target=run_worker, args=(rank, spec, shared, os.getpid()), name=f"acrl-a3c-{rank}"
            )
            for rank in range(self.n_workers)
        ]
        inbox: Inbox | None = None
        try:
            # SIGINT and SIGTERM held back while the workers start (they begin with both
            # blocked, then ignore them), so that a signal sent to the whole process group
            # (Ctrl-C in a terminal, a container stop) reaches only this process, which stops
            # them, even while a worker is still importing its modules; one that arrives
            # during the starts is handled once they are done. (Ignoring them here instead
            # lost a Ctrl-C that came while the second worker was starting.)
            with stop_signals_held():
                for process in self.workers:
                    process.start()
            inbox = Inbox(shared.queue)
            return self._monitor(shared, inbox, spec.end_timesteps, bookkeeping)
        except KeyboardInterrupt:  # a second Ctrl-C: no more waiting
            self._stop_asked = True
            raise
        finally:
            shared.stop.set()
            wait = 0.0 if self._stop_asked else SHUTDOWN_SECONDS
            self._shut_down_workers(shared, inbox, wait)

    def _monitor(
        self, shared: Shared, inbox: Inbox, end: int, bookkeeping: Bookkeeping
    ) -> np.ndarray:
        """Report until every worker is done (or, after a stop is asked, for at most
        STOP_GRACE_SECONDS); raise on a worker failure or a hung worker."""
        finished: set[int] = set()
        advantages: list[np.ndarray] = []
        started = time.monotonic()
        stop_deadline: float | None = None
        while len(finished) < len(self.workers):
            if stop_deadline is None and bookkeeping.stop_requested():
                shared.stop.set()
                self._stop_asked = True
                stop_deadline = time.monotonic() + STOP_GRACE_SECONDS
            if stop_deadline is not None and time.monotonic() > stop_deadline:
                break  # the workers still busy are killed at once
            message = inbox.get(timeout=0.1)
            # reports can arrive after the count they were counted in: the count first
            report = UpdateReport(min(shared.timesteps.value, end))
            if message is not None:
                kind, rank, *payload = message
                if kind == "error":
                    raise WorkerError(f"worker {rank} failed: {payload[0]}")
                if kind == "unreadable":
                    raise WorkerError(f"a worker's message could not be read ({payload[0]})")
                if kind == "done":
                    finished.add(rank)
                    advantages.append(payload[0])
                    continue
                stats, episodes = payload
                report = UpdateReport(
                    report.timesteps, [UpdateStats.from_floats(v) for v in stats], episodes
                )
            self._check_alive(inbox, finished)
            if stop_deadline is None:
                self._check_live(shared, finished, started)
            if not bookkeeping.after_update(report):
                shared.stop.set()
        bookkeeping.after_update(UpdateReport(min(shared.timesteps.value, end)))
        return np.concatenate(advantages) if advantages else np.zeros(0, np.float32)

    def _check_live(self, shared: Shared, finished: set[int], started: float) -> None:
        """Raise if a worker has made no update for the liveness time (before its first
        update, which includes its start: for the longer of that and the start-up time)."""
        now = time.monotonic()
        for rank, process in enumerate(self.workers):
            beat, updates = shared.beats[rank], shared.updates[rank]
            silent = now - (beat or started)
            limit = self.liveness if updates else max(self.liveness, self.startup)
            if rank in finished or silent <= limit:
                continue
            if updates:
                last = f"its last update (of {updates}) was {beat - started:.1f} s into the run"
            elif beat:
                last = f"it made no update since it started, {beat - started:.1f} s into the run"
            else:
                last = "its process never started"
            raise WorkerError(
                f"worker {rank} (pid {process.pid}) is hung: no update for {silent:.0f} s "
                f"(ACRL_WORKER_TIMEOUT={self.liveness:g}); {last}; the run stops"
            )

    def _check_alive(self, inbox: Inbox, finished: set[int]) -> None:
        """Raise if a worker ended without saying it was done, with its error if it sent one."""
        # A worker that exits 0 has queued its "done" message; only a failure is checked here.
        dead = [r for r, p in enumerate(self.workers) if r not in finished and p.exitcode]
        if not dead:
            return
        deadline = time.monotonic() + 1.0  # its last message may still be in the queue
        while time.monotonic() < deadline:
            message = inbox.get(timeout=0.1)
            if message is not None and message[0] == "error":
                raise WorkerError(f"worker {message[1]} failed: {message[2]}")
        code = self.workers[dead[0]].exitcode
        if code == REIMPORTED_MAIN:
            raise UserError(UNGUARDED_SCRIPT)
        raise WorkerError(f"worker {dead[0]} exited with code {code} without reporting an error")

    def _shut_down_workers(self, shared: Shared, inbox: Inbox | None, wait: float) -> None:
        """Stop every worker, kill any that does not stop, and leave no process behind: each
        step bounded in time, and a second signal only skips the wait."""
        started = [p for p in self.workers if p.pid is not None]
        interrupted = False
        try:  # the inbox reads on meanwhile: no worker blocks on a full queue
            deadline = time.monotonic() + wait
            while any(p.is_alive() for p in started) and time.monotonic() < deadline:
                time.sleep(0.02)
        except KeyboardInterrupt:
            interrupted = True
        with stop_handlers_restored(ignore=True):  # the kills and joins are not interrupted
            for process in started:
                if process.is_alive():
                    process.kill()  # SIGKILL ends a hung or a stopped (SIGSTOP) worker too
            for process in started:
                process.join(timeout=JOIN_SECONDS)
            if inbox is not None:
                inbox.close()
            else:
                shared.queue.cancel_join_thread()
                shared.queue.close()
        if interrupted:
            raise KeyboardInterrupt


class Inbox:
    """The workers' messages, read from their queue by a thread of their own: a worker
    stopped or killed halfway through writing a message leaves the reader blocked on the rest
    of it, never the main loop, which waits here with a timeout."""

    _END = ("end",)

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.messages: queue_lib.Queue[Any] = queue_lib.Queue()
        self.thread = threading.Thread(target=self._read, name="acrl-a3c-inbox", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            try:
                message = self.queue.get()
            except Exception as exc:  # a message damaged by a killed writer, a closed queue
                self.messages.put(("unreadable", None, f"{type(exc).__name__}: {exc}"))
                return
            if message == self._END:
                return
            self.messages.put(message)

    def get(self, timeout: float) -> Any:
        """The next message, or None after ``timeout`` seconds."""
        try:
            return self.messages.get(timeout=timeout)
        except queue_lib.Empty:
            return None

    def close(self) -> None:
        """Stop the reader (unless a cut message holds it) and close the queue."""
        self.queue.put(self._END)  # this process holds a writing end too
        self.thread.join(timeout=1.0)
        self.queue.cancel_join_thread()
        if not self.thread.is_alive():
            self.queue.close()
