"""Synchronous advantage actor-critic (A2C): the user-facing model.

The algorithm itself is the sync engine (acrl.engines.sync): every one of E environments
takes n steps with the current policy, GAE(lambda) turns the rewards into advantages and
value targets, one loss, one clipped optimizer step. With ``distribute`` the model trains as
one rank of several processes under torchrun (acrl.engines.torchrun).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv

from acrl.algorithms.base import Agent
from acrl.algorithms.construction import config_from
from acrl.config.hyperparams import ADAM_BETAS
from acrl.config.wrappers import wrapper_stack
from acrl.engines.sync import GradientSync, SyncEngine
from acrl.learner.backends import make_backend
from acrl.learner.backends.allocator import keep_freed_memory
from acrl.learner.rollout import RolloutCollector
from acrl.learner.seeding import continued_seed
from acrl.run.bookkeeping import Bookkeeper


class A2C(Agent):
    """Advantage actor-critic over a vectorized environment (Stable-Baselines3 names).

    ``env`` is an env id (``n_envs`` copies are made with ``make_vec_env``), a
    Gymnasium VectorEnv, or a single Env. ``log_dir`` receives ``metrics.csv``.
    ``env_wrapper`` ("module:Class", {"module:Class": {kwargs}} or a list of those, as in
    rl-baselines3-zoo) and ``frame_stack`` wrap each env made from an env id; the wrappers
    of an env passed in are read from what Gymnasium records of them. Either way they are
    saved with the model, so that ``make_env`` rebuilds the same env.
    """

    algo = "a2c"

    def __init__(
        self,
        policy: str,
        env: str | gym.Env | VectorEnv,
        learning_rate: Any = 7e-4,
        n_steps: int = 5,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        rms_prop_eps: float = 1e-5,
        use_rms_prop: bool = True,
        rms_prop_tf_like: bool = False,
        adam_betas: tuple[float, float] = ADAM_BETAS,
        critic_lr_scale: float = 1.0,
        normalize_advantage: bool = False,
        policy_kwargs: Mapping[str, Any] | None = None,
        normalize_obs: bool = False,
        normalize_reward: bool = False,
        normalize_value_targets: bool = False,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        clip_reward: bool = False,
        terminal_on_life_loss: bool = False,
        backend: str = "auto",
        n_envs: int = 8,
        seed: int | None = None,
        device: str | torch.device = "auto",
        verbose: int = 0,
        env_kwargs: Mapping[str, Any] | None = None,
        vectorization: str = "auto",
        log_dir: str | Path | None = None,
        threads: int | str = "auto",
        env_wrapper: Any = None,
        frame_stack: int | None = None,
    ) -> None:
        config = config_from(locals())
        self.env_wrappers = wrapper_stack(env_wrapper, frame_stack)
        if self.env_wrappers and not isinstance(env, str):
            raise ValueError(
                "env_wrapper and frame_stack wrap the envs made from an env id: wrap an env "
                "that you pass yourself (its wrappers are recorded)"
            )
        super().__init__(
            policy,
            env,
            config,
            n_envs,
            seed,
            device,
            verbose,
            env_kwargs,
            vectorization,
            threads=threads,
        )
        self._init_engine(log_dir=log_dir)

    def _init_engine(self, log_dir: str | Path | None = None) -> None:
        super()._init_engine(log_dir)
        self._engine: SyncEngine | None = None
        self.sync: GradientSync | None = None

    def distribute(self, sync: Any) -> None:
        """Train as one rank of several (acrl.engines.torchrun.DistributedSync): rank 0's
        weights and statistics to all, then gradients averaged, episodes gathered and stops
        agreed every update."""
        self.sync = sync
        sync.episode_slots = self.n_envs * self.config.n_steps
        sync.broadcast_model(self)
        sync.attach(self)
        self._engine = None

    def set_env(self, env: str | gym.Env | VectorEnv) -> None:
        super().set_env(env)
        self._engine = None

    def _steps_per_update(self) -> int:
        world = 1 if self.sync is None else self.sync.world_size
        return self.config.n_steps * self.n_envs * world

    def _train(self, end: int, bookkeeping: Bookkeeper) -> np.ndarray:
        if self.env is None:
            if self.env_id is None:
                raise ValueError("this model has no environment: pass one with set_env(env)")
            self.set_env(self.env_id)
        assert self.env is not None
        if self.compute.keep_memory:  # this process computes the gradients (process-wide)
            keep_freed_memory()
        if self._engine is None:
            backend = make_backend(self.compute.backend, self.policy, self.params)
            collector = RolloutCollector(
                self.env,
                self.policy,
                self.config.n_steps,
                self.device,
                continued_seed(self.seed, self.num_updates),
                gamma=self.config.gamma,
                sde_sample_freq=self.config.sde_sample_freq,
                backend=backend,
                clip_reward=self.config.clip_reward,
                terminal_on_life_loss=self.config.terminal_on_life_loss,
                name_env_errors=True,
            )
            self._engine = SyncEngine(
                self.policy, self.params, self.optimizer, backend, collector, self.config, self.sync
            )
        try:
            return self._engine.run(self.num_timesteps, self.num_updates, end, bookkeeping)
        finally:
            if self._engine.collector.envs_gone:  # killed after a hang: made anew next time
                self.env, self._engine = None, None
