"""Synchronous advantage actor-critic (A2C).

Each update: every one of E environments takes n steps with the current policy,
GAE(lambda) turns the rewards into advantages and value targets, one loss
combines the policy gradient, the value error and the entropy bonus, and one
optimizer step follows the clipped gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv

from acrl.agent import Agent
from acrl.config import ADAM_BETAS, A2CConfig
from acrl.distributed import DistributedSync
from acrl.errors import NonFiniteError
from acrl.flat_params import FlatParameters, clip_grad_norm
from acrl.losses import LossTerms, explained_variance, rollout_loss, rollout_targets
from acrl.metrics import UpdateStats
from acrl.numpy_loss import MAX_BATCH as NUMPY_MAX_BATCH
from acrl.numpy_loss import NumpyLoss, NumpyLossTerms
from acrl.policy import ActorCritic
from acrl.progress import ProgressBar
from acrl.rollout import Rollout, RolloutCollector
from acrl.seeding import continued_seed

Callback = Callable[["Agent"], "bool | None"]


def compute_gradients(
    policy: ActorCritic,
    params: FlatParameters,
    rollout: Rollout,
    config: A2CConfig,
    learning_rate: float,
    update: int = 0,
    average_gradients: Callable[[torch.Tensor], None] | None = None,
    numpy_loss: NumpyLoss | None = None,
) -> UpdateStats:
    """The clipped gradient of the A2C loss of ``rollout``, in ``params.grad`` (zeroed first).

    ``average_gradients`` (several processes) replaces the gradient by its mean over them
    before clipping. ``numpy_loss`` (NumpyLoss.for_policy), where the policy has one,
    computes the same gradient by hand in NumPy for rollouts of up to NUMPY_MAX_BATCH
    transitions, several times faster there.
    Raises NonFiniteError, naming ``update`` and the culprit, if the loss or the gradient is
    not finite: the caller then never applies it.
    """
    targets = rollout_targets(rollout, config.gamma, config.gae_lambda, config.normalize_advantage)
    terms: LossTerms | NumpyLossTerms
    if numpy_loss is not None and rollout.rewards.numel() <= NUMPY_MAX_BATCH:
        terms = numpy_loss.rollout_gradients(rollout, targets, config.ent_coef, config.vf_coef)
        explained = terms.explained_variance
    else:
        params.zero_grad()
        terms = rollout_loss(policy, rollout, targets, config.ent_coef, config.vf_coef)
        terms.loss.backward()
        values = rollout.values.reshape(-1)
        explained = explained_variance(values, targets.returns, targets.mask)
    if average_gradients is not None:
        average_gradients(params.grad)
    grad_norm = clip_grad_norm(params.grad, config.max_grad_norm)
    if not torch.isfinite(grad_norm):  # a NaN or inf anywhere in the loss reaches the norm
        culprits = {
            "policy loss": terms.policy_loss,
            "value loss": terms.value_loss,
            "entropy": terms.entropy,
            "gradient norm": grad_norm,
        }
        name, value = next((k, v) for k, v in culprits.items() if not torch.isfinite(v))
        raise NonFiniteError(
            f"update {update}: the {name} is {float(value)}; the update was not applied"
        )
    return UpdateStats(
        policy_loss=terms.policy_loss,
        value_loss=terms.value_loss,
        entropy=terms.entropy,
        grad_norm=grad_norm.detach(),
        explained_variance=explained,
        learning_rate=learning_rate,
    )


def raw_advantages(rollout: Rollout, config: A2CConfig) -> np.ndarray:
    """The rollout's GAE advantages before any normalization, valid steps only."""
    targets = rollout_targets(rollout, config.gamma, config.gae_lambda, normalize_advantage=False)
    return targets.advantages[targets.mask.bool()].detach().cpu().numpy()


class A2C(Agent):
    """Advantage actor-critic over a vectorized environment (Stable-Baselines3 names).

    ``env`` is an env id (``n_envs`` copies are made with ``make_vec_env``), a
    Gymnasium VectorEnv, or a single Env. ``log_dir`` receives ``metrics.csv``.
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
        adam_betas: tuple[float, float] = ADAM_BETAS,
        normalize_advantage: bool = False,
        policy_kwargs: Mapping[str, Any] | None = None,
        normalize_obs: bool = False,
        normalize_reward: bool = False,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        n_envs: int = 8,
        seed: int | None = None,
        device: str | torch.device = "auto",
        verbose: int = 0,
        env_kwargs: Mapping[str, Any] | None = None,
        vectorization: str = "auto",
        log_dir: str | Path | None = None,
    ) -> None:
        config = A2CConfig(
            learning_rate=learning_rate,
            n_steps=n_steps,
            gamma=gamma,
            gae_lambda=gae_lambda,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            rms_prop_eps=rms_prop_eps,
            use_rms_prop=use_rms_prop,
            adam_betas=adam_betas,
            normalize_advantage=normalize_advantage,
            policy_kwargs=dict(policy_kwargs or {}),
            normalize_obs=normalize_obs,
            normalize_reward=normalize_reward,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
        )
        super().__init__(
            policy, env, config, n_envs, seed, device, verbose, env_kwargs, vectorization
        )
        self._init_engine(log_dir=log_dir)

    def _init_engine(self, log_dir: str | Path | None = None) -> None:
        super()._init_engine(log_dir)
        self._collector: RolloutCollector | None = None
        self.sync: DistributedSync | None = None
        self._numpy_loss = NumpyLoss.for_policy(self.policy)

    def distribute(self, sync: DistributedSync) -> None:
        """Train as one rank of several (acrl.distributed): rank 0's weights and statistics
        to all, then gradients averaged, episodes gathered and stops agreed every update."""
        self.sync = sync
        sync.episode_slots = self.n_envs * self.config.n_steps
        sync.broadcast_model(self)
        sync.attach(self)

    def set_env(self, env: str | gym.Env | VectorEnv) -> None:
        super().set_env(env)
        self._collector = None

    def update(self, rollout: Rollout, learning_rate: float) -> UpdateStats:
        """One A2C step: loss of the rollout, backward, clip, optimizer step."""
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        stats = compute_gradients(
            self.policy,
            self.params,
            rollout,
            self.config,
            learning_rate,
            self.num_updates + 1,
            None if self.sync is None else self.sync.average_gradients,
            self._numpy_loss,
        )
        self.optimizer.step()
        if self.policy.normalization is not None:  # after the step: acting and loss saw the same
            self.policy.normalization.update_obs(rollout.obs)
        return stats

    def learn(
        self,
        total_timesteps: int,
        callback: Callback | None = None,
        log_interval: int = 100,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
        checkpoint_every: int | None = None,
    ) -> A2C:
        """Train for ``total_timesteps`` environment steps; returns the model.

        ``callback(model)`` runs after every update; returning False stops
        training. A row of metrics is written every ``log_interval`` updates;
        with a ``log_dir``, the model is saved there every ``checkpoint_every`` steps.
        """
        _, end = self._begin_learn(total_timesteps, reset_num_timesteps)
        if self.env is None:
            if self.env_id is None:
                raise ValueError("this model has no environment: pass one with set_env(env)")
            self.set_env(self.env_id)
        assert self.env is not None and self.metrics is not None
        if self._collector is None:
            self._collector = RolloutCollector(
                self.env,
                self.policy,
                self.config.n_steps,
                self.device,
                continued_seed(self.seed, self.num_updates),
                gamma=self.config.gamma,
                sde_sample_freq=self.config.sde_sample_freq,
            )
        collector = self._collector
        schedule = self.config.lr_schedule
        sync = self.sync
        per_update = self.config.n_steps * self.n_envs * (1 if sync is None else sync.world_size)
        bar = ProgressBar(-(-total_timesteps // per_update) * per_update, enabled=progress_bar)
        checkpoints = self._checkpointer(checkpoint_every)
        rollout = None
        stop = False
        try:
            while self.num_timesteps < end:
                rollout = collector.collect()
                episodes = collector.episodes.drain()
                if sync is not None:  # sent with the gradient; what all ranks sent comes back
                    sync.post(episodes, stop)
                # As SB3: a continued run (reset_num_timesteps=False) picks the schedule up
                # where its step count left it, so a resumed run follows the original one.
                progress_remaining = 1.0 - self.num_timesteps / end
                stats = self.update(rollout, schedule(progress_remaining))
                self.num_timesteps += per_update
                self.num_updates += 1
                self.metrics.record(stats)
                if sync is not None:
                    episodes, stop = sync.take()
                self._add_episodes(episodes)
                bar.advance(per_update, self.recent_mean_return)
                if self.num_updates % log_interval == 0:
                    self._write_metrics()
                checkpoints.maybe_save(self.num_timesteps)
                if stop:  # a rank asked to stop at the last update: all stop after this one
                    break
                stop = callback is not None and callback(self) is False
                if stop and sync is None:
                    break
            if self.metrics.has_pending:
                self._write_metrics()
        finally:
            bar.close()
        if rollout is not None:
            self._save_advantages(raw_advantages(rollout, self.config))
        return self
