"""One A3C worker process: its own envs, seed stream and local model; steps a shared optimizer.

Each iteration: copy the shared weights into the local model, collect n steps, backpropagate
the same A2C loss locally, clip, copy the gradients into the shared model and step the
shared optimizer (under a lock only if asked). Workers report statistics and finished
episodes to the main process through a queue, and any exception as an error message.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from acrl.a2c import compute_gradients, raw_advantages
from acrl.config import A2CConfig
from acrl.envs import make_vec_env
from acrl.flat_params import FlatParameters, make_optimizer
from acrl.numpy_loss import NumpyLoss
from acrl.policy import ActorCritic
from acrl.rollout import RolloutCollector
from acrl.seeding import set_random_seed
from acrl.shared import SharedState, attach_shared_state, push_gradients

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
REPORT_EVERY = 10  # updates between two reports of a worker
LOCK_TIMEOUT = 10.0  # seconds


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


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs that is the same for all workers (picklable)."""

    env_id: str
    env_kwargs: dict[str, Any]
    vectorization: str
    n_envs: int
    config: A2CConfig
    observation_space: gym.Space
    action_space: gym.Space
    start_timesteps: int
    total_timesteps: int
    lock_updates: bool
    seeds: list[tuple[int, int]] = field(default_factory=list)  # (torch seed, env seed) per rank

    @property
    def end_timesteps(self) -> int:
        return self.start_timesteps + self.total_timesteps


@dataclass
class Shared:
    """The objects shared between the main process and the workers."""

    policy: ActorCritic
    params: torch.Tensor  # the policy's parameter vector (its parameters are views of it)
    optimizer_state: SharedState
    timesteps: Any  # multiprocessing.Value('q', lock=False): global environment steps
    counter_lock: Any  # multiprocessing.Lock guarding increments of ``timesteps``
    stop: Any  # multiprocessing.Event
    lock: Any  # multiprocessing.Lock
    queue: Any  # multiprocessing.Queue of worker messages


def run_worker(rank: int, spec: WorkerSpec, shared: Shared, parent_pid: int) -> None:
    """Process entry point: train until the global budget is spent or the run is stopped."""
    for signum in STOP_SIGNALS:  # the main process handles Ctrl-C and SIGTERM, then stops us
        signal.signal(signum, signal.SIG_IGN)
    torch.set_num_threads(1)
    env = None
    try:
        torch_seed, env_seed = spec.seeds[rank]
        set_random_seed(torch_seed)
        env = make_vec_env(
            spec.env_id,
            spec.n_envs,
            seed=env_seed,
            env_kwargs=spec.env_kwargs,
            vectorization=spec.vectorization,
        )
        advantages = _train(rank, spec, shared, env, env_seed, parent_pid)
        shared.queue.put(("done", rank, advantages))
    except BaseException as exc:  # reported, then the process exits non-zero
        summary = f"{type(exc).__name__}: {exc}".splitlines()[0]
        shared.queue.put(("error", rank, summary, traceback.format_exc()))
        raise SystemExit(1) from None
    finally:
        if env is not None:
            env.close()


def _train(
    rank: int, spec: WorkerSpec, shared: Shared, env: Any, env_seed: int, parent_pid: int
) -> np.ndarray:
    """Train until done; the advantages of this worker's last rollout (empty if none)."""
    config = spec.config
    local = ActorCritic(
        spec.observation_space,
        spec.action_space,
        config.policy_config,
        copy.deepcopy(shared.policy.normalization),
    )
    local_params = FlatParameters(local)
    numpy_loss = NumpyLoss.for_policy(local)
    shared_buffers = list(shared.policy.buffers())  # normalization statistics, if any
    local_buffers = list(local.buffers())
    optimizer = make_optimizer(shared.params, config)
    attach_shared_state(optimizer, shared.optimizer_state)
    collector = RolloutCollector(
        env,
        local,
        config.n_steps,
        torch.device("cpu"),
        env_seed,
        gamma=config.gamma,
        normalization=shared.policy.normalization,
        stats_lock=shared.lock,
        sde_sample_freq=config.sde_sample_freq,
    )
    schedule = config.lr_schedule
    steps_per_update = config.n_steps * env.num_envs
    stats: list[list[float]] = []
    rollout = None
    updates = 0  # this worker's
    while not shared.stop.is_set() and os.getppid() == parent_pid:
        done_steps = shared.timesteps.value
        if done_steps >= spec.end_timesteps:
            break
        lr = schedule(1.0 - done_steps / spec.end_timesteps)  # as A2C's learn
        with torch.no_grad():
            local_params.vector.copy_(shared.params)
            for local_t, shared_t in zip(local_buffers, shared_buffers, strict=True):
                local_t.copy_(shared_t)
        rollout = collector.collect()
        updates += 1
        update = compute_gradients(
            local, local_params, rollout, config, lr, updates, numpy_loss=numpy_loss
        )
        push_gradients(local_params.grad, shared.params)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if spec.lock_updates:
            with shared.lock:
                optimizer.step()
        else:
            optimizer.step()
        if shared.policy.normalization is not None:
            with shared.lock:
                shared.policy.normalization.update_obs(rollout.obs)
        # Reads of the 64-bit counter are atomic; increments take the lock, with a timeout
        # so that a worker killed while holding it cannot hang the others.
        if not shared.counter_lock.acquire(timeout=LOCK_TIMEOUT):
            raise RuntimeError("could not take the step-counter lock (a worker died holding it)")
        try:
            shared.timesteps.value += steps_per_update
        finally:
            shared.counter_lock.release()
        stats.append(update.as_floats())
        if len(stats) >= REPORT_EVERY:
            shared.queue.put(("report", rank, stats, collector.episodes.drain()))
            stats = []
    shared.queue.put(("report", rank, stats, collector.episodes.drain()))
    return np.zeros(0, np.float32) if rollout is None else raw_advantages(rollout, config)
