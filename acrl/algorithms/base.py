"""What every acrl model offers users: learn, predict, save, load, and its environment.

A model holds the policy, the optimizer over its one parameter vector, the spaces, the step
counters that a model file records, and the compute backend it trains with. ``learn`` is
written once, here: it opens the logs, hands the engine of the algorithm (``_train``) the
run's bookkeeping, and saves the last advantages. A2C and A3C differ only in their engine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv

from acrl import __version__
from acrl.algorithms.construction import (
    check_n_envs,
    check_sizes,
    resolve_device,
    with_image_defaults,
)
from acrl.algorithms.model_env import ModelEnv
from acrl.algorithms.model_files import contents, restore
from acrl.config.checks import check_seed
from acrl.config.hyperparams import A2CConfig
from acrl.config.policy import POLICIES, base_policy_name, with_policy_name
from acrl.errors import NonFiniteError, UserError, first_line
from acrl.learner.backends import Compute, choose_compute, torch_threads
from acrl.learner.optim import make_optimizer
from acrl.learner.reports import RECENT_EPISODES
from acrl.learner.seeding import set_random_seed
from acrl.model.encoders import check_policy_name
from acrl.model.flat_params import FlatParameters
from acrl.model.normalization import make_normalization
from acrl.model.policy import ActorCritic
from acrl.run.bookkeeping import Bookkeeper, check_settings, default_log_interval
from acrl.run.callbacks import as_callback
from acrl.run.lock import RunLock, announce_takeover
from acrl.run.metrics import MetricsLog
from acrl.run.model_file import read_model, write_model
from acrl.run.run_files import open_logs, set_rng_state
from acrl.run.space_json import space_to_json


class Agent(ModelEnv):
    """Policy, optimizer and bookkeeping shared by the A2C and A3C engines; its env's methods
    are ModelEnv's (acrl.algorithms.model_env)."""

    algo: ClassVar[str] = ""
    default_device: ClassVar[str] = "auto"

    def __init__(
        self,
        policy: str,
        env: str | gym.Env | VectorEnv | None,
        config: A2CConfig,
        n_envs: int = 8,
        seed: int | None = None,
        device: str | torch.device = "auto",
        verbose: int = 0,
        env_kwargs: Mapping[str, Any] | None = None,
        vectorization: str = "auto",
        observation_space: gym.Space | None = None,
        action_space: gym.Space | None = None,
        seed_rngs: bool = True,
        threads: int | str = "auto",
        may_import: bool = True,
    ) -> None:
        """``may_import``: a features extractor named by ``config`` may be imported (the
        user named it); False when a model file names it (acrl.model.extractors)."""
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        check_n_envs(n_envs)  # before any env is made
        check_seed("seed", seed, optional=True)
        self.config = config
        self.n_envs = n_envs
        self.seed = seed
        self.verbose = verbose
        self.device = resolve_device(device)
        self.vectorization = vectorization
        self.threads = threads
        self.env_kwargs: dict[str, Any] = dict(env_kwargs or {})
        self.env_id: str | None = None
        self.env: VectorEnv | None = None
        self.loaded_from: Path | None = None  # the model file, for a loaded model
        if env is not None:
            self._attach_env(env)
        if self.env is not None:
            observation_space = self.env.single_observation_space
            action_space = self.env.single_action_space
        if observation_space is None or action_space is None:
            raise ValueError("a model needs an env, or its observation and action spaces")
        check_policy_name(base_policy_name(policy), observation_space)
        kwargs = with_policy_name(config.policy_kwargs, policy)  # "MlpLstmPolicy": an LSTM
        config = dataclasses.replace(config, policy_kwargs=kwargs)
        config = self.config = with_image_defaults(config, observation_space)
        self.observation_space: gym.Space = observation_space
        self.action_space: gym.Space = action_space
        check_sizes(config, n_envs, observation_space, action_space, may_import)
        if seed is not None and seed_rngs:  # a loaded model leaves the caller's RNGs alone
            set_random_seed(seed)
        normalization = make_normalization(self.observation_space, config)
        with torch_threads(1):  # orthogonal init's QR rounds differently on more threads
            self.policy = ActorCritic(
                self.observation_space,
                self.action_space,
                config.policy_config,
                normalization,
                may_import,
            )
        self.policy.to(self.device)
        self.params = FlatParameters(self.policy)
        self.optimizer = make_optimizer(self.params.vector, config, self.policy.critic_only_mask())
        self.compute = self._choose_compute()
        self.num_timesteps = 0
        self.num_updates = 0
        self.total_episodes = 0
        self.recent_episodes: deque[tuple[float, int]] = deque(maxlen=RECENT_EPISODES)
        self.last_evaluation: tuple[int, float] | None = None  # (step, mean): EvalCallback's
        self.log_dir: Path | None = None
        self.metrics: MetricsLog | None = None
        self.keep_checkpoints = 2  # checkpoints kept in log_dir/checkpoints
        self._saved_rng: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = None

    def _choose_compute(self) -> Compute:
        """The backend and torch threads of this model's updates (acrl.learner.backends)."""
        batch = self.config.n_steps * self.n_envs  # per process: per worker, per rank
        return choose_compute(self.config.backend, self.policy, batch, self.threads)

    # ---- acting -------------------------------------------------------------------------
    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, Any]:
        """Actions for one observation or a batch, in the action space's shape and dtype (Box
        actions clipped to the bounds, MultiDiscrete ones shifted by its ``start``), and the
        policy's next hidden state (a feed-forward policy returns ``state`` as given, as SB3
        does), as sb3-contrib's.

        A recurrent policy continues from ``state`` (what the previous call returned; None:
        every episode's first step), zeroed where ``episode_start`` (a bool per observation)
        says that the observation starts an episode. With a single env or a SAME_STEP vector
        env, that is the last step's ``terminated | truncated``; with a NEXT_STEP vector env
        (Gymnasium's default) the observation after the reset step is the first, so pass the
        flags of the step before. ``acrl.envs.EpisodeStarts`` follows either mode."""
        # one observation or a batch; Dict and Tuple ones as dicts and tuples of arrays
        rows, single = self.policy.encoder.layout.to_batch(observation)
        batch = torch.as_tensor(rows, device=self.device)
        memory = self._predict_state(state, episode_start, len(rows), single)
        with torch.inference_mode():
            actions, next_state = self.policy.step(batch, memory, deterministic=deterministic)
        out = self.policy.distribution.to_env(actions.cpu().numpy())
        if next_state is None:
            return (out[0] if single else out), state
        states = next_state.cpu().numpy()
        return (out[0], states[0]) if single else (out, states)

    def _predict_state(
        self, state: Any, episode_start: Any, n: int, single: bool
    ) -> torch.Tensor | None:
        """``predict``'s state argument as (n, S) rows on the device, zeroed at episode starts."""
        if not self.policy.recurrent:
            return None
        size = self.policy.state_size
        if state is None:
            return self.policy.initial_state(n)
        rows = np.asarray(state, dtype=np.float32).reshape((1, -1) if single else (n, -1))
        if rows.shape != (n, size):
            raise ValueError(
                f"state must be what predict returned for these {n} observation(s): "
                f"{n} x {size} floats, got shape {np.shape(state)}"
            )
        if episode_start is not None:
            starts = np.asarray(episode_start, dtype=bool).reshape(n)
            rows = np.where(starts[:, None], 0.0, rows).astype(np.float32)
        return torch.as_tensor(rows, device=self.device)

    # ---- training -----------------------------------------------------------------------
    def learn(
        self,
        total_timesteps: int,
        callback: Any = None,
        log_interval: int | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
        checkpoint_every: int | None = None,
    ) -> Agent:
        """Train for ``total_timesteps`` environment steps; returns the model.

        ``callback``: a callable ``f(model)`` run after updates (after each one for A2C, as
        workers report for A3C; returning False stops training), an object with the hooks
        ``on_training_start``, ``on_rollout_end`` and ``on_training_end`` (acrl.BaseCallback;
        EvalCallback evaluates during training), or a list of these. A metrics row is
        written each time the update count passes a multiple of ``log_interval`` (None: about
        200 rows over the run, whatever its length); with a
        ``log_dir``, the model is saved there every ``checkpoint_every`` steps (without one,
        checkpoint_every is refused). Training uses ``self.compute``: its backend and torch
        threads (restored afterwards), and for a large CNN on the CPU glibc's malloc keeps
        freed memory from then on in each process that computes gradients (this one for
        A2C, the workers' for A3C: acrl.learner.backends.allocator).
        """
        check_settings(log_interval, checkpoint_every)  # before any log is opened
        if checkpoint_every is not None and self.log_dir is None:
            raise ValueError(
                "checkpoint_every saves into the model's log_dir, and this model has none: "
                "pass log_dir= when making it"
            )
        callbacks = as_callback(callback)  # a TypeError now, not after the first update
        if self.env is None:  # the engine makes envs from the id, which a file may have named
            self.check_env()
        with self._log_dir_locked():  # one writer per run directory
            end = self._begin_learn(total_timesteps, reset_num_timesteps)
            if self.log_dir is not None:
                announce_takeover(self.log_dir)  # of a stale lock, now that training begins
            per_update = self._steps_per_update()
            bar_total = -(-total_timesteps // per_update) * per_update
            if log_interval is None:
                log_interval = default_log_interval(end, per_update)
            bookkeeping = Bookkeeper(
                self, bar_total, callbacks, log_interval, progress_bar, checkpoint_every
            )
            if self.verbose:
                print(f"acrl: {self.algo.upper()} trains with the {self.compute.describe()}")
            advantages = np.zeros(0, np.float32)
            self.last_evaluation = None  # StopOnReturn(on="evaluation") judges this run's
            try:
                if callbacks is not None:
                    callbacks.on_training_start(self)
                with torch_threads(self.compute.threads):
                    advantages = self._train(end, bookkeeping)
            finally:
                try:
                    bookkeeping.close()
                finally:
                    if callbacks is not None:
                        callbacks.on_training_end(self)
            bookkeeping.finish(advantages)
        return self

    def _log_dir_locked(self) -> contextlib.AbstractContextManager[Any]:
        """The lock of ``log_dir`` (acrl.run.lock), held while learn() writes there; another
        process's learn() or ``acrl train`` into it meanwhile is refused."""
        if self.log_dir is None:
            return contextlib.nullcontext()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return RunLock(self.log_dir)

    def _train(self, end: int, bookkeeping: Bookkeeper) -> np.ndarray:
        """Run the algorithm's engine until step ``end`` or a stop; the last advantages."""
        raise NotImplementedError

    def _steps_per_update(self) -> int:
        """Environment steps one update of the engine adds to the count."""
        return self.config.n_steps * self.n_envs

    def _begin_learn(self, total_timesteps: int, reset_num_timesteps: bool) -> int:
        """Validate the budget, reset or continue the counters; the step count to reach."""
        if (
            isinstance(total_timesteps, bool)
            or not isinstance(total_timesteps, int)
            or total_timesteps < 1
        ):
            raise ValueError(f"total_timesteps must be an integer >= 1, got {total_timesteps!r}")
        if self.metrics is None or reset_num_timesteps:
            start = 0 if reset_num_timesteps else self.num_timesteps
            metrics = open_logs(self, start, total_timesteps, self._hparams())  # may refuse
            if self.metrics is not None and self.metrics.tensorboard is not None:
                self.metrics.tensorboard.close()
            self.metrics = metrics
        if reset_num_timesteps:
            self.num_timesteps = 0
        return self.num_timesteps + total_timesteps

    def _hparams(self) -> dict[str, Any]:
        """What TensorBoard's HPARAMS tab shows for this run."""
        return {
            "algo": self.algo,
            "env_id": str(self.env_id),
            "n_envs": self.n_envs,
            "seed": -1 if self.seed is None else self.seed,
            **self.config.to_dict(),
            "compute": self.compute.describe(),
        }

    def recent_mean_return(self) -> float:
        """Mean return of the last 100 finished training episodes (NaN before the first)."""
        if not self.recent_episodes:
            return float("nan")
        return sum(r for r, _ in self.recent_episodes) / len(self.recent_episodes)

    # ---- persistence --------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        config = self.config.to_dict()
        if callable(self.config.learning_rate):
            config["learning_rate"] = self.optimizer.lr
        return {
            "algo": self.algo,
            "acrl_version": __version__,
            "config": config,
            "compute": self.compute.to_dict(),
            "n_envs": self.n_envs,
            "seed": self.seed,
            "env_id": self.env_id,
            "env_kwargs": self.env_kwargs,
            "env_wrappers": [w.to_json() for w in self.env_wrappers],
            "env_packages": list(self.env_packages),
            "vectorization": self.vectorization,
            "observation_space": space_to_json(self.observation_space),
            "action_space": space_to_json(self.action_space),
            "num_timesteps": self.num_timesteps,
            "num_updates": self.num_updates,
            "total_episodes": self.total_episodes,
            "recent_episodes": list(self.recent_episodes),  # logging continues after a resume
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model (weights, optimizer state, hyperparameters) to one file."""
        if not torch.isfinite(self.params.vector).all():
            raise NonFiniteError(f"the model's parameters hold a NaN or inf: not saved to {path}")
        return write_model(path, *contents(self))

    def restore_rng_state(self) -> bool:
        """Set the global torch, NumPy and Python RNGs to their states when this model was
        saved (what an exact resume needs; ``load`` leaves them alone). False if the file had
        none (acrl < 0.3)."""
        if self._saved_rng is None:
            return False
        set_rng_state(*self._saved_rng)
        return True

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        env: str | gym.Env | VectorEnv | None = None,
        device: str | torch.device | None = None,
        **overrides: Any,
    ) -> Agent:
        """Rebuild a saved model; it predicts identically and can continue ``learn()``."""
        tensors, meta = read_model(path)
        if meta.get("algo") != cls.algo:
            raise UserError(
                f"{path} holds an {meta.get('algo')!r} model, not {cls.algo!r}; "
                f"use {str(meta.get('algo')).upper()}.load"
            )
        try:
            model = restore(cls, tensors, meta, device, overrides)
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UserError(
                f"{path}: cannot rebuild the model from its file "
                f"({type(exc).__name__}: {first_line(exc)})"
            ) from None
        model.loaded_from = Path(path)
        if env is not None:
            model.set_env(env)
        return model

    @classmethod
    def _engine_kwargs(cls, meta: dict[str, Any]) -> dict[str, Any]:
        """Engine settings recorded in a model file (overridden by engines that have some)."""
        return {}

    def _init_engine(self, log_dir: str | Path | None = None) -> None:
        """Engine-specific state after ``Agent.__init__`` (extended by engines)."""
        self.log_dir = None if log_dir is None else Path(log_dir)
