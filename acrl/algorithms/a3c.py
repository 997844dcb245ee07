"""Asynchronous advantage actor-critic (A3C): the user-facing model.

Workers collect rollouts and compute the same clipped A2C gradient as A2C; where they run is
the ``runtime``: Hogwild worker processes on this machine that step a shared optimizer
(acrl.engines.hogwild), or Ray actors whose gradients this process applies
(acrl.engines.ray). Either way this process keeps the books (metrics, checkpoints,
callbacks) and a failing worker stops the run.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acrl.algorithms.base import Agent
from acrl.algorithms.construction import config_from
from acrl.config.hyperparams import ADAM_BETAS
from acrl.config.runs import RUNTIMES
from acrl.config.wrappers import wrapper_stack
from acrl.engines.hogwild import HogwildEngine, refuse_in_a_starting_worker
from acrl.engines.ray import RAY_MISSING, RayEngine
from acrl.envs import check_reports_lives, make_vec_env
from acrl.envs.ids import user_env_modules
from acrl.errors import UserError
from acrl.learner.seeding import worker_seeds
from acrl.learner.worker import WorkerSpec
from acrl.run.bookkeeping import Bookkeeper


class A3C(Agent):
    """Asynchronous advantage actor-critic with the hyperparameter names of A2C.

    ``env`` is an env id (each worker makes its own ``n_envs`` copies). ``n_workers``
    defaults to the number of cores; ``lock_updates`` serializes optimizer steps
    (default: lock-free Hogwild). ``runtime="ray"`` runs the workers as Ray actors, on a
    local Ray instance or the cluster at ``ray_address``; Ray restarts a worker whose
    process dies up to ``worker_restarts`` times. ``backend`` is the compute backend of
    the workers' gradients, as for A2C.
    """

    algo = "a3c"
    default_device = "cpu"

    def __init__(
        self,
        policy: str,
        env: str,
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
        n_workers: int | None = None,
        n_envs: int = 1,
        lock_updates: bool = False,
        runtime: str = "processes",
        ray_address: str | None = None,
        worker_restarts: int = 3,
        seed: int | None = None,
        device: str | torch.device = "cpu",
        verbose: int = 0,
        env_kwargs: Mapping[str, Any] | None = None,
        vectorization: str = "auto",
        log_dir: str | Path | None = None,
        threads: int | str = "auto",
        env_wrapper: Any = None,
        frame_stack: int | None = None,
    ) -> None:
        refuse_in_a_starting_worker()  # a script without the __main__ guard, imported by one
        if not isinstance(env, str):
            raise ValueError("A3C needs an env id: each worker process makes its own envs")
        if backend in RUNTIMES:  # acrl 0.2's name for the runtime
            warnings.warn(
                f"A3C(backend={backend!r}) is now A3C(runtime={backend!r}); backend names "
                "the compute backend (auto, torch, numpy)",
                DeprecationWarning,
                stacklevel=2,
            )
            backend, runtime = "auto", backend
        config = config_from(locals())
        self.env_wrappers = wrapper_stack(env_wrapper, frame_stack)
        probe = make_vec_env(
            env, 1, env_kwargs=env_kwargs, vectorization=vectorization, wrappers=self.env_wrappers
        )
        spaces = probe.single_observation_space, probe.single_action_space
        try:
            if config.terminal_on_life_loss:
                check_reports_lives(probe, str(env))
        finally:
            probe.close()
        super().__init__(
            policy,
            None,
            config,
            n_envs,
            seed,
            device,
            verbose,
            env_kwargs,
            vectorization,
            observation_space=spaces[0],
            action_space=spaces[1],
            threads=threads,
        )
        self.env_id = env
        self._init_engine(
            log_dir=log_dir,
            n_workers=n_workers,
            lock_updates=lock_updates,
            runtime=runtime,
            ray_address=ray_address,
            worker_restarts=worker_restarts,
        )
        if runtime == "ray" and importlib.util.find_spec("ray") is None:
            raise UserError(RAY_MISSING)

    def _init_engine(
        self,
        log_dir: str | Path | None = None,
        n_workers: int | None = None,
        lock_updates: bool = False,
        runtime: str = "processes",
        ray_address: str | None = None,
        worker_restarts: int = 3,
    ) -> None:
        refuse_in_a_starting_worker()  # A3C.load in such a script
        super()._init_engine(log_dir)
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        if runtime == "ray" and lock_updates:
            raise ValueError(
                "lock_updates is a setting of the processes runtime: on Ray the driver "
                "applies the gradients one at a time"
            )
        if ray_address is not None and runtime != "ray":
            raise ValueError("ray_address joins a Ray cluster: it needs runtime='ray'")
        if (
            isinstance(worker_restarts, bool)
            or not isinstance(worker_restarts, int)
            or worker_restarts < 0
        ):
            raise ValueError(f"worker_restarts must be an integer >= 0, got {worker_restarts!r}")
        if n_workers is None:
            n_workers = os.cpu_count() or 1
        if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
            raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
        if self.device.type != "cpu":
            raise ValueError("A3C runs on the CPU: Hogwild shares CPU memory between processes")
        try:
            pickle.dumps(self.config.learning_rate)
        except Exception:
            raise ValueError(
                "A3C needs a picklable learning_rate (a number, 'lin_X' or a module-level "
                "function): workers are separate processes"
            ) from None
        self.n_workers = n_workers
        self.lock_updates = bool(lock_updates)
        self.runtime = runtime
        self.ray_address = ray_address  # not saved: where the cluster is is not the model's
        self.worker_restarts = worker_restarts  # Ray runtime only
        self.workers: list[Any] = []  # the processes runtime's worker processes, once started

    @classmethod
    def _engine_kwargs(cls, meta: dict[str, Any]) -> dict[str, Any]:
        kwargs = dict(meta.get("a3c", {}))
        if "backend" in kwargs:  # acrl 0.2's name for the runtime
            kwargs["runtime"] = kwargs.pop("backend")
        return kwargs

    def _meta(self) -> dict[str, Any]:
        meta = super()._meta()
        meta["a3c"] = {
            "n_workers": self.n_workers,
            "lock_updates": self.lock_updates,
            "runtime": self.runtime,
            "worker_restarts": self.worker_restarts,
        }
        return meta

    def _hparams(self) -> dict[str, Any]:
        return {**super()._hparams(), "n_workers": self.n_workers, "runtime": self.runtime}

    def _train(self, end: int, bookkeeping: Bookkeeper) -> np.ndarray:
        """Train with ``n_workers`` workers until ``end`` global steps or a stop; the
        advantages of the workers' last rollouts. Raises WorkerError if a worker fails."""
        spec = WorkerSpec(
            env_id=str(self.env_id),
            env_kwargs=dict(self.env_kwargs),
            vectorization=self.vectorization,
            n_envs=self.n_envs,
            config=self.config,
            observation_space=self.observation_space,
            action_space=self.action_space,
            backend=self.compute.backend,
            keep_memory=self.compute.keep_memory,
            start_timesteps=self.num_timesteps,
            total_timesteps=end - self.num_timesteps,
            seeds=worker_seeds(self.seed, self.num_updates, self.n_workers),
            wrappers=self.env_wrappers,
            # the run's env_packages that this process imported, and the env modules the user
            # named (--env-module): each worker imports them too, to find the envs they register
            env_packages=tuple(
                dict.fromkeys(
                    [*(m for m in self.env_packages if m in sys.modules), *user_env_modules()]
                )
            ),
        )
        if self.runtime == "ray":
            engine = RayEngine(
                self.policy,
                self.params,
                self.optimizer,
                self.n_workers,
                self.worker_restarts,
                self.ray_address,
            )
            return engine.run(spec, self.num_updates, bookkeeping)
        processes = HogwildEngine(
            self.policy, self.params.vector, self.optimizer, self.n_workers, self.lock_updates
        )
        self.workers = processes.workers
        try:
            return processes.run(spec, bookkeeping)
        finally:
            self.workers = processes.workers
