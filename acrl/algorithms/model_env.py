"""A model's environment: the env it trains on, set or replaced, and fresh copies of it made
from what the model (or its file) records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
from gymnasium.vector import VectorEnv

from acrl.config.hyperparams import A2CConfig
from acrl.config.wrappers import EnvWrapper
from acrl.envs import (
    as_vector_env,
    check_env_spaces,
    check_named_env,
    check_reports_lives,
    check_spaces,
    make_vec_env,
    wrapper_classes,
    wrappers_of,
)
from acrl.errors import UserError
from acrl.learner.backends import Compute

_VEC_SPEC_KEYS = ("num_envs", "vectorization_mode", "vector_kwargs", "wrappers")


class ModelEnv:
    """The env methods of a model (acrl.algorithms.base.Agent)."""

    config: A2CConfig
    n_envs: int
    vectorization: str
    env_kwargs: dict[str, Any]
    env_id: str | None
    env: VectorEnv | None
    loaded_from: Path | None
    observation_space: gym.Space
    action_space: gym.Space
    compute: Compute
    # the wrappers around each env (innermost first), set by an engine's constructor, read
    # from a wrapped env, or from a model file; and the modules that the run imported to
    # register its env (named in messages, never imported because a file names them)
    env_wrappers: tuple[EnvWrapper, ...] = ()
    env_packages: tuple[str, ...] = ()

    def _choose_compute(self) -> Compute:
        """The backend and threads for this env's updates: the model's (Agent) decides."""
        raise NotImplementedError

    def _attach_env(self, env: str | gym.Env | VectorEnv, named_by: str | None = None) -> None:
        """Make ``env`` this model's env; an id ``named_by`` a file (or passed along by a
        caller) never imports the module it names (acrl.envs.ids)."""
        if isinstance(env, str):
            self.env = make_vec_env(
                env,
                self.n_envs,
                env_kwargs=self.env_kwargs,
                vectorization=self.vectorization,
                named_by=named_by,
                wrappers=self.env_wrappers,
            )
            self.env_id = env
        else:
            self.env = as_vector_env(env)
            spec = getattr(self.env, "spec", None) or getattr(env, "spec", None)
            if spec is not None:
                self.env_id = spec.id
                self.env_kwargs = {k: v for k, v in spec.kwargs.items() if k not in _VEC_SPEC_KEYS}
            self.env_wrappers = wrappers_of(env)  # what Gymnasium records of them
            self.n_envs = self.env.num_envs
        if self.config.terminal_on_life_loss:
            check_reports_lives(self.env, str(self.env_id or "the environment"))

    def set_env(self, env: str | gym.Env | VectorEnv) -> None:
        """Train on another env with the same observation and action spaces. An env id here
        never imports a module ("pkg:Env-v0" needs ``pkg`` imported by the caller): it is
        often one that a model file named."""
        self._attach_env(env, named_by=self._named_by(env))
        assert self.env is not None
        check_spaces(self.env.single_observation_space, self.observation_space, "observation")
        check_spaces(self.env.single_action_space, self.action_space, "action")
        self.compute = self._choose_compute()

    def get_env(self) -> VectorEnv | None:
        return self.env

    def make_env(self, n_envs: int = 1, seed: int | None = None) -> VectorEnv:
        """A fresh VectorEnv of the env this model was trained on (see ``check_env``)."""
        self.check_env()
        assert self.env_id is not None
        named_by = None if self.loaded_from is None else str(self.loaded_from)
        env = make_vec_env(
            self.env_id,
            n_envs,
            seed=seed,
            env_kwargs=self.env_kwargs,
            vectorization=self.vectorization,
            named_by=named_by,
            wrappers=self.env_wrappers,
        )
        # a wrapper that changed since, an env of another version: one line
        check_env_spaces(env, self.observation_space, self.action_space, named_by or "the model")
        return env

    def check_env(self) -> None:
        """Raise a one-line UserError unless this model's env can be made here. The env of a
        loaded model must be made without importing anything its file names: its id
        registered, the module of a "module:EnvId" id imported already (by the user), its
        env_kwargs the env's own, each wrapper rebuildable (acrl.envs.wrappers). Nothing is
        made."""
        if self.env_id is None:
            raise UserError("this model does not know its environment id; pass an env")
        if self.loaded_from is not None:  # else the user's own id, checked when it was given
            named_by = str(self.loaded_from)
            check_named_env(self.env_id, self.env_kwargs, named_by, self.env_packages)
            wrapper_classes(self.env_wrappers, named_by)

    def _named_by(self, env_id: object) -> str:
        """Who named ``env_id`` (given to set_env), for messages: this model's file, or the
        caller."""
        if env_id == self.env_id and self.loaded_from is not None:
            return str(self.loaded_from)
        return "the env id passed to load or set_env"
