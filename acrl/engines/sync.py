"""Synchronous A2C: the rollout is collected here and the optimizer steps here.

Each update: every one of E environments takes n steps with the current policy, GAE(lambda)
turns the rewards into advantages and value targets, one loss combines the policy gradient,
the value error and the entropy bonus, and one optimizer step follows the clipped gradient.
The envs step in this process under a watch (acrl.engines.env_watch): one hung in a call
ends the run, and a stop signal does not wait for it. With a GradientSync (several
processes: acrl.engines.torchrun) the gradient is the mean over the processes, and each
process's finished episodes and stop requests travel with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch

from acrl.config.hyperparams import A2CConfig
from acrl.engines.env_watch import CallAbandoned, EnvHung, EnvWatch
from acrl.learner.backends import Backend
from acrl.learner.optim import VectorOptimizer, optimizer_step
from acrl.learner.reports import Bookkeeping, Episode, UpdateReport
from acrl.learner.rollout import RolloutCollector
from acrl.learner.storage import Rollout
from acrl.learner.update import compute_gradients, raw_advantages, update_statistics
from acrl.model.flat_params import FlatParameters
from acrl.model.policy import ActorCritic


class GradientSync(Protocol):
    """What A2C needs of several processes that train one model together."""

    world_size: int

    def listen(self, stop_requested: Callable[[], bool]) -> None: ...

    def post(self, episodes: list[Episode], stop: bool) -> None: ...

    def average_gradients(self, grad: torch.Tensor) -> None: ...

    def take(self) -> tuple[list[Episode], bool]: ...


class SyncEngine:
    """A2C's loop over one VectorEnv's collector, one backend and one optimizer."""

    def __init__(
        self,
        policy: ActorCritic,
        params: FlatParameters,
        optimizer: VectorOptimizer,
        backend: Backend,
        collector: RolloutCollector,
        config: A2CConfig,
        sync: GradientSync | None = None,
    ) -> None:
        self.policy, self.params, self.optimizer = policy, params, optimizer
        self.backend, self.collector, self.config, self.sync = backend, collector, config, sync
        world = 1 if sync is None else sync.world_size
        self.steps_per_update = config.n_steps * collector.n_envs * world

    def run(self, timesteps: int, updates: int, end: int, bookkeeping: Bookkeeping) -> np.ndarray:
        """Update from step ``timesteps`` (after ``updates`` updates) until step ``end`` or a
        stop; the last rollout's advantages."""
        if self.sync is not None:  # a signal can end the wait for a rank that does not answer
            self.sync.listen(bookkeeping.stop_requested)
        with EnvWatch(self.collector.calls, self.collector.env_name) as watch:
            try:
                return self._loop(timesteps, updates, end, bookkeeping)
            except EnvHung:
                self.collector.abandon()  # the envs stopped half way through a call
                raise watch.hung_error() from None
            except CallAbandoned:  # a stop signal while an env hung: the last update stands
                self.collector.abandon()
                return np.zeros(0, np.float32)

    def _loop(self, timesteps: int, updates: int, end: int, bookkeeping: Bookkeeping) -> np.ndarray:
        config, sync = self.config, self.sync
        schedule = config.lr_schedule
        average: Callable[[torch.Tensor], None] | None = (
            None if sync is None else sync.average_gradients
        )
        rollout: Rollout | None = None
        stop = False
        while timesteps < end:
            rollout = self.collector.collect()
            episodes = self.collector.episodes.drain()
            if sync is not None:  # sent with the gradient; what all ranks sent comes back
                sync.post(episodes, stop)
            # As SB3: a continued run (reset_num_timesteps=False) picks the schedule up where
            # its step count left it, so a resumed run follows the original one.
            lr = schedule(1.0 - timesteps / end)
            stats = compute_gradients(
                self.backend, self.params, rollout, config, lr, updates + 1, average
            )
            optimizer_step(self.optimizer, lr)
            update_statistics(self.policy.normalization, rollout, config)
            timesteps += self.steps_per_update
            updates += 1
            if sync is not None:
                episodes, stop = sync.take()
            keep_going = bookkeeping.after_update(UpdateReport(timesteps, [stats], episodes))
            if stop:  # a rank asked to stop at the last update: all stop after this one
                break
            stop = not keep_going
            if stop and sync is None:
                break
        if rollout is None:
            return np.zeros(0, np.float32)
        return raw_advantages(rollout, config, self.policy.normalization)
