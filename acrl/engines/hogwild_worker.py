"""One A3C worker process: its own envs, seed stream and local model; steps a shared optimizer.

Each iteration: copy the shared weights into the local model, collect n steps, compute the
same clipped A2C gradient as every engine (acrl.learner.update), copy it into the shared
model and step the shared optimizer (under a lock only if asked). Workers report statistics
and finished episodes to the main process through a queue, and any exception as an error
message.
"""

from __future__ import annotations

import copy
import os
import signal
import time
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from acrl.engines.hogwild_memory import push_gradients
from acrl.engines.signals import end_with_parent, stop_signals_ignored
from acrl.learner.optim import OptimizerState, make_optimizer, optimizer_step
from acrl.learner.update import compute_gradients, raw_advantages, update_statistics
from acrl.learner.worker import Worker, WorkerSpec, build_worker
from acrl.model.policy import ActorCritic

REPORT_EVERY = 10  # updates between two reports of a worker
LOCK_TIMEOUT = 10.0  # seconds


@dataclass
class Shared:
    """The objects shared between the main process and the workers."""

    policy: ActorCritic
    params: torch.Tensor  # the policy's parameter vector (its parameters are views of it)
    optimizer_state: OptimizerState
    timesteps: Any  # multiprocessing.Value('q', lock=False): global environment steps
    counter_lock: Any  # multiprocessing.Lock guarding increments of ``timesteps``
    stop: Any  # multiprocessing.Event
    lock: Any  # multiprocessing.Lock
    queue: Any  # multiprocessing.Queue of worker messages
    lock_updates: bool  # serialize optimizer steps under ``lock``
    beats: Any  # multiprocessing.Array('d'): each worker's time.monotonic() at its last update
    updates: Any  # multiprocessing.Array('q'): each worker's update count


def run_worker(rank: int, spec: WorkerSpec, shared: Shared, parent_pid: int) -> None:
    """Process entry point: train until the global budget is spent or the run is stopped."""
    stop_signals_ignored()  # the main process handles Ctrl-C and SIGTERM, then stops us
    # a main process that is gone (even by SIGKILL) leaves no worker behind, hung or not
    end_with_parent(parent_pid, signal.SIGKILL)
    shared.beats[rank] = time.monotonic()  # started: from now on the liveness time applies
    worker = None
    try:
        statistics = shared.policy.normalization
        worker = build_worker(
            spec,
            spec.seeds[rank],
            copy.deepcopy(statistics),  # the local model's copy, refreshed every update
            reward_normalization=statistics,
            stats_lock=shared.lock,
        )
        shared.beats[rank] = time.monotonic()
        advantages = _train(rank, spec, shared, worker, parent_pid)
        shared.queue.put(("done", rank, advantages))
    except BaseException as exc:  # reported, then the process exits non-zero
        summary = f"{type(exc).__name__}: {exc}".splitlines()[0]
        shared.queue.put(("error", rank, summary, traceback.format_exc()))
        raise SystemExit(1) from None
    finally:
        if worker is not None:
            worker.close()


def _train(
    rank: int, spec: WorkerSpec, shared: Shared, worker: Worker, parent_pid: int
) -> np.ndarray:
    """Train until done; the advantages of this worker's last rollout (empty if none)."""
    config = spec.config
    mask = worker.policy.critic_only_mask()
    optimizer = make_optimizer(shared.params, config, mask, state=shared.optimizer_state)
    shared_buffers = list(shared.policy.buffers())  # normalization statistics, if any
    local_buffers = list(worker.policy.buffers())
    schedule = config.lr_schedule
    stats: list[list[float]] = []
    rollout = None
    updates = 0  # this worker's
    while not shared.stop.is_set() and os.getppid() == parent_pid:
        done_steps = shared.timesteps.value
        if done_steps >= spec.end_timesteps:
            break
        lr = schedule(1.0 - done_steps / spec.end_timesteps)  # as A2C's
        with torch.no_grad():
            worker.params.vector.copy_(shared.params)
            for local_t, shared_t in zip(local_buffers, shared_buffers, strict=True):
                local_t.copy_(shared_t)
        rollout = worker.collector.collect()
        updates += 1
        update = compute_gradients(worker.backend, worker.params, rollout, config, lr, updates)
        push_gradients(worker.params.grad, shared.params)
        if shared.lock_updates:
            with shared.lock:
                optimizer_step(optimizer, lr)
        else:
            optimizer_step(optimizer, lr)
        if shared.policy.normalization is not None:
            with shared.lock:
                update_statistics(shared.policy.normalization, rollout, config)
        # Reads of the 64-bit counter are atomic; increments take the lock, with a timeout
        # so that a worker killed while holding it cannot hang the others.
        if not shared.counter_lock.acquire(timeout=LOCK_TIMEOUT):
            raise RuntimeError("could not take the step-counter lock (a worker died holding it)")
        try:
            shared.timesteps.value += spec.steps_per_update
        finally:
            shared.counter_lock.release()
        shared.beats[rank] = time.monotonic()  # the main process's liveness check reads it
        shared.updates[rank] = updates
        stats.append(update.as_floats())
        if len(stats) >= REPORT_EVERY:
            shared.queue.put(("report", rank, stats, worker.collector.episodes.drain()))
            stats = []
    shared.queue.put(("report", rank, stats, worker.collector.episodes.drain()))
    return (
        np.zeros(0, np.float32)
        if rollout is None
        else raw_advantages(rollout, config, shared.policy.normalization)
    )
