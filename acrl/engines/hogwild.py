"""A3C's process runtime: Hogwild worker processes around a model in shared memory.

The model's parameters and its optimizer's state move to shared memory; each worker
(acrl.engines.hogwild_worker) collects rollouts and steps the shared optimizer itself. This
process does not train: it turns the workers' reports into the run's bookkeeping, and a
failing worker stops the whole run.
"""

from __future__ import annotations

import os
import queue as queue_lib
import time
from typing import Any

import numpy as np
import torch
import torch.multiprocessing as mp

from acrl.engines.hogwild_memory import share_model_and_optimizer
from acrl.engines.hogwild_worker import Shared, run_worker
from acrl.engines.signals import stop_handlers_restored
from acrl.errors import WorkerError
from acrl.learner.reports import Bookkeeping, UpdateReport, UpdateStats
from acrl.learner.worker import WorkerSpec
from acrl.model.policy import ActorCritic

SHUTDOWN_SECONDS = 5.0


class HogwildEngine:
    """Runs ``n_workers`` worker processes over ``policy`` and ``optimizer`` until the budget
    of their WorkerSpec is spent, a worker fails, or the bookkeeping asks to stop."""

    def __init__(
        self,
        policy: ActorCritic,
        params: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        n_workers: int,
        lock_updates: bool,
    ) -> None:
        self.policy, self.params, self.optimizer = policy, params, optimizer
        self.n_workers, self.lock_updates = n_workers, lock_updates
        self.workers: list[Any] = []

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
        )
        self.workers = [
            ctx.Process(
                target=run_worker, args=(rank, spec, shared, os.getpid()), name=f"acrl-a3c-{rank}"
            )
            for rank in range(self.n_workers)
        ]
        try:
            # SIGINT and SIGTERM ignored by the workers from their start, so that a signal
            # sent to the whole process group (Ctrl-C in a terminal, a container stop)
            # reaches only this process, which stops them, even while a worker is still
            # importing its modules
            with stop_handlers_restored(ignore=True):
                for process in self.workers:
                    process.start()
            return self._monitor(shared, spec.end_timesteps, bookkeeping)
        finally:
            shared.stop.set()
            self._shut_down_workers(shared)

    def _monitor(self, shared: Shared, end: int, bookkeeping: Bookkeeping) -> np.ndarray:
        """Report until every worker is done; raise on a worker failure."""
        finished: set[int] = set()
        advantages: list[np.ndarray] = []
        while len(finished) < len(self.workers):
            try:
                message = shared.queue.get(timeout=0.1)
            except queue_lib.Empty:
                message = None
            # reports can arrive after the count they were counted in: the count first
            report = UpdateReport(min(shared.timesteps.value, end))
            if message is not None:
                kind, rank, *payload = message
                if kind == "error":
                    raise WorkerError(f"worker {rank} failed: {payload[0]}")
                if kind == "done":
                    finished.add(rank)
                    advantages.append(payload[0])
                    continue
                stats, episodes = payload
                report = UpdateReport(
                    report.timesteps, [UpdateStats.from_floats(v) for v in stats], episodes
                )
            self._check_alive(shared, finished)
            if not bookkeeping.after_update(report):
                shared.stop.set()
        bookkeeping.after_update(UpdateReport(min(shared.timesteps.value, end)))
        return np.concatenate(advantages) if advantages else np.zeros(0, np.float32)

    def _check_alive(self, shared: Shared, finished: set[int]) -> None:
        """Raise if a worker ended without saying it was done, with its error if it sent one."""
        # A worker that exits 0 has queued its "done" message; only a failure is checked here.
        dead = [r for r, p in enumerate(self.workers) if r not in finished and p.exitcode]
        if not dead:
            return
        deadline = time.monotonic() + 1.0  # its last message may still be in the queue
        while time.monotonic() < deadline:
            try:
                kind, rank, *payload = shared.queue.get(timeout=0.1)
            except queue_lib.Empty:
                continue
            if kind == "error":
                raise WorkerError(f"worker {rank} failed: {payload[0]}")
        code = self.workers[dead[0]].exitcode
        raise WorkerError(f"worker {dead[0]} exited with code {code} without reporting an error")

    def _shut_down_workers(self, shared: Shared) -> None:
        """Stop every worker, kill any that does not stop, and leave no process behind."""
        started = [p for p in self.workers if p.pid is not None]
        deadline = time.monotonic() + SHUTDOWN_SECONDS
        while any(p.is_alive() for p in started) and time.monotonic() < deadline:
            _drain(shared.queue)  # a worker blocked on a full queue could not exit
            time.sleep(0.02)
        killed = False
        for process in started:
            if process.is_alive():
                process.kill()
                killed = True
            process.join(timeout=SHUTDOWN_SECONDS)
        if not killed:  # a killed worker may have left half a message: do not read it
            _drain(shared.queue)
        shared.queue.cancel_join_thread()
        shared.queue.close()


def _drain(queue: Any) -> None:
    try:
        while True:
            queue.get_nowait()
    except (queue_lib.Empty, OSError, ValueError):
        pass
