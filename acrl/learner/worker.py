"""One worker's envs, seeds and local model: what A3C's process and Ray runtimes both build."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import torch
from gymnasium.vector import VectorEnv

from acrl.config.hyperparams import A2CConfig
from acrl.config.wrappers import EnvWrapper
from acrl.envs import import_env_module, make_vec_env
from acrl.learner.backends import Backend, make_backend
from acrl.learner.backends.allocator import keep_freed_memory
from acrl.learner.rollout import RolloutCollector
from acrl.learner.seeding import set_random_seed
from acrl.model.flat_params import FlatParameters
from acrl.model.normalization import Normalization
from acrl.model.policy import ActorCritic


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
    backend: str  # the compute backend chosen for the run ("torch" or "numpy")
    start_timesteps: int
    total_timesteps: int
    seeds: list[tuple[int, int]] = field(default_factory=list)  # (torch seed, env seed) per rank
    wrappers: tuple[EnvWrapper, ...] = ()  # around each env, innermost first
    env_packages: tuple[str, ...] = ()  # imported before the envs are made
    keep_memory: bool = False  # glibc keeps freed memory (Compute.keep_memory)

    @property
    def end_timesteps(self) -> int:
        return self.start_timesteps + self.total_timesteps

    @property
    def steps_per_update(self) -> int:
        return self.config.n_steps * self.n_envs


@dataclass
class Worker:
    """A worker's envs, local model (policy, flat parameters, backend) and collector."""

    env: VectorEnv
    policy: ActorCritic
    params: FlatParameters
    backend: Backend
    collector: RolloutCollector

    def close(self) -> None:
        self.env.close()


def build_worker(
    spec: WorkerSpec,
    seeds: tuple[int, int],
    normalization: Normalization | None,
    reward_normalization: Normalization | None = None,
    stats_lock: AbstractContextManager[Any] | None = None,
) -> Worker:
    """Seed this process with ``seeds`` (torch, env), make the envs and the local model.

    ``normalization`` is the local model's own statistics (a copy of the shared ones, or
    fresh ones); ``reward_normalization`` (default: those) scales the rewards, its return
    statistics updated under ``stats_lock``. A worker computes on one torch thread: workers
    are as many as cores.
    """
    torch.set_num_threads(1)
    if spec.keep_memory:  # a worker process is acrl's own
        keep_freed_memory()
    torch_seed, env_seed = seeds
    set_random_seed(torch_seed)
    config = spec.config
    for module in spec.env_packages:  # the main process imported them: the user's own
        import_env_module(module, "env_packages:")
    env = make_vec_env(
        spec.env_id,
        spec.n_envs,
        seed=env_seed,
        env_kwargs=spec.env_kwargs,
        vectorization=spec.vectorization,
        wrappers=spec.wrappers,
        threads=1,  # as many workers as cores: a native env steps on the worker's own
    )
    try:
        # may_import: the main process built this policy first, so a user's extractor
        # was named by the user there (a worker process has not imported it yet)
        policy = ActorCritic(
            spec.observation_space,
            spec.action_space,
            config.policy_config,
            normalization,
            may_import=True,
        )
        params = FlatParameters(policy)
        backend = make_backend(spec.backend, policy, params)
        collector = RolloutCollector(
            env,
            policy,
            config.n_steps,
            torch.device("cpu"),
            env_seed,
            gamma=config.gamma,
            normalization=reward_normalization,
            stats_lock=stats_lock,
            sde_sample_freq=config.sde_sample_freq,
            backend=backend,
            clip_reward=config.clip_reward,
            terminal_on_life_loss=config.terminal_on_life_loss,
        )
    except BaseException:
        env.close()
        raise
    return Worker(env, policy, params, backend, collector)
